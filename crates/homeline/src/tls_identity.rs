//! The TLS certificate used when `[tls]` names no certificate files: one kept in the data
//! folder (`tls/server.crt`, `tls/server.key`), made on first start. The same certificate is
//! used on every start, so phones that pinned or imported it keep trusting it.

use std::path::Path;

use anyhow::{Context, Result};
use net::TlsIdentity;

/// Folder inside the data folder.
const DIR: &str = "tls";

/// Loads the data folder's certificate, or makes a self-signed one for `names` (host names and
/// addresses phones reach homeline by) and keeps it there.
pub(crate) fn load_or_create(data: &Path, names: &[String]) -> Result<TlsIdentity> {
    let dir = data.join(DIR);
    let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key = std::fs::read(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        return TlsIdentity::from_pem(&cert, &key)
            .with_context(|| format!("{} / {}", cert_path.display(), key_path.display()));
    }
    let key = rcgen::KeyPair::generate().context("cannot make a TLS key")?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("certificate names")?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("homeline", |n| n.as_str()),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "homeline");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86_400)).into();
    let cert = params
        .self_signed(&key)
        .context("cannot sign the certificate")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    TlsIdentity::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
        .context("the new certificate")
}

/// Writes a file only its owner may read (a private key).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn made_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("homeline-tlsid-{}", std::process::id()));
        let names = vec!["pbx.example".to_owned(), "192.0.2.10".to_owned()];
        let first = load_or_create(&dir, &names).unwrap();
        let second = load_or_create(&dir, &names).unwrap();
        assert_eq!(first.chain, second.chain);
        let info = first.info().unwrap();
        assert!(info.subject.contains("pbx.example"), "{}", info.subject);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("tls/server.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

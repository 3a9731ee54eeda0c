//! The TLS side of `serve`: the certificate from `[tls]` files (watched and reloaded when they
//! change) or from the data folder ([`crate::tls_identity`]), and the device-certificate
//! settings, turned into the I/O layer's [`net::TlsConfig`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use net::{CertificateInfo, TlsConfig, TlsIdentity, TlsIdentitySetter};
use tracing::{info, warn};

use crate::config::TlsSettings;

/// How often configured certificate files are checked for a change.
const POLL: Duration = Duration::from_secs(2);

/// The I/O layer's TLS settings: files read, or `stored` (the certificate store's active
/// identity) when `[tls]` names no files.
pub(crate) fn tls_config(s: &TlsSettings, stored: TlsIdentity) -> Result<TlsConfig> {
    let identity = match &s.files {
        Some((cert, key)) => read_identity(cert, key)?,
        None => stored,
    };
    let mut config = TlsConfig::new(identity);
    config.internal_port = s.internal_port;
    config.external_port = s.external_port;
    config.min_rsa_bits = s.min_rsa_bits;
    config.client_auth = s.client_auth;
    config.check_subject_name = s.check_subject_name;
    if let Some(ca) = &s.client_ca {
        let pem = std::fs::read(ca)
            .with_context(|| format!("tls.client_ca: cannot read {}", ca.display()))?;
        config.client_ca = net::tls::certificates_from_pem("client CA", &pem)
            .with_context(|| format!("tls.client_ca: {}", ca.display()))?;
    }
    if let Some(crl) = &s.crl {
        let data = std::fs::read(crl)
            .with_context(|| format!("tls.crl: cannot read {}", crl.display()))?;
        config.crls = net::tls::crls_from_pem_or_der(&data)
            .with_context(|| format!("tls.crl: {}", crl.display()))?;
    }
    Ok(config)
}

/// Reads a PEM certificate chain and key; errors name the files.
fn read_identity(cert: &Path, key: &Path) -> Result<TlsIdentity> {
    let c = std::fs::read(cert)
        .with_context(|| format!("tls.certificate: cannot read {}", cert.display()))?;
    let k = std::fs::read(key)
        .with_context(|| format!("tls.private_key: cannot read {}", key.display()))?;
    TlsIdentity::from_pem(&c, &k)
        .with_context(|| format!("tls: {} / {}", cert.display(), key.display()))
}

/// Logs the certificate in use (never the key).
pub(crate) fn log_certificate(what: &str, c: &CertificateInfo) {
    info!(subject = %c.subject, sha256 = %c.sha256, key = %c.key, not_after = c.not_after, "{what}");
}

/// Watches the configured certificate files and puts a changed pair in place for new
/// handshakes; connections and calls already up are not touched. A pair that does not load
/// (written half-way, key of another certificate) is logged and the current one kept; the
/// next change is tried again.
pub(crate) fn spawn_watch(cert: PathBuf, key: PathBuf, setter: TlsIdentitySetter) {
    tokio::spawn(async move {
        let stamp = |p: &Path| -> Option<(SystemTime, u64)> {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        let mut seen = (stamp(&cert), stamp(&key));
        loop {
            tokio::time::sleep(POLL).await;
            let now = (stamp(&cert), stamp(&key));
            if now == seen {
                continue;
            }
            seen = now;
            match read_identity(&cert, &key).and_then(|id| Ok(setter.set(&id)?)) {
                Ok(info) => {
                    log_certificate("TLS certificate reloaded: new handshakes use it", &info)
                }
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "TLS certificate files changed but not loaded; the current certificate stays")
                }
            }
        }
    });
}

/// Follows the certificate store: when `homeline cert use` makes another certificate active,
/// new handshakes use it; connections and calls already up are not touched. A certificate
/// that cannot be used is logged and the current one kept.
pub(crate) fn spawn_store_watch(
    store: store::Store,
    current_sha256: String,
    setter: TlsIdentitySetter,
) {
    tokio::spawn(async move {
        let mut current = current_sha256;
        // The store's change counter moves with every certificate (and station) change: the
        // certificate itself is read and parsed only when it has moved.
        let mut seen = store.generation().await.ok();
        loop {
            tokio::time::sleep(POLL).await;
            let generation = store.generation().await.ok();
            if generation.is_some() && generation == seen {
                continue;
            }
            seen = generation;
            let active = match crate::tls_identity::load(&store).await {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "active certificate unreadable; the current one stays");
                    continue;
                }
            };
            if active.sha256 == current {
                continue;
            }
            current = active.sha256.clone();
            match active
                .check()
                .and_then(|()| Ok(setter.set(&active.to_net())?))
            {
                Ok(info) => {
                    log_certificate("active certificate changed: new handshakes use it", &info)
                }
                Err(e) => warn!(
                    name = %active.name,
                    error = %format!("{e:#}"),
                    "the newly active certificate is refused; the current one stays"
                ),
            }
        }
    });
}

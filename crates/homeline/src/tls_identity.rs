//! The certificate SIP over TLS serves: made on first start (a root CA "homeline-root" and a
//! server certificate for this host's names and addresses), else the one chosen with
//! `homeline cert use`. The TLS listener takes its identity from [`load`] (and again when
//! [`store::Store::generation`] changes: `cert use` bumps it).

use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use pki::{
    AltName, CaSpec, CertInfo, CertName, KeySpec, OffsetDateTime, Serial, ServerCertSpec,
    SignatureHash, Subject, Validity,
};
use store::{CertKind, NewCertificate, Store, StoredCertificate};

use crate::cert_cmd::{unix, CA_DAYS, SERVER_DAYS};

/// Name of the CA made on first start.
pub(crate) const BOOTSTRAP_CA: &str = "homeline-root";
/// Name of the server certificate made on first start.
pub(crate) const BOOTSTRAP_SERVER: &str = "homeline-server";

/// What a TLS server needs: the chain to send and the key to sign with.
#[derive(Clone)]
pub(crate) struct ActiveIdentity {
    /// Store name of the certificate.
    pub(crate) name: String,
    /// The certificate first, then the certificates above it (DER).
    pub(crate) cert_chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub(crate) key_pkcs8_der: Vec<u8>,
    /// Subject DN.
    pub(crate) subject: String,
    /// SHA-256 fingerprint of the certificate.
    pub(crate) sha256: String,
    /// Start of validity.
    pub(crate) not_before: OffsetDateTime,
    /// End of validity.
    pub(crate) not_after: OffsetDateTime,
}

impl std::fmt::Debug for ActiveIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveIdentity")
            .field("name", &self.name)
            .field("subject", &self.subject)
            .field("sha256", &self.sha256)
            .field("key_pkcs8_der", &"***")
            .finish_non_exhaustive()
    }
}

impl ActiveIdentity {
    /// Checks that the key belongs to the certificate and every certificate parses, so a
    /// damaged store is reported at start rather than at the first TLS handshake.
    pub(crate) fn check(&self) -> Result<()> {
        let (leaf, chain) = self
            .cert_chain_der
            .split_first()
            .context("the active identity has no certificate")?;
        pki::check_identity(
            &pki::Identity {
                cert_der: leaf.clone(),
                chain_der: chain.to_vec(),
                key_pkcs8_der: self.key_pkcs8_der.clone(),
            },
            0,
        )
        .with_context(|| format!("stored certificate {} is unusable", self.name))?;
        Ok(())
    }

    /// The identity as the TLS listeners take it.
    pub(crate) fn to_net(&self) -> net::TlsIdentity {
        net::TlsIdentity {
            chain: self
                .cert_chain_der
                .iter()
                .map(|c| rustls_pki_types::CertificateDer::from(c.clone()))
                .collect(),
            key: rustls_pki_types::PrivateKeyDer::Pkcs8(
                rustls_pki_types::PrivatePkcs8KeyDer::from(self.key_pkcs8_der.clone()),
            ),
        }
    }

    /// The expiry warning to log (30 days ahead, or expired), if any.
    pub(crate) fn expiry_warning(&self, now: OffsetDateTime) -> Option<String> {
        pki::expiry_warning(&self.name, self.not_before, self.not_after, now)
    }

    fn from_stored(cert: StoredCertificate) -> Result<Self> {
        let key = cert
            .key_pkcs8
            .with_context(|| format!("certificate {} has no stored private key", cert.row.name))?;
        let mut chain = vec![cert.cert_der];
        chain.extend(cert.chain_der);
        Ok(Self {
            name: cert.row.name,
            cert_chain_der: chain,
            key_pkcs8_der: key,
            subject: cert.row.subject,
            sha256: cert.row.sha256,
            not_before: unix(cert.row.not_before),
            not_after: unix(cert.row.not_after),
        })
    }
}

/// The active SIP-TLS identity, `None` when none is chosen. What the TLS code calls.
pub(crate) async fn load(store: &Store) -> Result<Option<ActiveIdentity>> {
    match store.active_certificate().await? {
        Some(cert) => Ok(Some(ActiveIdentity::from_stored(cert)?)),
        None => Ok(None),
    }
}

/// The active identity; on first start (none active) makes the CA [`BOOTSTRAP_CA`] (unless
/// it exists) and a server certificate for `names` and `ips`, signed by it and made active.
pub(crate) async fn ensure(
    store: &Store,
    names: &[String],
    ips: &[IpAddr],
    now: OffsetDateTime,
    min_rsa_bits: u32,
) -> Result<ActiveIdentity> {
    if let Some(active) = load(store).await? {
        return Ok(active);
    }
    // RSA: every SIP phone speaks it, not all speak ECDSA.
    let key = KeySpec::Rsa {
        bits: [2048, 3072, 4096]
            .into_iter()
            .find(|&b| b >= min_rsa_bits)
            .unwrap_or(4096),
    };
    let host = names.first().cloned().unwrap_or_else(|| "homeline".into());
    let ca = match store.certificate(BOOTSTRAP_CA).await? {
        Some(ca) if ca.row.is_ca && ca.key_pkcs8.is_some() => ca,
        Some(_) => bail!("certificate {BOOTSTRAP_CA} exists but is not a CA with its key"),
        None => {
            let spec = CaSpec {
                name: CertName::parse(BOOTSTRAP_CA)?,
                serial: fresh_serial(store).await?,
                key,
                hash: SignatureHash::Sha256,
                validity: Validity::days_from(now, CA_DAYS),
                subject: Subject {
                    organization: Some("homeline".into()),
                    common_name: truncate(&format!("homeline root CA {host}")),
                    ..Subject::default()
                },
                alt_names: Vec::new(),
                crl_distribution_point: None,
            };
            let made = pki::create_ca(&spec, min_rsa_bits)?;
            let info = CertInfo::from_der(&made.cert_der)?;
            store
                .add_certificate(&new_certificate(
                    BOOTSTRAP_CA,
                    CertKind::Ca,
                    &info,
                    made.cert_der,
                    Vec::new(),
                    Some(made.key_pkcs8_der),
                    None,
                    false,
                    now,
                ))
                .await?;
            store
                .certificate(BOOTSTRAP_CA)
                .await?
                .context("the new CA is not in the store")?
        }
    };
    let mut alt_names: Vec<AltName> = Vec::new();
    for name in names {
        // A host name that is not a DNS name (underscores) is left out, not fatal.
        if let Ok(alt) = format!("DNS:{name}").parse::<AltName>() {
            if !alt_names.contains(&alt) {
                alt_names.push(alt);
            }
        }
    }
    for ip in ips {
        let alt = AltName::Ip(*ip);
        if !alt_names.contains(&alt) {
            alt_names.push(alt);
        }
    }
    let mut name = BOOTSTRAP_SERVER.to_owned();
    let mut n = 1;
    while store.certificate(&name).await?.is_some() {
        n += 1;
        name = format!("{BOOTSTRAP_SERVER}-{n}");
    }
    let spec = ServerCertSpec {
        name: CertName::parse(&name)?,
        serial: fresh_serial(store).await?,
        key,
        hash: SignatureHash::Sha256,
        validity: Validity::days_from(now, SERVER_DAYS),
        subject: Subject {
            organization: Some("homeline".into()),
            common_name: truncate(&host),
            ..Subject::default()
        },
        alt_names,
    };
    let ca_key = ca.key_pkcs8.as_deref().context("the CA has no key")?;
    let made = pki::issue_server(
        &spec,
        min_rsa_bits,
        pki::CaMaterial {
            cert_der: &ca.cert_der,
            key_pkcs8_der: ca_key,
        },
    )?;
    let info = CertInfo::from_der(&made.cert_der)?;
    let mut chain = vec![ca.cert_der.clone()];
    chain.extend(ca.chain_der.iter().cloned());
    store
        .add_certificate(&new_certificate(
            &name,
            CertKind::Server,
            &info,
            made.cert_der,
            chain,
            Some(made.key_pkcs8_der),
            Some(ca.row.name.clone()),
            true,
            now,
        ))
        .await?;
    load(store)
        .await?
        .context("the new server certificate is not active")
}

/// This host's names for the first-start certificate: its host name and "localhost".
pub(crate) fn host_names() -> Vec<String> {
    let mut names = Vec::new();
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            let name = text.trim().to_ascii_lowercase();
            if !name.is_empty() {
                names.push(name);
                break;
            }
        }
    }
    names.push("localhost".to_owned());
    names.dedup();
    names
}

/// This host's addresses for the first-start certificate: the specific listener addresses,
/// the public address when fixed, the address of the default route, and loopback.
pub(crate) fn host_ips(listeners: &[std::net::SocketAddr], public: Option<IpAddr>) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = listeners
        .iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .collect();
    ips.extend(public);
    // Connecting a UDP socket sends nothing; it only asks the kernel which source address
    // the default route would use (192.0.2.1 is TEST-NET-1, never answered).
    if let Ok(sock) = std::net::UdpSocket::bind("0.0.0.0:0") {
        if sock.connect("192.0.2.1:9").is_ok() {
            if let Ok(local) = sock.local_addr() {
                ips.push(local.ip());
            }
        }
    }
    ips.push(IpAddr::from([127, 0, 0, 1]));
    ips.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    let mut seen = Vec::new();
    ips.retain(|ip| {
        let new = !ip.is_unspecified() && !seen.contains(ip);
        seen.push(*ip);
        new
    });
    ips
}

/// A serial no certificate of this installation has had.
async fn fresh_serial(store: &Store) -> Result<Serial> {
    loop {
        let serial = Serial::random()?;
        if store.serial_taken(&serial.to_hex()).await?.is_none() {
            return Ok(serial);
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(pki::MAX_SUBJECT_ATTRIBUTE).collect()
}

/// The store's row for a certificate checked by `pki`.
#[allow(clippy::too_many_arguments)] // the row's fields
pub(crate) fn new_certificate(
    name: &str,
    kind: CertKind,
    info: &CertInfo,
    cert_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    key_pkcs8: Option<Vec<u8>>,
    issuer_name: Option<String>,
    active: bool,
    now: OffsetDateTime,
) -> NewCertificate {
    NewCertificate {
        name: name.to_owned(),
        kind,
        serial: info.serial_hex.clone(),
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        not_before: info.not_before.unix_timestamp(),
        not_after: info.not_after.unix_timestamp(),
        sha256: info.sha256.clone(),
        is_ca: info.is_ca,
        cert_der,
        chain_der,
        key_pkcs8,
        issuer_name,
        active,
        created_at: now.unix_timestamp(),
    }
}

/// Writes a file only its owner can read (it holds a private key).
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

//! SIP over TLS (RFC 3261 §26.3.1, RFC 5630): the server identity, its live replacement, the
//! TLS settings (versions, cipher suites, client certificates, CRLs) and the names a device
//! certificate carries.
//!
//! Only TLS 1.2 and 1.3 are offered, and only ECDHE key exchange with AEAD ciphers (AES-GCM,
//! ChaCha20-Poly1305): rustls has no CBC, RC4, 3DES, NULL or export suites at all, and the
//! list below says so explicitly rather than trusting a default that may grow.
//!
//! The certificate is replaced under a running server by swapping the [`CertifiedKey`] the
//! resolver hands to new handshakes; established connections keep their session and never
//! notice.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::aws_lc_rs::{self, cipher_suite};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a certificate, key or TLS setting was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM text held nothing usable.
    #[error("{what}: {why}")]
    Pem {
        /// What was read ("certificate", "private key", "client CA", "CRL").
        what: &'static str,
        /// Why it was refused.
        why: String,
    },
    /// The certificate could not be parsed as X.509.
    #[error("certificate cannot be parsed: {0}")]
    Certificate(String),
    /// An RSA key shorter than the configured minimum.
    #[error("RSA key of {bits} bits is shorter than the minimum of {min} bits (tls.min_rsa_bits)")]
    WeakRsa {
        /// The key's modulus length.
        bits: u32,
        /// The minimum in force.
        min: u32,
    },
    /// The key does not belong to the certificate, or is of a kind rustls cannot sign with.
    #[error("private key: {0}")]
    Key(String),
    /// The client-certificate verifier could not be built (bad CA or CRL).
    #[error("client certificate validation: {0}")]
    Verifier(String),
    /// rustls refused the settings.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server certificate chain (end entity first) with its private key.
pub struct TlsIdentity {
    /// DER certificates, the end entity first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for TlsIdentity {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsIdentity, TlsError> {
        let chain = certificates_from_pem("certificate", cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
            what: "private key",
            why: pem_why(e),
        })?;
        Ok(TlsIdentity { chain, key })
    }

    /// What status and the log show of the end-entity certificate.
    pub fn info(&self) -> Result<CertificateInfo, TlsError> {
        let leaf = self
            .chain
            .first()
            .ok_or_else(|| TlsError::Certificate("the chain is empty".into()))?;
        CertificateInfo::of(leaf)
    }
}

/// Every certificate in a PEM text; at least one.
pub fn certificates_from_pem(
    what: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            why: pem_why(e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            why: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// Every CRL in a PEM text, or the text itself as one DER CRL.
pub fn crls_from_pem_or_der(
    data: &[u8],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    if data.starts_with(b"-----") || data.trim_ascii_start().starts_with(b"-----") {
        let crls = CertificateRevocationListDer::pem_slice_iter(data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                what: "CRL",
                why: pem_why(e),
            })?;
        if crls.is_empty() {
            return Err(TlsError::Pem {
                what: "CRL",
                why: "no X509 CRL block".into(),
            });
        }
        return Ok(crls);
    }
    Ok(vec![CertificateRevocationListDer::from(data.to_vec())])
}

fn pem_why(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM block of the right kind".into(),
        other => other.to_string(),
    }
}

/// The end-entity certificate as status and the log show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// Subject distinguished name ("CN=pbx.example.org, O=...").
    pub subject: String,
    /// SHA-256 of the DER certificate, upper-case hex pairs joined by ':' (as `openssl x509
    /// -fingerprint -sha256` prints it).
    pub sha256: String,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Key algorithm and size ("RSA 2048", "EC 256").
    pub key: String,
}

impl CertificateInfo {
    /// Parses one DER certificate.
    pub fn of(der: &CertificateDer<'_>) -> Result<CertificateInfo, TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let key = match cert.public_key().parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
            Ok(x509_parser::public_key::PublicKey::EC(ec)) => format!("EC {}", ec.key_size()),
            Ok(_) | Err(_) => "other".to_owned(),
        };
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            sha256: fingerprint(der),
            not_after: cert.validity().not_after.timestamp(),
            key,
        })
    }

    /// The RSA modulus length in bits, if the key is RSA.
    fn rsa_bits(&self) -> Option<u32> {
        self.key.strip_prefix("RSA ")?.parse().ok()
    }
}

/// SHA-256 of `der`, upper-case hex pairs joined by ':'.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether and how devices present certificates (mutual TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate is asked for.
    #[default]
    Off,
    /// A certificate is asked for; a device without one is let in (digest still applies), one
    /// with a certificate that does not validate is refused at the handshake.
    Optional,
    /// Every device must present a certificate that validates against the client CA.
    Required,
}

/// TLS settings of the listeners.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Internal-zone TLS port, on each internal listener address. Brief default: 5061.
    pub internal_port: u16,
    /// External-zone TLS port, on each external listener address. Brief default: 5063.
    pub external_port: u16,
    /// The certificate at start.
    pub identity: TlsIdentity,
    /// Shortest RSA key accepted for the server certificate, bits.
    pub min_rsa_bits: u32,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// The CAs device certificates must chain to (required unless `client_auth` is off).
    pub client_ca: Vec<CertificateDer<'static>>,
    /// Revocation lists checked for device certificates.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// A device certificate must name the station it registers (see [`names_station`]).
    pub check_subject_name: bool,
    /// A connection that has not finished its handshake by then is closed.
    pub handshake_timeout: Duration,
}

impl TlsConfig {
    /// The brief's ports and defaults around `identity`.
    pub fn new(identity: TlsIdentity) -> TlsConfig {
        TlsConfig {
            internal_port: 5061,
            external_port: 5063,
            identity,
            min_rsa_bits: 2048,
            client_auth: ClientAuth::Off,
            client_ca: Vec::new(),
            crls: Vec::new(),
            check_subject_name: false,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The protocol versions offered: TLS 1.2 and 1.3, nothing older.
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// aws-lc-rs with only ECDHE + AEAD suites (TLS 1.3 suites are all AEAD).
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..aws_lc_rs::default_provider()
    }
}

/// Hands every new handshake the current certificate; [`CertResolver::replace`] swaps it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl CertResolver {
    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

/// The TLS side of the listeners: the rustls configuration every accepted connection uses,
/// and the resolver through which the certificate is replaced.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// Shared by every handshake.
    pub(crate) config: Arc<ServerConfig>,
    resolver: Arc<CertResolver>,
    provider: Arc<CryptoProvider>,
    min_rsa_bits: u32,
    /// Device certificates must name the station they register.
    pub(crate) check_subject_name: bool,
    /// Handshake deadline.
    pub(crate) handshake_timeout: Duration,
    /// The certificate in use.
    pub(crate) info: Arc<std::sync::Mutex<CertificateInfo>>,
}

impl TlsServer {
    /// Checks the settings and the certificate and builds the rustls configuration.
    pub fn new(config: &TlsConfig) -> Result<TlsServer, TlsError> {
        let provider = Arc::new(provider());
        let (key, info) = certified(&config.identity, &provider, config.min_rsa_bits)?;
        let resolver = Arc::new(CertResolver {
            current: RwLock::new(key),
        });
        let verifier = match config.client_auth {
            ClientAuth::Off => WebPkiClientVerifier::no_client_auth(),
            mode => {
                let mut roots = RootCertStore::empty();
                for ca in &config.client_ca {
                    roots
                        .add(ca.clone())
                        .map_err(|e| TlsError::Verifier(format!("client CA: {e}")))?;
                }
                let mut b =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .with_crls(config.crls.iter().cloned());
                if mode == ClientAuth::Optional {
                    b = b.allow_unauthenticated();
                }
                b.build().map_err(|e| TlsError::Verifier(e.to_string()))?
            }
        };
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(PROTOCOL_VERSIONS)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver.clone());
        // SIP needs no resumption across restarts; a small cache keeps idle memory low.
        server.session_storage = rustls::server::ServerSessionMemoryCache::new(256);
        Ok(TlsServer {
            config: Arc::new(server),
            resolver,
            provider,
            min_rsa_bits: config.min_rsa_bits,
            check_subject_name: config.check_subject_name,
            handshake_timeout: config.handshake_timeout,
            info: Arc::new(std::sync::Mutex::new(info)),
        })
    }

    /// Replaces the certificate for new handshakes; connections already up keep theirs.
    /// A refused identity leaves the current one in place.
    pub fn replace(&self, identity: &TlsIdentity) -> Result<CertificateInfo, TlsError> {
        let (key, info) = certified(identity, &self.provider, self.min_rsa_bits)?;
        self.resolver.replace(key);
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
        Ok(info)
    }

    /// The certificate in use.
    pub fn certificate(&self) -> CertificateInfo {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The certificate new handshakes get (its SHA-256 fingerprint).
    pub fn current_fingerprint(&self) -> String {
        self.resolver
            .current()
            .cert
            .first()
            .map(|c| fingerprint(c))
            .unwrap_or_default()
    }
}

/// Checks `identity` (parsable, key size, key matches) and makes the rustls key of it.
fn certified(
    identity: &TlsIdentity,
    provider: &CryptoProvider,
    min_rsa_bits: u32,
) -> Result<(Arc<CertifiedKey>, CertificateInfo), TlsError> {
    let info = identity.info()?;
    if let Some(bits) = info.rsa_bits() {
        if bits < min_rsa_bits {
            return Err(TlsError::WeakRsa {
                bits,
                min: min_rsa_bits,
            });
        }
    }
    let key = CertifiedKey::from_der(identity.chain.clone(), identity.key.clone_key(), provider)
        .map_err(|e| TlsError::Key(e.to_string()))?;
    Ok((Arc::new(key), info))
}

/// The names a device certificate carries, lower-cased: subject common names, DNS names,
/// URIs and e-mail addresses of the subjectAltName.
pub fn peer_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        use x509_parser::extensions::GeneralName;
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) | GeneralName::URI(s) | GeneralName::RFC822Name(s) => {
                    names.push(s.to_ascii_lowercase())
                }
                _ => {}
            }
        }
    }
    names
}

/// The subject-name rule (`tls.check_subject_name`): a device certificate names station
/// `user` of `domain` when one of its names is the station number, the domain (a certificate
/// for the whole site), `user@domain`, or a `sip:`/`sips:` URI with that user. Case does not
/// matter; a port on `domain` is ignored.
pub fn names_station(names: &[String], user: &str, domain: &str) -> bool {
    let user = user.to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    let domain = host_only(&domain);
    names.iter().any(|n| {
        let n = n.as_str();
        if n == user || n == domain {
            return true;
        }
        let addr = n
            .strip_prefix("sips:")
            .or_else(|| n.strip_prefix("sip:"))
            .unwrap_or(n);
        let addr = addr.split([';', '?']).next().unwrap_or(addr);
        match addr.split_once('@') {
            Some((u, h)) => u == user && (n != addr || host_only(h) == domain),
            None => false,
        }
    })
}

/// `host` without a `:port` (IPv6 references keep their brackets).
fn host_only(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// One of two fixed self-signed ECDSA P-256 identities.
    fn identity(seed: u8) -> TlsIdentity {
        test_certs::identity(seed)
    }

    #[test]
    fn rfc5246_only_tls12_and_13_with_aead_suites() {
        let p = provider();
        for s in &p.cipher_suites {
            let name = format!("{:?}", s.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
            if let rustls::SupportedCipherSuite::Tls12(_) = s {
                assert!(name.starts_with("TLS_ECDHE_"), "{name}");
            }
        }
        let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
        assert_eq!(
            versions,
            [
                rustls::ProtocolVersion::TLSv1_3,
                rustls::ProtocolVersion::TLSv1_2
            ]
        );
    }

    #[test]
    fn resolver_swap_serves_the_new_certificate_to_new_handshakes_only() {
        let first = identity(1);
        let server = TlsServer::new(&TlsConfig::new(first.clone())).unwrap();
        let fp1 = fingerprint(&first.chain[0]);
        assert_eq!(server.current_fingerprint(), fp1);
        // A key held by a connection set up before the swap stays what it was.
        let held = server.resolver.current();
        let second = identity(2);
        let info = server.replace(&second).unwrap();
        let fp2 = fingerprint(&second.chain[0]);
        assert_ne!(fp1, fp2);
        assert_eq!(info.sha256, fp2);
        assert_eq!(server.current_fingerprint(), fp2);
        assert_eq!(server.certificate().sha256, fp2);
        assert_eq!(fingerprint(&held.cert[0]), fp1);
    }

    #[test]
    fn a_refused_replacement_keeps_the_current_certificate() {
        let first = identity(1);
        let server = TlsServer::new(&TlsConfig::new(first.clone())).unwrap();
        // Certificate of one pair, key of another.
        let mixed = TlsIdentity {
            chain: identity(2).chain,
            key: first.key.clone_key(),
        };
        assert!(matches!(server.replace(&mixed), Err(TlsError::Key(_))));
        assert_eq!(server.current_fingerprint(), fingerprint(&first.chain[0]));
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        let e = TlsServer::new(&TlsConfig::new(test_certs::rsa_1024())).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::WeakRsa {
                    bits: 1024,
                    min: 2048
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("tls.min_rsa_bits"), "{e}");
        TlsServer::new(&TlsConfig::new(test_certs::rsa_2048())).unwrap();
        let mut strict = TlsConfig::new(test_certs::rsa_2048());
        strict.min_rsa_bits = 3072;
        let e = TlsServer::new(&strict).unwrap_err();
        assert!(
            matches!(
                e,
                TlsError::WeakRsa {
                    bits: 2048,
                    min: 3072
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn pem_errors_say_what_was_missing() {
        let e = TlsIdentity::from_pem(b"nothing here", b"").unwrap_err();
        assert!(e.to_string().starts_with("certificate:"), "{e}");
        let id = identity(1);
        let cert_pem = test_certs::pem("CERTIFICATE", &id.chain[0]);
        let e = TlsIdentity::from_pem(cert_pem.as_bytes(), cert_pem.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("private key:"), "{e}");
    }

    #[test]
    fn subject_name_rule() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(names_station(&names(&["2001"]), "2001", "pbx.example"));
        assert!(names_station(
            &names(&["pbx.example"]),
            "2001",
            "PBX.example:5061"
        ));
        assert!(names_station(
            &names(&["sip:2001@pbx.example"]),
            "2001",
            "pbx.example"
        ));
        assert!(names_station(
            &names(&["2001@pbx.example"]),
            "2001",
            "pbx.example"
        ));
        assert!(!names_station(&names(&["2002"]), "2001", "pbx.example"));
        assert!(!names_station(
            &names(&["2001@other.example"]),
            "2001",
            "pbx.example"
        ));
        assert!(!names_station(&names(&[]), "2001", "pbx.example"));
    }
}

/// Fixed test certificates (made once with openssl; private keys of no value).
#[cfg(test)]
mod test_certs;

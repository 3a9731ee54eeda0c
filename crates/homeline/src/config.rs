//! The configuration file: a strict TOML model (unknown keys are errors naming the key), turned
//! into each core's typed settings. Every field is optional; defaults follow the brief.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use net::{MediaConfig, NetConfig};
use policy::{CosClass, CosClasses, DestinationClass, NumberingPlan};
use serde::{Deserialize, Deserializer};
use sip_proto::registrar::RegistrarConfig;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Data folder (SQLite store, certificates). Default `./homeline-data` or `$HOMELINE_DATA`;
    /// `--data` wins over both.
    pub(crate) data_dir: Option<String>,
    /// SIP listeners and registrar.
    #[serde(default)]
    pub(crate) sip: SipSection,
    /// RTP relay (media of calls that cross the Internet).
    #[serde(default)]
    pub(crate) media: MediaSection,
    /// Logging.
    #[serde(default)]
    pub(crate) log: LogSection,
    /// Classes of service by name, `[cos.<name>]`, besides the built-in ones (a section
    /// with a built-in name replaces that class; see `policy::cos_classes`).
    #[serde(default)]
    pub(crate) cos: BTreeMap<String, CosSection>,
    /// The office's public address: learned by STUN or resolved from a DynDNS name.
    #[serde(default)]
    pub(crate) nat: NatSection,
    /// SIP over TLS: listeners, certificate, client certificates.
    #[serde(default)]
    pub(crate) tls: TlsSection,
}

/// `[tls]`: SIP over TLS listeners (TLS 1.2 and 1.3 only, ECDHE + AEAD suites only).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// TLS listeners at all. Default true.
    pub(crate) enabled: Option<bool>,
    /// Internal-zone TLS port, on every `sip.internal` address (0: one the system picks, shown
    /// by `homeline status`). Default 5061.
    pub(crate) internal_port: Option<u16>,
    /// External-zone TLS port, on every `sip.external` address. Default 5063.
    pub(crate) external_port: Option<u16>,
    /// PEM certificate chain (server certificate first). With `private_key`; both are watched
    /// and reloaded when they change. Default: a self-signed certificate kept in the data
    /// folder.
    pub(crate) certificate: Option<String>,
    /// PEM private key of `certificate`.
    pub(crate) private_key: Option<String>,
    /// Shortest RSA key accepted for the certificate, bits (2048 to 16384). Default 2048.
    pub(crate) min_rsa_bits: Option<u32>,
    /// Device certificates (mutual TLS): "off", "optional" or "required". Default "off".
    pub(crate) client_certificates: Option<String>,
    /// PEM file of the CAs device certificates must chain to (needed unless
    /// `client_certificates` is "off").
    pub(crate) client_ca: Option<String>,
    /// A device certificate must name the station it registers: its number, the domain, or
    /// `number@domain` / `sip:number@domain` in the subject CN or subjectAltName. Default false.
    pub(crate) check_subject_name: Option<bool>,
    /// Certificate revocation list (PEM or DER) checked for device certificates.
    pub(crate) crl: Option<String>,
}

/// `[tls]` checked, files not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// Internal-zone TLS port.
    pub(crate) internal_port: u16,
    /// External-zone TLS port.
    pub(crate) external_port: u16,
    /// Certificate and key files; `None`: the data folder's own certificate.
    pub(crate) files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Shortest RSA key, bits.
    pub(crate) min_rsa_bits: u32,
    /// Device certificates.
    pub(crate) client_auth: net::ClientAuth,
    /// CA file for device certificates.
    pub(crate) client_ca: Option<std::path::PathBuf>,
    /// Subject-name check of device certificates.
    pub(crate) check_subject_name: bool,
    /// CRL file.
    pub(crate) crl: Option<std::path::PathBuf>,
}

/// Smallest and largest `tls.min_rsa_bits` accepted (the crypto library refuses RSA keys
/// below 2048 bits whatever the setting).
const RSA_BITS: std::ops::RangeInclusive<u32> = 2048..=16384;

impl TlsSection {
    /// The checked settings; `None` when TLS is disabled. Errors name the key.
    pub(crate) fn settings(&self) -> Result<Option<TlsSettings>> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        let path = |key: &str, v: &Option<String>| -> Result<Option<std::path::PathBuf>> {
            match v.as_deref().map(str::trim) {
                None => Ok(None),
                Some("") => bail!("tls.{key}: empty path"),
                Some(p) => Ok(Some(p.into())),
            }
        };
        let files = match (
            path("certificate", &self.certificate)?,
            path("private_key", &self.private_key)?,
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => bail!("tls.certificate needs tls.private_key"),
            (None, Some(_)) => bail!("tls.private_key needs tls.certificate"),
        };
        let min_rsa_bits = self.min_rsa_bits.unwrap_or(2048);
        if !RSA_BITS.contains(&min_rsa_bits) {
            bail!(
                "tls.min_rsa_bits: {min_rsa_bits} is not between {} and {}",
                RSA_BITS.start(),
                RSA_BITS.end()
            );
        }
        let client_auth = match self.client_certificates.as_deref().map(str::trim) {
            None | Some("off") => net::ClientAuth::Off,
            Some("optional") => net::ClientAuth::Optional,
            Some("required") => net::ClientAuth::Required,
            Some(other) => bail!(
                "tls.client_certificates: {other:?} is not \"off\", \"optional\" or \"required\""
            ),
        };
        let client_ca = path("client_ca", &self.client_ca)?;
        let crl = path("crl", &self.crl)?;
        let check_subject_name = self.check_subject_name.unwrap_or(false);
        if client_auth == net::ClientAuth::Off {
            for (key, set) in [
                ("client_ca", client_ca.is_some()),
                ("crl", crl.is_some()),
                ("check_subject_name", check_subject_name),
            ] {
                if set {
                    bail!("tls.{key} applies to device certificates: set tls.client_certificates to \"optional\" or \"required\"");
                }
            }
        } else if client_ca.is_none() {
            bail!("tls.client_certificates = {:?} needs tls.client_ca (the CA device certificates chain to)",
                self.client_certificates.as_deref().unwrap_or_default());
        }
        let internal_port = self.internal_port.unwrap_or(5061);
        let external_port = self.external_port.unwrap_or(5063);
        Ok(Some(TlsSettings {
            internal_port,
            external_port,
            files,
            min_rsa_bits,
            client_auth,
            client_ca,
            check_subject_name,
            crl,
        }))
    }
}

/// `[nat]`: how homeline learns the office's public address when `media.public_ip` does not
/// fix it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NatSection {
    /// STUN servers, "host:port", asked in order (the next on failure). Default none. Also
    /// used for the NAT-type probe shown in `homeline status`.
    pub(crate) stun_servers: Option<Vec<String>>,
    /// Seconds between checks of the public address (STUN binding, DynDNS lookup). Default 300.
    pub(crate) refresh_secs: Option<u64>,
    /// DynDNS name of the office's public address, resolved at start and on every refresh; it
    /// wins over STUN (and `media.public_ip` over it).
    pub(crate) public_name: Option<String>,
}

/// Where the public address comes from, from `[nat]` and `media.public_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatSettings {
    /// STUN servers as written ("host:port"); resolved when used.
    pub(crate) stun_servers: Vec<String>,
    /// Time between checks.
    pub(crate) refresh: Duration,
    /// The DynDNS name, unless `media.public_ip` fixes the address.
    pub(crate) public_name: Option<String>,
    /// `media.public_ip`.
    pub(crate) fixed: Option<IpAddr>,
}

impl NatSettings {
    /// Whether the address is learned at run time (STUN or DynDNS).
    pub(crate) fn learns(&self) -> bool {
        self.fixed.is_none() && (self.public_name.is_some() || !self.stun_servers.is_empty())
    }
}

/// Longest `nat.refresh_secs`: a day.
const MAX_REFRESH_SECS: u64 = 86_400;

/// `[cos.<name>]`: one class of service. The name is what `station set --class-internal`
/// and `--class-external` take: 1 to 32 of a-z, 0-9, '-', '_'.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CosSection {
    /// Destination classes the class may reach: "internal", "local", "national",
    /// "international". Required: a class that forgets it should not silently allow nothing.
    pub(crate) allow: Vec<String>,
    /// Outside numbers starting with one of these are refused even when their destination
    /// class is allowed, written as dialled after the trunk access code ("0900") or in E.164
    /// ("+881"). Default: the premium-rate examples of the built-in classes (0900, 0190, 0137,
    /// 118, +881, +882), so a new class is never more open than the built-in ones by
    /// accident; `[]` blocks nothing.
    pub(crate) block_prefixes: Option<Vec<String>>,
}

/// `[sip]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SipSection {
    /// Digest realm. Default "homeline". Changing it needs every password set again (HA1 is per realm).
    pub(crate) realm: Option<String>,
    /// Internal-zone listeners, UDP+TCP each. Default `["0.0.0.0:5060", "[::]:5060"]`.
    pub(crate) internal: Option<Vec<String>>,
    /// External-zone listeners, UDP+TCP each. Default `["0.0.0.0:5062", "[::]:5062"]`.
    pub(crate) external: Option<Vec<String>>,
    /// Largest message in octets (larger get 513). Default 65535.
    pub(crate) max_message: Option<usize>,
    /// Shortest registration accepted, seconds. Default 60.
    pub(crate) min_expires: Option<u32>,
    /// Longest registration granted, seconds. Default 3600.
    pub(crate) max_expires: Option<u32>,
    /// Registration granted when none is asked, seconds. Default 3600.
    pub(crate) default_expires: Option<u32>,
    /// External zone over UDP: registration cap, seconds, to keep home NATs open. Default 120.
    pub(crate) external_udp_expires: Option<u32>,
    /// External zone over TCP: registration cap, seconds. Default 600.
    pub(crate) external_stream_expires: Option<u32>,
    /// Nonce lifetime, seconds, before `stale=true`. Default 300.
    pub(crate) nonce_lifetime: Option<u64>,
    /// Contacts kept per station. Default 10.
    pub(crate) max_contacts: Option<usize>,
    /// Digest algorithms offered, in order ("MD5", "SHA-256"). Default ["MD5"]: some phones
    /// refuse a registration challenged with an algorithm they lack.
    pub(crate) digest_algorithms: Option<Vec<String>>,
    /// The public SIP port remote phones use (the office router forwards it to the external
    /// listener). Default 5060, the brief's `5060 → 5062`.
    pub(crate) public_port: Option<u16>,
    /// Seconds between OPTIONS keepalives to remote phones over UDP. Default 25.
    pub(crate) keepalive_interval: Option<u64>,
    /// Seconds between CRLF pings to remote phones over TCP/TLS. Default 90.
    pub(crate) keepalive_stream_interval: Option<u64>,
    /// Unanswered keepalives in a row before a remote binding is removed. Default 3.
    pub(crate) keepalive_misses: Option<u32>,
}

/// `[media]`: the relay crate's own keys ([`relay::MediaFile`]: ports, timeouts, latching,
/// internet_calls) plus where the relay is reached. Unknown keys are errors naming the key,
/// like everywhere else in the file.
#[derive(Debug, Default)]
pub(crate) struct MediaSection {
    /// The relay's keys, checked by `relay::Config::try_from`.
    pub(crate) relay: relay::MediaFile,
    /// The office router's public address, which remote phones send media to (forwarded 1:1
    /// to the relay ports). Default: the external listener's address when it is specific.
    pub(crate) public_ip: Option<String>,
    /// The address internal phones send relayed media to. Default: the internal listener's
    /// address when it is specific.
    pub(crate) internal_ip: Option<String>,
    /// Address the relay sockets bind to. Default "0.0.0.0" (every interface).
    pub(crate) bind_ip: Option<String>,
    /// Relay worker threads. Default 0: one per core.
    pub(crate) workers: Option<usize>,
}

/// Most relay workers accepted: far above any core count, so a larger number is a typo.
const MAX_MEDIA_WORKERS: usize = 1024;

impl<'de> Deserialize<'de> for MediaSection {
    /// The four keys of this binary are taken out first; every remaining key goes to the relay
    /// crate's strict model, so an unknown one is still refused by name. (`serde(flatten)`
    /// cannot be combined with `deny_unknown_fields`, hence the two steps.)
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Outer {
            public_ip: Option<String>,
            internal_ip: Option<String>,
            bind_ip: Option<String>,
            workers: Option<usize>,
            #[serde(flatten)]
            rest: toml::Table,
        }
        let outer = Outer::deserialize(d)?;
        let relay = relay::MediaFile::deserialize(outer.rest).map_err(|e| {
            let mut msg = format!("media: {}", e.message());
            if msg.contains("unknown field") {
                // The relay's list leaves out the keys taken out above.
                msg.push_str(", `public_ip`, `internal_ip`, `bind_ip`, `workers`");
            }
            serde::de::Error::custom(msg)
        })?;
        Ok(MediaSection {
            relay,
            public_ip: outer.public_ip,
            internal_ip: outer.internal_ip,
            bind_ip: outer.bind_ip,
            workers: outer.workers,
        })
    }
}

impl MediaSection {
    /// The relay's typed settings; errors name the `media.` key and the value.
    pub(crate) fn media_config(&self) -> Result<MediaConfig> {
        let d = MediaConfig::default();
        let relay = relay::Config::try_from(self.relay.clone())?;
        let ip = |key: &str, given: &Option<String>| -> Result<Option<IpAddr>> {
            given
                .as_deref()
                .map(|text| {
                    text.trim()
                        .parse::<IpAddr>()
                        .with_context(|| format!("media.{key}: {text:?} is not an IP address"))
                })
                .transpose()
        };
        let public_ip = ip("public_ip", &self.public_ip)?;
        let internal_ip = ip("internal_ip", &self.internal_ip)?;
        for (key, addr) in [("public_ip", public_ip), ("internal_ip", internal_ip)] {
            // Phones cannot send to "any address": the SDP needs one they can reach.
            if addr.is_some_and(|a| a.is_unspecified() || a.is_multicast()) {
                bail!(
                    "media.{key}: {} is not an address phones can send media to",
                    addr.map(|a| a.to_string()).unwrap_or_default()
                );
            }
        }
        let workers = self.workers.unwrap_or(d.workers);
        if workers > MAX_MEDIA_WORKERS {
            bail!("media.workers: {workers} is more than {MAX_MEDIA_WORKERS}");
        }
        Ok(MediaConfig {
            relay,
            public_ip,
            learn_public: false,
            internal_ip,
            bind_ip: ip("bind_ip", &self.bind_ip)?.unwrap_or(d.bind_ip),
            workers,
        })
    }
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    /// `tracing` filter, e.g. "info" or "info,net=debug". Default "info"; `RUST_LOG` wins.
    pub(crate) level: Option<String>,
}

impl ConfigFile {
    /// `tls.min_rsa_bits`, checked (the rule for certificates the built-in CA makes and
    /// imports, whether or not the TLS listeners are on).
    pub(crate) fn min_rsa_bits(&self) -> Result<u32> {
        let bits = self.tls.min_rsa_bits.unwrap_or(pki::DEFAULT_MIN_RSA_BITS);
        if !RSA_BITS.contains(&bits) {
            bail!(
                "tls.min_rsa_bits: {bits} is not between {} and {}",
                RSA_BITS.start(),
                RSA_BITS.end()
            );
        }
        Ok(bits)
    }

    /// The `[nat]` settings, checked; errors name the key.
    pub(crate) fn nat_settings(&self) -> Result<NatSettings> {
        let n = &self.nat;
        let stun_servers = n.stun_servers.clone().unwrap_or_default();
        for s in &stun_servers {
            let port = s
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p != 0) {
                bail!("nat.stun_servers: {s:?} is not host:port (e.g. \"stun.example.org:3478\")");
            }
        }
        let refresh = match n.refresh_secs {
            None => 300,
            Some(s) if (10..=MAX_REFRESH_SECS).contains(&s) => s,
            Some(s) => bail!("nat.refresh_secs: {s} is not between 10 and {MAX_REFRESH_SECS}"),
        };
        let public_name = match n.public_name.as_deref().map(str::trim) {
            None => None,
            Some(name) if name.is_empty() || name.contains([' ', ':', '/']) => {
                bail!("nat.public_name: {name:?} is not a host name")
            }
            Some(name) => Some(name.to_owned()),
        };
        let fixed = self.media.media_config()?.public_ip;
        if fixed.is_some() && public_name.is_some() {
            bail!("media.public_ip and nat.public_name both give the public address: keep one");
        }
        Ok(NatSettings {
            stun_servers,
            refresh: Duration::from_secs(refresh),
            public_name,
            fixed,
        })
    }

    /// Reads and parses a file; the error names the file and, for unknown keys, the key.
    pub(crate) fn load(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses TOML text.
    pub(crate) fn parse(text: &str) -> Result<ConfigFile> {
        Ok(toml::from_str(text)?)
    }

    /// Every class of service: the built-in ones, replaced or joined by `[cos.<name>]`
    /// sections. Errors name the section and key.
    pub(crate) fn cos_classes(&self) -> Result<CosClasses> {
        let plan = NumberingPlan::default();
        let mut classes = CosClasses::builtin();
        for (name, section) in &self.cos {
            let allowed = section
                .allow
                .iter()
                .map(|a| {
                    a.parse::<DestinationClass>()
                        .with_context(|| format!("cos.{name}.allow"))
                })
                .collect::<Result<Vec<_>>>()?;
            let blocked = match &section.block_prefixes {
                Some(list) => list.clone(),
                None => policy::cos::EXAMPLE_PREMIUM_PREFIXES
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            };
            classes
                .insert(CosClass::new(name.as_str(), allowed, blocked), &plan)
                .with_context(|| format!("[cos.{name}]"))?;
        }
        Ok(classes)
    }

    /// The I/O layer's settings. `ipv6` says whether this host can bind IPv6 at all; when it
    /// cannot, the default IPv6 listeners are left out (configured ones still fail loudly).
    pub(crate) fn net_config(&self, ipv6: bool) -> Result<NetConfig> {
        let d = NetConfig::default();
        let s = &self.sip;
        let listeners = |key: &str,
                         given: &Option<Vec<String>>,
                         default: Vec<SocketAddr>|
         -> Result<Vec<SocketAddr>> {
            match given {
                Some(list) => list
                    .iter()
                    .map(|a| {
                        a.parse()
                            .with_context(|| format!("sip.{key}: {a:?} is not an address:port"))
                    })
                    .collect(),
                None => Ok(default
                    .into_iter()
                    .filter(|a| ipv6 || a.is_ipv4())
                    .collect()),
            }
        };
        let r = RegistrarConfig::default();
        let registrar = RegistrarConfig {
            realm: s.realm.clone().unwrap_or(r.realm),
            min_expires: s.min_expires.unwrap_or(r.min_expires),
            max_expires: s.max_expires.unwrap_or(r.max_expires),
            default_expires: s.default_expires.unwrap_or(r.default_expires),
            external_udp_expires: s.external_udp_expires.unwrap_or(r.external_udp_expires),
            external_stream_expires: s
                .external_stream_expires
                .unwrap_or(r.external_stream_expires),
            nonce_lifetime: s
                .nonce_lifetime
                .map(Duration::from_secs)
                .unwrap_or(r.nonce_lifetime),
            max_contacts: s.max_contacts.unwrap_or(r.max_contacts),
            algorithms: match &s.digest_algorithms {
                None => r.algorithms,
                Some(list) => list
                    .iter()
                    .map(|a| {
                        a.parse().with_context(|| {
                            format!("sip.digest_algorithms: {a:?} is not MD5 or SHA-256")
                        })
                    })
                    .collect::<Result<_>>()?,
            },
        };
        if registrar.algorithms.is_empty() {
            bail!("sip.digest_algorithms must name at least one algorithm");
        }
        if registrar.realm.is_empty() || registrar.realm.contains(['"', '\\']) {
            bail!(
                "sip.realm: {:?} must be non-empty and without quotes or backslashes",
                registrar.realm
            );
        }
        if registrar.min_expires > registrar.max_expires {
            bail!(
                "sip.min_expires ({}) is above sip.max_expires ({})",
                registrar.min_expires,
                registrar.max_expires
            );
        }
        if registrar.max_contacts == 0 {
            bail!("sip.max_contacts must be at least 1");
        }
        let mut media = self.media.media_config()?;
        media.learn_public = self.nat_settings()?.learns();
        let config = NetConfig {
            internal: listeners("internal", &s.internal, d.internal)?,
            external: listeners("external", &s.external, d.external)?,
            max_message: s.max_message.unwrap_or(d.max_message),
            registrar,
            classes: self.cos_classes()?,
            media,
            public_sip_port: match s.public_port {
                Some(0) => bail!("sip.public_port: 0 is not a port"),
                Some(p) => p,
                None => d.public_sip_port,
            },
            keepalive: keepalive(s, &d.keepalive)?,
            ..d
        };
        if config.max_message < 1024 {
            bail!(
                "sip.max_message: {} is too small (at least 1024)",
                config.max_message
            );
        }
        Ok(config)
    }
}

/// The `[sip] keepalive_*` keys over the defaults.
fn keepalive(
    s: &SipSection,
    d: &sip_proto::keepalive::KeepAliveConfig,
) -> Result<sip_proto::keepalive::KeepAliveConfig> {
    let secs = |key: &str, v: Option<u64>, default: Duration| -> Result<Duration> {
        match v {
            Some(0) => bail!("sip.{key}: 0 is not an interval (seconds, at least 1)"),
            Some(n) if n > 3600 => bail!("sip.{key}: {n} s is longer than an hour"),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        }
    };
    Ok(sip_proto::keepalive::KeepAliveConfig {
        udp_interval: secs("keepalive_interval", s.keepalive_interval, d.udp_interval)?,
        stream_interval: secs(
            "keepalive_stream_interval",
            s.keepalive_stream_interval,
            d.stream_interval,
        )?,
        misses: match s.keepalive_misses {
            Some(0) => bail!("sip.keepalive_misses: must be at least 1"),
            Some(n) => n,
            None => d.misses,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = ConfigFile::parse("[sip]\nexternal_udp_expire = 5\n").unwrap_err();
        assert!(format!("{e:#}").contains("external_udp_expire"), "{e:#}");
    }

    #[test]
    fn empty_file_gives_brief_defaults() {
        let c = ConfigFile::parse("").unwrap().net_config(true).unwrap();
        assert!(c.internal.iter().all(|a| a.port() == 5060));
        assert!(c.external.iter().all(|a| a.port() == 5062));
        assert_eq!(c.registrar.external_udp_expires, 120);
        let v4 = ConfigFile::parse("").unwrap().net_config(false).unwrap();
        assert!(v4.internal.iter().all(SocketAddr::is_ipv4));
    }

    #[test]
    fn bad_address_names_the_key() {
        let c = ConfigFile::parse("[sip]\ninternal = [\"nowhere\"]\n").unwrap();
        let e = c.net_config(true).unwrap_err();
        assert!(format!("{e:#}").contains("sip.internal"));
    }

    #[test]
    fn cos_sections_add_and_replace_classes() {
        let c = ConfigFile::parse(
            "[cos.sales]\nallow = [\"internal\", \"national\", \"international\"]\n\
             block_prefixes = [\"0900\", \"+882\"]\n\
             [cos.remote]\nallow = [\"internal\"]\n",
        )
        .unwrap();
        let classes = c.cos_classes().unwrap();
        let sales = classes.resolve("sales").unwrap();
        assert_eq!(sales.blocked_prefixes, ["0900", "+882"]);
        assert!(sales.allowed.contains(&DestinationClass::International));
        let remote = classes.default_for(policy::Zone::External);
        assert_eq!(
            remote.allowed.iter().copied().collect::<Vec<_>>(),
            [DestinationClass::Internal]
        );
        assert!(
            remote.blocked_prefixes.iter().any(|p| p == "0900"),
            "premium blocked by default"
        );
        assert!(c.net_config(true).unwrap().classes.resolve("sales").is_ok());
    }

    #[test]
    fn cos_errors_name_the_section_and_key() {
        for (text, needle) in [
            ("[cos.x]\nallow = [\"galactic\"]\n", "cos.x.allow"),
            (
                "[cos.x]\nallow = []\nblock_prefixes = [\"09x\"]\n",
                "[cos.x]",
            ),
            ("[cos.Bad]\nallow = []\n", "[cos.Bad]"),
        ] {
            let e = ConfigFile::parse(text).unwrap().cos_classes().unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{text}: {e:#}");
        }
        let e = ConfigFile::parse("[cos.x]\nalow = []\n").unwrap_err();
        assert!(format!("{e:#}").contains("alow"), "{e:#}");
    }

    #[test]
    fn media_defaults_without_a_section() {
        let c = ConfigFile::parse("").unwrap().net_config(true).unwrap();
        assert_eq!(c.media.relay, relay::Config::default());
        assert_eq!(c.media.public_ip, None);
        assert!(c.media.bind_ip.is_unspecified());
        assert_eq!(
            c.control_socket, None,
            "serve.rs sets it from the data folder"
        );
    }

    #[test]
    fn media_section_fills_relay_and_addresses() {
        let text = "[media]\nports = \"40000-40099\"\npublic_ip = \"203.0.113.10\"\n\
                    internal_ip = \"192.168.1.10\"\nbind_ip = \"192.168.1.10\"\nworkers = 2\n\
                    latching = \"any\"\ninternet_calls = 4\n";
        let c = ConfigFile::parse(text).unwrap().net_config(true).unwrap();
        assert_eq!(c.media.relay.channels(), 50);
        assert_eq!(c.media.relay.internet_calls, Some(4));
        assert_eq!(c.media.relay.latching, relay::LatchPolicy::AnySource);
        assert_eq!(c.media.public_ip, Some("203.0.113.10".parse().unwrap()));
        assert_eq!(c.media.internal_ip, Some("192.168.1.10".parse().unwrap()));
        assert_eq!(c.media.bind_ip, "192.168.1.10".parse::<IpAddr>().unwrap());
        assert_eq!(c.media.workers, 2);
    }

    #[test]
    fn media_unknown_key_is_an_error_naming_it() {
        for key in ["port", "public_address"] {
            let e = ConfigFile::parse(&format!("[media]\n{key} = \"x\"\n")).unwrap_err();
            assert!(format!("{e:#}").contains(&format!("`{key}`")), "{e:#}");
        }
    }

    #[test]
    fn media_bad_values_name_the_key() {
        for (line, key) in [
            ("public_ip = \"office.example.org\"", "media.public_ip"),
            ("public_ip = \"0.0.0.0\"", "media.public_ip"),
            ("internal_ip = \"192.168.1\"", "media.internal_ip"),
            ("bind_ip = \"any\"", "media.bind_ip"),
            ("workers = 100000", "media.workers"),
            ("ports = \"30001-30999\"", "media.ports"),
            ("media_timeout = 0", "media.media_timeout"),
            ("internet_calls = 0", "media.internet_calls"),
        ] {
            let c = ConfigFile::parse(&format!("[media]\n{line}\n")).unwrap();
            let e = c.net_config(true).unwrap_err();
            assert!(format!("{e:#}").contains(key), "{line}: {e:#}");
        }
        let e = ConfigFile::parse("[media]\nworkers = \"two\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("workers"), "{e:#}");
    }

    #[test]
    fn nat_section_defaults_and_sources() {
        let c = ConfigFile::parse("").unwrap();
        let n = c.nat_settings().unwrap();
        assert_eq!(n.refresh, Duration::from_secs(300));
        assert!(!n.learns());
        assert!(!c.net_config(true).unwrap().media.learn_public);

        let c = ConfigFile::parse(
            "[nat]\nstun_servers = [\"198.51.100.10:3478\", \"stun.example.org:3478\"]\n\
             refresh_secs = 60\n",
        )
        .unwrap();
        let n = c.nat_settings().unwrap();
        assert_eq!(n.stun_servers.len(), 2);
        assert_eq!(n.refresh, Duration::from_secs(60));
        assert!(n.learns());
        assert!(c.net_config(true).unwrap().media.learn_public);

        // A fixed address wins over STUN: nothing is learned.
        let c = ConfigFile::parse(
            "[media]\npublic_ip = \"203.0.113.10\"\n[nat]\nstun_servers = [\"198.51.100.10:3478\"]\n",
        )
        .unwrap();
        assert!(!c.nat_settings().unwrap().learns());
        assert!(!c.net_config(true).unwrap().media.learn_public);

        let c = ConfigFile::parse("[nat]\npublic_name = \"office.example.org\"\n").unwrap();
        let n = c.nat_settings().unwrap();
        assert_eq!(n.public_name.as_deref(), Some("office.example.org"));
        assert!(n.learns());
    }

    #[test]
    fn nat_bad_values_name_the_key() {
        for (text, key) in [
            (
                "[nat]\nstun_servers = [\"stun.example.org\"]\n",
                "nat.stun_servers",
            ),
            ("[nat]\nstun_servers = [\":3478\"]\n", "nat.stun_servers"),
            ("[nat]\nrefresh_secs = 0\n", "nat.refresh_secs"),
            ("[nat]\npublic_name = \"\"\n", "nat.public_name"),
            (
                "[media]\npublic_ip = \"203.0.113.10\"\n[nat]\npublic_name = \"a.example\"\n",
                "nat.public_name",
            ),
        ] {
            let e = ConfigFile::parse(text)
                .unwrap()
                .net_config(true)
                .unwrap_err();
            assert!(format!("{e:#}").contains(key), "{text}: {e:#}");
        }
        let e = ConfigFile::parse("[nat]\nstun_server = []\n").unwrap_err();
        assert!(format!("{e:#}").contains("stun_server"), "{e:#}");
    }

    #[test]
    fn tls_defaults_follow_the_brief() {
        let t = ConfigFile::parse("")
            .unwrap()
            .tls
            .settings()
            .unwrap()
            .unwrap();
        assert_eq!((t.internal_port, t.external_port), (5061, 5063));
        assert_eq!(t.min_rsa_bits, 2048);
        assert_eq!(t.client_auth, net::ClientAuth::Off);
        assert!(t.files.is_none() && !t.check_subject_name);
        let off = ConfigFile::parse("[tls]\nenabled = false\n").unwrap();
        assert!(off.tls.settings().unwrap().is_none());
        let t = ConfigFile::parse(
            "[tls]\ncertificate = \"/etc/pbx.crt\"\nprivate_key = \"/etc/pbx.key\"\n\
             client_certificates = \"required\"\nclient_ca = \"/etc/ca.pem\"\n\
             check_subject_name = true\ncrl = \"/etc/ca.crl\"\nmin_rsa_bits = 3072\n\
             internal_port = 15061\nexternal_port = 15063\n",
        )
        .unwrap()
        .tls
        .settings()
        .unwrap()
        .unwrap();
        assert_eq!(t.client_auth, net::ClientAuth::Required);
        assert_eq!(t.min_rsa_bits, 3072);
        assert_eq!(t.internal_port, 15061);
        assert!(t.files.is_some() && t.crl.is_some() && t.check_subject_name);
    }

    #[test]
    fn tls_bad_values_name_the_key() {
        for (text, key) in [
            ("certificate = \"/a.pem\"", "tls.private_key"),
            ("private_key = \"/a.key\"", "tls.certificate"),
            ("min_rsa_bits = 1024", "tls.min_rsa_bits"),
            (
                "client_certificates = \"sometimes\"",
                "tls.client_certificates",
            ),
            ("client_certificates = \"required\"", "tls.client_ca"),
            ("crl = \"/ca.crl\"", "tls.crl"),
            ("check_subject_name = true", "tls.check_subject_name"),
            (
                "certificate = \" \"\nprivate_key = \"/a.key\"",
                "tls.certificate",
            ),
        ] {
            let c = ConfigFile::parse(&format!("[tls]\n{text}\n")).unwrap();
            let e = c.tls.settings().unwrap_err();
            assert!(format!("{e:#}").contains(key), "{text}: {e:#}");
        }
        let e = ConfigFile::parse("[tls]\ncert = \"x\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("cert"), "{e:#}");
    }

    #[test]
    fn shipped_examples_load() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let c = ConfigFile::load(&path).unwrap();
            c.net_config(true).unwrap();
            c.tls.settings().unwrap();
            n += 1;
        }
        assert!(n > 0);
    }
}

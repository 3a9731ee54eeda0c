//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// homeline: an IP PBX whose phones work from home as internal extensions (Device@Home).
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Data folder (SQLite store). Default ./homeline-data.
    #[arg(long, global = true, env = "HOMELINE_DATA")]
    pub(crate) data: Option<PathBuf>,
    /// Configuration file (TOML); without one, the brief's defaults apply.
    #[arg(long, global = true, env = "HOMELINE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: SIP registrar on the internal and external zones.
    Serve,
    /// Manage stations (extensions).
    Station {
        // Boxed: the station options are many times the size of every other command.
        #[command(subcommand)]
        command: Box<StationCommand>,
    },
    /// Setup wizard steps: the upstream bandwidth that sizes the Internet-call limit.
    Setup {
        #[command(subcommand)]
        command: SetupCommand,
    },
    /// Show the running server's live state: listeners, registrations, calls, relay use,
    /// Internet calls and refused calls. Reads the control socket in the data folder.
    Status {
        /// Print the server's JSON document as is.
        #[arg(long)]
        json: bool,
    },
    /// Print the office router's port-forwarding table for the configured ports, as text or as
    /// ready-to-run iptables / nftables rules.
    RouterRules {
        /// homeline's address on the office LAN (default: the external listener's, or
        /// media.internal_ip).
        #[arg(long)]
        lan_ip: Option<std::net::IpAddr>,
        /// The router's Internet-facing interface, for the rules.
        #[arg(long, default_value = "wan0")]
        wan_interface: String,
        /// The public SIP port phones at home are configured with (the office phones' port).
        #[arg(long, default_value_t = 5060)]
        public_sip_port: u16,
        /// What to print.
        #[arg(long, value_enum, default_value = "text")]
        format: crate::router_rules::Format,
    },
    /// Certificates for SIP over TLS: the built-in CA, server certificates, imports, the
    /// active certificate.
    Cert {
        #[command(subcommand)]
        command: Box<CertCommand>,
    },
    /// SIP tools.
    Sip {
        #[command(subcommand)]
        command: SipCommand,
    },
    /// Run a STUN server (RFC 8489) on UDP; with --alternate, RFC 5780 NAT behaviour
    /// discovery too (listens on both IPs × both ports). Runs until interrupted.
    StunServer {
        /// Primary address, e.g. 198.51.100.10:3478.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Alternate address: another IP and another port of this host, e.g. 198.51.100.11:3479.
        #[arg(long)]
        alternate: Option<std::net::SocketAddr>,
    },
    /// NAT tools: what kind of NAT is in front of this host, and its public address.
    Nat {
        #[command(subcommand)]
        command: NatCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NatCommand {
    /// Detect the NAT type (RFC 5780 mapping and filtering tests) and what it means for
    /// Device@Home. Use a server with RFC 5780 support (two addresses), or give two servers.
    Detect {
        #[command(flatten)]
        target: StunTarget,
    },
    /// Ask for the public address of one local socket (first server that answers; the next
    /// on failure, with RFC 8489 retransmissions: up to 39.5 s per silent server).
    Mapped {
        #[command(flatten)]
        target: StunTarget,
    },
}

/// Which STUN servers to ask, from which local socket.
#[derive(Debug, Args)]
pub(crate) struct StunTarget {
    /// STUN server HOST:PORT; repeat for fallbacks.
    #[arg(long = "server", required = true)]
    pub(crate) servers: Vec<String>,
    /// Local socket to test, IP:PORT (default: the address routed toward the first server,
    /// any port).
    #[arg(long)]
    pub(crate) local: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SipCommand {
    /// Check SIP message files as the server would before any policy (RFC 3261 §8.2, §8.1.3).
    /// Exit 0 when every file would be processed, 1 when one would be answered 400/505 or dropped.
    Check {
        /// Files holding one message each (as captured from the wire).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StationCommand {
    /// Add a station. Without --password a strong one is generated and shown once.
    Add {
        /// Call number (digits).
        number: String,
        #[command(flatten)]
        fields: StationFields,
    },
    /// List stations.
    List,
    /// Show one station.
    Show {
        /// Call number.
        number: String,
    },
    /// Change a station.
    Set {
        /// Call number.
        number: String,
        #[command(flatten)]
        fields: StationFields,
        /// Generate a new strong password (shown once).
        #[arg(long, conflicts_with_all = ["password", "password_stdin"])]
        new_password: bool,
    },
    /// Remove a station and its registrations.
    Remove {
        /// Call number.
        number: String,
    },
    /// Add many stations from a CSV file with a header line: number,password[,sbc][,name].
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Print the strong-password rules required for the SBC flag.
    Rules,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SetupCommand {
    /// Set the office line's upstream bandwidth and show how many simultaneous Internet calls
    /// it carries, derived per codec. Without a value: show the current setting.
    Upstream {
        /// Upstream bandwidth in kbit/s (1 kbit = 1,000 bit), as the Internet provider states it.
        #[arg(value_name = "KBIT/S", value_parser = parse_kbit)]
        kbit: Option<u32>,
        /// The codec the limit is sized for. Default g711: the most demanding, and the one
        /// every device falls back to (homeline does not transcode).
        #[arg(long, value_enum)]
        codec: Option<CodecChoice>,
        /// Remove the setting: only the relay's channel pool limits Internet calls.
        #[arg(long, conflicts_with_all = ["kbit", "codec"])]
        clear: bool,
    },
}

/// A codec to size the Internet-call limit for (`policy::capacity::Codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CodecChoice {
    /// G.711 (64 kbit/s).
    G711,
    /// G.722 (64 kbit/s).
    G722,
    /// Opus at 32 kbit/s.
    Opus,
}

impl CodecChoice {
    /// The codec for the derivation.
    pub(crate) fn codec(self) -> policy::Codec {
        match self {
            Self::G711 => policy::Codec::G711,
            Self::G722 => policy::Codec::G722,
            Self::Opus => policy::Codec::OPUS_DEFAULT,
        }
    }

    /// How it is written on the command line and in the store.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::G711 => "g711",
            Self::G722 => "g722",
            Self::Opus => "opus",
        }
    }

    /// The inverse of [`CodecChoice::key`].
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        [Self::G711, Self::G722, Self::Opus]
            .into_iter()
            .find(|c| c.key() == key)
    }
}

/// A positive whole number of kbit/s. clap quotes the value in front of the error.
fn parse_kbit(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("the upstream bandwidth must be at least 1 kbit/s".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "expected a whole number of kbit/s (e.g. 256 for a 256 kbit/s upstream), got {s:?}"
        )),
    }
}

/// Station fields settable on add and set.
#[derive(Debug, Args, Default)]
pub(crate) struct StationFields {
    /// Display name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Device type: sip-phone, softphone or browser.
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// SIP password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub(crate) password: Option<String>,
    /// Read the SIP password from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Digest authentication: on or off.
    #[arg(long, value_parser = on_off)]
    pub(crate) auth: Option<bool>,
    /// "Internet registration via SBC" (Device@Home): on or off. Needs auth and a strong password.
    #[arg(long, value_parser = on_off)]
    pub(crate) sbc: Option<bool>,
    /// Class of service while registered on the internal zone, by name (built-in:
    /// internal-only, local, national, international, office, remote; or a [cos.NAME] of the
    /// configuration file); "default" for the zone's default (office).
    #[arg(long, value_name = "NAME")]
    pub(crate) class_internal: Option<String>,
    /// Class of service while registered on the external zone (Device@Home), by name;
    /// "default" for the zone's default (remote: stations and national numbers).
    #[arg(long, value_name = "NAME")]
    pub(crate) class_external: Option<String>,
    /// Forward every call to this number; "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_always: Option<String>,
    /// Forward calls every device of the station answers busy; "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_busy: Option<String>,
    /// Forward calls nobody answers in time (--no-answer-secs); "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_no_answer: Option<String>,
    /// Seconds of ringing before forwarding on no answer, 1 to 600. Default 20.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) no_answer_secs: Option<u32>,
    /// Payload security (TLS + SRTP required): on or off.
    #[arg(long, value_parser = on_off)]
    pub(crate) payload_security: Option<bool>,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(format!("{s:?}: expected on or off")),
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Root certificate authorities of this installation.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// List every stored certificate.
    List,
    /// Issue a server certificate signed by one of the stored CAs; optionally write it as a
    /// passphrase-protected PKCS#12 file.
    Issue {
        /// Signing CA, by name.
        #[arg(long)]
        ca: String,
        #[command(flatten)]
        request: Box<CertRequest>,
        /// Write the certificate, its chain and its key to this PKCS#12 file (mode 0600).
        #[arg(long, value_name = "FILE.p12", requires = "passphrase_source")]
        out: Option<PathBuf>,
        #[command(flatten)]
        passphrase: Passphrase,
        /// Make it the active SIP-TLS certificate.
        #[arg(long = "use")]
        use_it: bool,
    },
    /// Import a certificate with its private key: a PKCS#12 file (with --passphrase) or PEM
    /// (certificate(s), then the key in the same file or in --key).
    Import {
        /// The PKCS#12 (.p12/.pfx) or PEM file.
        file: PathBuf,
        /// Name in the store (no blanks). Default: the file name without extension.
        #[arg(long)]
        name: Option<String>,
        /// PEM private key file, when the key is not in FILE.
        #[arg(long, value_name = "KEY.pem")]
        key: Option<PathBuf>,
        #[command(flatten)]
        passphrase: Passphrase,
        /// Make it the active SIP-TLS certificate.
        #[arg(long = "use")]
        use_it: bool,
    },
    /// Show a certificate's details and SHA-1/SHA-256 fingerprints.
    Show {
        /// Certificate name.
        name: String,
    },
    /// Export a certificate: PEM or DER (e.g. a CA certificate for phones to trust), or
    /// PKCS#12 with its key and chain.
    Export {
        /// Certificate name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "pem")]
        format: ExportFormat,
        /// Output file (required for der and p12; pem goes to standard output without it).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Choose the active certificate for SIP over TLS (a running server notices).
    Use {
        /// Certificate name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CaCommand {
    /// Create a self-signed root CA.
    Create {
        // Boxed: the request is many times the size of `List`.
        #[command(flatten)]
        request: Box<CertRequest>,
        /// CRL distribution point URI (http://, https:// or ldap://).
        #[arg(long, value_name = "URI")]
        crl_url: Option<String>,
    },
    /// List the stored CAs.
    List,
}

/// What a new certificate says.
#[derive(Debug, Args)]
pub(crate) struct CertRequest {
    /// Name in the store (no blanks).
    pub(crate) name: String,
    /// Serial number, decimal or 0x-hex; must never have been used by this installation.
    /// Default: 16 random bytes.
    #[arg(long)]
    pub(crate) serial: Option<String>,
    /// Key: rsa:2048, rsa:3072, rsa:4096 or ecdsa-p256. Never below tls.min_rsa_bits.
    #[arg(long, default_value = "rsa:2048")]
    pub(crate) key: String,
    /// Signature hash: sha256 or sha512 (sha512 needs an RSA signing key).
    #[arg(long, default_value = "sha256")]
    pub(crate) hash: String,
    /// Start of validity, GMT: YYYY-MM-DD or RFC 3339. Default: now.
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// End of validity, GMT: YYYY-MM-DD or RFC 3339. Default: --days after the start.
    #[arg(long, value_name = "TIME", conflicts_with = "days")]
    pub(crate) not_after: Option<String>,
    /// Validity in days from the start (default 3650 for a CA, 730 for a server).
    #[arg(long)]
    pub(crate) days: Option<u32>,
    /// Subject country (C), two capital letters.
    #[arg(long = "c", value_name = "CC")]
    pub(crate) country: Option<String>,
    /// Subject organization (O).
    #[arg(long = "o", value_name = "ORG")]
    pub(crate) organization: Option<String>,
    /// Subject organizational unit (OU).
    #[arg(long = "ou", value_name = "UNIT")]
    pub(crate) organizational_unit: Option<String>,
    /// Subject common name (CN).
    #[arg(long = "cn")]
    pub(crate) common_name: String,
    /// Subject alternative name, DNS:name or IP:address; repeat for more.
    #[arg(long = "san", value_name = "DNS:NAME|IP:ADDR")]
    pub(crate) alt_names: Vec<String>,
}

/// A PKCS#12 passphrase.
#[derive(Debug, Args)]
#[group(id = "passphrase_source", multiple = false)]
pub(crate) struct Passphrase {
    /// PKCS#12 passphrase (visible in the process list; prefer --passphrase-stdin).
    #[arg(long)]
    pub(crate) passphrase: Option<String>,
    /// Read the PKCS#12 passphrase from the first line of standard input.
    #[arg(long)]
    pub(crate) passphrase_stdin: bool,
}

/// `cert export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// PEM certificate.
    Pem,
    /// DER certificate.
    Der,
    /// PKCS#12 with the private key and chain (needs a passphrase).
    P12,
}

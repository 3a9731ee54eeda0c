//! Settings of the I/O layer.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sip_proto::registrar::RegistrarConfig;

/// Listeners and limits.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Internal-zone SIP listeners (UDP and TCP on each address). Brief default: port 5060.
    pub internal: Vec<SocketAddr>,
    /// External-zone (Device@Home) SIP listeners, UDP and TCP. Brief default: port 5062.
    pub external: Vec<SocketAddr>,
    /// Largest SIP message accepted, octets; larger get 513.
    pub max_message: usize,
    /// Registrar settings (realm, expiries).
    pub registrar: RegistrarConfig,
    /// Keepalive probes of external-zone bindings.
    pub keepalive: sip_proto::keepalive::KeepAliveConfig,
    /// How often the station cache is checked against the store.
    pub station_poll: Duration,
    /// Socket buffer size asked of the kernel for UDP listeners, octets.
    pub udp_buffer: usize,
    /// The RTP relay.
    pub media: MediaConfig,
    /// The public SIP port remote phones reach the external listener on (the office router's
    /// forward, 5060 → 5062 in the brief); with `media.public_ip` it is the address homeline
    /// writes in Via and Contact towards them.
    pub public_sip_port: u16,
    /// Classes of service by name (built-in and configured) that stations' class names
    /// resolve to.
    pub classes: policy::CosClasses,
    /// SIP over TLS listeners and settings; `None`: no TLS listener.
    pub tls: Option<crate::tls::TlsConfig>,
    /// Unix socket where `homeline status` reads the live state ([`crate::control`]); the
    /// binary puts it in the data folder. `None`: no control socket.
    pub control_socket: Option<PathBuf>,
}

/// Settings of the RTP relay and where it is reached.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Ports, timeouts, latching policy and the simultaneous-Internet-calls limit.
    pub relay: relay::Config,
    /// The address remote (external-zone) devices send media to: the office router's public
    /// address, forwarded 1:1 to the relay's ports. `None`: the external listener's own
    /// address when it is specific, else the relay is not offered to remote devices and a call
    /// that needs it is refused 503 with a Warning saying so.
    pub public_ip: Option<IpAddr>,
    /// The public address is learned at run time (STUN or DynDNS, given to the running server
    /// with [`crate::ServerHandle::set_public_ip`]) because the external listener sits behind
    /// the office NAT: until it is known, its private address never stands in for it and calls
    /// that need the relay are refused 503 with a Warning. Ignored when `public_ip` is set.
    pub learn_public: bool,
    /// The address internal phones send relayed media to. `None`: the internal listener's own
    /// address when it is specific.
    pub internal_ip: Option<IpAddr>,
    /// Address the relay sockets bind to (`0.0.0.0` by default: every interface).
    pub bind_ip: IpAddr,
    /// Relay worker threads, each with its own share of the port range. 0: one per core.
    pub workers: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            relay: relay::Config::default(),
            public_ip: None,
            learn_public: false,
            internal_ip: None,
            bind_ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            workers: 0,
        }
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            internal: vec![
                "0.0.0.0:5060".parse().expect("literal"),
                "[::]:5060".parse().expect("literal"),
            ],
            external: vec![
                "0.0.0.0:5062".parse().expect("literal"),
                "[::]:5062".parse().expect("literal"),
            ],
            max_message: sip::DEFAULT_MAX_MESSAGE,
            registrar: RegistrarConfig::default(),
            keepalive: sip_proto::keepalive::KeepAliveConfig::default(),
            station_poll: Duration::from_secs(1),
            udp_buffer: 4 << 20,
            media: MediaConfig::default(),
            public_sip_port: 5060,
            classes: policy::CosClasses::builtin(),
            tls: None,
            control_socket: None,
        }
    }
}

//! Settings of the I/O layer.

use std::net::SocketAddr;
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
    /// How often the station cache is checked against the store.
    pub station_poll: Duration,
    /// Socket buffer size asked of the kernel for UDP listeners, octets.
    pub udp_buffer: usize,
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
            station_poll: Duration::from_secs(1),
            udp_buffer: 4 << 20,
        }
    }
}

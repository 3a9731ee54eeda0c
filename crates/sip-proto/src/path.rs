//! Where a message came from or goes to: the listener, the peer, the transport and the zone.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use policy::Zone;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Transport {
    /// True when the transport retransmits by itself (no SIP timers A/E/G).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Lower-case name (`udp`, `tcp`, ...), as in URI `transport=` parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// Upper-case name as in Via (`UDP`, `TCP`, ...).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Parses a lower- or upper-case transport name.
    pub fn parse(s: &str) -> Option<Transport> {
        Some(match s.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            _ => return None,
        })
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stream connection (TCP/TLS/WS), numbered by the I/O layer (an RFC 5626 flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// The path of one message: our listener, the peer, the transport, the zone, the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    /// Our socket.
    pub local: SocketAddr,
    /// The peer's address as seen.
    pub remote: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// Zone of the listener.
    pub zone: Zone,
    /// Connection, for stream transports.
    pub flow: Option<FlowId>,
}

/// Bytes to send along a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub path: Path,
    /// What.
    pub bytes: Bytes,
}

//! homeline's I/O: every socket and task lives here.
//!
//! * [`udp`] and [`tcp`] (with [`tls`]) run the zone listeners (internal and external, IPv4 and IPv6) and turn
//!   datagrams and framed stream messages into [`Inbound`] items tagged with their
//!   [`sip_proto::path::Path`];
//! * [`core`] is the single task that drives the sans-IO cores (transaction layer, registrar):
//!   it is the only code that reads the clock, and it drains every core fully after each input;
//! * [`stations`] keeps the station cache fresh from the store, and [`persist`] writes binding
//!   changes behind the registrar's back (write-behind, batched);
//! * [`control`] serves the live state ([`Stats`], listeners) on a Unix socket in the data
//!   folder for `homeline status`.

pub mod config;
pub mod control;
pub mod core;
pub mod media;
mod persist;
mod stations;
pub mod stats;
mod tcp;
pub mod tls;
mod udp;

pub use config::{MediaConfig, NetConfig};
pub use core::{
    start, PublicIpSetter, ServerHandle, SetIdentityError, StartError, TlsIdentitySetter,
};
pub use stats::{NatStatus, PortMapping, PublicAddress, Stats};
pub use tls::{CertificateInfo, ClientAuth, TlsConfig, TlsError, TlsIdentity};
pub use udp::ListenerStun;

use bytes::Bytes;
use sip_proto::path::{FlowId, Path};
use tokio::sync::mpsc;

/// What the listeners hand to the core task.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One UDP datagram.
    Datagram { path: Path, bytes: Bytes },
    /// One message framed off a stream connection.
    Stream { path: Path, bytes: Bytes },
    /// A stream connection opened: where to write to it.
    FlowOpened {
        flow: FlowId,
        writer: mpsc::UnboundedSender<Bytes>,
        /// For TLS: the names in the device's certificate, if it presented one.
        peer: Option<std::sync::Arc<[String]>>,
    },
    /// A stream connection closed.
    FlowClosed { flow: FlowId },
    /// A new station cache.
    Stations(stations::StationCache),
    /// A relay worker's report.
    Media(media::MediaReport),
    /// The office's public address changed (STUN, DynDNS) or was lost: new SDP, Via and
    /// Contact towards external-zone devices use it.
    SetPublic(Option<std::net::IpAddr>),
}

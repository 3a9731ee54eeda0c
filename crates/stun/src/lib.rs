//! Sans-IO STUN for homeline (RFC 8489, RFC 5780, RFC 3489 compatibility).
//!
//! * [`BindingClient`]: learns the public address of a local socket, with a list of servers
//!   and fallback, and a periodic refresh that reports a changed mapping;
//! * [`NatProbe`]: RFC 5780 NAT behaviour discovery (§4.3 mapping, §4.4 filtering), reported
//!   with the classic names and with the ambiguities a real network leaves;
//! * [`StunServer`]: answers Binding requests; with an alternate address it serves RFC 5780
//!   (CHANGE-REQUEST, OTHER-ADDRESS, RESPONSE-ORIGIN) from four sockets;
//! * [`demux`]: tells STUN from SIP or RTP on a shared port (RFC 7983 §7).
//!
//! No sockets and no clocks: time comes in as `now`, datagrams as bytes, and out come
//! [`Transmit`]s and events. Transaction ids come from an injected RNG. Messages are built and
//! parsed with `stun-types`; the attributes it lacks are in [`attr`].

pub mod attr;
mod client;
mod demux;
mod probe;
mod server;
mod wire;

pub use client::{BindingClient, ClientConfig, ClientEvent, ConfigError, FailReason};
pub use demux::{demux, has_magic_cookie, Demux};
pub use probe::{
    Ambiguity, DeviceAtHome, Filtering, Mapping, NatKind, NatProbe, NatReport, ProbeConfig,
};
pub use server::{ServerConfig, ServerConfigError, ServerStats, StunServer};
pub use wire::{RetransmitConfig, Transmit};

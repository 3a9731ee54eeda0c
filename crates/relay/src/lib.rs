//! Sans-IO RTP relay core of homeline: the media anchor of every call leg that crosses the
//! Internet (a remote Device@Home phone, later an ITSP trunk call).
//!
//! # What it does
//!
//! The configured port range (default UDP 30000–30999, forwarded 1:1 by the office router) is
//! split into **channels**: one channel is one relayed leg, an even RTP port and the odd RTCP
//! port above it (RFC 3550 §11), or only the RTP port when the leg negotiated rtcp-mux
//! (RFC 5761). The call layer allocates a channel per Internet leg ([`Relay::allocate`]), writes
//! its ports into that leg's SDP, and pairs it either with the other leg's channel
//! ([`Relay::pair`]) or with an internal phone's own address ([`Relay::pair_direct`]).
//!
//! Packets arriving on a channel from its remote device are forwarded out of the paired side:
//! from the other channel's port to the address that channel latched, or from this channel's
//! port to the internal phone. A channel learns its device's real (NATed) address from the
//! first packets the device sends and pins it (symmetric RTP, RFC 4961 §4, "latching"). It
//! re-latches only after [`Relay::renegotiate`] or after the pinned source has been silent for
//! [`Config::relatch_after_silence`]; packets from any third address are dropped, counted and
//! reported now and then ([`RelayEvent::SourceRejected`]). Nothing is ever sent to an address
//! that is neither latched, nor configured as a direct peer, nor the SDP address of a device
//! whose authenticated signalling came from that same IP (so a device that waits for media
//! before it sends is still reached; a NATed device announcing a private address is reached
//! once it has sent).
//!
//! Per channel it keeps counters (packets, bytes, RFC 3550 A.3 loss, A.8 interarrival jitter,
//! last packet time) and, per call, the media timeout ([`RelayEvent::MediaTimeout`]).
//! Admission control lives here too: the channel pool and the simultaneous-Internet-calls
//! limit derived from the upstream bandwidth (by `policy::capacity`, given as a number) are checked together when a
//! channel is allocated, so a call over either limit is refused before it rings.
//!
//! # The drive loop
//!
//! The core owns no socket, task or clock: `now` is always an argument. An I/O driver runs it:
//!
//! ```text
//! loop {
//!     while let Some(cmd) = relay.poll_command() { match cmd {      // after every control call
//!         RelayCommand::Bind(port) => sockets.open(port),
//!         RelayCommand::Release(port) => sockets.close(port),
//!     } }
//!     while let Some(ev) = relay.poll_event() { calls.push(ev); }  // Latched, SourceRejected, MediaTimeout
//!     let wake = relay.poll_timeout().unwrap_or(now + IDLE);
//!     select! {
//!         batch = sockets.recv_batch() => for (port, from, buf, len) in batch {
//!             // buf has SRTP_TRAILER octets of room after len
//!             if let Some((f, n)) = relay.handle_packet(Instant::now(), port, from, buf, len) {
//!                 sockets.queue_send(f.from_port, f.to, &buf[..n]); // plain RTP unchanged
//!             }
//!         },
//!         _ = sleep_until(wake) => relay.handle_timeout(Instant::now()),
//!         cmd = control.recv() => cmd.apply(&mut relay, Instant::now()), // allocate, pair, ...
//!     }
//! }
//! ```
//!
//! [`Relay::handle_packet`] is the per-packet path: O(1), no allocation (the port indexes a
//! `Vec`), reading only the 12-byte fixed RTP header or the RTCP packet type. For several
//! cores, run one `Relay` per worker over disjoint port ranges ([`Config::shard`]) and keep
//! every channel of a call in one shard.
//!
//! # RFCs
//!
//! - RFC 3550: RTP/RTCP; §11 even/odd ports; A.1/A.3 sequence tracking and loss; A.8 jitter.
//! - RFC 5761: RTP and RTCP on one port; §4 tells them apart by packet type 192–223.
//! - RFC 4961: symmetric RTP, which makes latching onto the NATed source possible.
//! - RFC 4733: telephone-events are ordinary RTP here, passed through (kept out of jitter).
//! - RFC 3264: `sendonly`/`recvonly`/`inactive` streams (hold) get the longer held timeout.
//! - RFC 3711 / RFC 7714 (crate `srtp`): a channel whose device speaks SRTP decrypts what it
//!   sends and encrypts what it receives, in place ([`Relay::set_srtp`]); the other side of
//!   the call keeps its own keys or plain RTP. Per channel, SRTP authentication failures and
//!   replays are counted ([`ChannelStats::srtp_auth_failures`], [`ChannelStats::srtp_replays`]).

mod channel;
mod config;
mod ids;
mod latch;
mod limit;
mod packet;
mod relay;
mod rtp;
mod srtp_leg;
mod timeout;

pub use channel::{ChannelStats, DirectPeer, Direction, Peer, ReceiveStats};
pub use config::{Config, ConfigError, LatchPolicy, MediaFile};
pub use ids::{CallRef, ChannelId, LegRef, RelayPort};
pub use latch::RelatchReason;
pub use limit::LimitHit;
/// Room a driver leaves after each received datagram in its buffer: an SRTP tag and SRTCP
/// index are appended in place when a packet is encrypted for an SRTP device.
pub const SRTP_TRAILER: usize = srtp::MAX_TRAILER;
pub use relay::{ChannelError, Forward, PoolStats, Relay, RelayCommand, RelayEvent, TimeoutKind};
pub use srtp::{MasterKey, Suite as SrtpSuite};
pub use srtp_leg::SrtpKeys;

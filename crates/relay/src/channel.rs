//! One channel: a relayed leg's port pair, what signalling said about its device, its latches,
//! its pairing and its counters.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::LatchPolicy;
use crate::ids::{CallRef, LegRef, RelayPort};
use crate::latch::{KnownIps, Latch};
use crate::rtp::StreamStats;
use crate::srtp_leg::ChannelSrtp;

/// What the SDP of a relayed leg says about its device. Addresses here are *hints*: a device
/// behind a NAT announces a private address it can never be reached at, so a relayed leg only
/// ever sends to the source it latched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// RTP address from `c=` and `m=`; `None` when absent or `0.0.0.0`.
    pub rtp: Option<SocketAddr>,
    /// RTCP address from `a=rtcp` (RFC 3605), else RTP port + 1; `None` with rtcp-mux.
    pub rtcp: Option<SocketAddr>,
    /// Whether `a=rtcp-mux` was agreed (RFC 5761): RTCP to this device goes to its RTP source.
    pub rtcp_mux: bool,
    /// Source address of the device's SIP, which behind a NAT is the public address its media
    /// will come from too.
    pub signalling_ip: Option<IpAddr>,
    /// RTP clock rate of the agreed payload, for jitter (8000 for G.711 and G.722, 48000 for
    /// Opus).
    pub clock_rate: u32,
    /// Payload type of RFC 4733 `telephone-event`, kept out of the jitter estimate.
    pub telephone_event: Option<u8>,
    /// The device's stream direction (RFC 3264); anything but `sendrecv` is hold.
    pub direction: Direction,
}

impl Default for Peer {
    fn default() -> Self {
        Self {
            rtp: None,
            rtcp: None,
            rtcp_mux: false,
            signalling_ip: None,
            clock_rate: 8000,
            telephone_event: None,
            direction: Direction::SendRecv,
        }
    }
}

/// A device's SDP addresses that may be sent to before latching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Announced {
    pub(crate) rtp: Option<SocketAddr>,
    pub(crate) rtcp: Option<SocketAddr>,
}

impl Peer {
    /// The SDP addresses a channel may send to before the device's first packet: only when the
    /// SDP names the very IP the device's authenticated signalling came from, so the relay
    /// never becomes a way to send a stream to a third party. A device behind a NAT announces
    /// a private address that differs from its signalling source, and is reached only once it
    /// has sent (latching); a device with a public address (or on the same network) that waits
    /// for media before sending is reached at once.
    pub(crate) fn announced(&self) -> Announced {
        let same = |a: Option<SocketAddr>| {
            a.filter(|a| {
                self.signalling_ip
                    .is_some_and(|s| s.to_canonical() == a.ip().to_canonical())
            })
        };
        Announced {
            rtp: same(self.rtp),
            rtcp: if self.rtcp_mux { None } else { same(self.rtcp) },
        }
    }

    /// A device announcing `rtp` (RTCP on the next port), G.711 clock, `sendrecv`.
    pub fn new(rtp: SocketAddr) -> Self {
        let mut rtcp = rtp;
        rtcp.set_port(rtp.port().wrapping_add(1));
        Self {
            rtp: Some(rtp),
            rtcp: Some(rtcp),
            ..Self::default()
        }
    }

    pub(crate) fn known_ips(&self) -> KnownIps {
        KnownIps::new([
            self.rtp.map(|a| a.ip()),
            self.rtcp.map(|a| a.ip()),
            self.signalling_ip,
        ])
    }
}

/// A stream direction attribute (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv` (or none).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

/// A phone on the office LAN that keeps its own address: the relayed leg is only on the
/// Internet side. Sent to as configured, no latching (it is not behind a NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectPeer {
    /// The phone's RTP address from its SDP.
    pub rtp: SocketAddr,
    /// Its RTCP address; `None` when it agreed rtcp-mux.
    pub rtcp: Option<SocketAddr>,
}

/// The other side of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Pairing {
    /// Nowhere to forward to yet.
    #[default]
    Unpaired,
    /// Another channel (by index): the other Internet leg of the call.
    Channel(u32),
    /// An internal phone, reached from this channel's own ports.
    Direct(DirectPeer),
}

/// Counters and state of one channel, as returned by [`crate::Relay::snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// The call the channel belongs to.
    pub call: CallRef,
    /// The leg it carries.
    pub leg: LegRef,
    /// Its RTP port (also RTCP with rtcp-mux).
    pub rtp_port: RelayPort,
    /// Its RTCP port.
    pub rtcp_port: RelayPort,
    /// Source latched on the RTP port.
    pub latched_rtp: Option<SocketAddr>,
    /// Source latched on the RTCP port.
    pub latched_rtcp: Option<SocketAddr>,
    /// What the device sent.
    pub received: ReceiveStats,
    /// Packets forwarded to the device.
    pub sent_packets: u64,
    /// Bytes (UDP payload) forwarded to the device.
    pub sent_bytes: u64,
    /// Packets from third addresses, dropped.
    pub rejected: u64,
    /// Accepted packets dropped because the other side had no address yet.
    pub no_destination: u64,
    /// Datagrams that were not RTP/RTCP version 2, dropped.
    pub malformed: u64,
    /// When the last accepted packet arrived, from either side.
    pub last_packet: Option<Instant>,
    /// Whether the device sends SRTP (packets from it are authenticated and decrypted).
    pub srtp_inbound: bool,
    /// Whether packets to the device are encrypted with homeline's key.
    pub srtp_outbound: bool,
    /// SRTP/SRTCP packets from the device that failed authentication, dropped.
    pub srtp_auth_failures: u64,
    /// SRTP/SRTCP packets from the device that were replays (RFC 3711 §3.3.2), dropped.
    pub srtp_replays: u64,
    /// Packets for the device that could not be encrypted (a reused index, too many SSRCs),
    /// dropped.
    pub srtp_send_failures: u64,
}

/// The stream received from a channel's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReceiveStats {
    /// Packets accepted (RTP and RTCP).
    pub packets: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
    /// Of those, RTCP packets.
    pub rtcp_packets: u64,
    /// RTP packets expected from the sequence numbers (RFC 3550 A.3).
    pub expected: u64,
    /// RTP packets lost: expected − received, never below zero (A.3).
    pub lost: u64,
    /// Interarrival jitter in RTP timestamp units (A.8).
    pub jitter_units: u32,
    /// The same in time, at the leg's clock rate.
    pub jitter: Duration,
}

/// A slot of the pool; one per port pair, reused under a new generation.
#[derive(Debug, Default)]
pub(crate) struct Channel {
    pub(crate) in_use: bool,
    pub(crate) generation: u32,
    pub(crate) call: CallRef,
    pub(crate) leg: LegRef,
    pub(crate) pairing: Pairing,
    pub(crate) peer: Option<Peer>,
    // Copied out of `peer` for the per-packet path.
    pub(crate) rtcp_mux: bool,
    pub(crate) clock_rate: u32,
    pub(crate) telephone_event: Option<u8>,
    pub(crate) known: KnownIps,
    /// Where to send before the device's first packet latches: its SDP address, only when that
    /// is the address its signalling came from (see [`Peer::announced`]).
    pub(crate) announced: Announced,
    pub(crate) rtp_latch: Latch,
    pub(crate) rtcp_latch: Latch,
    pub(crate) last_packet: Option<Instant>,
    /// The last accepted packet from this channel's own device (the media timeout watches each
    /// remote device, not the call as a whole: an office phone still talking into a dead
    /// remote leg must not keep it up).
    pub(crate) last_from_device: Option<Instant>,
    pub(crate) rx_packets: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) rx_rtcp: u64,
    pub(crate) stream: StreamStats,
    pub(crate) sent_packets: u64,
    pub(crate) sent_bytes: u64,
    pub(crate) rejected: u64,
    pub(crate) no_destination: u64,
    pub(crate) malformed: u64,
    /// Rejections not reported yet, and the last rejected source.
    pub(crate) rejected_unreported: u64,
    pub(crate) last_rejected: Option<SocketAddr>,
    /// In the relay's list of channels with a report due.
    pub(crate) reject_queued: bool,
    /// SRTP contexts when the device speaks SRTP (boxed: most channels are plain RTP).
    pub(crate) srtp: Option<Box<ChannelSrtp>>,
    pub(crate) srtp_auth_failures: u64,
    pub(crate) srtp_replays: u64,
    pub(crate) srtp_send_failures: u64,
}

impl Channel {
    /// Takes the slot for a new leg: everything but the generation and the report queue flag
    /// starts over.
    pub(crate) fn assign(&mut self, call: CallRef, leg: LegRef) {
        *self = Channel {
            in_use: true,
            generation: self.generation,
            call,
            leg,
            clock_rate: Peer::default().clock_rate,
            reject_queued: self.reject_queued,
            ..Channel::default()
        };
    }

    /// Applies what signalling said about the device. A source latched before the first SDP
    /// was known (under the no-hints fallback), which `policy` now refuses, is forgotten; a
    /// renegotiation keeps the current source until the next one latches.
    pub(crate) fn set_peer(&mut self, peer: Peer, policy: LatchPolicy) {
        let first = self.peer.is_none();
        if self.clock_rate != peer.clock_rate {
            self.stream.reset_jitter();
        }
        self.rtcp_mux = peer.rtcp_mux;
        self.clock_rate = peer.clock_rate;
        self.telephone_event = peer.telephone_event;
        self.known = peer.known_ips();
        self.announced = peer.announced();
        self.peer = Some(peer);
        if first {
            let known = self.known;
            self.rtp_latch.retain(|a| known.allow(policy, a));
            self.rtcp_latch.retain(|a| known.allow(policy, a));
        }
    }

    /// Where a packet for this channel's device goes: out of which of our ports, to which
    /// latched source. RTCP follows the device's rtcp-mux choice.
    #[inline]
    pub(crate) fn device_destination(
        &self,
        rtp_port: RelayPort,
        rtcp: bool,
    ) -> Option<(RelayPort, SocketAddr)> {
        if rtcp && !self.rtcp_mux {
            let port = RelayPort::new(rtp_port.get() + 1);
            return self
                .rtcp_latch
                .addr()
                .or(self.announced.rtcp)
                .map(|a| (port, a));
        }
        self.rtp_latch
            .addr()
            .or(self.announced.rtp)
            .map(|a| (rtp_port, a))
    }

    /// Whether the device is on hold (RFC 3264 direction other than `sendrecv`).
    pub(crate) fn held(&self) -> bool {
        self.peer
            .is_some_and(|p| p.direction != Direction::SendRecv)
    }

    pub(crate) fn stats(&self, rtp_port: RelayPort) -> ChannelStats {
        let jitter_units = self.stream.jitter();
        let jitter_ns = u64::from(jitter_units) * 1_000_000_000 / u64::from(self.clock_rate.max(1));
        ChannelStats {
            call: self.call,
            leg: self.leg,
            rtp_port,
            rtcp_port: RelayPort::new(rtp_port.get() + 1),
            latched_rtp: self.rtp_latch.addr(),
            latched_rtcp: self.rtcp_latch.addr(),
            received: ReceiveStats {
                packets: self.rx_packets,
                bytes: self.rx_bytes,
                rtcp_packets: self.rx_rtcp,
                expected: self.stream.expected(),
                lost: self.stream.lost(),
                jitter_units,
                jitter: Duration::from_nanos(jitter_ns),
            },
            sent_packets: self.sent_packets,
            sent_bytes: self.sent_bytes,
            rejected: self.rejected,
            no_destination: self.no_destination,
            malformed: self.malformed,
            last_packet: self.last_packet,
            srtp_inbound: self.srtp.as_ref().is_some_and(|s| s.has_inbound()),
            srtp_outbound: self.srtp.as_ref().is_some_and(|s| s.has_outbound()),
            srtp_auth_failures: self.srtp_auth_failures,
            srtp_replays: self.srtp_replays,
            srtp_send_failures: self.srtp_send_failures,
        }
    }
}

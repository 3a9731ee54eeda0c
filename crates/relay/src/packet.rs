//! The per-packet path: O(1), no allocation, no map lookup; SRTP in place in the packet
//! buffer.

use std::net::SocketAddr;
use std::time::Instant;

use crate::channel::{Channel, Pairing};
use crate::ids::{ChannelId, RelayPort};
use crate::latch::Verdict;
use crate::relay::{Forward, Relay, RelayEvent};
use crate::rtp::{self, Kind};
use crate::srtp_leg::Failure;

impl Relay {
    /// A datagram `buf[..len]` arrived on relay port `port` from `from` at `now`: returns
    /// where to send it and how many octets of `buf` to send, or `None` to drop it. Counts it
    /// either way. `buf` must have [`crate::SRTP_TRAILER`] octets of room after `len`.
    ///
    /// From the channel's device (latched, or latching now) it goes out of the partner's side;
    /// from the channel's direct peer it goes to the channel's device. Nothing goes anywhere
    /// before its destination is known: a latched source or a configured direct peer.
    ///
    /// Plain RTP is forwarded unchanged. A device with SRTP keys ([`Relay::set_srtp`]) has
    /// its packets authenticated, replay-checked and decrypted before anything else (a forged
    /// packet never latches), and packets for it encrypted with homeline's key, in place.
    #[inline]
    pub fn handle_packet(
        &mut self,
        now: Instant,
        port: RelayPort,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<(Forward, usize)> {
        let len = len.min(buf.len());
        let Some(offset) = port.get().checked_sub(self.base) else {
            self.stray += 1;
            return None;
        };
        let index = usize::from(offset >> 1);
        let rtcp_port = offset & 1 == 1;
        // The range starts even, so clearing the low bit gives the channel's RTP port.
        let rtp_port = RelayPort::new(port.get() & !1);
        let wire_len = len as u64;
        let Some(ch) = self.channels.get_mut(index).filter(|c| c.in_use) else {
            self.stray += 1;
            return None;
        };
        let kind = rtp::classify(&buf[..len], rtcp_port);

        // From the internal phone this channel is paired with: to the channel's device.
        if let Pairing::Direct(d) = ch.pairing {
            let inside = if rtcp_port {
                d.rtcp == Some(from)
            } else {
                d.rtp == from
            };
            if inside {
                if kind == Kind::Malformed {
                    ch.malformed += 1;
                    return None;
                }
                ch.last_packet = Some(now);
                let rtcp = kind == Kind::Rtcp;
                let Some((from_port, to)) = ch.device_destination(rtp_port, rtcp) else {
                    ch.no_destination += 1;
                    return None;
                };
                let out = ch.protect_for_device(buf, len, rtcp)?;
                ch.sent_packets += 1;
                ch.sent_bytes += out as u64;
                return Some((Forward { from_port, to }, out));
            }
        }

        // From the device side: junk never latches, nor does a packet that fails SRTP.
        if kind == Kind::Malformed {
            ch.malformed += 1;
            return None;
        }
        // Nor does anything before the channel is paired: the office phone answering a remote
        // caller sends from the moment it answers, before its SDP reaches the relay as the
        // channel's direct peer, and may share the remote device's known IP (a NAT hairpin, a
        // VPN, one host). Latching it would make it "the device"; the real device then meets
        // a third-address rejection. Nothing could be forwarded yet anyway.
        if ch.pairing == Pairing::Unpaired {
            let latched = if rtcp_port {
                ch.rtcp_latch.addr()
            } else {
                ch.rtp_latch.addr()
            };
            if latched != Some(from) {
                ch.no_destination += 1;
                return None;
            }
        }
        let mut len = len;
        if let Some(srtp) = ch.srtp.as_mut() {
            match srtp.unprotect(&mut buf[..len], kind) {
                Ok(n) => len = n,
                Err(f) => {
                    match f {
                        Failure::Replay => ch.srtp_replays += 1,
                        Failure::Auth | Failure::Other => ch.srtp_auth_failures += 1,
                        // Expected for a moment in every SRTP call set up by homeline's
                        // offer: not an attack, not counted.
                        Failure::KeyPending => {}
                    }
                    return None;
                }
            }
        }
        let (policy, known) = (self.config.latching, ch.known);
        let latch = if rtcp_port {
            &mut ch.rtcp_latch
        } else {
            &mut ch.rtp_latch
        };
        match latch.check(now, from, self.config.relatch_after_silence, |f| {
            known.allow(policy, f)
        }) {
            Verdict::Accept => {}
            Verdict::Latched(relatch) => {
                let (call, leg, generation) = (ch.call, ch.leg, ch.generation);
                self.events.push_back(RelayEvent::Latched {
                    call,
                    leg,
                    channel: ChannelId {
                        index: index as u32,
                        generation,
                    },
                    port,
                    source: from,
                    relatch,
                });
            }
            Verdict::Reject => {
                ch.rejected += 1;
                ch.rejected_unreported += 1;
                ch.last_rejected = Some(from);
                self.queue_rejection_report(now, index);
                return None;
            }
        }
        // Re-borrow: the event queue was touched above.
        let ch = &mut self.channels[index];
        ch.last_packet = Some(now);
        ch.last_from_device = Some(now);
        ch.rx_packets += 1;
        ch.rx_bytes += wire_len;
        let rtcp = match kind {
            Kind::Rtp(h) => {
                let jitter = ch.telephone_event != Some(h.payload_type);
                ch.stream.on_rtp(now, &h, ch.clock_rate, jitter);
                false
            }
            _ => {
                ch.rx_rtcp += 1;
                true
            }
        };
        let pairing = ch.pairing;
        let forward = match pairing {
            Pairing::Unpaired => None,
            // An internal phone paired directly always speaks plain RTP.
            Pairing::Direct(d) => Some(match (rtcp, d.rtcp) {
                (true, Some(to)) => Forward {
                    from_port: RelayPort::new(rtp_port.get() + 1),
                    to,
                },
                _ => Forward {
                    from_port: rtp_port,
                    to: d.rtp,
                },
            }),
            Pairing::Channel(o) => {
                let other_port = self.rtp_port_of(o);
                let other = &mut self.channels[o as usize];
                match other.device_destination(other_port, rtcp) {
                    None => None,
                    Some((from_port, to)) => {
                        let out = other.protect_for_device(buf, len, rtcp)?;
                        other.sent_packets += 1;
                        other.sent_bytes += out as u64;
                        return Some((Forward { from_port, to }, out));
                    }
                }
            }
        };
        if forward.is_none() {
            self.channels[index].no_destination += 1;
        }
        forward.map(|f| (f, len))
    }
}

impl Channel {
    /// Encrypts `buf[..len]` for this channel's device when it speaks SRTP; the length to
    /// send, or `None` (counted) when the packet cannot be encrypted.
    #[inline]
    fn protect_for_device(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> Option<usize> {
        let Some(srtp) = self.srtp.as_mut() else {
            return Some(len);
        };
        match srtp.protect(buf, len, rtcp) {
            Ok(n) => Some(n),
            Err(_) => {
                self.srtp_send_failures += 1;
                None
            }
        }
    }
}

//! The per-packet path: O(1), no allocation, no map lookup.

use std::net::SocketAddr;
use std::time::Instant;

use crate::channel::Pairing;
use crate::ids::{ChannelId, RelayPort};
use crate::latch::Verdict;
use crate::relay::{Forward, Relay, RelayEvent};
use crate::rtp::{self, Kind};

impl Relay {
    /// A datagram `pkt` arrived on relay port `port` from `from` at `now`: returns where to
    /// send it, unchanged, or `None` to drop it. Counts it either way.
    ///
    /// From the channel's device (latched, or latching now) it goes out of the partner's side;
    /// from the channel's direct peer it goes to the channel's device. Nothing goes anywhere
    /// before its destination is known: a latched source or a configured direct peer.
    #[inline]
    pub fn on_packet(
        &mut self,
        now: Instant,
        port: RelayPort,
        from: SocketAddr,
        pkt: &[u8],
    ) -> Option<Forward> {
        let Some(offset) = port.get().checked_sub(self.base) else {
            self.stray += 1;
            return None;
        };
        let index = usize::from(offset >> 1);
        let rtcp_port = offset & 1 == 1;
        // The range starts even, so clearing the low bit gives the channel's RTP port.
        let rtp_port = RelayPort::new(port.get() & !1);
        let len = pkt.len() as u64;
        let Some(ch) = self.channels.get_mut(index).filter(|c| c.in_use) else {
            self.stray += 1;
            return None;
        };
        let kind = rtp::classify(pkt, rtcp_port);

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
                let Some((from_port, to)) = ch.device_destination(rtp_port, kind == Kind::Rtcp)
                else {
                    ch.no_destination += 1;
                    return None;
                };
                ch.sent_packets += 1;
                ch.sent_bytes += len;
                return Some(Forward { from_port, to });
            }
        }

        // From the device side: junk never latches.
        if kind == Kind::Malformed {
            ch.malformed += 1;
            return None;
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
        ch.rx_bytes += len;
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
                other
                    .device_destination(other_port, rtcp)
                    .map(|(from_port, to)| {
                        other.sent_packets += 1;
                        other.sent_bytes += len;
                        Forward { from_port, to }
                    })
            }
        };
        if forward.is_none() {
            self.channels[index].no_destination += 1;
        }
        forward
    }
}

//! Just enough RTP/RTCP for a relay: the 12-byte fixed header (RFC 3550 §5.1), RTCP told apart
//! from RTP by packet type (RFC 5761 §4), sequence tracking and loss (RFC 3550 A.1, A.3) and
//! interarrival jitter (A.8). The payload, CSRCs, extensions and padding are never read: the
//! packet is forwarded as it came (SRTP included, whose header is plain RTP).

use std::time::Instant;

/// What a datagram is, as far as the relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An RTP packet and its fixed header.
    Rtp(RtpHeader),
    /// An RTCP compound packet.
    Rtcp,
    /// Not RTP version 2 or too short: never latched on, never forwarded.
    Malformed,
}

/// The fields of the RTP fixed header the counters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    pub(crate) payload_type: u8,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
}

const RTP_HEADER: usize = 12;
/// An RTCP receiver report without report blocks: common header + SSRC.
const RTCP_MIN: usize = 8;

/// Classifies a datagram that arrived on an RTP port (`rtcp_port == false`) or on an RTCP port.
/// On the RTP port, a second octet of 192–223 is RTCP (RFC 5761 §4: those values are RTCP
/// packet types, and the matching RTP payload types 64–95 with the marker bit are avoided).
#[inline]
pub(crate) fn classify(pkt: &[u8], rtcp_port: bool) -> Kind {
    let [b0, b1, ..] = *pkt else {
        return Kind::Malformed;
    };
    if b0 >> 6 != 2 {
        return Kind::Malformed;
    }
    if rtcp_port || (192..=223).contains(&b1) {
        return if pkt.len() >= RTCP_MIN {
            Kind::Rtcp
        } else {
            Kind::Malformed
        };
    }
    let Some(h) = pkt.get(..RTP_HEADER) else {
        return Kind::Malformed;
    };
    Kind::Rtp(RtpHeader {
        payload_type: b1 & 0x7f,
        seq: u16::from_be_bytes([h[2], h[3]]),
        timestamp: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
    })
}

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Received-stream statistics of one channel: RFC 3550 A.1 sequence tracking (without the
/// probation step: the source was already accepted by latching), A.3 loss and A.8 jitter.
/// A new SSRC or a sequence restart folds the old figures into the totals and starts over.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamStats {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: u32,
    received: u64,
    /// Expected and received of the sources and restarts before the current one.
    expected_before: u64,
    received_before: u64,
    /// Interarrival jitter × 16, in timestamp units (A.8).
    jitter16: u64,
    transit: Option<u32>,
    clock: Option<Instant>,
}

impl StreamStats {
    /// Counts one RTP packet that arrived at `now`. `clock_rate` is the payload's RTP clock;
    /// `jitter` is false for packets kept out of the jitter estimate (RFC 4733 events, whose
    /// timestamp is the start of the event, not the packet's sampling instant).
    #[inline]
    pub(crate) fn on_rtp(&mut self, now: Instant, h: &RtpHeader, clock_rate: u32, jitter: bool) {
        if self.ssrc != Some(h.ssrc) {
            self.fold();
            self.ssrc = Some(h.ssrc);
            self.restart(h.seq);
        } else if !self.update_seq(h.seq) {
            return;
        }
        if jitter {
            self.update_jitter(now, h.timestamp, clock_rate);
        }
    }

    /// RFC 3550 A.1 `update_seq`; false when the packet starts a suspected restart.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: believe it when the next packet follows it (A.1).
            if u32::from(seq) == self.bad_seq {
                self.fold();
                self.restart(seq);
                return true;
            }
            self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
            return false;
        }
        // Otherwise a duplicate or reordered packet: counted, max unchanged.
        self.received += 1;
        true
    }

    fn restart(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.bad_seq = SEQ_MOD + 1;
        self.received = 1;
        self.transit = None;
    }

    fn fold(&mut self) {
        if self.ssrc.is_some() {
            self.expected_before += self.expected_now();
            self.received_before += self.received;
        }
        self.received = 0;
    }

    fn expected_now(&self) -> u64 {
        if self.received == 0 {
            return 0;
        }
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        (extended_max + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// RFC 3550 A.8, integer form: `J += (|D| - J) / 16`, kept × 16.
    fn update_jitter(&mut self, now: Instant, timestamp: u32, clock_rate: u32) {
        let clock = *self.clock.get_or_insert(now);
        // Microseconds keep this in u64 (no 128-bit division per packet) for 12 years at
        // 48 kHz, with a resolution well below one timestamp unit.
        let elapsed_us =
            u64::try_from(now.saturating_duration_since(clock).as_micros()).unwrap_or(u64::MAX);
        // Arrival time in timestamp units, modulo 2^32 like the timestamp itself.
        let arrival = (elapsed_us.saturating_mul(u64::from(clock_rate)) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = self.transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            // J16 <= 16 * 2^31, so neither step overflows.
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Forgets the jitter history (the clock rate changed on renegotiation).
    pub(crate) fn reset_jitter(&mut self) {
        self.transit = None;
        self.jitter16 = 0;
    }

    /// Packets expected from the sequence numbers seen (A.3), all sources of the channel.
    pub(crate) fn expected(&self) -> u64 {
        self.expected_before + self.expected_now()
    }

    /// Packets counted by the sequence tracker.
    pub(crate) fn received(&self) -> u64 {
        self.received_before + self.received
    }

    /// Cumulative packets lost (A.3), never below zero (duplicates can make it negative).
    pub(crate) fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received())
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter(&self) -> u32 {
        u32::try_from(self.jitter16 >> 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: usize) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.resize(12 + payload, 0xd5);
        p
    }

    #[test]
    fn rfc3550_5_1_fixed_header_fields() {
        let p = rtp(0x80 | 8, 0xbeef, 0x0102_0304, 0xdead_cafe, 160);
        assert_eq!(
            classify(&p, false),
            Kind::Rtp(RtpHeader {
                payload_type: 8,
                seq: 0xbeef,
                timestamp: 0x0102_0304,
                ssrc: 0xdead_cafe
            })
        );
        assert_eq!(classify(&p[..11], false), Kind::Malformed);
        let mut v1 = p.clone();
        v1[0] = 0x40;
        assert_eq!(classify(&v1, false), Kind::Malformed);
        assert_eq!(classify(&[], false), Kind::Malformed);
    }

    #[test]
    fn rfc5761_4_rtcp_packet_types_on_the_rtp_port() {
        // RTCP SR (200), RR (201), SDES (202), BYE (203), APP (204), RTPFB (205), XR (207).
        for pt in [192u8, 200, 201, 202, 203, 204, 205, 206, 207, 223] {
            let rr = [0x80, pt, 0, 1, 0, 0, 0, 1];
            assert_eq!(classify(&rr, false), Kind::Rtcp, "PT {pt}");
        }
        // PT 0 with the marker bit (128) and PT 96 with marker (224) are RTP.
        assert!(matches!(
            classify(&rtp(128, 1, 1, 1, 0), false),
            Kind::Rtp(_)
        ));
        assert!(matches!(
            classify(&rtp(224, 1, 1, 1, 0), false),
            Kind::Rtp(_)
        ));
        // Anything version 2 on the RTCP port is RTCP.
        assert_eq!(classify(&rtp(0, 1, 1, 1, 0), true), Kind::Rtcp);
        assert_eq!(classify(&[0x80, 201, 0, 1], true), Kind::Malformed);
    }

    fn feed(s: &mut StreamStats, t0: Instant, packets: &[(u16, u32, u64)]) {
        for &(seq, ts, at_ms) in packets {
            let h = RtpHeader {
                payload_type: 0,
                seq,
                timestamp: ts,
                ssrc: 7,
            };
            s.on_rtp(t0 + std::time::Duration::from_millis(at_ms), &h, 8000, true);
        }
    }

    #[test]
    fn rfc3550_a3_loss_from_sequence_gaps_across_wrap() {
        let t0 = Instant::now();
        let mut s = StreamStats::default();
        // 65530..=65535, 0..=9 with 65533, 2 and 3 missing: 16 expected, 13 received.
        let seqs: Vec<u16> = (65530u16..=65535)
            .chain(0..=9)
            .filter(|s| ![65533, 2, 3].contains(s))
            .collect();
        let pk: Vec<_> = seqs.iter().map(|&q| (q, 0, 0)).collect();
        feed(&mut s, t0, &pk);
        assert_eq!(s.expected(), 16);
        assert_eq!(s.received(), 13);
        assert_eq!(s.lost(), 3);
        // A late duplicate of 9 counts as received, not as a gap (lost may not go below 0).
        feed(&mut s, t0, &[(9, 0, 0)]);
        assert_eq!(s.lost(), 2);
    }

    #[test]
    fn rfc3550_a1_restart_after_two_sequential_packets_and_new_ssrc() {
        let t0 = Instant::now();
        let mut s = StreamStats::default();
        feed(&mut s, t0, &[(100, 0, 0), (101, 0, 0), (103, 0, 0)]); // 1 lost
        feed(&mut s, t0, &[(40000, 0, 0)]); // a jump: not believed yet
        assert_eq!((s.expected(), s.received()), (4, 3));
        feed(&mut s, t0, &[(40001, 0, 0), (40002, 0, 0)]); // believed: restart at 40001
        assert_eq!((s.expected(), s.received()), (6, 5));
        let h = RtpHeader {
            payload_type: 0,
            seq: 5,
            timestamp: 0,
            ssrc: 8,
        };
        s.on_rtp(t0, &h, 8000, true);
        assert_eq!((s.expected(), s.received(), s.lost()), (7, 6, 1));
    }

    #[test]
    fn rfc3550_a8_jitter_of_a_steady_stream_is_zero_and_grows_with_delay_variation() {
        let t0 = Instant::now();
        let mut s = StreamStats::default();
        let steady: Vec<_> = (0..50u16)
            .map(|i| (i, u32::from(i) * 160, u64::from(i) * 20))
            .collect();
        feed(&mut s, t0, &steady);
        assert_eq!(s.jitter(), 0);
        // Every other packet 10 ms late: |D| = 80 units each time; J converges to 80.
        let wobble: Vec<_> = (50..1050u16)
            .map(|i| {
                (
                    i,
                    u32::from(i) * 160,
                    u64::from(i) * 20 + if i % 2 == 1 { 10 } else { 0 },
                )
            })
            .collect();
        feed(&mut s, t0, &wobble);
        assert!((78..=80).contains(&s.jitter()), "jitter {}", s.jitter());
    }

    proptest! {
        /// The hand-written reader agrees with the `rtp-types` parser on every packet that
        /// parser accepts as RTP.
        #[test]
        fn fixed_header_reader_agrees_with_rtp_types(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = rtp_types::RtpPacket::parse(&bytes) {
                if !(192..=223).contains(&bytes[1]) {
                    let Kind::Rtp(h) = classify(&bytes, false) else {
                        panic!("rtp-types accepts what we do not: {bytes:?}");
                    };
                    prop_assert_eq!(h.payload_type, p.payload_type());
                    prop_assert_eq!(h.seq, p.sequence_number());
                    prop_assert_eq!(h.timestamp, p.timestamp());
                    prop_assert_eq!(h.ssrc, p.ssrc());
                }
            }
        }
    }
}

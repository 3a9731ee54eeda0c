//! Capacity: how many simultaneous Internet calls the office's upstream carries.
//!
//! Only the derivation lives here; the relay enforces the figure (and its channel pool) when it
//! allocates a channel (`relay::Relay::allocate`, `relay::LimitHit`), so there is one admission
//! check, not two that could disagree.
//!
//! # The derivation (what `homeline setup upstream 256` prints)
//!
//! One call leg that crosses the Internet sends one RTP packet every packetization interval
//! up the office line. Per packet:
//!
//! | part | bytes |
//! |---|---|
//! | codec payload = bitrate × ptime / 8 | G.711 and G.722: 160 at 20 ms; Opus at 32 kbit/s: 80 |
//! | RTP header (RFC 3550) | 12 |
//! | SRTP authentication tag (AES_CM_128_HMAC_SHA1_80) | 10 |
//! | UDP | 8 |
//! | IPv4 (IPv6: 40) | 20 |
//! | PPPoE + PPP | 8 |
//! | Ethernet header + FCS (the frame DSL/PTM and cable carry) | 18 |
//! | VPN tunnel (optional; WireGuard over IPv4 adds 60) | 0 |
//!
//! G.711 at 20 ms: 160 + 76 = 236 bytes = 1,888 bits, 50 packets/s → **94.4 kbit/s per call**.
//! [`DEFAULT_HEADROOM_PERCENT`] (20 %) of the upstream stays free for SIP signalling (TLS
//! registrations and keep-alives of every remote phone), RTCP and the office's other traffic:
//! 256 kbit/s → 204.8 kbit/s for media → 204.8 / 94.4 = 2.17 → **2 calls**, the reference
//! product's figure.
//!
//! The reference point holds under every overhead assumption above: with the full default
//! overhead, 2 calls needs a headroom of at most 26 %; counting only RTP/UDP/IPv4 (80 kbit/s
//! per call), 2 calls (not 3) needs more than 6.25 %; IPv6 lands exactly on 2 at 20 %. Over a
//! WireGuard VPN (+60 B) the same line carries 1 call.
//!
//! The system limit uses the most demanding codec a call may end up with: homeline does not
//! transcode, and every device falls back to G.711. Opus is shown for information.
//!
//! # Units
//!
//! An *Internet call* here is one leg whose media crosses the office's Internet line: a remote
//! device in a call, or an ITSP call. A call between two remote devices is two of them, since
//! both streams leave through the same upstream (and take two relay channels). The downstream
//! is assumed to be at least as fast as the upstream.

use std::fmt;

/// Share of the upstream kept free for signalling, RTCP and other traffic, in percent.
pub const DEFAULT_HEADROOM_PERCENT: u32 = 20;
/// Default packetization interval (ptime), in milliseconds.
pub const DEFAULT_PACKETIZATION_MS: u32 = 20;
/// Default Opus target bitrate, in kbit/s (wideband speech; browsers use 32–40).
pub const DEFAULT_OPUS_KBIT: u32 = 32;
/// Shortest and longest packetization interval accepted, in milliseconds.
pub const PACKETIZATION_RANGE_MS: std::ops::RangeInclusive<u32> = 10..=120;
/// Opus bitrates accepted, in kbit/s (RFC 6716 §2.1.1: 6 to 510).
pub const OPUS_RANGE_KBIT: std::ops::RangeInclusive<u32> = 6..=510;
/// Largest headroom accepted, in percent.
pub const MAX_HEADROOM_PERCENT: u32 = 90;

/// RTP fixed header (RFC 3550 §5.1), bytes.
pub const RTP_HEADER: u32 = 12;
/// SRTP authentication tag of AES_CM_128_HMAC_SHA1_80 (RFC 3711 §5.2), bytes.
pub const SRTP_TAG: u32 = 10;
/// UDP header, bytes.
pub const UDP_HEADER: u32 = 8;
/// IPv4 header without options, bytes.
pub const IPV4_HEADER: u32 = 20;
/// IPv6 header without extension headers, bytes.
pub const IPV6_HEADER: u32 = 40;
/// PPPoE (6) and PPP (2) headers, bytes.
pub const PPPOE_HEADER: u32 = 8;
/// Ethernet header (14) and frame check sequence (4), bytes.
pub const ETHERNET_FRAMING: u32 = 18;
/// WireGuard over IPv4: outer IPv4 20, UDP 8, WireGuard header and tag 32, bytes. An example
/// value for [`Overhead::tunnel_bytes`].
pub const WIREGUARD_V4: u32 = 60;

/// A codec, for its payload bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 A-law or µ-law, 64 kbit/s.
    G711,
    /// G.722, 64 kbit/s.
    G722,
    /// Opus at a target bitrate (variable bitrate: the target is the average).
    Opus {
        /// Target bitrate, kbit/s.
        bitrate_kbit: u32,
    },
}

impl Codec {
    /// Opus at [`DEFAULT_OPUS_KBIT`].
    pub const OPUS_DEFAULT: Self = Self::Opus {
        bitrate_kbit: DEFAULT_OPUS_KBIT,
    };

    /// The codecs `homeline setup upstream` explains: G.711, G.722, Opus at its default.
    pub const EXPLAINED: [Self; 3] = [Self::G711, Self::G722, Self::OPUS_DEFAULT];

    /// Payload bitrate, kbit/s.
    pub fn payload_kbit(self) -> u32 {
        match self {
            Self::G711 | Self::G722 => 64,
            Self::Opus { bitrate_kbit } => bitrate_kbit,
        }
    }

    /// `"G.711"`, `"G.722"` or `"Opus"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::G711 => "G.711",
            Self::G722 => "G.722",
            Self::Opus { .. } => "Opus",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} kbit/s)", self.name(), self.payload_kbit())
    }
}

/// IP version of the office's Internet line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpVersion {
    /// IPv4, 20-byte header.
    #[default]
    V4,
    /// IPv6, 40-byte header.
    V6,
}

/// Link-layer framing counted against the upstream figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LinkLayer {
    /// None: the upstream figure is an IP rate.
    IpOnly,
    /// Ethernet frames (cable, fibre with a plain Ethernet hand-off).
    Ethernet,
    /// PPPoE in Ethernet frames (DSL, most fibre): the default.
    #[default]
    PppoeOverEthernet,
}

impl LinkLayer {
    /// Bytes added per packet.
    pub fn bytes(self) -> u32 {
        match self {
            Self::IpOnly => 0,
            Self::Ethernet => ETHERNET_FRAMING,
            Self::PppoeOverEthernet => PPPOE_HEADER + ETHERNET_FRAMING,
        }
    }
}

/// What each media packet carries besides the codec payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Overhead {
    /// IP version. Default IPv4.
    pub ip: IpVersion,
    /// SRTP (10-byte authentication tag). Default on: remote stations should use SRTP, and
    /// counting it errs on the safe side.
    pub srtp: bool,
    /// Link-layer framing. Default PPPoE over Ethernet.
    pub link: LinkLayer,
    /// VPN tunnel overhead per packet in bytes (for instance [`WIREGUARD_V4`]). Default 0.
    pub tunnel_bytes: u32,
}

impl Default for Overhead {
    fn default() -> Self {
        Self {
            ip: IpVersion::V4,
            srtp: true,
            link: LinkLayer::PppoeOverEthernet,
            tunnel_bytes: 0,
        }
    }
}

impl Overhead {
    /// RTP, UDP and IPv4 only: the least any packet carries.
    pub const RTP_UDP_IPV4: Self = Self {
        ip: IpVersion::V4,
        srtp: false,
        link: LinkLayer::IpOnly,
        tunnel_bytes: 0,
    };

    /// Each part that applies, with its size in bytes, innermost first.
    pub fn parts(&self) -> Vec<(&'static str, u32)> {
        let mut parts = vec![("RTP", RTP_HEADER)];
        if self.srtp {
            parts.push(("SRTP tag", SRTP_TAG));
        }
        parts.push(("UDP", UDP_HEADER));
        parts.push(match self.ip {
            IpVersion::V4 => ("IPv4", IPV4_HEADER),
            IpVersion::V6 => ("IPv6", IPV6_HEADER),
        });
        if self.tunnel_bytes > 0 {
            parts.push(("VPN", self.tunnel_bytes));
        }
        if self.link == LinkLayer::PppoeOverEthernet {
            parts.push(("PPPoE", PPPOE_HEADER));
        }
        if self.link != LinkLayer::IpOnly {
            parts.push(("Ethernet", ETHERNET_FRAMING));
        }
        parts
    }

    /// Bytes per packet besides the payload.
    pub fn bytes_per_packet(&self) -> u32 {
        self.parts().iter().map(|(_, b)| b).sum()
    }
}

/// An input outside what the derivation accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// Packetization interval outside [`PACKETIZATION_RANGE_MS`].
    #[error("packetization {0} ms outside 10..=120 ms")]
    Packetization(u32),
    /// Opus bitrate outside [`OPUS_RANGE_KBIT`].
    #[error("Opus bitrate {0} kbit/s outside 6..=510 kbit/s")]
    OpusBitrate(u32),
    /// Headroom above [`MAX_HEADROOM_PERCENT`].
    #[error("headroom {0} % above 90 %")]
    Headroom(u32),
}

/// How many simultaneous Internet calls `upstream_kbit` carries for `codec`, with
/// [`DEFAULT_HEADROOM_PERCENT`] kept free. See [`Derivation`] for the numbers behind it.
pub fn simultaneous_internet_calls(
    upstream_kbit: u32,
    codec: Codec,
    packetization_ms: u32,
    overhead: Overhead,
) -> Result<u32, CapacityError> {
    Derivation::new(
        upstream_kbit,
        codec,
        packetization_ms,
        overhead,
        DEFAULT_HEADROOM_PERCENT,
    )
    .map(|d| d.calls)
}

/// Every number from upstream bandwidth to simultaneous calls, for one codec. `Display` prints
/// the explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    /// Upstream bandwidth of the office line, kbit/s (1 kbit = 1,000 bit).
    pub upstream_kbit: u32,
    /// Share of the upstream kept free, percent.
    pub headroom_percent: u32,
    /// The codec.
    pub codec: Codec,
    /// Packetization interval, ms.
    pub packetization_ms: u32,
    /// What each packet carries besides the payload.
    pub overhead: Overhead,
    /// Codec payload per packet, bytes (rounded up).
    pub payload_bytes: u32,
    /// Overhead per packet, bytes.
    pub overhead_bytes: u32,
    /// Payload and overhead, bytes per packet.
    pub wire_bytes: u32,
    /// Upstream bandwidth of one call, bit/s (rounded up).
    pub per_call_bps: u64,
    /// Upstream left for media after the headroom, bit/s.
    pub usable_bps: u64,
    /// Simultaneous calls: `usable_bps / per_call_bps`, rounded down.
    pub calls: u32,
}

impl Derivation {
    /// Derives the figure, checking the inputs.
    pub fn new(
        upstream_kbit: u32,
        codec: Codec,
        packetization_ms: u32,
        overhead: Overhead,
        headroom_percent: u32,
    ) -> Result<Self, CapacityError> {
        if !PACKETIZATION_RANGE_MS.contains(&packetization_ms) {
            return Err(CapacityError::Packetization(packetization_ms));
        }
        if let Codec::Opus { bitrate_kbit } = codec {
            if !OPUS_RANGE_KBIT.contains(&bitrate_kbit) {
                return Err(CapacityError::OpusBitrate(bitrate_kbit));
            }
        }
        if headroom_percent > MAX_HEADROOM_PERCENT {
            return Err(CapacityError::Headroom(headroom_percent));
        }
        let payload_bytes = (codec.payload_kbit() * packetization_ms).div_ceil(8);
        let overhead_bytes = overhead.bytes_per_packet();
        let wire_bytes = payload_bytes + overhead_bytes;
        let per_call_bps = (u64::from(wire_bytes) * 8 * 1000).div_ceil(u64::from(packetization_ms));
        let usable_bps = u64::from(upstream_kbit) * 10 * u64::from(100 - headroom_percent);
        let calls = u32::try_from(usable_bps / per_call_bps).unwrap_or(u32::MAX);
        Ok(Self {
            upstream_kbit,
            headroom_percent,
            codec,
            packetization_ms,
            overhead,
            payload_bytes,
            overhead_bytes,
            wire_bytes,
            per_call_bps,
            usable_bps,
            calls,
        })
    }

    /// Packets per second, ×10 (one decimal: 30 ms gives 333 for 33.3).
    fn packets_per_second_x10(&self) -> u32 {
        10_000 / self.packetization_ms
    }
}

impl fmt::Display for Derivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .overhead
            .parts()
            .iter()
            .map(|(name, b)| format!("{name} {b}"))
            .collect();
        writeln!(f, "codec               {}", self.codec)?;
        writeln!(
            f,
            "packetization       {} ms = {} packets/s",
            self.packetization_ms,
            Tenths(u64::from(self.packets_per_second_x10()))
        )?;
        writeln!(f, "payload             {} B per packet", self.payload_bytes)?;
        writeln!(
            f,
            "overhead            {} B per packet ({})",
            self.overhead_bytes,
            parts.join(" + ")
        )?;
        writeln!(
            f,
            "on the wire         {} B = {} bit per packet = {} kbit/s per call",
            self.wire_bytes,
            self.wire_bytes * 8,
            Kbit(self.per_call_bps)
        )?;
        writeln!(
            f,
            "upstream            {} kbit/s, {} % kept free = {} kbit/s for media",
            self.upstream_kbit,
            self.headroom_percent,
            Kbit(self.usable_bps)
        )?;
        write!(
            f,
            "simultaneous calls  {} ({} / {}, rounded down)",
            self.calls,
            Kbit(self.usable_bps),
            Kbit(self.per_call_bps)
        )
    }
}

/// The figure for several codecs at once, and the limit the system uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamReport {
    /// One derivation per codec, in the order asked.
    pub rows: Vec<Derivation>,
    /// The smallest figure: any call may end up using the most demanding codec.
    pub limit: u32,
}

impl UpstreamReport {
    /// Derives the figure for each of `codecs` (at least one) with the same line settings.
    pub fn new(
        upstream_kbit: u32,
        codecs: &[Codec],
        packetization_ms: u32,
        overhead: Overhead,
        headroom_percent: u32,
    ) -> Result<Self, CapacityError> {
        let rows = codecs
            .iter()
            .map(|&c| {
                Derivation::new(
                    upstream_kbit,
                    c,
                    packetization_ms,
                    overhead,
                    headroom_percent,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = rows.iter().map(|d| d.calls).min().unwrap_or(0);
        Ok(Self { rows, limit })
    }

    /// The report `homeline setup upstream <kbit>` prints: [`Codec::EXPLAINED`] at 20 ms
    /// with the default overhead and headroom.
    pub fn standard(upstream_kbit: u32) -> Result<Self, CapacityError> {
        Self::new(
            upstream_kbit,
            &Codec::EXPLAINED,
            DEFAULT_PACKETIZATION_MS,
            Overhead::default(),
            DEFAULT_HEADROOM_PERCENT,
        )
    }
}

impl UpstreamReport {
    /// The report without its last line (the limit), for a caller that sizes the limit for
    /// another codec than the most demanding one and words that line itself.
    pub fn table(&self) -> ReportTable<'_> {
        ReportTable(self)
    }
}

impl fmt::Display for UpstreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rows.is_empty() {
            return f.write_str("no codec");
        }
        writeln!(f, "{}", self.table())?;
        write!(
            f,
            "Simultaneous Internet calls: {} (the most demanding codec: homeline does not transcode).",
            self.limit
        )
    }
}

/// [`UpstreamReport`] without the limit line: the line settings and one row per codec.
#[derive(Debug, Clone, Copy)]
pub struct ReportTable<'a>(&'a UpstreamReport);

impl fmt::Display for ReportTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.0.rows.first() else {
            return f.write_str("no codec");
        };
        writeln!(
            f,
            "Upstream {} kbit/s, {} % kept free for signalling and other traffic: {} kbit/s for media.",
            first.upstream_kbit,
            first.headroom_percent,
            Kbit(first.usable_bps)
        )?;
        let parts: Vec<String> = first
            .overhead
            .parts()
            .iter()
            .map(|(name, b)| format!("{name} {b}"))
            .collect();
        writeln!(
            f,
            "Per call: one packet every {} ms ({} packets/s); overhead {} B per packet ({}).",
            first.packetization_ms,
            Tenths(u64::from(first.packets_per_second_x10())),
            first.overhead_bytes,
            parts.join(" + ")
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:>8} {:>9} {:>12} {:>16} {:>6}",
            "codec", "payload", "overhead", "on the wire", "per call", "calls"
        )?;
        for d in &self.0.rows {
            writeln!(
                f,
                "{:<20} {:>6} B {:>7} B {:>10} B {:>9} kbit/s {:>6}",
                d.codec.to_string(),
                d.payload_bytes,
                d.overhead_bytes,
                d.wire_bytes,
                Kbit(d.per_call_bps).to_string(),
                d.calls
            )?;
        }
        Ok(())
    }
}

/// Bits per second printed as kbit/s with one decimal (94400 → `94.4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kbit(pub u64);

impl fmt::Display for Kbit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Tenths(self.0 / 100).fmt(f)
    }
}

/// Tenths printed with one decimal, `.0` left out (944 → `94.4`, 500 → `50`).
struct Tenths(u64);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 % 10 {
            0 => write!(f, "{}", self.0 / 10),
            d => write!(f, "{}.{d}", self.0 / 10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(upstream_kbit: u32, codec: Codec) -> u32 {
        simultaneous_internet_calls(upstream_kbit, codec, 20, Overhead::default()).unwrap()
    }

    fn with(upstream_kbit: u32, overhead: Overhead, headroom: u32) -> u32 {
        Derivation::new(upstream_kbit, Codec::G711, 20, overhead, headroom)
            .unwrap()
            .calls
    }

    #[test]
    fn reference_256_kbit_gives_2_g711_calls_at_20_ms() {
        assert_eq!(calls(256, Codec::G711), 2);
    }

    #[test]
    fn g711_20ms_figures() {
        let d = Derivation::new(256, Codec::G711, 20, Overhead::default(), 20).unwrap();
        assert_eq!(d.payload_bytes, 160);
        assert_eq!(d.overhead_bytes, 76);
        assert_eq!(d.wire_bytes, 236);
        assert_eq!(d.per_call_bps, 94_400);
        assert_eq!(d.usable_bps, 204_800);
        assert_eq!(d.calls, 2);
    }

    #[test]
    fn other_upstream_figures() {
        for (kbit, g711, opus) in [
            (0, 0, 0),
            (64, 0, 0),
            (128, 1, 1),
            (256, 2, 3),
            (384, 3, 4),
            (512, 4, 6),
            (1024, 8, 13),
            (2048, 17, 26),
            (10_000, 84, 128),
            (40_000, 338, 512),
        ] {
            assert_eq!(calls(kbit, Codec::G711), g711, "G.711 {kbit}");
            assert_eq!(calls(kbit, Codec::G722), g711, "G.722 {kbit}");
            assert_eq!(calls(kbit, Codec::OPUS_DEFAULT), opus, "Opus {kbit}");
        }
    }

    #[test]
    fn reference_point_holds_across_overhead_assumptions() {
        let ip_only = Overhead::RTP_UDP_IPV4;
        assert_eq!(
            with(256, ip_only, 0),
            3,
            "without headroom the bare count gives 3"
        );
        assert_eq!(with(256, ip_only, 20), 2);
        assert_eq!(with(256, ip_only, 6), 3);
        assert_eq!(with(256, ip_only, 7), 2);
        assert_eq!(with(256, Overhead::default(), 0), 2);
        assert_eq!(with(256, Overhead::default(), 26), 2);
        assert_eq!(with(256, Overhead::default(), 27), 1);
        let v6 = Overhead {
            ip: IpVersion::V6,
            ..Overhead::default()
        };
        assert_eq!(with(256, v6, 20), 2);
        let no_srtp = Overhead {
            srtp: false,
            ..Overhead::default()
        };
        assert_eq!(with(256, no_srtp, 20), 2);
        let vpn = Overhead {
            tunnel_bytes: WIREGUARD_V4,
            ..Overhead::default()
        };
        assert_eq!(with(256, vpn, 20), 1);
    }

    #[test]
    fn more_upstream_never_gives_fewer_calls() {
        for codec in [
            Codec::G711,
            Codec::G722,
            Codec::OPUS_DEFAULT,
            Codec::Opus { bitrate_kbit: 6 },
        ] {
            for ptime in [10, 20, 30, 60, 120] {
                let mut last = 0;
                for kbit in (0..=20_000).step_by(7) {
                    let n = simultaneous_internet_calls(kbit, codec, ptime, Overhead::default())
                        .unwrap();
                    assert!(n >= last, "{codec} {ptime} ms {kbit} kbit/s: {n} < {last}");
                    last = n;
                }
            }
        }
    }

    #[test]
    fn more_overhead_or_headroom_never_gives_more_calls() {
        let overheads = [
            Overhead::RTP_UDP_IPV4,
            Overhead {
                link: LinkLayer::Ethernet,
                ..Overhead::RTP_UDP_IPV4
            },
            Overhead::default(),
            Overhead {
                ip: IpVersion::V6,
                ..Overhead::default()
            },
            Overhead {
                tunnel_bytes: WIREGUARD_V4,
                ip: IpVersion::V6,
                ..Overhead::default()
            },
        ];
        for kbit in [128, 256, 1000, 5000] {
            let by_overhead: Vec<u32> = overheads.iter().map(|o| with(kbit, *o, 20)).collect();
            assert!(
                by_overhead.windows(2).all(|w| w[0] >= w[1]),
                "{kbit}: {by_overhead:?}"
            );
            let by_headroom: Vec<u32> = (0..=90)
                .map(|h| with(kbit, Overhead::default(), h))
                .collect();
            assert!(by_headroom.windows(2).all(|w| w[0] >= w[1]), "{kbit}");
        }
    }

    #[test]
    fn longer_packetization_carries_more_calls() {
        let d = Derivation::new(256, Codec::G711, 30, Overhead::default(), 20).unwrap();
        assert_eq!(
            (d.payload_bytes, d.wire_bytes, d.per_call_bps),
            (240, 316, 84_267)
        );
        assert_eq!(d.calls, 2);
        let d = Derivation::new(1024, Codec::G711, 40, Overhead::default(), 20).unwrap();
        assert_eq!(d.per_call_bps, 79_200);
        assert_eq!(d.calls, 10);
    }

    #[test]
    fn huge_upstream_does_not_overflow() {
        let n = calls(u32::MAX, Codec::Opus { bitrate_kbit: 6 });
        assert_eq!(n, 94_394_885);
    }

    #[test]
    fn inputs_out_of_range() {
        let o = Overhead::default();
        assert_eq!(
            simultaneous_internet_calls(256, Codec::G711, 0, o),
            Err(CapacityError::Packetization(0))
        );
        assert_eq!(
            simultaneous_internet_calls(256, Codec::G711, 121, o),
            Err(CapacityError::Packetization(121))
        );
        assert_eq!(
            simultaneous_internet_calls(256, Codec::Opus { bitrate_kbit: 0 }, 20, o),
            Err(CapacityError::OpusBitrate(0))
        );
        assert_eq!(
            Derivation::new(256, Codec::G711, 20, o, 91),
            Err(CapacityError::Headroom(91))
        );
    }

    #[test]
    fn derivation_display_explains_each_step() {
        let d = Derivation::new(256, Codec::G711, 20, Overhead::default(), 20).unwrap();
        assert_eq!(
            d.to_string(),
            "codec               G.711 (64 kbit/s)\n\
             packetization       20 ms = 50 packets/s\n\
             payload             160 B per packet\n\
             overhead            76 B per packet (RTP 12 + SRTP tag 10 + UDP 8 + IPv4 20 + PPPoE 8 + Ethernet 18)\n\
             on the wire         236 B = 1888 bit per packet = 94.4 kbit/s per call\n\
             upstream            256 kbit/s, 20 % kept free = 204.8 kbit/s for media\n\
             simultaneous calls  2 (204.8 / 94.4, rounded down)"
        );
        let d = Derivation::new(256, Codec::G711, 30, Overhead::RTP_UDP_IPV4, 20).unwrap();
        assert!(d.to_string().contains("30 ms = 33.3 packets/s"), "{d}");
    }

    #[test]
    fn standard_report_for_setup_upstream_256() {
        let r = UpstreamReport::standard(256).unwrap();
        assert_eq!(r.limit, 2);
        assert_eq!(
            r.rows.iter().map(|d| d.calls).collect::<Vec<_>>(),
            vec![2, 2, 3]
        );
        let text = r.to_string();
        let expected = [
            "Upstream 256 kbit/s, 20 % kept free for signalling and other traffic: 204.8 kbit/s for media.",
            "Per call: one packet every 20 ms (50 packets/s); overhead 76 B per packet (RTP 12 + SRTP tag 10 + UDP 8 + IPv4 20 + PPPoE 8 + Ethernet 18).",
            "G.711 (64 kbit/s)       160 B      76 B        236 B      94.4 kbit/s      2",
            "Opus (32 kbit/s)         80 B      76 B        156 B      62.4 kbit/s      3",
            "Simultaneous Internet calls: 2",
        ];
        for line in expected {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn table_is_the_report_without_the_limit_line() {
        let r = UpstreamReport::standard(256).unwrap();
        let table = r.table().to_string();
        assert!(table.contains("Opus (32 kbit/s)"), "{table}");
        assert!(!table.contains("Simultaneous Internet calls"), "{table}");
        assert!(r.to_string().starts_with(&table));
        assert_eq!(Kbit(94_400).to_string(), "94.4");
    }

    #[test]
    fn report_with_no_codec() {
        let r = UpstreamReport::new(256, &[], 20, Overhead::default(), 20).unwrap();
        assert_eq!(r.limit, 0);
        assert_eq!(r.to_string(), "no codec");
    }

    #[test]
    fn overhead_parts() {
        assert_eq!(Overhead::RTP_UDP_IPV4.bytes_per_packet(), 40);
        assert_eq!(Overhead::default().bytes_per_packet(), 76);
        let o = Overhead {
            link: LinkLayer::Ethernet,
            tunnel_bytes: WIREGUARD_V4,
            ..Overhead::default()
        };
        let names: Vec<&str> = o.parts().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["RTP", "SRTP tag", "UDP", "IPv4", "VPN", "Ethernet"]);
        assert_eq!(o.bytes_per_packet(), 12 + 10 + 8 + 20 + 60 + 18);
    }
}

//! Codecs and RTP payload types: the RFC 3551 static table and the names used for dynamic types.

use std::borrow::Cow;
use std::fmt;

/// An RTP payload type number, 0..=127 (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadType(u8);

impl PayloadType {
    /// The payload type `n`; `None` above 127.
    pub const fn new(n: u8) -> Option<PayloadType> {
        if n <= 127 {
            Some(PayloadType(n))
        } else {
            None
        }
    }

    /// The number.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Whether RFC 3551 Table 4/5 assigns this number statically (it then means its codec even
    /// without an `a=rtpmap`).
    pub fn is_static(self) -> bool {
        Codec::for_static(self).is_some()
    }

    /// Parses an `m=` format token or an `a=rtpmap` number.
    pub(crate) fn parse(token: &str) -> Option<PayloadType> {
        if token.is_empty() || token.len() > 3 || !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        PayloadType::new(token.parse().ok()?)
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A codec as SDP names it: encoding name, RTP clock rate and channel count
/// (`a=rtpmap:<pt> <name>/<clock>[/<channels>]`, RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The encoding name; compared case-insensitively (RFC 4855 §3).
    pub name: Cow<'static, str>,
    /// The RTP timestamp clock rate in Hz (not always the sampling rate: see [`Codec::G722`]).
    pub clock_rate: u32,
    /// Audio channels; 1 when the rtpmap leaves it out.
    pub channels: u8,
}

impl Codec {
    /// G.711 µ-law, static payload type 0.
    pub const PCMU: Codec = Codec::named("PCMU", 8000, 1);
    /// G.711 A-law, static payload type 8.
    pub const PCMA: Codec = Codec::named("PCMA", 8000, 1);
    /// G.722, static payload type 9. Its RTP clock is 8000 Hz although it samples at 16 kHz, an
    /// error in RFC 1890 kept for compatibility (RFC 3551 §4.5.2); see [`Codec::sample_rate`].
    pub const G722: Codec = Codec::named("G722", 8000, 1);
    /// Opus, always `opus/48000/2` in SDP whatever it actually carries (RFC 7587 §7).
    pub const OPUS: Codec = Codec::named("opus", 48000, 2);
    /// DTMF and other named events at the narrowband clock (RFC 4733 §7).
    pub const TELEPHONE_EVENT: Codec = Codec::named("telephone-event", 8000, 1);
    /// Comfort noise, static payload type 13 (RFC 3389).
    pub const CN: Codec = Codec::named("CN", 8000, 1);

    /// A codec with a `'static` name (usable in constants).
    pub const fn named(name: &'static str, clock_rate: u32, channels: u8) -> Codec {
        Codec {
            name: Cow::Borrowed(name),
            clock_rate,
            channels,
        }
    }

    /// Whether both name the same codec: same name ignoring case, clock rate and channels.
    pub fn matches(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    /// The static payload type RFC 3551 assigns to this codec, if any.
    pub fn static_payload_type(&self) -> Option<PayloadType> {
        STATIC
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.matches(self)))
            .and_then(|n| PayloadType::new(u8::try_from(n).ok()?))
    }

    /// The codec a static payload type stands for (RFC 3551 Tables 4 and 5).
    pub fn for_static(pt: PayloadType) -> Option<Codec> {
        STATIC.get(usize::from(pt.number()))?.clone()
    }

    /// Whether this is RFC 4733 telephone-event (at any clock rate).
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Whether the codec only accompanies a voice codec (telephone-event, comfort noise): a call
    /// needs at least one other codec in common.
    pub fn is_auxiliary(&self) -> bool {
        self.is_telephone_event() || self.name.eq_ignore_ascii_case("CN")
    }

    /// The audio sampling rate: the clock rate, except 16000 for G.722 (RFC 3551 §4.5.2).
    pub fn sample_rate(&self) -> u32 {
        if self.matches(&Codec::G722) {
            16000
        } else {
            self.clock_rate
        }
    }

    /// Parses `<name>/<clock>[/<channels>]`.
    pub(crate) fn parse(text: &str) -> Option<Codec> {
        let mut parts = text.split('/');
        let name = parts.next().filter(|n| !n.is_empty())?;
        let clock_rate = parts.next()?.parse().ok()?;
        let channels = match parts.next() {
            Some(ch) => ch.parse().ok()?,
            None => 1,
        };
        parts.next().is_none().then(|| Codec {
            name: Cow::Owned(name.to_owned()),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for Codec {
    /// `name/clock`, plus `/channels` when not 1: the rtpmap encoding form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

/// RFC 3551 Tables 4 (audio) and 5 (video), indexed by payload type; channels 1 for video.
static STATIC: [Option<Codec>; 35] = [
    Some(Codec::PCMU),                    // 0
    None,                                 // 1 reserved
    None,                                 // 2 reserved (was G721)
    Some(Codec::named("GSM", 8000, 1)),   // 3
    Some(Codec::named("G723", 8000, 1)),  // 4
    Some(Codec::named("DVI4", 8000, 1)),  // 5
    Some(Codec::named("DVI4", 16000, 1)), // 6
    Some(Codec::named("LPC", 8000, 1)),   // 7
    Some(Codec::PCMA),                    // 8
    Some(Codec::G722),                    // 9
    Some(Codec::named("L16", 44100, 2)),  // 10
    Some(Codec::named("L16", 44100, 1)),  // 11
    Some(Codec::named("QCELP", 8000, 1)), // 12
    Some(Codec::CN),                      // 13
    Some(Codec::named("MPA", 90000, 1)),  // 14
    Some(Codec::named("G728", 8000, 1)),  // 15
    Some(Codec::named("DVI4", 11025, 1)), // 16
    Some(Codec::named("DVI4", 22050, 1)), // 17
    Some(Codec::named("G729", 8000, 1)),  // 18
    None,                                 // 19 reserved
    None,                                 // 20 unassigned
    None,                                 // 21
    None,                                 // 22
    None,                                 // 23
    None,                                 // 24
    Some(Codec::named("CelB", 90000, 1)), // 25
    Some(Codec::named("JPEG", 90000, 1)), // 26
    None,                                 // 27
    Some(Codec::named("nv", 90000, 1)),   // 28
    None,                                 // 29
    None,                                 // 30
    Some(Codec::named("H261", 90000, 1)), // 31
    Some(Codec::named("MPV", 90000, 1)),  // 32
    Some(Codec::named("MP2T", 90000, 1)), // 33
    Some(Codec::named("H263", 90000, 1)), // 34
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(n: u8) -> PayloadType {
        PayloadType::new(n).unwrap()
    }

    #[test]
    fn rfc3551_6_static_numbers() {
        assert_eq!(Codec::PCMU.static_payload_type(), Some(pt(0)));
        assert_eq!(Codec::PCMA.static_payload_type(), Some(pt(8)));
        assert_eq!(Codec::G722.static_payload_type(), Some(pt(9)));
        assert_eq!(Codec::CN.static_payload_type(), Some(pt(13)));
        assert_eq!(Codec::OPUS.static_payload_type(), None);
        assert_eq!(Codec::for_static(pt(8)), Some(Codec::PCMA));
        assert_eq!(Codec::for_static(pt(2)), None);
        assert_eq!(Codec::for_static(pt(96)), None);
        assert!(pt(18).is_static() && !pt(101).is_static());
    }

    #[test]
    fn rfc3551_4_5_2_g722_clock_quirk() {
        assert_eq!(Codec::G722.clock_rate, 8000);
        assert_eq!(Codec::G722.sample_rate(), 16000);
        assert_eq!(Codec::PCMU.sample_rate(), 8000);
        assert!(!Codec::G722.matches(&Codec::named("G722", 16000, 1)));
    }

    #[test]
    fn rtpmap_encoding_forms() {
        let opus = Codec::parse("opus/48000/2").unwrap();
        assert!(opus.matches(&Codec::OPUS));
        assert_eq!(opus.to_string(), "opus/48000/2");
        let te = Codec::parse("telephone-event/8000").unwrap();
        assert!(te.matches(&Codec::TELEPHONE_EVENT) && te.is_auxiliary());
        assert!(Codec::parse("PCMU/8000")
            .unwrap()
            .matches(&Codec::named("pcmu", 8000, 1)));
        assert_eq!(
            Codec::parse("LPC"),
            None,
            "RFC 4475 sdp01 has `a=rtpmap:31 LPC`"
        );
        assert_eq!(Codec::parse("x/8000/1/2"), None);
        assert_eq!(Codec::parse("/8000"), None);
    }

    #[test]
    fn payload_type_range() {
        assert_eq!(PayloadType::new(128), None);
        assert_eq!(PayloadType::parse("127"), Some(pt(127)));
        assert_eq!(PayloadType::parse("+1"), None);
        assert_eq!(PayloadType::parse("0101"), None);
    }
}

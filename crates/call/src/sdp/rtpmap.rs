//! `a=rtpmap:<pt> <codec>` (RFC 8866 §6.6) and `a=fmtp:<pt> <params>` (RFC 8866 §6.15).

use super::codec::{Codec, PayloadType};

/// A typed `a=rtpmap` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type being mapped.
    pub payload_type: PayloadType,
    /// What it stands for.
    pub codec: Codec,
}

impl RtpMap {
    /// Parses `96 opus/48000/2`; `None` when malformed (such a line is kept but ignored).
    pub(crate) fn parse(value: &str) -> Option<RtpMap> {
        let (pt, codec) = value.split_once(' ')?;
        Some(RtpMap {
            payload_type: PayloadType::parse(pt)?,
            codec: Codec::parse(codec.trim())?,
        })
    }
}

/// A borrowed `a=fmtp` value: format parameters, passed through unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// The payload type the parameters are for.
    pub payload_type: PayloadType,
    /// The parameters as written (`0-16`, `minptime=10;useinbandfec=1`, ...).
    pub params: &'a str,
}

impl<'a> Fmtp<'a> {
    /// Parses `101 0-16`; `None` when malformed.
    pub(crate) fn parse(value: &'a str) -> Option<Fmtp<'a>> {
        let (pt, params) = value.split_once(' ')?;
        Some(Fmtp {
            payload_type: PayloadType::parse(pt)?,
            params,
        })
    }
}

/// The payload type an attribute that starts with one refers to (`rtpmap`, `fmtp`, `rtcp-fb`).
pub(crate) fn leading_payload_type(value: &str) -> Option<PayloadType> {
    PayloadType::parse(value.split(' ').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8866_6_6_rtpmap() {
        let m = RtpMap::parse("99 h263-1998/90000").unwrap();
        assert_eq!(m.payload_type.number(), 99);
        assert_eq!(m.codec, Codec::parse("h263-1998/90000").unwrap());
        assert_eq!(RtpMap::parse("31 LPC"), None);
        assert_eq!(RtpMap::parse("300 PCMU/8000"), None);
    }

    #[test]
    fn rfc8866_6_15_fmtp() {
        let f = Fmtp::parse("101 0-16").unwrap();
        assert_eq!((f.payload_type.number(), f.params), (101, "0-16"));
        assert_eq!(leading_payload_type("96 nack pli"), PayloadType::new(96));
        assert_eq!(leading_payload_type("* nack"), None);
    }
}

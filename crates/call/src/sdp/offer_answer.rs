//! The codec part of offer/answer (RFC 3264 §6.1): which offered payload types an answer keeps.

use std::fmt;

use sip::StatusCode;

use super::codec::{Codec, PayloadType};
use super::media::MediaSection;

/// The payload types of `offer` that an answer supporting `supported` keeps, in the offerer's
/// order and with the offerer's numbers (RFC 3264 §6.1).
///
/// A static payload type (RFC 3551: 0 PCMU, 8 PCMA, 9 G.722, ...) matches by number; any other
/// matches its `a=rtpmap` by encoding name (ignoring case), clock rate and channels, so `opus`
/// offered as 111 matches [`Codec::OPUS`] and G.722 must say 8000 Hz (RFC 3551 §4.5.2).
/// Telephone-event and comfort noise are kept when both sides have them, but only next to a
/// voice codec: an offer whose only common format is telephone-event has no common codec.
pub fn answer_codecs(
    offer: &MediaSection,
    supported: &[Codec],
) -> Result<Vec<PayloadType>, NoCommonCodec> {
    let mut kept = Vec::new();
    let mut voice = false;
    for pt in offer.payload_types() {
        let found = if pt.is_static() {
            supported
                .iter()
                .find(|c| c.static_payload_type() == Some(pt))
        } else {
            let Some(offered) = offer.rtpmaps().find(|m| m.payload_type == pt) else {
                continue; // a dynamic type without rtpmap means nothing
            };
            supported.iter().find(|c| c.matches(&offered.codec))
        };
        let Some(codec) = found else { continue };
        if !kept.contains(&pt) {
            voice |= !codec.is_auxiliary();
            kept.push(pt);
        }
    }
    if !voice {
        let offered = offer.codecs().into_iter().filter_map(|(_, c)| c).collect();
        return Err(NoCommonCodec { offered });
    }
    Ok(kept)
}

/// The offer and homeline share no voice codec; the request is refused with 488.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common codec; offered: {}", DisplayList(.offered))]
pub struct NoCommonCodec {
    /// The codecs the offer named (for the log line).
    pub offered: Vec<Codec>,
}

impl NoCommonCodec {
    /// Warning code 305 "Incompatible media format" (RFC 3261 §20.43).
    pub const WARN_CODE: u16 = 305;
    /// The Warning text of code 305.
    pub const WARN_TEXT: &'static str = "Incompatible media format";

    /// 488 Not Acceptable Here (RFC 3261 §21.4.26; RFC 3264 §6).
    pub fn status(&self) -> StatusCode {
        StatusCode::NOT_ACCEPTABLE_HERE
    }

    /// The Warning header value, `305 <agent> "Incompatible media format"`, where `agent` is
    /// homeline's host name as the peer knows it (RFC 3261 §20.43).
    pub fn warning(&self, agent: &str) -> String {
        format!("{} {agent} \"{}\"", Self::WARN_CODE, Self::WARN_TEXT)
    }
}

struct DisplayList<'a>(&'a [Codec]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing known");
        }
        for (i, codec) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{codec}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Sdp;

    const HOMELINE: &[Codec] = &[
        Codec::OPUS,
        Codec::G722,
        Codec::PCMA,
        Codec::PCMU,
        Codec::TELEPHONE_EVENT,
    ];

    fn offer(m_and_attributes: &str) -> Sdp {
        let body = format!(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\n\
             {m_and_attributes}"
        );
        Sdp::parse(body.as_bytes()).unwrap()
    }

    fn answer(sdp: &Sdp, supported: &[Codec]) -> Result<Vec<u8>, NoCommonCodec> {
        let pts = answer_codecs(sdp.audio().unwrap(), supported)?;
        Ok(pts.into_iter().map(PayloadType::number).collect())
    }

    #[test]
    fn rfc3264_6_1_pcmu_pcma_offer_against_pcma_only() {
        let sdp = offer("m=audio 4000 RTP/AVP 0 8\r\n");
        assert_eq!(answer(&sdp, &[Codec::PCMA]).unwrap(), [8]);
    }

    #[test]
    fn rfc3264_6_1_offerer_order_and_numbers_are_kept() {
        let sdp = offer("m=audio 4000 RTP/AVP 8 0 9\r\n");
        assert_eq!(answer(&sdp, HOMELINE).unwrap(), [8, 0, 9]);
    }

    #[test]
    fn rfc7587_7_opus_on_any_dynamic_number() {
        let sdp = offer(
            "m=audio 4000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 minptime=10;useinbandfec=1\r\n",
        );
        assert_eq!(answer(&sdp, HOMELINE).unwrap(), [111, 0]);
        let other_number = offer("m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 OPUS/48000/2\r\n");
        assert_eq!(answer(&other_number, HOMELINE).unwrap(), [96]);
        let mono = offer("m=audio 4000 RTP/AVP 96 8\r\na=rtpmap:96 opus/48000\r\n");
        assert_eq!(
            answer(&mono, HOMELINE).unwrap(),
            [8],
            "opus is always /48000/2 in SDP"
        );
    }

    #[test]
    fn rfc3551_4_5_2_g722_is_named_with_an_8000_clock() {
        let bare = offer("m=audio 4000 RTP/AVP 9\r\n");
        assert_eq!(
            answer(&bare, &[Codec::G722]).unwrap(),
            [9],
            "static: by number"
        );
        let mapped = offer("m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n");
        assert_eq!(answer(&mapped, &[Codec::G722]).unwrap(), [9]);
        let wrong_clock = offer("m=audio 4000 RTP/AVP 98 0\r\na=rtpmap:98 G722/16000\r\n");
        assert_eq!(answer(&wrong_clock, HOMELINE).unwrap(), [0]);
    }

    #[test]
    fn rfc4733_7_telephone_event_kept_when_both_have_it() {
        let sdp = offer(
            "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n",
        );
        assert_eq!(answer(&sdp, HOMELINE).unwrap(), [0, 101]);
        assert_eq!(
            answer(&sdp, &[Codec::PCMU]).unwrap(),
            [0],
            "we lack it: dropped"
        );
        let wideband = offer(
            "m=audio 4000 RTP/AVP 111 110\r\na=rtpmap:111 opus/48000/2\r\n\
             a=rtpmap:110 telephone-event/48000\r\n",
        );
        assert_eq!(
            answer(&wideband, HOMELINE).unwrap(),
            [111],
            "only the 8000 Hz variant"
        );
    }

    #[test]
    fn rfc3264_6_no_common_codec_is_488() {
        let sdp = offer(
            "m=audio 4000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n",
        );
        let err = answer(&sdp, HOMELINE).unwrap_err();
        assert_eq!(err.status(), StatusCode::NOT_ACCEPTABLE_HERE);
        assert_eq!(
            err.warning("pbx.example.com"),
            "305 pbx.example.com \"Incompatible media format\""
        );
        assert_eq!(
            err.to_string(),
            "no common codec; offered: G729/8000, telephone-event/8000"
        );
    }

    #[test]
    fn dynamic_type_without_rtpmap_matches_nothing() {
        let sdp = offer("m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:97 LPC\r\n");
        let err = answer(&sdp, HOMELINE).unwrap_err();
        assert!(err.offered.is_empty());
        assert_eq!(err.to_string(), "no common codec; offered: nothing known");
    }

    #[test]
    fn retain_payload_types_drops_the_other_formats_lines() {
        let mut sdp = offer(
            "m=audio 4000 RTP/AVP 18 0 101\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
             a=ptime:20\r\n",
        );
        let keep = answer_codecs(sdp.audio().unwrap(), HOMELINE).unwrap();
        sdp.media_mut()[0].retain_payload_types(&keep);
        let text = String::from_utf8(sdp.to_bytes()).unwrap();
        assert!(text.ends_with(
            "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n"
        ));
    }
}

//! Telling STUN apart from another protocol on a shared port (RFC 7983 §7, the rule of RFC 5764
//! §5.1.2): a STUN message starts with a byte in 0–3 (the top two bits of every STUN message
//! are zero, RFC 8489 §5); SIP starts with a letter (a method or "SIP/2.0") or, for a keepalive,
//! CR LF (RFC 5626 §3.5.1); RTP and RTCP start with 128–191.
//!
//! Used on homeline's SIP listeners, which answer Binding requests (RFC 5626 §4.4.1 STUN
//! keepalives) and send Binding requests of their own to learn their public mapping.

use stun_types::message::MAGIC_COOKIE;

/// Length of the STUN header (RFC 8489 §5).
const HEADER: usize = 20;

/// What a datagram on a port shared with another protocol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demux {
    /// Not STUN: hand it to the port's other protocol.
    Other,
    /// A STUN request (an RFC 3489 one, without the magic cookie, included): answer it.
    Request,
    /// A STUN indication (a Binding indication is a keepalive, RFC 8489 §6.3.2): nothing to do.
    Indication,
    /// A STUN success or error response: give it to the client waiting for it.
    Response,
    /// Starts like STUN (first byte 0–3) but is not a well-formed STUN header: drop it, it is
    /// no message of the other protocol either.
    Malformed,
}

/// Classifies one datagram. Only the header is read (no attribute parsing): this runs for every
/// datagram on a SIP listener.
pub fn demux(bytes: &[u8]) -> Demux {
    let Some(&first) = bytes.first() else {
        return Demux::Other;
    };
    if first > 3 {
        return Demux::Other;
    }
    if bytes.len() < HEADER
        || usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) + HEADER != bytes.len()
    {
        return Demux::Malformed;
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    // The class is split over bits 4 (C0) and 8 (C1) of the message type (RFC 8489 §5).
    let class = ((kind >> 7) & 0b10) | ((kind >> 4) & 0b01);
    let cookie = has_magic_cookie(bytes);
    match (class, cookie) {
        // RFC 3489 clients send requests without the cookie; the binding server answers them.
        (0b00, _) => Demux::Request,
        (0b01, true) => Demux::Indication,
        (0b10 | 0b11, true) => Demux::Response,
        _ => Demux::Malformed,
    }
}

/// True when `bytes` carries RFC 5389's magic cookie where a STUN header has it (bytes 4–8):
/// an RFC 3489 message does not.
pub fn has_magic_cookie(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{binding_request, new_transaction_id};

    #[test]
    fn rfc7983_7_sip_rtp_and_crlf_keepalives_are_not_stun() {
        for other in [
            &b"REGISTER sip:example.org SIP/2.0\r\n\r\n"[..],
            b"SIP/2.0 200 OK\r\n\r\n",
            b"\r\n\r\n",
            b"",
            &[0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(demux(other), Demux::Other, "{other:?}");
        }
    }

    #[test]
    fn rfc8489_5_request_response_and_indication_classes() {
        let tid = new_transaction_id(&mut rand::rngs::mock::StepRng::new(7, 1));
        let req = binding_request(tid, None);
        assert_eq!(demux(&req), Demux::Request);
        let with_type = |t: u16| {
            let mut m = req.clone();
            m[..2].copy_from_slice(&t.to_be_bytes());
            m
        };
        assert_eq!(demux(&with_type(0x0101)), Demux::Response, "success");
        assert_eq!(demux(&with_type(0x0111)), Demux::Response, "error");
        assert_eq!(demux(&with_type(0x0011)), Demux::Indication);
        // RFC 3489: no magic cookie, still a request the server answers.
        let mut old = req.clone();
        old[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(demux(&old), Demux::Request);
        // A response without the cookie is nobody's: no client of ours sent it.
        let mut stray = with_type(0x0101);
        stray[4..8].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(demux(&stray), Demux::Malformed);
    }

    #[test]
    fn rfc8489_6_2_1_a_length_disagreeing_with_the_datagram_is_malformed() {
        let tid = new_transaction_id(&mut rand::rngs::mock::StepRng::new(7, 1));
        let mut req = binding_request(tid, None);
        req.push(0);
        assert_eq!(demux(&req), Demux::Malformed);
        assert_eq!(demux(&[0, 1, 0]), Demux::Malformed);
    }
}

//! The few header fields SRTP needs.

use crate::error::SrtpError;

/// The fields of an RTP header that SRTP reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    pub(crate) seq: u16,
    pub(crate) ssrc: u32,
    /// Octets of header: fixed part, CSRCs and extension (RFC 3550 §5.1, §5.3.1).
    pub(crate) len: usize,
}

/// Reads the header of the RTP packet `pkt` (which may include the SRTP trailer, `body_end`
/// octets being the packet proper).
pub(crate) fn rtp_header(pkt: &[u8], body_end: usize) -> Result<RtpHeader, SrtpError> {
    let pkt = pkt.get(..body_end).ok_or(SrtpError::TooShort)?;
    if pkt.len() < 12 {
        return Err(SrtpError::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let words = pkt.get(len + 2..len + 4).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if len > pkt.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(RtpHeader {
        seq: u16::from_be_bytes([pkt[2], pkt[3]]),
        ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
        len,
    })
}

/// The sender SSRC of a compound RTCP packet (RFC 3550 §6.4).
pub(crate) fn rtcp_ssrc(pkt: &[u8]) -> Result<u32, SrtpError> {
    if pkt.len() < 8 {
        return Err(SrtpError::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]))
}

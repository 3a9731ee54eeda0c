//! Why a packet could not be protected or unprotected.

/// Why a packet was not protected or unprotected; the buffer content is unspecified after an
/// error on unprotect (drop the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than a header plus the trailer.
    #[error("packet too short")]
    TooShort,
    /// Not RTP/RTCP version 2, or a header that runs past the packet.
    #[error("malformed header")]
    Malformed,
    /// No room after the packet for the trailer.
    #[error("buffer has no room for the SRTP trailer")]
    BufferTooSmall,
    /// The authentication tag does not match (wrong key, tampered, or not SRTP at all).
    #[error("authentication failed")]
    AuthFailed,
    /// The index was seen already, or is older than the replay window (RFC 3711 §3.3.2).
    #[error("replayed packet")]
    Replayed,
    /// An SRTCP packet without the E flag: unencrypted SRTCP was never negotiated.
    #[error("unencrypted SRTCP was not negotiated")]
    Unencrypted,
    /// More SSRCs than a context tracks.
    #[error("too many SSRCs")]
    TooManyStreams,
    /// The SRTCP index space is used up (2^31 packets): the key must be replaced.
    #[error("SRTCP index exhausted")]
    IndexExhausted,
    /// A key of the wrong length for the suite.
    #[error("key or salt of the wrong length for the suite")]
    KeyLength,
    /// The crypto library refused an operation (should not happen with checked lengths).
    #[error("cipher failure")]
    Cipher,
}

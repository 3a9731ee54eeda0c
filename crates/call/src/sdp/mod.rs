//! Session descriptions (RFC 8866), offer/answer (RFC 3264) and anchoring in the RTP relay.
//!
//! [`Sdp::parse`] keeps every line as received, with its own line ending (CRLF, or the bare LF
//! RFC 8866 §5 tells parsers to accept), unknown types and attributes included, in order;
//! [`Sdp::to_bytes`] gives the same bytes back. Typed views (origin, connection, media lines,
//! rtpmap, fmtp, direction, rtcp, rtcp-mux, ptime, crypto) are read from the lines on demand;
//! a change rewrites only the lines it concerns, so a relayed SDP differs from the received one
//! exactly where homeline changed it. `o=`, `c=` and `m=` lines are checked when parsing (they
//! are what anchoring rewrites); a malformed attribute is kept and ignored by its typed view.
//!
//! - Offer/answer: [`answer_codecs`] (the codec intersection, [`NoCommonCodec`] → 488),
//!   [`Direction::answer`], [`Sdp::is_hold`].
//! - Anchoring a leg in the relay: [`media_endpoint`] (where the device said it receives), then
//!   [`anchor`] (the SDP the other side gets), and [`contains_private_address`] as the last check
//!   before a body leaves on an external leg.
//!
//! Bodies are bytes, not `str`: RFC 8866 §5 lets `a=charset` change the encoding of text fields,
//! and such a body must still pass through unchanged.

mod anchor;
mod attribute;
mod codec;
mod connection;
mod crypto;
mod direction;
mod error;
mod ice;
mod line;
mod media;
mod offer_answer;
mod origin;
mod private;
mod rtcp;
mod rtpmap;
#[cfg(test)]
mod tests;

pub use anchor::{anchor, media_endpoint, MediaEndpoint};
pub use attribute::Attribute;
pub use codec::{Codec, PayloadType};
pub use connection::Connection;
pub use crypto::{choose_crypto, crypto_value, Crypto, CryptoRefusal};
pub use direction::Direction;
pub use error::SdpError;
pub use ice::{is_ice_attribute, ICE_ATTRIBUTES};
pub use media::{MediaLine, MediaSection};
pub use offer_answer::{answer_codecs, NoCommonCodec};
pub use origin::Origin;
pub use private::{contains_private_address, is_private};
pub use rtcp::Rtcp;
pub use rtpmap::{Fmtp, RtpMap};

use line::{split_lines, Line};

/// A parsed session description that prints back to the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Parsed form of `session[origin_at]`; changed only through [`Sdp::set_origin`].
    origin: Origin,
    origin_at: usize,
    /// The session-level lines, `v=` first.
    session: Vec<Line>,
    media: Vec<MediaSection>,
}

impl Sdp {
    /// Parses a body: `v=0` first, an `o=` line before the first `m=`, well-formed `o=`, `c=`
    /// and `m=` lines; every other line is kept as it is (an empty line too).
    pub fn parse(bytes: &[u8]) -> Result<Sdp, SdpError> {
        let lines = split_lines(bytes);
        match lines.first() {
            None => return Err(SdpError::Empty),
            Some(first) if first.text() != b"v=0" => return Err(SdpError::NoVersion),
            Some(_) => {}
        }
        let mut origin = None;
        let mut session = Vec::new();
        let mut media: Vec<MediaSection> = Vec::new();
        for (n, line) in lines.into_iter().enumerate() {
            let number = n + 1;
            if !line.is_well_formed() {
                return Err(SdpError::MalformedLine { line: number });
            }
            match line.kind() {
                Some(b'm') => {
                    let m = line.value_str().and_then(MediaLine::parse);
                    let m = m.ok_or(SdpError::BadMedia { line: number })?;
                    media.push(MediaSection::new(m, line));
                    continue;
                }
                Some(b'c') if line.value_str().and_then(Connection::parse).is_none() => {
                    return Err(SdpError::BadConnection { line: number });
                }
                Some(b'o') if media.is_empty() && origin.is_none() => {
                    let o = line.value_str().and_then(Origin::parse);
                    // Before the first m= line, `n` is also the index in `session`.
                    origin = Some((o.ok_or(SdpError::BadOrigin { line: number })?, n));
                }
                _ => {}
            }
            match media.last_mut() {
                Some(section) => section.push(line),
                None => session.push(line),
            }
        }
        let (origin, origin_at) = origin.ok_or(SdpError::NoOrigin)?;
        Ok(Sdp {
            origin,
            origin_at,
            session,
            media,
        })
    }

    /// The body, byte for byte as parsed apart from the changes made since.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_to(&mut out);
        out
    }

    /// Appends the body to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for line in &self.session {
            line.write(out);
        }
        for section in &self.media {
            for line in section.lines() {
                line.write(out);
            }
        }
    }

    /// The `o=` line.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Replaces the `o=` line (its line ending is kept).
    pub fn set_origin(&mut self, origin: Origin) {
        if let Some(line) = self.session.get_mut(self.origin_at) {
            line.set_value(&origin.to_string());
        }
        self.origin = origin;
    }

    /// Increments the `o=` session version: RFC 3264 §8 requires it for every changed SDP.
    pub fn bump_version(&mut self) {
        let mut origin = self.origin.clone();
        origin.bump_version();
        self.set_origin(origin);
    }

    /// The session-level `c=` line, if any.
    pub fn connection(&self) -> Option<Connection> {
        let line = self.session.iter().find(|l| l.kind() == Some(b'c'))?;
        Connection::parse(line.value_str()?)
    }

    /// The session-level attributes, in order (lines that are not UTF-8 are skipped).
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.session.iter().filter_map(Line::attribute)
    }

    /// The value of the first session-level attribute named `name`: `Some(None)` for a
    /// property attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes().find(|a| a.name == name).map(|a| a.value)
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .find_map(|a| Direction::from_attribute(a.name))
    }

    /// The media descriptions, in order.
    pub fn media(&self) -> &[MediaSection] {
        &self.media
    }

    /// The media descriptions, to change them (bump the version afterwards).
    pub fn media_mut(&mut self) -> &mut [MediaSection] {
        &mut self.media
    }

    /// The first enabled `m=audio` stream: the one a call is about.
    pub fn audio(&self) -> Option<&MediaSection> {
        self.media
            .iter()
            .find(|m| m.media() == "audio" && m.is_active())
    }

    /// Where `section` receives: its own `c=`, else the session's (RFC 8866 §5.7).
    pub fn connection_of(&self, section: &MediaSection) -> Option<Connection> {
        section.connection().or_else(|| self.connection())
    }

    /// The direction of `section`: its own attribute, else the session's, else `sendrecv`
    /// (RFC 8866 §6.7).
    pub fn direction_of(&self, section: &MediaSection) -> Direction {
        section
            .direction()
            .or_else(|| self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// Whether `section` puts its peer on hold: `sendonly` or `inactive` (RFC 3264 §8.4), or
    /// the RFC 2543 style connection address `0.0.0.0`.
    pub fn is_held(&self, section: &MediaSection) -> bool {
        matches!(
            self.direction_of(section),
            Direction::SendOnly | Direction::Inactive
        ) || self
            .connection_of(section)
            .is_some_and(|c| c.is_unspecified())
    }

    /// Whether this (re-)offer puts the call on hold: every enabled stream is held (see
    /// [`Sdp::is_held`]) and there is at least one. An offer that is not a hold resumes.
    pub fn is_hold(&self) -> bool {
        let mut active = self.media.iter().filter(|m| m.is_active()).peekable();
        active.peek().is_some() && active.all(|m| self.is_held(m))
    }

    pub(crate) fn audio_index(&self) -> Option<usize> {
        self.media
            .iter()
            .position(|m| m.media() == "audio" && m.is_active())
    }

    pub(crate) fn session_lines(&self) -> &[Line] {
        &self.session
    }

    pub(crate) fn session_lines_mut(&mut self) -> &mut [Line] {
        &mut self.session
    }

    /// Removes session-level lines (never `v=` nor `o=`) for which `remove` says so.
    pub(crate) fn remove_session_lines(&mut self, mut remove: impl FnMut(&Line) -> bool) {
        let keep_at = self.origin_at;
        let mut n = 0;
        let mut removed_before_origin = 0;
        self.session.retain(|l| {
            let i = n;
            n += 1;
            let drop = i != 0 && i != keep_at && remove(l);
            if drop && i < keep_at {
                removed_before_origin += 1;
            }
            !drop
        });
        self.origin_at -= removed_before_origin;
    }
}

//! Media descriptions: an `m=` line (RFC 8866 §5.14) and the lines that follow it.

use std::fmt;

use super::codec::{Codec, PayloadType};
use super::connection::Connection;
use super::crypto::Crypto;
use super::direction::Direction;
use super::line::Line;
use super::rtcp::Rtcp;
use super::rtpmap::{leading_payload_type, Fmtp, RtpMap};
use super::Attribute;

/// The typed `m=<media> <port>[/<count>] <proto> <fmt> ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// The transport port; 0 means the stream is disabled or rejected (RFC 3264 §5.1, §6).
    pub port: u16,
    /// The `/<count>` of hierarchically encoded streams, if written.
    pub port_count: Option<u16>,
    /// The transport protocol: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: String,
    /// The media formats; payload type numbers for RTP profiles.
    pub formats: Vec<String>,
}

impl MediaLine {
    /// Parses an `m=` value; `None` when malformed.
    pub(crate) fn parse(value: &str) -> Option<MediaLine> {
        let mut fields = value.split_ascii_whitespace();
        let media = fields.next()?.to_owned();
        let port_field = fields.next()?;
        let (port, port_count) = match port_field.split_once('/') {
            Some((port, count)) => (port, Some(count.parse().ok()?)),
            None => (port_field, None),
        };
        Some(MediaLine {
            media,
            port: port.parse().ok()?,
            port_count,
            proto: fields.next()?.to_owned(),
            formats: fields.map(str::to_owned).collect(),
        })
    }
}

impl fmt::Display for MediaLine {
    /// The `m=` value, fields joined by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        Ok(())
    }
}

/// One media description: its `m=` line and the `i=`, `c=`, `b=`, `k=`, `a=` (and any unknown)
/// lines up to the next `m=`, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    /// Parsed form of `lines[0]`; every change goes through [`MediaSection::set_media_line`].
    m: MediaLine,
    /// `lines[0]` is the `m=` line.
    lines: Vec<Line>,
}

impl MediaSection {
    pub(crate) fn new(m: MediaLine, m_line: Line) -> MediaSection {
        MediaSection {
            m,
            lines: vec![m_line],
        }
    }

    pub(crate) fn push(&mut self, line: Line) {
        self.lines.push(line);
    }

    pub(crate) fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub(crate) fn lines_mut(&mut self) -> &mut [Line] {
        &mut self.lines
    }

    /// Removes the lines (never the `m=` line) for which `remove` says so.
    pub(crate) fn remove_lines(&mut self, mut remove: impl FnMut(&Line) -> bool) {
        let mut first = true;
        self.lines
            .retain(|l| std::mem::take(&mut first) || !remove(l));
    }

    /// The `m=` line.
    pub fn media_line(&self) -> &MediaLine {
        &self.m
    }

    /// Replaces the `m=` line (the line ending is kept).
    pub fn set_media_line(&mut self, m: MediaLine) {
        if let Some(line) = self.lines.first_mut() {
            line.set_value(&m.to_string());
        }
        self.m = m;
    }

    /// The media type, `audio` for voice.
    pub fn media(&self) -> &str {
        &self.m.media
    }

    /// The `m=` port; 0 for a disabled stream.
    pub fn port(&self) -> u16 {
        self.m.port
    }

    /// Sets the `m=` port (0 disables the stream, RFC 3264 §8.2).
    pub fn set_port(&mut self, port: u16) {
        let mut m = self.m.clone();
        m.port = port;
        self.set_media_line(m);
    }

    /// Whether the stream is enabled (port not 0).
    pub fn is_active(&self) -> bool {
        self.m.port != 0
    }

    /// The payload types of the `m=` line, in order (non-numeric formats skipped).
    pub fn payload_types(&self) -> Vec<PayloadType> {
        self.m
            .formats
            .iter()
            .filter_map(|f| PayloadType::parse(f))
            .collect()
    }

    /// The media-level `c=` line, if any (see [`super::Sdp::connection_of`] for the effective one).
    pub fn connection(&self) -> Option<Connection> {
        let line = self.lines.iter().find(|l| l.kind() == Some(b'c'))?;
        Connection::parse(line.value_str()?)
    }

    /// The media-level attributes, in order (lines that are not UTF-8 are skipped).
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.lines.iter().filter_map(Line::attribute)
    }

    /// The value of the first attribute named `name`: `Some(None)` for a property attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes().find(|a| a.name == name).map(|a| a.value)
    }

    /// The media-level direction attribute, if any (see [`super::Sdp::direction_of`]).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .find_map(|a| Direction::from_attribute(a.name))
    }

    /// The well-formed `a=rtpmap` lines, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.values("rtpmap").filter_map(RtpMap::parse)
    }

    /// The well-formed `a=fmtp` lines, in order.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'_>> {
        self.values("fmtp").filter_map(Fmtp::parse)
    }

    /// The format parameters for `pt`.
    pub fn fmtp(&self, pt: PayloadType) -> Option<&str> {
        self.fmtps()
            .find(|f| f.payload_type == pt)
            .map(|f| f.params)
    }

    /// What `pt` stands for: its `a=rtpmap`, else the RFC 3551 static assignment.
    pub fn codec(&self, pt: PayloadType) -> Option<Codec> {
        self.rtpmaps()
            .find(|m| m.payload_type == pt)
            .map(|m| m.codec)
            .or_else(|| Codec::for_static(pt))
    }

    /// The `m=` payload types with what each stands for (`None`: dynamic without rtpmap).
    pub fn codecs(&self) -> Vec<(PayloadType, Option<Codec>)> {
        self.payload_types()
            .into_iter()
            .map(|pt| (pt, self.codec(pt)))
            .collect()
    }

    /// `a=ptime`, the packet duration in milliseconds the author wants to receive.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")??.trim().parse().ok()
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute("maxptime")??.trim().parse().ok()
    }

    /// `a=rtcp` (RFC 3605), when present and well-formed.
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.values("rtcp").find_map(Rtcp::parse)
    }

    /// Whether `a=rtcp-mux` is present (RFC 5761 §5.1.1).
    pub fn rtcp_mux(&self) -> bool {
        self.attribute("rtcp-mux").is_some()
    }

    /// The well-formed `a=crypto` lines (RFC 4568), in order.
    pub fn crypto(&self) -> impl Iterator<Item = Crypto<'_>> {
        self.values("crypto").filter_map(Crypto::parse)
    }

    /// Whether the profile is SRTP's (`RTP/SAVP`, `RTP/SAVPF`, RFC 3711 §12): an offer that
    /// cannot be answered without SRTP.
    pub fn is_savp(&self) -> bool {
        matches!(self.m.proto.as_str(), "RTP/SAVP" | "RTP/SAVPF")
    }

    /// Sets the profile to SRTP's or plain RTP's, keeping the feedback variant (`...F`); other
    /// protocols (`UDP/TLS/...`) are left alone.
    pub fn set_savp(&mut self, savp: bool) {
        let proto = match (self.m.proto.as_str(), savp) {
            ("RTP/AVP" | "RTP/SAVP", true) => "RTP/SAVP",
            ("RTP/AVP" | "RTP/SAVP", false) => "RTP/AVP",
            ("RTP/AVPF" | "RTP/SAVPF", true) => "RTP/SAVPF",
            ("RTP/AVPF" | "RTP/SAVPF", false) => "RTP/AVPF",
            _ => return,
        };
        if self.m.proto != proto {
            let mut m = self.m.clone();
            m.proto = proto.to_owned();
            self.set_media_line(m);
        }
    }

    /// Replaces every `a=crypto` line with `values` (RFC 4568 §9.1), appended at the end of
    /// the section. An empty `values` removes them all.
    pub fn set_crypto(&mut self, values: &[String]) {
        self.remove_lines(|l| l.is_attribute("crypto"));
        if values.is_empty() {
            return;
        }
        let like = self.lines[0].clone();
        if let Some(last) = self.lines.last_mut() {
            // The old last line may have had no ending (end of body): it gets one now.
            last.ensure_eol();
        }
        for v in values {
            self.lines
                .push(Line::new_like(&format!("a=crypto:{v}"), &like));
        }
    }

    /// Keeps only the formats in `keep` on the `m=` line, and removes the `a=rtpmap`, `a=fmtp`
    /// and `a=rtcp-fb` lines of the others (other lines are untouched). The caller bumps the
    /// origin version ([`super::Sdp::bump_version`]).
    pub fn retain_payload_types(&mut self, keep: &[PayloadType]) {
        let mut m = self.m.clone();
        m.formats
            .retain(|f| PayloadType::parse(f).is_none_or(|pt| keep.contains(&pt)));
        self.set_media_line(m);
        self.remove_lines(|l| {
            let Some(a) = l.attribute() else { return false };
            let per_format = matches!(a.name, "rtpmap" | "fmtp" | "rtcp-fb");
            let pt = a.value.and_then(leading_payload_type);
            per_format && pt.is_some_and(|pt| !keep.contains(&pt))
        });
    }

    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.attributes()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8866_5_14_media_line_forms() {
        let m = MediaLine::parse("audio 49170 RTP/AVP 0 8 101").unwrap();
        assert_eq!(
            (m.media.as_str(), m.port, m.proto.as_str()),
            ("audio", 49170, "RTP/AVP")
        );
        assert_eq!(m.formats, ["0", "8", "101"]);
        assert_eq!(m.to_string(), "audio 49170 RTP/AVP 0 8 101");
        let h = MediaLine::parse("video 49170/2 RTP/AVP 31").unwrap();
        assert_eq!((h.port, h.port_count), (49170, Some(2)));
        assert_eq!(h.to_string(), "video 49170/2 RTP/AVP 31");
        assert_eq!(MediaLine::parse("audio 70000 RTP/AVP 0"), None);
        assert_eq!(MediaLine::parse("audio 5000"), None);
    }
}

//! Parsing messages from datagrams and framing them on streams (RFC 3261 §7, §18.3).

use bytes::Bytes;

use crate::header::{HeaderName, Headers};
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::text::is_token;
use crate::uri::Uri;

/// Largest message accepted by default; larger ones get 513 (§18.1.1 leaves the limit to us).
pub const DEFAULT_MAX_MESSAGE: usize = 65_535;

/// What went wrong while parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// The header section is not UTF-8.
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// The start line is neither a request line nor a status line.
    #[error("malformed start line")]
    BadStartLine,
    /// The method is not a token.
    #[error("method is not a token")]
    BadMethod,
    /// The Request-URI does not parse.
    #[error("malformed Request-URI: {0}")]
    BadRequestUri(crate::uri::UriError),
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code")]
    BadStatus,
    /// A header line has no colon or its name is not a token.
    #[error("malformed header line {0}")]
    BadHeaderLine(usize),
    /// Content-Length is not a number.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// The message exceeds the configured maximum.
    #[error("message larger than {0} octets")]
    TooLarge(usize),
    /// On a stream, Content-Length is mandatory (§18.3).
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
}

/// A parse failure. `headers` holds the header section when it could be read, so that a
/// request can still be answered (400/513) rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// True when the start line looked like a request (only requests are answered).
    pub is_request: bool,
    /// The headers read so far, when the failure came after the start line.
    pub headers: Option<Headers>,
}

impl ParseError {
    fn bare(kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            is_request: false,
            headers: None,
        }
    }

    /// The response to send, when the message was a request that can still be answered.
    pub fn status(&self) -> Option<StatusCode> {
        let h = self.headers.as_ref()?;
        let answerable = self.is_request
            && [
                HeaderName::Via,
                HeaderName::From,
                HeaderName::To,
                HeaderName::CallId,
                HeaderName::CSeq,
            ]
            .iter()
            .all(|n| h.get(n).is_some());
        if !answerable {
            return None;
        }
        Some(match self.kind {
            ParseErrorKind::TooLarge(_) => StatusCode::MESSAGE_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        })
    }
}

/// Parses one message from a datagram (§18.3: trailing octets beyond Content-Length are
/// ignored; without Content-Length the body runs to the end of the datagram).
pub fn parse_datagram(buf: &[u8], max: usize) -> Result<Message, ParseError> {
    let buf = skip_leading_crlf(buf);
    let (head, body) = split_head(buf).unwrap_or((buf, &[][..]));
    let mut msg = parse_head(head)?;
    if buf.len() > max {
        return Err(with_headers(msg, ParseErrorKind::TooLarge(max)));
    }
    let body = match content_length(headers_of(&msg)) {
        Ok(Some(n)) => &body[..n.min(body.len())],
        Ok(None) => body,
        Err(()) => return Err(with_headers(msg, ParseErrorKind::BadContentLength)),
    };
    set_body(&mut msg, Bytes::copy_from_slice(body));
    Ok(msg)
}

/// Result of looking for one message at the start of a stream buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// `n` octets of CRLF keepalive (RFC 5626 §3.5.1): a double CRLF asks for a single CRLF.
    Keepalive {
        /// Octets to consume.
        len: usize,
        /// True for a "ping" (CRLFCRLF) that must be answered with a "pong" (CRLF).
        ping: bool,
    },
    /// A complete message of `len` octets.
    Message(usize),
}

/// Frames a stream (TCP/TLS) buffer by Content-Length without parsing the whole message.
pub fn frame(buf: &[u8], max: usize) -> Result<Frame, ParseError> {
    if buf.starts_with(b"\r\n") {
        if buf.starts_with(b"\r\n\r\n") {
            return Ok(Frame::Keepalive { len: 4, ping: true });
        }
        if buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            return Ok(Frame::Incomplete);
        }
        return Ok(Frame::Keepalive {
            len: 2,
            ping: false,
        });
    }
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > max {
            return Err(ParseError::bare(ParseErrorKind::TooLarge(max)));
        }
        return Ok(Frame::Incomplete);
    };
    let head = &buf[..head_end.0];
    let msg = parse_head(head)?;
    let len = match content_length(headers_of(&msg)) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(with_headers(msg, ParseErrorKind::MissingContentLength)),
        Err(()) => return Err(with_headers(msg, ParseErrorKind::BadContentLength)),
    };
    let total = head_end.1 + len;
    if total > max {
        return Err(with_headers(msg, ParseErrorKind::TooLarge(max)));
    }
    Ok(if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    })
}

/// Parses a message already framed by [`frame`].
pub fn parse_framed(buf: &[u8]) -> Result<Message, ParseError> {
    parse_datagram(buf, usize::MAX)
}

fn skip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let Some(rest) = buf
        .strip_prefix(b"\r\n")
        .or_else(|| buf.strip_prefix(b"\n"))
    {
        buf = rest;
    }
    buf
}

/// Offsets of the end of the header lines and of the start of the body.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            // Accept CRLF CRLF, and bare LF LF as RFC 5118's files use.
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i + 1, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn split_head(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    find_head_end(buf).map(|(h, b)| (&buf[..h], &buf[b..]))
}

fn headers_of(m: &Message) -> &Headers {
    m.headers()
}

fn with_headers(m: Message, kind: ParseErrorKind) -> ParseError {
    let (is_request, headers) = match m {
        Message::Request(r) => (true, r.headers),
        Message::Response(r) => (false, r.headers),
    };
    ParseError {
        kind,
        is_request,
        headers: Some(headers),
    }
}

fn set_body(m: &mut Message, body: Bytes) {
    match m {
        Message::Request(r) => r.body = body,
        Message::Response(r) => r.body = body,
    }
}

/// `Ok(None)` when absent; `Err` when present but not a number.
fn content_length(h: &Headers) -> Result<Option<usize>, ()> {
    let Some(v) = h.get(&HeaderName::ContentLength) else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(());
    }
    v.parse().map(Some).map_err(|_| ())
}

fn parse_head(head: &[u8]) -> Result<Message, ParseError> {
    let text = std::str::from_utf8(head).map_err(|_| ParseError::bare(ParseErrorKind::NotUtf8))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = loop {
        match lines.next() {
            Some("") => continue,
            Some(l) => break l,
            None => return Err(ParseError::bare(ParseErrorKind::Empty)),
        }
    };
    let (mut msg, uri_error) = parse_start_line(start)?;
    let is_request = matches!(msg, Message::Request(_));
    let mut headers = Headers::new();
    let mut current: Option<(String, String)> = None;
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation (§7.3.1): LWS is equivalent to a single SP.
            if let Some((_, v)) = current.as_mut() {
                let more = line.trim();
                if !more.is_empty() {
                    if !v.is_empty() {
                        v.push(' ');
                    }
                    v.push_str(more);
                }
                continue;
            }
            return Err(ParseError {
                kind: ParseErrorKind::BadHeaderLine(i + 2),
                is_request,
                headers: Some(headers),
            });
        }
        if let Some((n, v)) = current.take() {
            headers.push(HeaderName::from_wire(&n), v);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ParseError {
                kind: ParseErrorKind::BadHeaderLine(i + 2),
                is_request,
                headers: Some(headers),
            });
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError {
                kind: ParseErrorKind::BadHeaderLine(i + 2),
                is_request,
                headers: Some(headers),
            });
        }
        current = Some((name.to_string(), value.trim().to_string()));
    }
    if let Some((n, v)) = current.take() {
        headers.push(HeaderName::from_wire(&n), v);
    }
    if let Some(e) = uri_error {
        return Err(ParseError {
            kind: ParseErrorKind::BadRequestUri(e),
            is_request,
            headers: Some(headers),
        });
    }
    match &mut msg {
        Message::Request(r) => r.headers = headers,
        Message::Response(r) => r.headers = headers,
    }
    Ok(msg)
}

/// True when `s` begins with `SIP/` in any case (byte-wise: `s` may hold any UTF-8).
fn starts_with_sip(s: &str) -> bool {
    s.as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// The start line; a Request-URI that fails to parse is reported beside a placeholder so the
/// header section can still be read and the request answered with 400.
fn parse_start_line(line: &str) -> Result<(Message, Option<crate::uri::UriError>), ParseError> {
    let bad = || ParseError::bare(ParseErrorKind::BadStartLine);
    if starts_with_sip(line) {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (reason may be empty)
        let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = (code.len() == 3 && code.bytes().all(|c| c.is_ascii_digit()))
            .then(|| code.parse().ok().and_then(StatusCode::new))
            .flatten()
            .ok_or_else(|| ParseError::bare(ParseErrorKind::BadStatus))?;
        let resp = Response {
            version: version.to_string(),
            status,
            reason: reason.to_string(),
            headers: Headers::new(),
            body: Bytes::new(),
        };
        return Ok((Message::Response(resp), None));
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !is_token(method) {
        return Err(ParseError::bare(ParseErrorKind::BadMethod));
    }
    if !starts_with_sip(version) {
        return Err(bad());
    }
    let (uri, uri_error) = match Uri::parse(uri) {
        Ok(u) => (u, None),
        Err(e) => (
            Uri::Other {
                scheme: String::new(),
                raw: String::new(),
            },
            Some(e),
        ),
    };
    let req = Request {
        method: Method::from_token(method),
        uri,
        version: version.to_string(),
        headers: Headers::new(),
        body: Bytes::new(),
    };
    Ok((Message::Request(req), uri_error))
}

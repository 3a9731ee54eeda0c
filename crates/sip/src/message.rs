//! Requests, responses and their printing (RFC 3261 §7).

use std::fmt::Write as _;

use bytes::Bytes;

use crate::header::{CSeq, HeaderName, Headers, NameAddr, Via};
use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::Uri;

/// The only SIP version spoken (§7.1).
pub const SIP_2_0: &str = "SIP/2.0";

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI.
    pub uri: Uri,
    /// SIP-Version as written (validation answers 505 unless it is SIP/2.0).
    pub version: String,
    /// Header section.
    pub headers: Headers,
    /// Body octets.
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// SIP-Version as written.
    pub version: String,
    /// Status code.
    pub status: StatusCode,
    /// Reason phrase, possibly empty (RFC 4475 §3.1.1.13) or UTF-8 (§3.1.1.12).
    pub reason: String,
    /// Header section.
    pub headers: Headers,
    /// Body octets.
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header section.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// Typed accessors shared by requests and responses.
pub trait HeaderAccess {
    /// The header section.
    fn headers(&self) -> &Headers;

    /// The top Via, parsed.
    fn top_via(&self) -> Option<Via> {
        self.headers()
            .values(&HeaderName::Via)
            .next()
            .and_then(Via::parse)
    }
    /// The Call-ID.
    fn call_id(&self) -> Option<&str> {
        self.headers().get(&HeaderName::CallId)
    }
    /// The CSeq, parsed.
    fn cseq(&self) -> Option<CSeq> {
        self.headers().get(&HeaderName::CSeq).and_then(CSeq::parse)
    }
    /// The From header, parsed.
    fn from(&self) -> Option<NameAddr> {
        self.headers()
            .get(&HeaderName::From)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// The To header, parsed.
    fn to(&self) -> Option<NameAddr> {
        self.headers()
            .get(&HeaderName::To)
            .and_then(|v| NameAddr::parse(v).ok())
    }
    /// The Expires header in seconds.
    fn expires(&self) -> Option<u32> {
        self.headers()
            .get(&HeaderName::Expires)
            .and_then(|v| v.trim().parse().ok())
    }
}

impl HeaderAccess for Request {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl HeaderAccess for Response {
    fn headers(&self) -> &Headers {
        &self.headers
    }
}

impl Request {
    /// The wire form: start line, headers in order, blank line, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256 + self.headers.len() * 40);
        let _ = write!(s, "{} {} {}\r\n", self.method, self.uri, self.version);
        print_headers(&mut s, &self.headers);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The Max-Forwards value, when present and numeric.
    pub fn max_forwards(&self) -> Option<u32> {
        self.headers
            .get(&HeaderName::MaxForwards)
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Response {
    /// A response to `req` per RFC 3261 §8.2.6.2: Via, From, To, Call-ID and CSeq copied;
    /// `to_tag` is added to To when it has none and the status is above 100.
    pub fn for_request(req: &Request, status: StatusCode, to_tag: Option<&str>) -> Response {
        Response::from_headers(&req.headers, status, to_tag)
    }

    /// Like [`Response::for_request`] from a header section alone (used to answer messages that
    /// failed to parse completely but kept their headers).
    pub fn from_headers(h: &Headers, status: StatusCode, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::new();
        for v in h.get_all(&HeaderName::Via) {
            headers.push(HeaderName::Via, v);
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            if let Some(v) = h.get(&name) {
                let mut v = v.to_string();
                if name == HeaderName::To && status.as_u16() > 100 {
                    if let Some(tag) = to_tag {
                        let has_tag = NameAddr::parse(&v)
                            .map(|n| n.tag().is_some())
                            .unwrap_or(true);
                        if !has_tag {
                            let _ = write!(v, ";tag={tag}");
                        }
                    }
                }
                headers.push(name, v);
            }
        }
        headers.push(HeaderName::ContentLength, "0");
        Response {
            version: SIP_2_0.to_string(),
            status,
            reason: status.reason().to_string(),
            headers,
            body: Bytes::new(),
        }
    }

    /// Sets the body and its Content-Type; Content-Length follows when printed.
    pub fn with_body(mut self, content_type: &str, body: Bytes) -> Response {
        self.headers.remove(&HeaderName::ContentLength);
        self.headers.set(HeaderName::ContentType, content_type);
        self.headers
            .push(HeaderName::ContentLength, body.len().to_string());
        self.body = body;
        self
    }

    /// The wire form, headers printed as they are.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256 + self.headers.len() * 40);
        let _ = write!(s, "{} {} {}\r\n", self.version, self.status, self.reason);
        print_headers(&mut s, &self.headers);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn print_headers(s: &mut String, headers: &Headers) {
    for h in headers.iter() {
        let _ = write!(s, "{}: {}\r\n", h.name, h.value);
    }
    s.push_str("\r\n");
}

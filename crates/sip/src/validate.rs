//! Message validity before any policy: RFC 3261 §8.2.1–8.2.2 (requests) and §8.1.3 (responses).
//!
//! A request failing here is answered 400 or 505 and goes no further; a response failing here is
//! dropped. Application-level answers (416, 420, 405, 501, 483) are the server's business and live
//! above this layer: a message that earns one is still well formed.

use crate::header::{CSeq, HeaderName, NameAddr, Via};
use crate::message::{HeaderAccess, Request, Response};
use crate::status::StatusCode;

/// Why a message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// SIP-Version is not SIP/2.0 (§8.2.2 → 505).
    #[error("unsupported SIP version {0}")]
    Version(String),
    /// A mandatory header is absent (§8.1.1).
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// A header that allows one value appears more than once (§7.3.1).
    #[error("{0} header appears more than once")]
    DuplicateHeader(HeaderName),
    /// A header's value does not follow its grammar.
    #[error("malformed {0} header")]
    BadHeader(HeaderName),
    /// The CSeq method differs from the request method (§8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// Method in CSeq.
        cseq: String,
        /// Method in the request line.
        method: String,
    },
    /// The body is shorter than Content-Length (§18.3).
    #[error("Content-Length {declared} exceeds the {actual} octets of body")]
    ShortBody {
        /// Declared length.
        declared: usize,
        /// Octets present.
        actual: usize,
    },
    /// A value is outside its allowed range.
    #[error("{0} value out of range")]
    OutOfRange(HeaderName),
}

impl InvalidMessage {
    /// The response a request failing this check gets.
    pub fn status(&self) -> StatusCode {
        match self {
            InvalidMessage::Version(_) => StatusCode::VERSION_NOT_SUPPORTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Headers that may appear once at most.
const SINGLE: [HeaderName; 9] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::Expires,
    HeaderName::MinExpires,
];

/// Checks a request (§8.2.1–8.2.2 syntax, framing, mandatory and single headers, ranges).
pub fn validate_request(req: &Request) -> Result<(), InvalidMessage> {
    if !req.version.eq_ignore_ascii_case(crate::message::SIP_2_0) {
        return Err(InvalidMessage::Version(req.version.clone()));
    }
    common(req)?;
    let cseq = req
        .cseq()
        .ok_or(InvalidMessage::BadHeader(HeaderName::CSeq))?;
    if cseq.method != req.method {
        return Err(InvalidMessage::CSeqMethodMismatch {
            cseq: cseq.method.to_string(),
            method: req.method.to_string(),
        });
    }
    if let Some(mf) = req.headers.get(&HeaderName::MaxForwards) {
        let mf = mf.trim();
        if mf.is_empty() || !mf.bytes().all(|c| c.is_ascii_digit()) {
            return Err(InvalidMessage::BadHeader(HeaderName::MaxForwards));
        }
        if mf.trim_start_matches('0').len() > 3 || mf.parse::<u32>().map_or(true, |v| v > 255) {
            return Err(InvalidMessage::OutOfRange(HeaderName::MaxForwards));
        }
    }
    Ok(())
}

/// Checks a response (§8.1.3.3: a response with a malformed mandatory header is discarded).
pub fn validate_response(resp: &Response) -> Result<(), InvalidMessage> {
    if !resp.version.eq_ignore_ascii_case(crate::message::SIP_2_0) {
        return Err(InvalidMessage::Version(resp.version.clone()));
    }
    common(resp)?;
    resp.cseq()
        .ok_or(InvalidMessage::BadHeader(HeaderName::CSeq))?;
    Ok(())
}

fn common<M: HeaderAccess + Body>(m: &M) -> Result<(), InvalidMessage> {
    let h = m.headers();
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        if h.get(&name).is_none() {
            return Err(InvalidMessage::MissingHeader(name));
        }
    }
    for name in SINGLE {
        if h.count(&name) > 1 {
            return Err(InvalidMessage::DuplicateHeader(name));
        }
    }
    if h.values(&HeaderName::Via).any(|v| Via::parse(v).is_none()) {
        return Err(InvalidMessage::BadHeader(HeaderName::Via));
    }
    for name in [HeaderName::From, HeaderName::To] {
        let v = h.get(&name).unwrap_or_default();
        if NameAddr::parse(v).is_err() {
            return Err(InvalidMessage::BadHeader(name));
        }
    }
    if h.get(&HeaderName::CallId)
        .is_some_and(|c| c.trim().is_empty() || c.contains(char::is_whitespace))
    {
        return Err(InvalidMessage::BadHeader(HeaderName::CallId));
    }
    if h.get(&HeaderName::CSeq).and_then(CSeq::parse).is_none() {
        return Err(InvalidMessage::BadHeader(HeaderName::CSeq));
    }
    for name in [HeaderName::Expires, HeaderName::MinExpires] {
        if let Some(v) = h.get(&name) {
            if v.trim().parse::<u32>().is_err() {
                return Err(InvalidMessage::BadHeader(name));
            }
        }
    }
    if let Some(cl) = h.get(&HeaderName::ContentLength) {
        let declared: usize = cl
            .trim()
            .parse()
            .map_err(|_| InvalidMessage::BadHeader(HeaderName::ContentLength))?;
        let actual = m.body_len();
        if declared > actual {
            return Err(InvalidMessage::ShortBody { declared, actual });
        }
    }
    Ok(())
}

/// Access to the body length for the framing check.
trait Body {
    fn body_len(&self) -> usize;
}

impl Body for Request {
    fn body_len(&self) -> usize {
        self.body.len()
    }
}

impl Body for Response {
    fn body_len(&self) -> usize {
        self.body.len()
    }
}

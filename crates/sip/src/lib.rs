//! SIP message layer of homeline.
//!
//! Parses and prints SIP messages (RFC 3261 §7, §20, §25) with the robustness the RFC 4475 torture
//! tests and the RFC 5118 IPv6 tests ask for: compact header forms, folded lines, comma-joined
//! values, quoted strings, any URI scheme, IPv6 references, extension methods. Header values are
//! kept raw so a message can be relayed unchanged; typed views are parsed on demand.
//!
//! Also home of digest computation (RFC 7616, RFC 8760: MD5 and SHA-256).

pub mod digest;
pub mod header;
mod message;
mod method;
mod parse;
mod status;
pub mod text;
pub mod uri;
mod validate;

pub use header::{Header, HeaderName, Headers};
pub use message::{HeaderAccess, Message, Request, Response, SIP_2_0};
pub use method::Method;
pub use parse::{
    frame, parse_datagram, parse_framed, Frame, ParseError, ParseErrorKind, DEFAULT_MAX_MESSAGE,
};
pub use status::StatusCode;
pub use uri::{Host, SipUri, TelUri, Uri, UriError};
pub use validate::{validate_request, validate_response, InvalidMessage};

//! Why a body is not a usable session description.

use sip::StatusCode;

/// A malformed SDP body: the peer's fault. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty.
    #[error("empty SDP body")]
    Empty,
    /// The first line is not `v=0` (RFC 8866 §5.1).
    #[error("SDP does not start with v=0")]
    NoVersion,
    /// A line is neither `<letter>=<value>` nor empty (RFC 8866 §5).
    #[error("SDP line {line}: not a <type>=<value> line")]
    MalformedLine {
        /// The offending line.
        line: usize,
    },
    /// No `o=` line before the first `m=` (RFC 8866 §5.2).
    #[error("SDP has no o= line")]
    NoOrigin,
    /// The `o=` line lacks a field or has a non-numeric version.
    #[error("SDP line {line}: malformed o= line")]
    BadOrigin {
        /// The offending line.
        line: usize,
    },
    /// A `c=` line does not have three fields (RFC 8866 §5.7).
    #[error("SDP line {line}: malformed c= line")]
    BadConnection {
        /// The offending line.
        line: usize,
    },
    /// An `m=` line lacks a field or has a port above 65535 (RFC 8866 §5.14).
    #[error("SDP line {line}: malformed m= line")]
    BadMedia {
        /// The offending line.
        line: usize,
    },
}

impl SdpError {
    /// The response to a request whose body this is: 400 (malformed syntax, RFC 3261 §21.4.1).
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

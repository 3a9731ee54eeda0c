//! The CSeq header (RFC 3261 §20.16).

use std::fmt;

use crate::method::Method;
use crate::text::is_token;

/// Sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, below 2**31 (§8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `0009 INVITE` (leading zeros and LWS allowed, RFC 4475 §3.1.1.1).
    pub fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_ascii_whitespace();
        let num = it.next()?;
        let method = it.next()?;
        if it.next().is_some() || !num.bytes().all(|c| c.is_ascii_digit()) || !is_token(method) {
            return None;
        }
        let digits = num.trim_start_matches('0');
        if digits.len() > 10 {
            return None;
        }
        let seq: u64 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        if seq >= 1 << 31 {
            return None;
        }
        Some(CSeq {
            seq: seq as u32,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

//! `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605 §2.1).

use std::fmt;

use super::connection::Connection;

/// A typed `a=rtcp` value: where the author receives RTCP when it is not on RTP port + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address when it differs from the stream's `c=`.
    pub connection: Option<Connection>,
}

impl Rtcp {
    /// Parses `53020` or `53020 IN IP4 126.16.64.4`; `None` when malformed.
    pub(crate) fn parse(value: &str) -> Option<Rtcp> {
        let value = value.trim();
        let (port, rest) = match value.split_once(' ') {
            Some((port, rest)) => (port, Some(rest)),
            None => (value, None),
        };
        let connection = match rest {
            Some(rest) => Some(Connection::parse(rest)?),
            None => None,
        };
        Some(Rtcp {
            port: port.parse().ok()?,
            connection,
        })
    }
}

impl fmt::Display for Rtcp {
    /// The `a=rtcp` value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3605_2_1_port_and_address_forms() {
        let plain = Rtcp::parse("53020").unwrap();
        assert_eq!((plain.port, plain.connection), (53020, None));
        let full = Rtcp::parse("53020 IN IP4 126.16.64.4").unwrap();
        assert_eq!(
            full.connection.as_ref().unwrap().ip(),
            Some("126.16.64.4".parse().unwrap())
        );
        assert_eq!(full.to_string(), "53020 IN IP4 126.16.64.4");
        assert_eq!(Rtcp::parse("70000"), None);
        assert_eq!(Rtcp::parse("5 IN IP4"), None);
    }
}

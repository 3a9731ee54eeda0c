//! Connection data, `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The typed `c=` line (session or media level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The network type, `IN` for the Internet.
    pub net_type: String,
    /// The address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The address as written: unicast, multicast with `/ttl[/count]`, or a domain name.
    pub address: String,
}

impl Connection {
    /// `c=IN IP4 <ip>` or `c=IN IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type_of(ip).to_owned(),
            address: ip.to_string(),
        }
    }

    /// Parses a `c=` value; `None` unless it has exactly three fields.
    pub(crate) fn parse(value: &str) -> Option<Connection> {
        let mut fields = value.split_ascii_whitespace().map(str::to_owned);
        let connection = Connection {
            net_type: fields.next()?,
            addr_type: fields.next()?,
            address: fields.next()?,
        };
        fields.next().is_none().then_some(connection)
    }

    /// The IP address (without a multicast `/ttl` suffix) when it matches the address type;
    /// `None` for a domain name.
    pub fn ip(&self) -> Option<IpAddr> {
        let base = self.address.split('/').next().unwrap_or_default();
        parse_ip(&self.net_type, &self.addr_type, base)
    }

    /// Whether the address is `0.0.0.0` (or `::`): RFC 2543-style hold, RFC 3264 §8.4.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl fmt::Display for Connection {
    /// The `c=` value, fields joined by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// `IP4` or `IP6`.
pub(crate) fn addr_type_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// An `IN IP4` / `IN IP6` address; `None` for other types, names, or a type mismatch.
pub(crate) fn parse_ip(net_type: &str, addr_type: &str, address: &str) -> Option<IpAddr> {
    if net_type != "IN" {
        return None;
    }
    match addr_type {
        "IP4" => address.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        // RFC 5118 §4.5: IPv6 addresses in SDP are written without brackets.
        "IP6" => address.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8866_5_7_multicast_ttl_is_not_part_of_the_ip() {
        let c = Connection::parse("IN IP4 224.2.17.12/127").unwrap();
        assert_eq!(c.ip(), Some("224.2.17.12".parse().unwrap()));
        assert_eq!(c.to_string(), "IN IP4 224.2.17.12/127");
    }

    #[test]
    fn rfc5118_4_5_ipv6_without_brackets() {
        let c = Connection::parse("IN IP6 2001:db8::20").unwrap();
        assert_eq!(c.ip(), Some("2001:db8::20".parse().unwrap()));
    }

    #[test]
    fn type_mismatch_or_name_has_no_ip() {
        assert_eq!(Connection::parse("IN IP4 2001:db8::1").unwrap().ip(), None);
        assert_eq!(
            Connection::parse("IN IP4 host.example.com").unwrap().ip(),
            None
        );
        assert_eq!(Connection::parse("IN IP4"), None);
    }

    #[test]
    fn rfc3264_8_4_hold_address() {
        assert!(Connection::parse("IN IP4 0.0.0.0")
            .unwrap()
            .is_unspecified());
        assert!(!Connection::from_ip("10.0.0.20".parse().unwrap()).is_unspecified());
    }
}

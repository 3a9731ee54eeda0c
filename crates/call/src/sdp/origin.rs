//! The origin line, `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
//! (RFC 8866 §5.2).

use std::fmt;
use std::net::IpAddr;

use super::connection::{addr_type_of, parse_ip};

/// The typed `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The originator's login, or `-`.
    pub username: String,
    /// The session id: digits per the grammar, kept as text.
    pub session_id: String,
    /// The session version, digits kept as text (no size limit): RFC 3264 §8 wants it
    /// incremented on every change, see [`Origin::bump_version`].
    pub session_version: String,
    /// The network type, `IN` for the Internet.
    pub net_type: String,
    /// The address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The originating host: an address or a fully-qualified domain name.
    pub address: String,
}

impl Origin {
    /// Parses an `o=` value; `None` unless it has six fields and a numeric version.
    pub(crate) fn parse(value: &str) -> Option<Origin> {
        let mut fields = value.split_ascii_whitespace().map(str::to_owned);
        let origin = Origin {
            username: fields.next()?,
            session_id: fields.next()?,
            session_version: fields.next()?,
            net_type: fields.next()?,
            addr_type: fields.next()?,
            address: fields.next()?,
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (fields.next().is_none() && numeric(&origin.session_version)).then_some(origin)
    }

    /// The originating address when it is an IP address of the declared type.
    pub fn ip(&self) -> Option<IpAddr> {
        parse_ip(&self.net_type, &self.addr_type, &self.address)
    }

    /// Replaces the originating address (and with it the address type) by `ip`.
    pub fn set_ip(&mut self, ip: IpAddr) {
        "IN".clone_into(&mut self.net_type);
        addr_type_of(ip).clone_into(&mut self.addr_type);
        self.address = ip.to_string();
    }

    /// Adds one to the session version, in decimal and without overflow (`999` → `1000`).
    pub fn bump_version(&mut self) {
        let mut digits = std::mem::take(&mut self.session_version).into_bytes();
        let mut carry = true;
        for d in digits.iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, b'1');
        }
        // Only ASCII digits were read (checked by `parse`) and written.
        self.session_version = String::from_utf8(digits).unwrap_or_default();
    }
}

impl fmt::Display for Origin {
    /// The `o=` value, fields joined by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8866_5_2_origin_fields() {
        let o = Origin::parse("jdoe 3724394400 3724394405 IN IP4 198.51.100.1").unwrap();
        assert_eq!(o.username, "jdoe");
        assert_eq!(o.session_id, "3724394400");
        assert_eq!(o.session_version, "3724394405");
        assert_eq!(o.ip(), Some("198.51.100.1".parse().unwrap()));
        assert_eq!(
            o.to_string(),
            "jdoe 3724394400 3724394405 IN IP4 198.51.100.1"
        );
    }

    #[test]
    fn hostname_origin_has_no_ip() {
        let o = Origin::parse("bob 280744730 28977631 IN IP4 host.example.com").unwrap();
        assert_eq!(o.ip(), None);
    }

    #[test]
    fn malformed_origins() {
        assert_eq!(Origin::parse("jdoe 1 2 IN IP4"), None);
        assert_eq!(Origin::parse("jdoe 1 2 IN IP4 h extra"), None);
        assert_eq!(Origin::parse("jdoe 1 v2 IN IP4 h"), None);
    }

    #[test]
    fn rfc3264_8_version_bump_is_decimal_and_unbounded() {
        let mut o = Origin::parse("- 1 0 IN IP4 h").unwrap();
        o.bump_version();
        assert_eq!(o.session_version, "1");
        o.session_version = "1299".into();
        o.bump_version();
        assert_eq!(o.session_version, "1300");
        o.session_version = "18446744073709551615".into(); // u64::MAX
        o.bump_version();
        assert_eq!(o.session_version, "18446744073709551616");
    }

    #[test]
    fn set_ip_switches_the_address_type() {
        let mut o = Origin::parse("- 1 0 IN IP6 2001:db8::20").unwrap();
        o.set_ip("203.0.113.10".parse().unwrap());
        assert_eq!(o.to_string(), "- 1 0 IN IP4 203.0.113.10");
    }
}

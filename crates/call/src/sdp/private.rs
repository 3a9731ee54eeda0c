//! Topology hiding: no private address may leave on an external leg.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::connection::Connection;
use super::ice;
use super::line::Line;
use super::rtcp::Rtcp;
use super::Sdp;

/// Whether `ip` is not reachable from the Internet: RFC 1918 (10/8, 172.16/12, 192.168/16),
/// RFC 6598 shared space (100.64/10), link-local (169.254/16, fe80::/10), loopback (127/8, ::1),
/// unique local (fc00::/7, RFC 4193), and the IPv4-mapped form of any of these.
/// The unspecified address (`0.0.0.0`, the RFC 2543 hold marker) is not private.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() // RFC 1918
        || (a == 100 && (64..128).contains(&b)) // RFC 6598
        || ip.is_link_local()
        || ip.is_loopback()
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}

/// Whether the SDP names a private address (see [`is_private`]) in its `o=` line, a `c=` line,
/// an `a=rtcp` address or an ICE candidate (`a=candidate` address and `raddr`,
/// `a=remote-candidates`). Domain names are not resolved and count as not private.
pub fn contains_private_address(sdp: &Sdp) -> bool {
    if sdp.origin().ip().is_some_and(is_private) {
        return true;
    }
    let session = sdp.session_lines().iter();
    let media = sdp.media().iter().flat_map(|m| m.lines());
    session.chain(media).any(line_has_private)
}

fn line_has_private(line: &Line) -> bool {
    let Some(value) = line.value_str() else {
        return false;
    };
    match line.kind() {
        Some(b'c') => Connection::parse(value)
            .and_then(|c| c.ip())
            .is_some_and(is_private),
        Some(b'a') => {
            let Some(attribute) = line.attribute() else {
                return false;
            };
            let value = attribute.value.unwrap_or_default();
            match attribute.name {
                "rtcp" => Rtcp::parse(value)
                    .and_then(|r| r.connection?.ip())
                    .is_some_and(is_private),
                name => ice::addresses(name, value).into_iter().any(is_private),
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(s: &str) -> bool {
        is_private(s.parse().unwrap())
    }

    #[test]
    fn private_ranges() {
        for p in [
            "10.0.0.20",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:10.0.0.20",
        ] {
            assert!(private(p), "{p} is private");
        }
        for p in [
            "203.0.113.10",
            "198.51.100.20",
            "172.32.0.1",
            "100.128.0.1",
            "0.0.0.0",
            "2001:db8::20",
            "::",
            "::ffff:203.0.113.10",
        ] {
            assert!(!private(p), "{p} is public or unspecified");
        }
    }
}

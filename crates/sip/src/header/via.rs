//! The Via header (RFC 3261 §20.42, RFC 3581 `rport`, RFC 5118 §4.5 IPv6 `received`).

use std::fmt;
use std::net::IpAddr;

use crate::text::Params;
use crate::uri::{split_hostport, Host};

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: String,
    /// Transport token, upper-cased (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, or unknown ones kept).
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, when given.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, ...).
    pub params: Params,
}

/// Magic cookie that marks an RFC 3261 branch (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    /// Parses one Via value (LWS allowed around `/`, `;` and `=`).
    pub fn parse(s: &str) -> Option<Via> {
        let mut parts = s.splitn(3, '/');
        let name = parts.next()?.trim();
        let version = parts.next()?.trim();
        let rest = parts.next()?.trim_start();
        let t_end = rest.find(|c: char| c.is_ascii_whitespace())?;
        let transport = rest[..t_end].to_ascii_uppercase();
        let rest = rest[t_end..].trim_start();
        let semi = rest.find(';').unwrap_or(rest.len());
        let (host, port) = split_hostport(rest[..semi].trim()).ok()?;
        let params = Params::parse(&rest[semi..]);
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return None;
        }
        Some(Via {
            protocol: format!("{name}/{version}"),
            transport,
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<String> {
        self.params.value("branch")
    }

    /// True for an RFC 3261 branch with something after the magic cookie (RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE))
    }

    /// The `received` parameter as an address; brackets tolerated (RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.value("received")?;
        let v = v.trim_start_matches('[').trim_end_matches(']');
        v.parse().ok()
    }

    /// True when the client asked for `rport` (RFC 3581 §3).
    pub fn wants_rport(&self) -> bool {
        self.params.has("rport")
    }

    /// Stamps `received` and fills `rport` with the source actually seen (RFC 3581 §4).
    pub fn stamp_source(&mut self, ip: IpAddr, port: u16) {
        if self.wants_rport() {
            self.params.set("rport", Some(port.to_string()));
            self.params.set("received", Some(ip.to_string()));
        } else if self.host.ip() != Some(ip) {
            self.params.set("received", Some(ip.to_string()));
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4475_3_1_1_1_lws_everywhere() {
        let v = Via::parse(
            "SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8",
        )
        .or_else(|| {
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
        })
        .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.branch().as_deref(), Some("z9hG4bK9ikj8"));
    }

    #[test]
    fn rfc3581_4_rport_filled() {
        let mut v = Via::parse("SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKa;rport").unwrap();
        v.stamp_source("198.51.100.20".parse().unwrap(), 40000);
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKa;rport=40000;received=198.51.100.20"
        );
    }

    #[test]
    fn rfc5118_4_5_received_with_brackets() {
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
    }
}

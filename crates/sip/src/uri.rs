//! URIs (RFC 3261 §19.1, RFC 3966 `tel:`, RFC 5118 IPv6 references); unknown schemes kept raw.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::text::{percent_decode, Params};

/// Why a URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("URI has no scheme")]
    NoScheme,
    /// The scheme contains characters outside RFC 3986 `scheme`.
    #[error("invalid URI scheme")]
    BadScheme,
    /// The host part is empty or malformed.
    #[error("invalid host in URI")]
    BadHost,
    /// The port is not a number in 0..=65535.
    #[error("invalid port in URI")]
    BadPort,
    /// Whitespace or control characters inside the URI.
    #[error("invalid character in URI")]
    BadChar,
}

/// A host: domain name, IPv4 address or IPv6 reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name, lower-cased.
    Domain(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written `[...]` in URIs).
    V6(Ipv6Addr),
}

impl Host {
    /// Parses a host, with or without brackets around IPv6 (RFC 5118 §4.5 asks for tolerance).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            return parse_v6(inner).map(Host::V6).ok_or(UriError::BadHost);
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::V4(v4));
        }
        if s.contains(':') {
            return parse_v6(s).map(Host::V6).ok_or(UriError::BadHost);
        }
        let valid = !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_');
        if !valid {
            return Err(UriError::BadHost);
        }
        Ok(Host::Domain(s.to_ascii_lowercase()))
    }

    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Domain(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

/// Parses IPv6, tolerating the RFC 3261 ABNF bug form with three colons (RFC 5118 §4.10).
fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    s.parse()
        .ok()
        .or_else(|| s.replace(":::", "::").parse().ok())
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, still escaped as on the wire (may contain `;` per RFC 4475 §3.1.1.9).
    pub user: Option<String>,
    /// The password part, escaped (deprecated but legal).
    pub password: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The raw `?headers` part without the `?`, kept as received (RFC 4475 §3.3.14).
    pub headers: Option<String>,
}

impl SipUri {
    /// A plain `sip:user@host` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(str::to_string),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }

    /// The user part with `%HH` escapes decoded (RFC 3261 §19.1.4 comparison form).
    pub fn user_unescaped(&self) -> Option<Vec<u8>> {
        self.user.as_deref().map(percent_decode)
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params
            .value("transport")
            .map(|t| t.to_ascii_lowercase())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// A `tel:` URI (RFC 3966): the number and its parameters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    /// The telephone-subscriber part (`+1-201-555-0123` or a local number).
    pub number: String,
    /// Parameters such as `phone-context`.
    pub params: Params,
}

impl TelUri {
    /// The number without visual separators (`-`, `.`, `(`, `)`).
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect()
    }
}

/// Any URI a SIP message may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:`.
    Tel(TelUri),
    /// Any other scheme, kept verbatim (RFC 4475 §3.3.2–3.3.4).
    Other {
        /// Scheme, lower-cased.
        scheme: String,
        /// The whole URI as written.
        raw: String,
    },
}

impl Uri {
    /// Parses any absolute URI; `sip`, `sips` and `tel` are understood, others kept raw.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(UriError::BadChar);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError::NoScheme)?;
        let valid_scheme = scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(UriError::BadScheme);
        }
        let lower = scheme.to_ascii_lowercase();
        match lower.as_str() {
            "sip" | "sips" => parse_sip(lower == "sips", rest).map(Uri::Sip),
            "tel" => {
                let (number, params) = match rest.find(';') {
                    Some(i) => (&rest[..i], Params::parse(&rest[i..])),
                    None => (rest, Params::default()),
                };
                if number.is_empty() {
                    return Err(UriError::BadHost);
                }
                Ok(Uri::Tel(TelUri {
                    number: number.to_string(),
                    params,
                }))
            }
            _ => Ok(Uri::Other {
                scheme: lower,
                raw: s.to_string(),
            }),
        }
    }

    /// The scheme, lower-cased.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => write!(f, "{u}"),
            Uri::Tel(t) => write!(f, "tel:{}{}", t.number, t.params),
            Uri::Other { raw, .. } => f.write_str(raw),
        }
    }
}

fn parse_sip(secure: bool, rest: &str) -> Result<SipUri, UriError> {
    // userinfo may hold '?', ';' and ':' (RFC 4475 §3.1.1.2) but never a raw '@'.
    let (userinfo, after_user) = match rest.find('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (hostpart, headers) = match after_user.split_once('?') {
        Some((m, h)) => (m, Some(h.to_string())),
        None => (after_user, None),
    };
    let (user, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (Some(ui.to_string()), None),
        },
        None => (None, None),
    };
    // The hostport ends at the first ';' outside an IPv6 reference.
    let params_at = if hostpart.starts_with('[') {
        let close = hostpart.find(']').ok_or(UriError::BadHost)?;
        hostpart[close..].find(';').map(|i| i + close)
    } else {
        hostpart.find(';')
    };
    let (hostport, params) = match params_at {
        Some(i) => (&hostpart[..i], Params::parse(&hostpart[i..])),
        None => (hostpart, Params::default()),
    };
    let (host, port) = split_hostport(hostport)?;
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

/// Splits `host[:port]`, where host may be an IPv6 reference (RFC 5118 §4.3, §4.4).
pub fn split_hostport(s: &str) -> Result<(Host, Option<u16>), UriError> {
    if s.starts_with('[') {
        let close = s.find(']').ok_or(UriError::BadHost)?;
        let host = Host::parse(&s[..=close])?;
        let port = match &s[close + 1..] {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':').ok_or(UriError::BadPort)?)?),
        };
        return Ok((host, port));
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address (no brackets) has several colons and no port.
        Some((h, p)) if !h.contains(':') => Ok((Host::parse(h)?, Some(parse_port(p)?))),
        _ => Ok((Host::parse(s)?, None)),
    }
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
        return Err(UriError::BadPort);
    }
    p.parse().map_err(|_| UriError::BadPort)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_full() {
        let u = Uri::parse("sips:alice:pw@[2001:db8::10]:5070;transport=tcp;lr?Route=%3Csip:x%3E")
            .unwrap();
        let Uri::Sip(s) = &u else { panic!() };
        assert!(s.secure);
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.port, Some(5070));
        assert_eq!(s.transport().as_deref(), Some("tcp"));
        assert_eq!(s.headers.as_deref(), Some("Route=%3Csip:x%3E"));
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
    }

    #[test]
    fn rfc5118_4_3_port_ambiguous_is_an_address() {
        let Uri::Sip(s) = Uri::parse("sip:user@[2001:db8::10:5070]").unwrap() else {
            panic!()
        };
        assert_eq!(s.port, None);
        assert_eq!(s.host, Host::V6("2001:db8::10:5070".parse().unwrap()));
    }

    #[test]
    fn rfc4475_3_1_1_9_semicolon_in_user() {
        let Uri::Sip(s) = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap() else {
            panic!()
        };
        assert_eq!(s.user_unescaped().unwrap(), b"user;par=u@example.net");
        assert_eq!(s.host, Host::Domain("example.com".into()));
    }

    #[test]
    fn tel_and_unknown_schemes() {
        assert_eq!(Uri::parse("tel:+1-201-555-0123").unwrap().scheme(), "tel");
        let u = Uri::parse("isbn:2983792873").unwrap();
        assert_eq!(u.scheme(), "isbn");
        assert_eq!(u.to_string(), "isbn:2983792873");
        assert!(Uri::parse("nocolon").is_err());
        assert!(Uri::parse("sip:host:99999").is_err());
    }
}

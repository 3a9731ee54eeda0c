//! `name-addr` / `addr-spec` headers: From, To, Contact, Route, Record-Route (RFC 3261 §20.10).

use std::fmt;

use crate::text::{find_unquoted, unquote, Params};
use crate::uri::{Uri, UriError};

/// A display name, a URI and header parameters (`tag`, `expires`, `q`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name as written (quoted string or tokens), if any.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters, i.e. those after `>` or after a bare URI.
    pub params: Params,
    /// Whether the URI was written in `<...>` (kept so printing is faithful).
    pub angle: bool,
}

impl NameAddr {
    /// A `<uri>` with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
            angle: true,
        }
    }

    /// Parses `"Name" <uri>;p=v`, `Name<uri>` (RFC 4475 §3.1.1.6) or a bare `uri;p=v`.
    pub fn parse(s: &str) -> Result<NameAddr, UriError> {
        let s = s.trim();
        if let Some(lt) = find_unquoted(s, b'<', 0) {
            let gt = s[lt..].find('>').ok_or(UriError::BadChar)? + lt;
            let display = s[..lt].trim();
            return Ok(NameAddr {
                display: (!display.is_empty()).then(|| display.to_string()),
                uri: Uri::parse(s[lt + 1..gt].trim())?,
                params: Params::parse(&s[gt + 1..]),
                angle: true,
            });
        }
        // In an addr-spec the parameters after ';' belong to the header, not the URI.
        let (uri, params) = match s.find(';') {
            Some(i) => (s[..i].trim(), Params::parse(&s[i..])),
            None => (s, Params::default()),
        };
        Ok(NameAddr {
            display: None,
            uri: Uri::parse(uri)?,
            params,
            angle: false,
        })
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<String> {
        self.params.value("tag")
    }

    /// The `expires` parameter in seconds, if present and numeric (Contact, §10.2.1.1).
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires")?.trim().parse().ok()
    }

    /// The display name without quotes and escapes.
    pub fn display_name(&self) -> Option<String> {
        let d = self.display.as_deref()?;
        Some(unquote(d).unwrap_or_else(|| d.to_string()))
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        // A URI with parameters or headers must be bracketed so they stay with the URI.
        let needs_angle = self.angle
            || self.display.is_some()
            || matches!(&self.uri, Uri::Sip(s) if !s.params.is_empty() || s.headers.is_some());
        if needs_angle {
            write!(f, "<{}>", self.uri)?;
        } else {
            write!(f, "{}", self.uri)?;
        }
        write!(f, "{}", self.params)
    }
}

/// One Contact value: an address or the `*` of a remove-all REGISTER (RFC 3261 §10.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// `Contact: *`.
    Star,
    /// A contact address.
    Addr(NameAddr),
}

impl Contact {
    /// Parses one Contact value.
    pub fn parse(s: &str) -> Result<Contact, UriError> {
        if s.trim() == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse(s).map(Contact::Addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4475_3_1_1_6_no_lws_before_angle() {
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert_eq!(n.tag().as_deref(), Some("323"));
    }

    #[test]
    fn rfc4475_3_3_12_bare_contact_param_is_header_param() {
        let n = NameAddr::parse("sip:user@host.example.com;unknownparam").unwrap();
        assert!(n.params.has("unknownparam"));
        let Uri::Sip(u) = &n.uri else { panic!() };
        assert!(u.params.is_empty());
    }

    #[test]
    fn rfc4475_3_3_13_bracketed_param_is_uri_param() {
        let n = NameAddr::parse("<sip:user@host.example.com;unknownparam>").unwrap();
        assert!(n.params.is_empty());
        let Uri::Sip(u) = &n.uri else { panic!() };
        assert!(u.params.has("unknownparam"));
        assert_eq!(n.to_string(), "<sip:user@host.example.com;unknownparam>");
    }

    #[test]
    fn quoted_display_with_angle_inside() {
        let n = NameAddr::parse(r#""a <b> \"c\"" <sip:x@y>;tag=1"#).unwrap();
        assert_eq!(n.display_name().as_deref(), Some(r#"a <b> "c""#));
        assert_eq!(
            NameAddr::parse("<sip:a@b>;expires=60").unwrap().expires(),
            Some(60)
        );
    }
}

//! Header fields: names (with RFC 3261 §7.3.3 compact forms), raw values, typed views.
//!
//! Values are stored raw (folding collapsed to one space) so a message relays unchanged; each
//! typed header lives in its own module and parses on demand.

mod auth;
mod cseq;
mod name_addr;
mod via;

pub use auth::{AuthParams, Challenge, Credentials};
pub use cseq::CSeq;
pub use name_addr::{Contact, NameAddr};
pub use via::{Via, BRANCH_COOKIE};

use std::fmt;

use crate::text::split_top_level;

macro_rules! header_names {
    ($($variant:ident = $full:literal $(/ $compact:literal)?, $list:literal;)*) => {
        /// A header field name. Unknown names keep their spelling.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = $full]
                $variant,
            )*
            /// Any other header, as written.
            Other(String),
        }

        impl HeaderName {
            /// Maps a name as found on the wire (case-insensitive, compact forms expanded).
            pub fn from_wire(s: &str) -> HeaderName {
                $(
                    if s.eq_ignore_ascii_case($full) $(|| s.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(s.to_string())
            }

            /// The canonical (long) name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(HeaderName::$variant => $full,)*
                    HeaderName::Other(s) => s,
                }
            }

            /// True when the grammar allows several comma-separated values (RFC 3261 §7.3.1).
            pub fn is_list(&self) -> bool {
                match self {
                    $(HeaderName::$variant => $list,)*
                    HeaderName::Other(_) => false,
                }
            }
        }
    };
}

header_names! {
    Accept = "Accept", true;
    AcceptEncoding = "Accept-Encoding", true;
    AcceptLanguage = "Accept-Language", true;
    Allow = "Allow", true;
    AllowEvents = "Allow-Events" / "u", true;
    Authorization = "Authorization", false;
    CallId = "Call-ID" / "i", false;
    Contact = "Contact" / "m", true;
    ContentDisposition = "Content-Disposition", false;
    ContentEncoding = "Content-Encoding" / "e", true;
    ContentLength = "Content-Length" / "l", false;
    ContentType = "Content-Type" / "c", false;
    CSeq = "CSeq", false;
    Date = "Date", false;
    Event = "Event" / "o", false;
    Expires = "Expires", false;
    From = "From" / "f", false;
    MaxForwards = "Max-Forwards", false;
    MinExpires = "Min-Expires", false;
    Path = "Path", true;
    ProxyAuthenticate = "Proxy-Authenticate", false;
    ProxyAuthorization = "Proxy-Authorization", false;
    ProxyRequire = "Proxy-Require", true;
    RecordRoute = "Record-Route", true;
    ReferTo = "Refer-To" / "r", false;
    ReferredBy = "Referred-By" / "b", false;
    Require = "Require", true;
    Route = "Route", true;
    Server = "Server", false;
    SessionExpires = "Session-Expires" / "x", false;
    Subject = "Subject" / "s", false;
    Supported = "Supported" / "k", true;
    Timestamp = "Timestamp", false;
    To = "To" / "t", false;
    Unsupported = "Unsupported", true;
    UserAgent = "User-Agent", false;
    Via = "Via" / "v", true;
    Warning = "Warning", true;
    WwwAuthenticate = "WWW-Authenticate", false;
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: its name and raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value, with surrounding whitespace trimmed and line folding collapsed.
    pub value: String,
}

/// The header section of a message, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// An empty header section.
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts a header line before all others.
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Replaces every line named `name` with one line holding `value`.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = 0;
                self.0.retain(|h| {
                    let keep = h.name != name || seen == 0;
                    if h.name == name {
                        seen += 1;
                    }
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// The raw value of the first line named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Raw values of every line named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| &h.name == name)
            .map(|h| h.value.as_str())
    }

    /// Every value of a list header, comma-joined lines split (RFC 3261 §7.3.1).
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| split_top_level(v, b','))
            .filter(|v| !v.is_empty())
    }

    /// Number of lines named `name`.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    /// All lines in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no header line.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_7_3_3_compact_forms() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire("I"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire("call-id"), HeaderName::CallId);
        assert_eq!(
            HeaderName::from_wire("C%6Fntact"),
            HeaderName::Other("C%6Fntact".into())
        );
    }

    #[test]
    fn list_values_split() {
        let mut h = Headers::new();
        h.push(HeaderName::Contact, "<sip:a@b>, \"x,y\" <sip:c@d>");
        h.push(HeaderName::Contact, "sip:e@f");
        assert_eq!(h.values(&HeaderName::Contact).count(), 3);
        h.set(HeaderName::Contact, "*");
        assert_eq!(h.count(&HeaderName::Contact), 1);
    }
}

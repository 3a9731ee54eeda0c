//! Lexical helpers shared by the header and URI parsers (RFC 3261 §25.1).

/// True for RFC 3261 `token` characters.
pub(crate) fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True when `s` is a non-empty RFC 3261 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits a header value on `sep` outside quoted strings and `<...>`, trimming each part.
///
/// Used for headers whose grammar is a comma-separated list (Via, Contact, Route, ...) and for
/// parameter lists. Lazy: the hot path often wants only the first value.
pub(crate) fn split_top_level(s: &str, sep: u8) -> TopLevelSplit<'_> {
    TopLevelSplit {
        s,
        pos: 0,
        sep,
        done: false,
    }
}

/// Iterator returned by [`split_top_level`].
pub(crate) struct TopLevelSplit<'a> {
    s: &'a str,
    pos: usize,
    sep: u8,
    done: bool,
}

impl<'a> Iterator for TopLevelSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut in_angle = false;
        for (i, b) in unquoted_bytes(self.s, start) {
            match b {
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if b == self.sep && !in_angle => {
                    self.pos = i + 1;
                    return Some(self.s[start..i].trim());
                }
                _ => {}
            }
        }
        self.done = true;
        Some(self.s[start..].trim())
    }
}

/// Finds `needle` outside quoted strings, starting at `from`.
pub(crate) fn find_unquoted(s: &str, needle: u8, from: usize) -> Option<usize> {
    unquoted_bytes(s, from)
        .find(|&(_, b)| b == needle)
        .map(|(i, _)| i)
}

/// The bytes of `s` from `from` on that lie outside quoted strings (quotes themselves and
/// quoted-pair escapes included in the skipping), with their offsets.
fn unquoted_bytes(s: &str, from: usize) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_quote, mut escaped) = (false, false);
    s.bytes().enumerate().skip(from).filter(move |&(_, b)| {
        if in_quote {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
            return false;
        }
        if b == b'"' {
            in_quote = true;
            return false;
        }
        true
    })
}

/// Removes the quotes and quoted-pair escapes of an RFC 3261 `quoted-string`.
///
/// Returns `None` when `s` is not exactly one quoted string.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            _ => out.push(c),
        }
    }
    Some(out)
}

/// Quotes `s` as an RFC 3261 `quoted-string`, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2, `escaped`); invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A `;name[=value]` parameter list, order and raw values kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` optional). Values stay raw (quotes kept).
    pub fn parse(s: &str) -> Params {
        let s = s.trim();
        let s = s.strip_prefix(';').unwrap_or(s);
        if s.is_empty() {
            return Params::default();
        }
        Params(
            split_top_level(s, b';')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
                    None => (p.trim().to_string(), None),
                })
                .collect(),
        )
    }

    /// The raw value of the first parameter named `name` (case-insensitive):
    /// `Some(None)` for a flag parameter, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name` with quotes removed, if present with a value.
    pub fn value(&self, name: &str) -> Option<String> {
        let v = self.get(name)??;
        Some(unquote(v).unwrap_or_else(|| v.to_string()))
    }

    /// True when the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replacing) or adds a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// Removes every parameter named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Iterates over `(name, raw value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<&str> = split_top_level(r#""a,b" <sip:x;a=1,2>;q=1, <sip:y>"#, b',').collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], "<sip:y>");
    }

    #[test]
    fn unquote_handles_quoted_pairs() {
        assert_eq!(unquote(r#""a\"b\\c""#).as_deref(), Some(r#"a"b\c"#));
        assert_eq!(unquote(r#""a"b""#), None);
    }

    #[test]
    fn percent_decode_keeps_nul_and_bad_escapes() {
        assert_eq!(percent_decode("a%00b%zz%4"), b"a\0b%zz%4".to_vec());
    }

    #[test]
    fn params_roundtrip() {
        let p = Params::parse(";branch=z9hG4bK1;rport;received=1.2.3.4");
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("BRANCH").as_deref(), Some("z9hG4bK1"));
        assert_eq!(p.to_string(), ";branch=z9hG4bK1;rport;received=1.2.3.4");
    }
}

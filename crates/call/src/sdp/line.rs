//! One SDP line exactly as received: its bytes and its line ending.
//!
//! RFC 8866 §5 ends every line with CRLF and tells parsers to accept a bare LF too. Both are kept
//! per line (and a missing ending on the last line), so printing gives back the received bytes.

/// How a line ended on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eol {
    /// `\r\n`, the RFC 8866 form.
    CrLf,
    /// A bare `\n` (accepted by RFC 8866 §5; the RFC 5118 examples use it).
    Lf,
    /// Nothing: the last line of a body that does not end with a line break.
    None,
}

impl Eol {
    fn bytes(self) -> &'static [u8] {
        match self {
            Eol::CrLf => b"\r\n",
            Eol::Lf => b"\n",
            Eol::None => b"",
        }
    }
}

/// A line: `<type>=<value>` (or an empty line, tolerated and kept) and its ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    text: Vec<u8>,
    eol: Eol,
}

impl Line {
    /// The type letter (`b'a'` for `a=...`); `None` for an empty line.
    pub(crate) fn kind(&self) -> Option<u8> {
        match self.text.as_slice() {
            [kind, b'=', ..] => Some(*kind),
            _ => None,
        }
    }

    /// Whether the line has the `<letter>=` shape, or is empty.
    pub(crate) fn is_well_formed(&self) -> bool {
        self.text.is_empty() || self.kind().is_some_and(|k| k.is_ascii_alphabetic())
    }

    /// The raw bytes after `<type>=`.
    pub(crate) fn value(&self) -> &[u8] {
        self.text.get(2..).unwrap_or_default()
    }

    /// The value as text; `None` when it is not UTF-8.
    pub(crate) fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(self.value()).ok()
    }

    /// The whole line without its ending.
    pub(crate) fn text(&self) -> &[u8] {
        &self.text
    }

    /// The value of an `a=` line split into name and optional value (RFC 8866 §5.13).
    pub(crate) fn attribute(&self) -> Option<super::Attribute<'_>> {
        if self.kind() != Some(b'a') {
            return None;
        }
        super::Attribute::parse(self.value_str()?)
    }

    /// Whether this is an `a=` line with attribute name `name`.
    pub(crate) fn is_attribute(&self, name: &str) -> bool {
        self.attribute().is_some_and(|a| a.name == name)
    }

    /// A new line `text` with the same ending as `like` (a missing ending becomes CRLF: the
    /// line goes before others).
    pub(crate) fn new_like(text: &str, like: &Line) -> Line {
        Line {
            text: text.as_bytes().to_vec(),
            eol: match like.eol {
                Eol::None => Eol::CrLf,
                e => e,
            },
        }
    }

    /// Gives a line without an ending (the last of a body) a CRLF, before lines follow it.
    pub(crate) fn ensure_eol(&mut self) {
        if self.eol == Eol::None {
            self.eol = Eol::CrLf;
        }
    }

    /// Replaces the value, keeping the type letter and the line ending.
    pub(crate) fn set_value(&mut self, value: &str) {
        self.text.truncate(2);
        self.text.extend_from_slice(value.as_bytes());
    }

    #[cfg(test)]
    fn eol(&self) -> Eol {
        self.eol
    }

    /// Appends the line and its ending to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.text);
        out.extend_from_slice(self.eol.bytes());
    }
}

/// Splits a body into lines at each LF; a CR right before the LF belongs to the ending.
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            lines.push(Line {
                text: rest.to_vec(),
                eol: Eol::None,
            });
            break;
        };
        let (text, eol) = match rest[..lf].strip_suffix(b"\r") {
            Some(text) => (text, Eol::CrLf),
            None => (&rest[..lf], Eol::Lf),
        };
        lines.push(Line {
            text: text.to_vec(),
            eol,
        });
        rest = &rest[lf + 1..];
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_are_kept_per_line() {
        let lines = split_lines(b"v=0\r\no=x\ns=-");
        let eols: Vec<Eol> = lines.iter().map(Line::eol).collect();
        assert_eq!(eols, [Eol::CrLf, Eol::Lf, Eol::None]);
        let mut out = Vec::new();
        lines.iter().for_each(|l| l.write(&mut out));
        assert_eq!(out, b"v=0\r\no=x\ns=-");
    }

    #[test]
    fn a_lone_cr_stays_in_the_text() {
        let lines = split_lines(b"s=a\rb\r\n");
        assert_eq!(lines[0].value(), b"a\rb");
        assert_eq!(lines[0].eol(), Eol::CrLf);
    }

    #[test]
    fn shape() {
        assert!(split_lines(b"a=x\r\n")[0].is_well_formed());
        assert!(split_lines(b"\n")[0].is_well_formed());
        assert!(!split_lines(b"garbage\n")[0].is_well_formed());
        assert!(!split_lines(b"1=x\n")[0].is_well_formed());
    }
}

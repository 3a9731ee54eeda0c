//! Attribute lines, `a=<name>` or `a=<name>:<value>` (RFC 8866 §5.13).

/// A borrowed view of one `a=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// The attribute name (`rtpmap`, `sendonly`, ...); compared case-sensitively.
    pub name: &'a str,
    /// The text after the first `:`, if there is one.
    pub value: Option<&'a str>,
}

impl<'a> Attribute<'a> {
    /// Splits an `a=` line's value at its first `:`; `None` when the name is empty.
    pub(crate) fn parse(text: &'a str) -> Option<Attribute<'a>> {
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        (!name.is_empty()).then_some(Attribute { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_and_value_attributes() {
        let flag = Attribute::parse("sendrecv").unwrap();
        assert_eq!((flag.name, flag.value), ("sendrecv", None));
        let rtpmap = Attribute::parse("rtpmap:96 opus/48000/2").unwrap();
        assert_eq!(
            (rtpmap.name, rtpmap.value),
            ("rtpmap", Some("96 opus/48000/2"))
        );
        let fmtp = Attribute::parse("fmtp:101 0-15").unwrap();
        assert_eq!(fmtp.value, Some("101 0-15"));
        assert_eq!(Attribute::parse(":x"), None);
    }
}

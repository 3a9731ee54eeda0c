//! Editing the top Via of a header section (`sip::Headers` has no in-place edit).

use sip::{HeaderName, Headers};

/// Replaces the top Via value with `top`, keeping every other Via (also those comma-joined on
/// the same line) in order. The Via lines end up first in the header section, which changes no
/// meaning (the order of different header names is not significant, RFC 3261 §7.3.1).
pub(crate) fn replace_top(headers: &mut Headers, top: &str) {
    let mut vias: Vec<String> = headers
        .get_all(&HeaderName::Via)
        .map(str::to_string)
        .collect();
    let Some(first) = vias.first_mut() else {
        headers.push_front(HeaderName::Via, top);
        return;
    };
    *first = match after_first_value(first) {
        Some(rest) => format!("{top}, {rest}"),
        None => top.to_string(),
    };
    headers.remove(&HeaderName::Via);
    for v in vias.into_iter().rev() {
        headers.push_front(HeaderName::Via, v);
    }
}

/// What follows the first comma outside a quoted string, if anything.
fn after_first_value(line: &str) -> Option<&str> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                let rest = line[i + 1..].trim();
                return (!rest.is_empty()).then_some(rest);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_7_3_1_comma_joined_top_via_replaced_alone() {
        let mut h = Headers::new();
        h.push(HeaderName::To, "<sip:b@example.com>");
        h.push(HeaderName::Via, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;x=\"q,r\", SIP/2.0/UDP b.example.com;branch=z9hG4bK2");
        h.push(HeaderName::Via, "SIP/2.0/TCP c.example.com;branch=z9hG4bK3");
        replace_top(
            &mut h,
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=192.0.2.1",
        );
        let vias: Vec<&str> = h.values(&HeaderName::Via).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=192.0.2.1",
                "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
                "SIP/2.0/TCP c.example.com;branch=z9hG4bK3"
            ]
        );
        assert_eq!(h.get(&HeaderName::To), Some("<sip:b@example.com>"));
    }
}

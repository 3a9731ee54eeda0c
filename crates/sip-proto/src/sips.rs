//! The SIPS URI scheme (RFC 3261 §26.2.2 as amended by RFC 5630): a `sips:` Request-URI asks
//! that every hop be secured with TLS, with no last-hop exception (RFC 5630 §3.3, Appendix A).
//! Pure decisions for the driver, which knows the transport a request came over and answers
//! with [`SipsRefusal::status`] and [`SipsRefusal::warning`].
//!
//! What homeline does with the scheme:
//! - a request whose Request-URI is `sips:` over a hop that is not TLS is refused with 480
//!   and warn-code 380 "SIPS Not Allowed" (RFC 5630 §5.3 and §9 name 480 + 380 as the way to
//!   say a SIPS request cannot be served as SIPS; RFC 3261 §26.2.2: a SIPS resource may
//!   refuse requests over insecure transports). A REGISTER binding a `sips:` Contact over such
//!   a hop is refused the same way: the binding could never be reached securely;
//! - a REGISTER with a `sips:` Contact but a `sip:` Request-URI, or a `sips:` Contact next to
//!   `sip:` ones, is refused with 400 (RFC 5630 §5.2);
//! - a call with a `sips:` Request-URI rings only contacts reached over TLS, each with a
//!   `sips:` Request-URI; a call with a `sip:` Request-URI to a `sips:` contact is sent with
//!   the scheme replaced by `sip:` (RFC 5630 §5.3: a proxy never upgrades nor downgrades);
//! - homeline's Contact in a dialog set up with a SIPS URI is a SIPS URI (RFC 3261 §12.1.1,
//!   RFC 5630 §5.1.2).
//!
//! `transport=tls` is deprecated (RFC 3261 §26.2.2, RFC 5630 §3.1.4): it is dropped from a
//! contact turned into a `sips:` Request-URI, and on a `sip:` Request-URI it is only a
//! parameter: it neither makes a request SIPS nor is refused over another transport.

use sip::header::{Contact, NameAddr};
use sip::{HeaderName, Method, Request, StatusCode, Uri};

use crate::path::Transport;

/// The warn-code of RFC 5630 §9: "SIPS Not Allowed".
pub const WARN_SIPS_NOT_ALLOWED: u16 = 380;

/// Why a request is refused under the SIPS rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipsRefusal {
    /// A `sips:` Request-URI (or a `sips:` Contact to bind) received over a hop that is not
    /// TLS.
    #[error(
        "SIPS Not Allowed: a sips: URI needs TLS on every hop, and this request came over {0}"
    )]
    InsecureHop(Transport),
    /// A REGISTER binding a `sips:` Contact whose Request-URI or other Contacts are `sip:`.
    #[error("a sips: Contact needs a sips: Request-URI and only sips: Contacts (RFC 5630 5.2)")]
    InconsistentRegister,
    /// A call with a `sips:` Request-URI to a station none of whose contacts is reached over
    /// TLS.
    #[error("SIPS Not Allowed: the called station has no contact reachable over TLS")]
    NoSecureContact,
}

impl SipsRefusal {
    /// 480 Temporarily Unavailable with warn-code 380 for what cannot be served as SIPS
    /// (RFC 5630 §5.3, §9), 400 Bad Request for an inconsistent REGISTER (RFC 5630 §5.2).
    pub fn status(self) -> StatusCode {
        match self {
            SipsRefusal::InconsistentRegister => StatusCode::BAD_REQUEST,
            SipsRefusal::InsecureHop(_) | SipsRefusal::NoSecureContact => {
                StatusCode::TEMPORARILY_UNAVAILABLE
            }
        }
    }

    /// The warn-code for the Warning header (RFC 3261 §20.43): 380 where RFC 5630 names it,
    /// else 399 (miscellaneous).
    pub fn warn_code(self) -> u16 {
        match self {
            SipsRefusal::InconsistentRegister => 399,
            _ => WARN_SIPS_NOT_ALLOWED,
        }
    }

    /// The whole Warning header value, `agent` naming homeline.
    pub fn warning(self, agent: &str) -> String {
        format!("{} {agent} \"{self}\"", self.warn_code())
    }
}

/// True for a `sips:` URI.
pub fn is_sips(uri: &Uri) -> bool {
    matches!(uri, Uri::Sip(u) if u.secure)
}

/// True when `transport` is secured with TLS (TLS, or WebSocket over TLS).
pub fn is_secure(transport: Transport) -> bool {
    matches!(transport, Transport::Tls | Transport::Wss)
}

/// The SIPS checks of a request received over `transport`, before anything else is done with
/// it (no challenge is worth sending for a request that will be refused anyway).
pub fn check_request(req: &Request, transport: Transport) -> Result<(), SipsRefusal> {
    let secure = is_secure(transport);
    if is_sips(&req.uri) && !secure {
        return Err(SipsRefusal::InsecureHop(transport));
    }
    if req.method != Method::Register {
        return Ok(());
    }
    let contacts: Vec<bool> = req
        .headers
        .values(&HeaderName::Contact)
        .filter_map(|v| Contact::parse(v).ok())
        .filter_map(|c| match c {
            Contact::Addr(na) => Some(is_sips(&na.uri)),
            _ => None,
        })
        .collect();
    if !contacts.iter().any(|s| *s) {
        return Ok(());
    }
    if !secure {
        return Err(SipsRefusal::InsecureHop(transport));
    }
    if !is_sips(&req.uri) || contacts.iter().any(|s| !s) {
        return Err(SipsRefusal::InconsistentRegister);
    }
    Ok(())
}

/// True when a dialog set up by `req` is a SIPS dialog, whose Contact must be a SIPS URI
/// (RFC 3261 §12.1.1): the Request-URI is `sips:`, or the top Record-Route is, or, without
/// Record-Route, the Contact is.
pub fn dialog_is_sips(req: &Request) -> bool {
    if is_sips(&req.uri) {
        return true;
    }
    let first_uri = |name: &HeaderName| {
        req.headers
            .values(name)
            .next()
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|na| is_sips(&na.uri))
    };
    match first_uri(&HeaderName::RecordRoute) {
        Some(rr) => rr,
        None => first_uri(&HeaderName::Contact).unwrap_or(false),
    }
}

/// True when homeline answers `req` with a `sips:` Contact: the dialog is a SIPS one
/// ([`dialog_is_sips`]) and the peer itself put a `sips:` URI in its Contact or top
/// Record-Route, as RFC 5630 §5.1.1 requires of it. A peer that sends a `sips:` Request-URI
/// with a `sip:` Contact (baresip 1.0: its stack cannot send to a `sips:` URI at all) gets a
/// `sip:` Contact with `transport=tls` instead, which still keeps every hop on TLS; a
/// `sips:` one would leave it unable to acknowledge the answer or hang up.
pub fn answer_with_sips_contact(req: &Request) -> bool {
    if !dialog_is_sips(req) {
        return false;
    }
    let first_sips = |name: &HeaderName| {
        req.headers
            .values(name)
            .next()
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|na| is_sips(&na.uri))
    };
    first_sips(&HeaderName::RecordRoute)
        .or_else(|| first_sips(&HeaderName::Contact))
        .unwrap_or(false)
}

/// The Request-URI for a call to a registered `contact`: its scheme is the one the call came
/// with (`sips` true for a `sips:` Request-URI), never upgraded nor downgraded on the way
/// (RFC 5630 §5.3); a `sips:` one carries no `transport=tls` (deprecated, RFC 5630 §3.1.4).
pub fn target_uri(contact: &Uri, sips: bool) -> Uri {
    match contact {
        Uri::Sip(u) => {
            let mut u = u.clone();
            u.secure = sips;
            if sips && u.transport().as_deref() == Some("tls") {
                u.params.remove("transport");
            }
            Uri::Sip(u)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use sip::{parse_datagram, Message};

    use super::*;

    fn request(start: &str, extra: &str) -> Request {
        let method = start.split(' ').next().unwrap_or("OPTIONS");
        let text = format!(
            "{start} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKsips1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:2001@pbx.example>;tag=a\r\nTo: <sip:2002@pbx.example>\r\n\
             Call-ID: sips-test\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse_datagram(text.as_bytes(), 65535) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn rfc5630_5_3_sips_request_uri_over_udp_or_tcp_is_refused_480_with_warning_380() {
        let req = request(
            "INVITE sips:2002@pbx.example",
            "Contact: <sips:2001@192.0.2.20>\r\n",
        );
        for t in [Transport::Udp, Transport::Tcp, Transport::Ws] {
            let e = check_request(&req, t).unwrap_err();
            assert_eq!(e, SipsRefusal::InsecureHop(t));
            assert_eq!(e.status(), StatusCode::TEMPORARILY_UNAVAILABLE);
            assert_eq!(e.warn_code(), 380);
            let w = e.warning("homeline");
            assert!(w.starts_with("380 homeline \"SIPS Not Allowed"), "{w}");
            assert!(w.contains(t.as_str()), "{w}");
        }
        assert_eq!(check_request(&req, Transport::Tls), Ok(()));
        assert_eq!(check_request(&req, Transport::Wss), Ok(()));
    }

    #[test]
    fn rfc3261_26_2_2_sip_request_uri_is_served_over_any_transport() {
        let req = request("OPTIONS sip:2002@pbx.example", "");
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            assert_eq!(check_request(&req, t), Ok(()));
        }
    }

    #[test]
    fn rfc5630_5_2_register_with_sips_request_uri_over_udp_is_refused() {
        let req = request(
            "REGISTER sips:pbx.example",
            "Contact: <sips:2001@192.0.2.20:5061>\r\n",
        );
        let e = check_request(&req, Transport::Udp).unwrap_err();
        assert_eq!(e.status(), StatusCode::TEMPORARILY_UNAVAILABLE);
        assert_eq!(check_request(&req, Transport::Tls), Ok(()));
        // baresip's form: sips AOR and Request-URI, a sip: Contact with transport=tls.
        let req = request(
            "REGISTER sips:pbx.example;transport=tls",
            "Contact: <sip:2001@192.0.2.20:5061;transport=tls>\r\n",
        );
        assert_eq!(check_request(&req, Transport::Tls), Ok(()));
        assert!(check_request(&req, Transport::Tcp).is_err());
    }

    #[test]
    fn rfc5630_5_2_sips_contact_over_a_non_tls_connection_is_refused() {
        // A sip: Request-URI does not make a sips: Contact reachable over UDP.
        let req = request(
            "REGISTER sip:pbx.example",
            "Contact: <sips:2001@192.0.2.20:5061>\r\n",
        );
        for t in [Transport::Udp, Transport::Tcp] {
            let e = check_request(&req, t).unwrap_err();
            assert_eq!(e, SipsRefusal::InsecureHop(t));
            assert_eq!(e.status(), StatusCode::TEMPORARILY_UNAVAILABLE);
        }
        // Over TLS the Request-URI must still be sips: (400, RFC 5630 §5.2).
        let e = check_request(&req, Transport::Tls).unwrap_err();
        assert_eq!(e, SipsRefusal::InconsistentRegister);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.warning("homeline").starts_with("399 homeline "));
    }

    #[test]
    fn rfc5630_5_2_sips_contact_next_to_a_sip_contact_is_refused_400() {
        let req = request(
            "REGISTER sips:pbx.example",
            "Contact: <sips:2001@192.0.2.20:5061>\r\nContact: <sip:2001@192.0.2.20:5060>\r\n",
        );
        assert_eq!(
            check_request(&req, Transport::Tls),
            Err(SipsRefusal::InconsistentRegister)
        );
    }

    #[test]
    fn rfc5630_3_1_4_transport_tls_on_a_sip_uri_over_udp_is_just_a_parameter() {
        // Deprecated, but neither SIPS nor a reason to refuse: no panic, no refusal.
        let req = request(
            "INVITE sip:2002@pbx.example;transport=tls",
            "Route: <sip:pbx.example;transport=tls;lr>\r\nContact: <sip:2001@192.0.2.20;transport=tls>\r\n",
        );
        assert_eq!(check_request(&req, Transport::Udp), Ok(()));
        assert!(!dialog_is_sips(&req));
        let reg = request(
            "REGISTER sip:pbx.example;transport=tls",
            "Contact: <sip:2001@192.0.2.20;transport=tls>\r\n",
        );
        assert_eq!(check_request(&reg, Transport::Udp), Ok(()));
    }

    #[test]
    fn rfc3261_12_1_1_dialog_is_sips_by_request_uri_record_route_or_contact() {
        assert!(dialog_is_sips(&request("INVITE sips:2002@pbx.example", "")));
        assert!(dialog_is_sips(&request(
            "INVITE sip:2002@pbx.example",
            "Contact: <sips:2001@192.0.2.20>\r\n"
        )));
        assert!(dialog_is_sips(&request(
            "INVITE sip:2002@pbx.example",
            "Record-Route: <sips:proxy.example;lr>\r\nContact: <sip:2001@192.0.2.20>\r\n"
        )));
        // The top Record-Route decides over the Contact.
        assert!(!dialog_is_sips(&request(
            "INVITE sip:2002@pbx.example",
            "Record-Route: <sip:proxy.example;lr>, <sips:p2.example;lr>\r\nContact: <sips:2001@192.0.2.20>\r\n"
        )));
        assert!(!dialog_is_sips(&request(
            "INVITE sip:2002@pbx.example",
            "Contact: <sip:2001@192.0.2.20;transport=tls>\r\n"
        )));
    }

    #[test]
    fn rfc3261_12_1_1_sips_contact_for_a_peer_that_uses_sips_itself() {
        assert!(answer_with_sips_contact(&request(
            "INVITE sips:2002@pbx.example",
            "Contact: <sips:2001@192.0.2.20>\r\n"
        )));
        // baresip 1.0: sips: Request-URI, sip: Contact with transport=tls.
        assert!(!answer_with_sips_contact(&request(
            "INVITE sips:2002@pbx.example;transport=tls",
            "Contact: <sip:2001@192.0.2.20:5061;transport=tls>\r\n"
        )));
        assert!(!answer_with_sips_contact(&request(
            "INVITE sip:2002@pbx.example",
            "Contact: <sip:2001@192.0.2.20>\r\n"
        )));
    }

    #[test]
    fn rfc5630_5_3_target_uri_keeps_the_scheme_of_the_call() {
        let c = Uri::parse("sip:2002-x@192.0.2.30:5061;transport=tls;ob").unwrap();
        assert_eq!(
            target_uri(&c, true).to_string(),
            "sips:2002-x@192.0.2.30:5061;ob"
        );
        assert_eq!(target_uri(&c, false), c);
        let s = Uri::parse("sips:2002@192.0.2.30:5061").unwrap();
        assert_eq!(
            target_uri(&s, false).to_string(),
            "sip:2002@192.0.2.30:5061"
        );
        assert_eq!(target_uri(&s, true), s);
        let t = Uri::parse("sip:2002@192.0.2.30;transport=tcp").unwrap();
        assert_eq!(
            target_uri(&t, true).to_string(),
            "sips:2002@192.0.2.30;transport=tcp"
        );
    }
}

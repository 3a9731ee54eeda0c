//! Checks every request gets before it reaches the registrar or a call (RFC 3261 §8.2.1–8.2.2),
//! and the OPTIONS answer (§11.2).

use sip::{HeaderName, Method, Request, Response, StatusCode, Uri};

/// Methods homeline answers today, as listed in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS";

/// Option tags homeline supports: reliable provisionals (RFC 3262) and session timers (RFC 4028),
/// both carried by the B2BUA.
const SUPPORTED: [&str; 2] = ["100rel", "timer"];

/// The answer for a request that must not go further, or `None` to process it.
///
/// In RFC order: 483 for a request to be routed with Max-Forwards 0 (RFC 4475 §3.3.11), 405 for a
/// known method we do not serve and 501 for an unknown one (§8.2.1, both with Allow), 416 for a
/// Request-URI scheme other than sip/sips/tel (§8.2.2.1, RFC 4475 §3.3.2), 420 with Unsupported
/// for required extensions (§8.2.2.3, RFC 4475 §3.3.5).
pub fn precheck(req: &Request, to_tag: &str) -> Option<Response> {
    let reply = |status| Response::for_request(req, status, Some(to_tag));
    // A request for a user (an OPTIONS to a station, an INVITE) is one we would route onwards;
    // REGISTER and an OPTIONS to the server itself end here (RFC 4475 §3.3.11: endpoints process
    // Max-Forwards 0 normally).
    let for_user =
        req.uri.as_sip().is_some_and(|u| u.user.is_some()) || matches!(req.uri, Uri::Tel(_));
    let routed = match req.method {
        Method::Register | Method::Ack | Method::Cancel => false,
        Method::Options => for_user,
        _ => true,
    };
    if routed && req.max_forwards() == Some(0) {
        return Some(reply(StatusCode::TOO_MANY_HOPS));
    }
    let served = matches!(
        req.method,
        Method::Invite
            | Method::Bye
            | Method::Register
            | Method::Options
            | Method::Ack
            | Method::Cancel
    );
    if !served {
        let status = match req.method {
            Method::Extension(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::METHOD_NOT_ALLOWED,
        };
        let mut resp = reply(status);
        resp.headers.push(HeaderName::Allow, ALLOW);
        return Some(resp);
    }
    if !matches!(req.uri, Uri::Sip(_) | Uri::Tel(_)) {
        return Some(reply(StatusCode::UNSUPPORTED_URI_SCHEME));
    }
    let unsupported: Vec<&str> = req
        .headers
        .values(&HeaderName::Require)
        .filter(|tag| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if !unsupported.is_empty() && req.method != Method::Ack && req.method != Method::Cancel {
        let mut resp = reply(StatusCode::BAD_EXTENSION);
        resp.headers
            .push(HeaderName::Unsupported, unsupported.join(", "));
        return Some(resp);
    }
    None
}

/// 200 OK to an OPTIONS addressed to homeline (§11.2): what we allow and accept.
pub fn options_response(req: &Request, to_tag: &str) -> Response {
    let mut resp = Response::for_request(req, StatusCode::OK, Some(to_tag));
    resp.headers.push(HeaderName::Allow, ALLOW);
    resp.headers.push(HeaderName::Accept, "application/sdp");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::{parse_datagram, Message};

    fn req(text: &str) -> Request {
        let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
            panic!()
        };
        r
    }

    fn with(start: &str, extra: &str) -> Request {
        let method = start.split(' ').next().unwrap();
        req(&format!(
            "{start} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\nMax-Forwards: 0\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
    }

    #[test]
    fn rfc4475_3_3_11_zero_max_forwards_on_a_routed_request() {
        let r = precheck(&with("INVITE sip:b@b", ""), "t").unwrap();
        assert_eq!(r.status, StatusCode::TOO_MANY_HOPS);
        let r = precheck(&with("OPTIONS sip:user@b", ""), "t").unwrap();
        assert_eq!(r.status, StatusCode::TOO_MANY_HOPS);
        assert!(
            precheck(&with("OPTIONS sip:pbx.example", ""), "t").is_none(),
            "for us: processed"
        );
        assert!(precheck(&with("REGISTER sip:pbx.example", ""), "t").is_none());
    }

    #[test]
    fn rfc3261_8_2_1_unknown_and_unsupported_methods() {
        let mut r = with("FOO sip:b@b", "");
        r.headers.set(HeaderName::MaxForwards, "70");
        let resp = precheck(&r, "t").unwrap();
        assert_eq!(resp.status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(resp.headers.get(&HeaderName::Allow), Some(ALLOW));
        let mut r = with("SUBSCRIBE sip:b@b", "");
        r.headers.set(HeaderName::MaxForwards, "70");
        assert_eq!(
            precheck(&r, "t").unwrap().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn rfc4475_3_3_2_unknown_scheme_gets_416() {
        let r = precheck(
            &with("OPTIONS nobodyknowsthisscheme:totallyopaquecontent", ""),
            "t",
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::UNSUPPORTED_URI_SCHEME);
    }

    #[test]
    fn rfc4475_3_3_5_require_gets_420_with_unsupported() {
        let r = precheck(
            &with(
                "OPTIONS sip:pbx.example",
                "Require: nothingSupportsThis, nothingSupportsThisEither\r\n",
            ),
            "t",
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::BAD_EXTENSION);
        assert_eq!(
            r.headers.get(&HeaderName::Unsupported),
            Some("nothingSupportsThis, nothingSupportsThisEither")
        );
        assert!(precheck(&with("OPTIONS sip:pbx.example", ""), "t").is_none());
    }
}

//! Any datagram: parsing never panics; a parsed message prints to bytes that parse back to the
//! same message; validation and the typed header views never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::header::{AuthParams, Contact, NameAddr, Via};
use sip::{parse_datagram, validate_request, validate_response, HeaderAccess, HeaderName, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = parse_datagram(data, 65_535) else { return };
    let printed = msg.to_bytes();
    let again = parse_datagram(&printed, usize::MAX).expect("printed message re-parses");
    assert_eq!(msg, again, "print/parse round trip");
    match &msg {
        Message::Request(r) => {
            let _ = validate_request(r);
            let _ = sip_proto::uas::precheck(r, "t");
            let _ = sip_proto::registrar::Registrar::aor_of(r);
            let _ = (r.top_via(), r.cseq(), r.from(), r.to(), r.expires(), r.max_forwards());
        }
        Message::Response(r) => {
            let _ = validate_response(r);
        }
    }
    let h = msg.headers();
    for v in h.values(&HeaderName::Via) {
        let _ = Via::parse(v).map(|v| v.to_string());
    }
    for v in h.values(&HeaderName::Contact) {
        let _ = Contact::parse(v);
    }
    for v in h.values(&HeaderName::Route) {
        let _ = NameAddr::parse(v).map(|n| n.to_string());
    }
    for v in h.get_all(&HeaderName::Authorization) {
        let _ = AuthParams::parse(v);
    }
});

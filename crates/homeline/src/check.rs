//! `homeline sip check FILE...`: what the server makes of a captured message, before policy.

use std::path::PathBuf;
use std::process::ExitCode;

use sip::{
    parse_datagram, validate_request, validate_response, HeaderAccess, HeaderName, Message,
    DEFAULT_MAX_MESSAGE,
};

/// Checks every file; exit 1 if any would be refused (400/505) or dropped.
pub(crate) fn run(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                println!("{}: cannot read: {e}", f.display());
                ok = false;
                continue;
            }
        };
        let (verdict, good) = check(&bytes);
        println!("{}: {verdict}", f.display());
        ok &= good;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One line describing the message and whether the server would process it.
pub(crate) fn check(bytes: &[u8]) -> (String, bool) {
    let msg = match parse_datagram(bytes, DEFAULT_MAX_MESSAGE) {
        Ok(m) => m,
        Err(e) => {
            return match e.status() {
                Some(s) => (
                    format!(
                        "invalid: {} (the server answers {} {})",
                        e.kind,
                        s,
                        s.reason()
                    ),
                    false,
                ),
                None => (
                    format!(
                        "invalid: {} (the server drops it: too broken to answer)",
                        e.kind
                    ),
                    false,
                ),
            }
        }
    };
    match msg {
        Message::Request(r) => {
            let summary = format!(
                "{} request to {} (Call-ID {}, CSeq {}, {} Via, body {} octets)",
                r.method,
                r.uri,
                r.call_id().unwrap_or("-"),
                r.headers.get(&HeaderName::CSeq).unwrap_or("-"),
                r.headers.values(&HeaderName::Via).count(),
                r.body.len()
            );
            if let Err(e) = validate_request(&r) {
                let s = e.status();
                return (
                    format!(
                        "invalid: {e} (the server answers {} {}); {summary}",
                        s,
                        s.reason()
                    ),
                    false,
                );
            }
            let note = match sip_proto::uas::precheck(&r, "check") {
                Some(resp) => format!(
                    "; well-formed, the server answers {} {}",
                    resp.status, resp.reason
                ),
                None => "; well-formed, the server processes it".to_string(),
            };
            (format!("valid {summary}{note}"), true)
        }
        Message::Response(r) => {
            let summary = format!(
                "{} {} response (CSeq {})",
                r.status,
                r.reason,
                r.headers.get(&HeaderName::CSeq).unwrap_or("-")
            );
            match validate_response(&r) {
                Ok(()) => (format!("valid {summary}"), true),
                Err(e) => (
                    format!("invalid: {e} (the server drops it); {summary}"),
                    false,
                ),
            }
        }
    }
}

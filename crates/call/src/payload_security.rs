//! A station's payload-security flag: TLS signalling and SRTP media are mandatory for it.
//! Pure decisions for the driver, which answers with [`Refusal::status`] and a Warning
//! carrying [`Refusal`]'s text.

use bytes::Bytes;
use sip::StatusCode;
use sip_proto::path::{Path, Transport};

use crate::b2bua::Target;

/// Why a request of (or to) a payload-security station is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A REGISTER (or INVITE) not over TLS.
    #[error("payload security requires TLS")]
    NotTls,
    /// An INVITE whose offer has no SDES key homeline accepts.
    #[error("payload security requires SRTP: offer RTP/SAVP with a=crypto")]
    NoSrtp,
    /// The called station has no registration over TLS.
    #[error("the called station requires payload security and is not registered over TLS")]
    CalleeNotTls,
}

impl Refusal {
    /// The status of the refusal: 403 for signalling that is not TLS (RFC 3261 §21.4.4: the
    /// request is understood, and will not be served this way), 488 for an offer without SRTP
    /// (RFC 3261 §21.4.26), 480 for a callee that cannot be reached securely now.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NotTls => StatusCode::FORBIDDEN,
            Refusal::NoSrtp => StatusCode::NOT_ACCEPTABLE_HERE,
            Refusal::CalleeNotTls => StatusCode::TEMPORARILY_UNAVAILABLE,
        }
    }
}

/// A REGISTER of a payload-security station over `path`.
pub fn check_register(path: &Path) -> Result<(), Refusal> {
    if path.transport == Transport::Tls {
        Ok(())
    } else {
        Err(Refusal::NotTls)
    }
}

/// An INVITE from a payload-security station over `path` with `body` (content type, bytes):
/// TLS and an SDES offer homeline accepts.
pub fn check_caller(path: &Path, body: Option<&(String, Bytes)>) -> Result<(), Refusal> {
    check_register(path)?;
    if crate::b2bua::caller_offers_srtp(body, path) {
        Ok(())
    } else {
        Err(Refusal::NoSrtp)
    }
}

/// [`check_caller`] for an INVITE as received.
pub fn check_invite(path: &Path, req: &sip::Request) -> Result<(), Refusal> {
    check_caller(
        path,
        crate::b2bua::body_of(&req.headers, &req.body).as_ref(),
    )
}

/// The contacts of a payload-security station that may be rung: those registered over TLS,
/// marked so the B2BUA offers them `RTP/SAVP`.
pub fn secure_targets(targets: Vec<Target>) -> Result<Vec<Target>, Refusal> {
    let had = !targets.is_empty();
    let secure: Vec<Target> = targets
        .into_iter()
        .filter(Target::reached_over_tls)
        .map(|t| Target {
            payload_security: true,
            ..t
        })
        .collect();
    if had && secure.is_empty() {
        return Err(Refusal::CalleeNotTls);
    }
    Ok(secure)
}

#[cfg(test)]
mod tests {
    use policy::Zone;

    use super::*;

    fn path(transport: Transport) -> Path {
        Path {
            local: "192.168.1.10:5061".parse().unwrap(),
            remote: "192.168.1.20:40000".parse().unwrap(),
            transport,
            zone: Zone::Internal,
            flow: None,
        }
    }

    fn sdp(proto: &str, crypto: bool) -> Option<(String, Bytes)> {
        let c = if crypto {
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
        } else {
            ""
        };
        let s = format!("v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n{c}");
        Some(("application/sdp".into(), Bytes::from(s)))
    }

    #[test]
    fn register_needs_tls() {
        assert_eq!(check_register(&path(Transport::Tls)), Ok(()));
        for t in [Transport::Udp, Transport::Tcp, Transport::Ws] {
            let e = check_register(&path(t)).unwrap_err();
            assert_eq!(e.status(), StatusCode::FORBIDDEN);
            assert_eq!(e.to_string(), "payload security requires TLS");
        }
    }

    #[test]
    fn rfc4568_caller_needs_tls_and_sdes() {
        let tls = path(Transport::Tls);
        assert_eq!(check_caller(&tls, sdp("RTP/SAVP", true).as_ref()), Ok(()));
        assert_eq!(check_caller(&tls, sdp("RTP/AVP", true).as_ref()), Ok(()));
        assert_eq!(
            check_caller(&tls, sdp("RTP/AVP", false).as_ref()),
            Err(Refusal::NoSrtp)
        );
        assert_eq!(check_caller(&tls, None), Err(Refusal::NoSrtp));
        assert_eq!(
            check_caller(&path(Transport::Udp), sdp("RTP/SAVP", true).as_ref()),
            Err(Refusal::NotTls)
        );
        assert_eq!(Refusal::NoSrtp.status(), StatusCode::NOT_ACCEPTABLE_HERE);
    }

    #[test]
    fn callee_is_rung_only_over_tls() {
        let t = |transport| Target {
            uri: sip::Uri::parse("sip:2002@192.168.1.30").unwrap(),
            path: path(transport),
            payload_security: false,
            registered_sips: false,
        };
        let out = secure_targets(vec![t(Transport::Udp), t(Transport::Tls)]).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].payload_security && out[0].path.transport == Transport::Tls);
        assert_eq!(
            secure_targets(vec![t(Transport::Udp)]).unwrap_err(),
            Refusal::CalleeNotTls
        );
        // Not registered at all: left to the usual 480.
        assert_eq!(secure_targets(Vec::new()), Ok(Vec::new()));
    }
}

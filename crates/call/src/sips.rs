//! Which contacts a call rings under the SIPS rules (RFC 5630 §5.3, RFC 3261 §26.2.2): a call
//! with a `sips:` Request-URI only contacts reached over TLS (no last-hop exception), each
//! with a `sips:` Request-URI; any other call keeps `sip:` Request-URIs, a `sips:` contact
//! included. The decision about the request itself is in [`sip_proto::sips`].

use sip_proto::sips::{target_uri, SipsRefusal};

use crate::b2bua::{Forward, Forwarding, Target};

/// The contacts a call may ring, `sips` true when its Request-URI is `sips:`. A station with
/// contacts none of which is reached over TLS cannot take a SIPS call:
/// [`SipsRefusal::NoSecureContact`] (480 with warn-code 380). No contact at all is left to
/// the usual 480.
pub fn targets(targets: Vec<Target>, sips: bool) -> Result<Vec<Target>, SipsRefusal> {
    let had = !targets.is_empty();
    let out: Vec<Target> = targets
        .into_iter()
        .filter(|t| !sips || t.reached_over_tls())
        .map(|t| Target {
            uri: target_uri(&t.uri, sips),
            ..t
        })
        .collect();
    if had && out.is_empty() {
        return Err(SipsRefusal::NoSecureContact);
    }
    Ok(out)
}

/// [`targets`] applied to each forwarding of the called station: a SIPS call is forwarded
/// only to contacts reached over TLS (a forwarding left with none is not followed).
pub fn forwarding(mut f: Forwarding, sips: bool) -> Forwarding {
    for fwd in [&mut f.always, &mut f.busy, &mut f.no_answer]
        .into_iter()
        .flatten()
    {
        if let Forward::To { targets: t, .. } = fwd {
            *t = targets(std::mem::take(t), sips).unwrap_or_default();
        }
    }
    f
}

/// True when `f` rings someone unconditionally: the called station's own contacts then do not
/// matter.
pub fn forwards_always(f: &Forwarding) -> bool {
    matches!(&f.always, Some(Forward::To { targets, .. }) if !targets.is_empty())
}

#[cfg(test)]
mod tests {
    use policy::Zone;
    use sip::StatusCode;
    use sip_proto::path::{Path, Transport};

    use super::*;

    fn target(uri: &str, transport: Transport) -> Target {
        Target {
            uri: sip::Uri::parse(uri).unwrap(),
            path: Path {
                local: "192.168.1.10:5061".parse().unwrap(),
                remote: "192.168.1.30:40000".parse().unwrap(),
                transport,
                zone: Zone::Internal,
                flow: None,
            },
            payload_security: false,
            registered_sips: false,
        }
    }

    #[test]
    fn rfc5630_5_3_sips_call_rings_only_tls_contacts_with_a_sips_request_uri() {
        let out = targets(
            vec![
                target("sip:2002@192.168.1.30:5060", Transport::Udp),
                target("sip:2002@192.168.1.30:5061;transport=tls", Transport::Tls),
                target("sip:2002@192.168.1.31:5060;transport=tcp", Transport::Tcp),
            ],
            true,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].uri.to_string(), "sips:2002@192.168.1.30:5061");
        assert_eq!(out[0].path.transport, Transport::Tls);
        assert!(
            !out[0].payload_security,
            "SIPS is about signalling, not SRTP"
        );
    }

    #[test]
    fn rfc5630_5_3_sips_call_to_a_station_without_tls_contact_is_480_warning_380() {
        let e = targets(vec![target("sip:2002@192.168.1.30", Transport::Udp)], true).unwrap_err();
        assert_eq!(e, SipsRefusal::NoSecureContact);
        assert_eq!(e.status(), StatusCode::TEMPORARILY_UNAVAILABLE);
        assert!(e
            .warning("homeline")
            .starts_with("380 homeline \"SIPS Not Allowed"));
        // Not registered at all: the usual 480 decides.
        assert_eq!(targets(Vec::new(), true), Ok(Vec::new()));
    }

    #[test]
    fn rfc5630_5_3_sip_call_to_a_sips_contact_is_not_upgraded() {
        let out = targets(
            vec![
                target("sips:2002@192.168.1.30:5061", Transport::Tls),
                target("sip:2002@192.168.1.31", Transport::Udp),
            ],
            false,
        )
        .unwrap();
        assert_eq!(out[0].uri.to_string(), "sip:2002@192.168.1.30:5061");
        assert_eq!(out[1].uri.to_string(), "sip:2002@192.168.1.31");
    }

    #[test]
    fn rfc5630_5_3_sips_call_is_forwarded_only_over_tls() {
        let f = Forwarding {
            always: Some(Forward::To {
                number: "2003".into(),
                targets: vec![target("sip:2003@192.168.1.40", Transport::Udp)],
            }),
            busy: Some(Forward::To {
                number: "2004".into(),
                targets: vec![target(
                    "sip:2004@192.168.1.41;transport=tls",
                    Transport::Tls,
                )],
            }),
            ..Forwarding::default()
        };
        let out = forwarding(f.clone(), true);
        assert!(!forwards_always(&out));
        assert!(matches!(&out.always, Some(Forward::To { targets, .. }) if targets.is_empty()));
        assert!(
            matches!(&out.busy, Some(Forward::To { targets, .. }) if targets[0].uri.to_string() == "sips:2004@192.168.1.41")
        );
        assert!(forwards_always(&forwarding(f, false)));
    }
}

//! Registrar behaviour (RFC 3261 §10.3, RFC 7616 digest, zones of the brief).

use std::time::{Duration, Instant};

use policy::{StationAuth, Zone};
use sip::digest::{self, Algorithm};
use sip::header::AuthParams;
use sip::{parse_datagram, HeaderName, Message, Request, Response, StatusCode};

use super::*;
use crate::path::{Path, Transport};

const REALM: &str = "homeline";
const PASSWORD: &str = "Str0ng!Passw0rd-x";

fn path(zone: Zone, transport: Transport) -> Path {
    Path {
        local: "127.0.0.1:5062".parse().unwrap(),
        remote: "198.51.100.20:40000".parse().unwrap(),
        transport,
        zone,
        flow: None,
    }
}

fn station(auth_enabled: bool, sbc_allowed: bool) -> StationCredentials {
    StationCredentials {
        auth: StationAuth {
            auth_enabled,
            sbc_allowed,
        },
        ha1_md5: Some(digest::ha1(Algorithm::Md5, "2001", REALM, PASSWORD)),
        ha1_sha256: Some(digest::ha1(Algorithm::Sha256, "2001", REALM, PASSWORD)),
    }
}

fn register(user: &str, cseq: u32, extra: &str) -> Request {
    let text = format!(
        "REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bK{cseq};rport\r\nFrom: <sip:{user}@pbx.example>;tag=a\r\nTo: <sip:{user}@pbx.example>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@10.0.0.20:5060>\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    let Ok(Message::Request(r)) = parse_datagram(text.as_bytes(), 65535) else {
        panic!("test request")
    };
    r
}

/// Answers the first challenge of `resp` for algorithm `alg` with `password`.
fn authorize(
    req: &Request,
    resp: &Response,
    alg: Algorithm,
    user: &str,
    password: &str,
) -> Request {
    let ch = resp
        .headers
        .get_all(&HeaderName::WwwAuthenticate)
        .filter_map(AuthParams::parse)
        .find(|p| p.get("algorithm") == Some(alg.as_str()))
        .expect("challenge for the algorithm");
    let nonce = ch.get("nonce").unwrap();
    let ha1 = digest::ha1(alg, user, REALM, password);
    let uri = "sip:pbx.example";
    let response = digest::response(
        alg,
        &ha1,
        nonce,
        Some("00000001"),
        Some("c0ffee"),
        Some("auth"),
        "REGISTER",
        uri,
    );
    let mut r = req.clone();
    r.headers.push(
        HeaderName::Authorization,
        format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"",
            alg.as_str()
        ),
    );
    r
}

/// A registrar offering both algorithms (RFC 8760), as a site with modern phones sets it.
fn registrar(now: Instant) -> Registrar {
    Registrar::new(
        RegistrarConfig {
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            ..RegistrarConfig::default()
        },
        now,
        [3; 32],
    )
}

#[test]
fn default_offers_md5_only_for_phone_compatibility() {
    assert_eq!(RegistrarConfig::default().algorithms, [Algorithm::Md5]);
}

#[test]
fn rfc3261_10_3_digest_registration_md5_and_sha256() {
    let t0 = Instant::now();
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        let mut r = registrar(t0);
        let st = station(true, false);
        let p = path(Zone::Internal, Transport::Udp);
        let req = register("2001", 1, "");
        let challenge = r.handle_register(t0, &req, &p, Some(&st));
        assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.headers.count(&HeaderName::WwwAuthenticate),
            2,
            "SHA-256 and MD5 offered"
        );
        let ok = r.handle_register(
            t0,
            &authorize(&register("2001", 2, ""), &challenge, alg, "2001", PASSWORD),
            &p,
            Some(&st),
        );
        assert_eq!(ok.status, StatusCode::OK, "{alg:?}");
        assert_eq!(
            ok.headers.get(&HeaderName::Contact),
            Some("<sip:2001@10.0.0.20:5060>;expires=3600")
        );
        assert_eq!(r.binding_count(), 1);
        assert!(matches!(r.poll_event(), Some(RegistrarEvent::Upserted(_))));
    }
}

/// The brief: on the external zone an unknown user, a station without the SBC flag and a wrong
/// password get the same answers.
#[test]
fn external_zone_refusals_are_indistinguishable() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let p = path(Zone::External, Transport::Udp);
    let no_flag = station(true, false);
    let flagged = station(true, true);
    let cases: [(&str, Option<&StationCredentials>, &str); 3] = [
        ("2001", Some(&no_flag), PASSWORD),
        ("9999", None, PASSWORD),
        ("2001", Some(&flagged), "wrong-password"),
    ];
    let mut shapes = Vec::new();
    for (user, st, pw) in cases {
        let first = r.handle_register(t0, &register(user, 1, ""), &p, st);
        let second = r.handle_register(
            t0,
            &authorize(&register(user, 2, ""), &first, Algorithm::Sha256, user, pw),
            &p,
            st,
        );
        let names = |resp: &Response| {
            resp.headers
                .iter()
                .map(|h| h.name.to_string())
                .collect::<Vec<_>>()
        };
        shapes.push((first.status, names(&first), second.status, names(&second)));
    }
    assert_eq!(shapes[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(shapes[0].2, StatusCode::FORBIDDEN);
    assert_eq!(shapes[0], shapes[1]);
    assert_eq!(shapes[1], shapes[2]);
    assert_eq!(r.binding_count(), 0);
    // And the flagged station with the right password gets in, with the short UDP expiry.
    let first = r.handle_register(t0, &register("2001", 3, ""), &p, Some(&flagged));
    let ok = r.handle_register(
        t0,
        &authorize(
            &register("2001", 4, ""),
            &first,
            Algorithm::Md5,
            "2001",
            PASSWORD,
        ),
        &p,
        Some(&flagged),
    );
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok
        .headers
        .get(&HeaderName::Contact)
        .unwrap()
        .ends_with("expires=120"));
    let b = &r.bindings(&Aor("2001".into()))[0];
    assert_eq!(b.source, p.remote);
    assert_eq!(b.zone, Zone::External);
    assert_eq!(b.nat, NatHint::Nat);
}

#[test]
fn internal_zone_station_without_auth_registers_directly() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let resp = r.handle_register(
        t0,
        &register("2001", 1, ""),
        &path(Zone::Internal, Transport::Tcp),
        Some(&station(false, false)),
    );
    assert_eq!(resp.status, StatusCode::OK);
}

#[test]
fn rfc7616_3_3_stale_nonce_with_right_password() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(true, false);
    let p = path(Zone::Internal, Transport::Udp);
    let challenge = r.handle_register(t0, &register("2001", 1, ""), &p, Some(&st));
    let later = t0 + Duration::from_secs(301);
    let req = authorize(
        &register("2001", 2, ""),
        &challenge,
        Algorithm::Md5,
        "2001",
        PASSWORD,
    );
    let resp = r.handle_register(later, &req, &p, Some(&st));
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert!(resp
        .headers
        .get(&HeaderName::WwwAuthenticate)
        .unwrap()
        .contains("stale=true"));
    let wrong = authorize(
        &register("2001", 3, ""),
        &challenge,
        Algorithm::Md5,
        "2001",
        "nope",
    );
    assert_eq!(
        r.handle_register(later, &wrong, &p, Some(&st)).status,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn rfc3261_10_3_expiry_rules() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let p = path(Zone::Internal, Transport::Udp);
    let brief = r.handle_register(t0, &register("2001", 1, "Expires: 30\r\n"), &p, Some(&st));
    assert_eq!(brief.status, StatusCode::INTERVAL_TOO_BRIEF);
    assert_eq!(brief.headers.get(&HeaderName::MinExpires), Some("60"));
    let ok = r.handle_register(
        t0,
        &register("2001", 2, "Expires: 999999\r\n"),
        &p,
        Some(&st),
    );
    assert!(ok
        .headers
        .get(&HeaderName::Contact)
        .unwrap()
        .ends_with("expires=3600"));
    // Expiry sweeps the binding away.
    assert_eq!(r.binding_count(), 1);
    r.handle_timeout(t0 + Duration::from_secs(3601));
    assert_eq!(r.binding_count(), 0);
    let removed = std::iter::from_fn(|| r.poll_event())
        .filter(|e| {
            matches!(
                e,
                RegistrarEvent::Removed {
                    reason: RemoveReason::Expired,
                    ..
                }
            )
        })
        .count();
    assert_eq!(removed, 1);
}

#[test]
fn rfc3261_10_2_2_unregister_one_and_all() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let p = path(Zone::Internal, Transport::Udp);
    let two = "Contact: <sip:2001@10.0.0.21:5060>\r\n";
    assert_eq!(
        r.handle_register(t0, &register("2001", 1, two), &p, Some(&st))
            .status,
        StatusCode::OK
    );
    assert_eq!(r.binding_count(), 2);
    let one_gone = r.handle_register(t0, &register("2001", 2, "Expires: 0\r\n"), &p, Some(&st));
    assert_eq!(one_gone.status, StatusCode::OK);
    assert_eq!(r.binding_count(), 1);
    let mut star = register("2001", 3, "Expires: 0\r\n");
    star.headers.set(HeaderName::Contact, "*");
    assert_eq!(
        r.handle_register(t0, &star, &p, Some(&st)).status,
        StatusCode::OK
    );
    assert_eq!(r.binding_count(), 0);
    let mut bad_star = register("2001", 4, "");
    bad_star.headers.set(HeaderName::Contact, "*");
    assert_eq!(
        r.handle_register(t0, &bad_star, &p, Some(&st)).status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn rfc3261_10_3_step_7_older_cseq_refused() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let p = path(Zone::Internal, Transport::Udp);
    assert_eq!(
        r.handle_register(t0, &register("2001", 5, ""), &p, Some(&st))
            .status,
        StatusCode::OK
    );
    assert_eq!(
        r.handle_register(t0, &register("2001", 4, ""), &p, Some(&st))
            .status,
        StatusCode::SERVER_INTERNAL_ERROR
    );
}

#[test]
fn rfc4475_3_3_4_to_must_be_a_sip_aor() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut req = register("2001", 1, "");
    req.headers.set(HeaderName::To, "<isbn:2983792873>");
    let resp = r.handle_register(t0, &req, &path(Zone::Internal, Transport::Udp), None);
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
}

#[test]
fn rfc5626_same_instance_replaces_contact() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let p = path(Zone::Internal, Transport::Udp);
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";
    let mut a = register("2001", 1, "");
    a.headers.set(
        HeaderName::Contact,
        format!("<sip:2001@10.0.0.20:5060>;{inst}"),
    );
    let mut b = register("2001", 2, "");
    b.headers.set(
        HeaderName::Contact,
        format!("<sip:2001@10.0.0.20:5099>;{inst}"),
    );
    r.handle_register(t0, &a, &p, Some(&st));
    r.handle_register(t0, &b, &p, Some(&st));
    assert_eq!(r.binding_count(), 1);
    let replaced = std::iter::from_fn(|| r.poll_event()).any(|e| {
        matches!(
            e,
            RegistrarEvent::Removed {
                reason: RemoveReason::Replaced,
                ..
            }
        )
    });
    assert!(
        replaced,
        "the old contact's row must be deleted from the store"
    );
}

#[test]
fn rfc5626_4_4_closed_flow_ends_external_bindings_only() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, true);
    let mut p = path(Zone::Internal, Transport::Tcp);
    p.flow = Some(crate::path::FlowId(7));
    assert_eq!(
        r.handle_register(t0, &register("2001", 1, ""), &p, Some(&st))
            .status,
        StatusCode::OK
    );
    let mut ext = path(Zone::External, Transport::Tcp);
    ext.flow = Some(crate::path::FlowId(8));
    let first = r.handle_register(
        t0,
        &register("2002", 1, ""),
        &ext,
        Some(&station(true, true)),
    );
    let req = authorize(
        &register("2002", 2, ""),
        &first,
        Algorithm::Md5,
        "2001",
        PASSWORD,
    );
    // Credentials are for 2001 but the AOR is 2002: refused, whatever the password.
    assert_eq!(
        r.handle_register(t0, &req, &ext, Some(&station(true, true)))
            .status,
        StatusCode::FORBIDDEN
    );
    let mut st2 = station(true, true);
    st2.ha1_md5 = Some(digest::ha1(Algorithm::Md5, "2002", REALM, PASSWORD));
    let req = authorize(
        &register("2002", 3, ""),
        &first,
        Algorithm::Md5,
        "2002",
        PASSWORD,
    );
    assert_eq!(
        r.handle_register(t0, &req, &ext, Some(&st2)).status,
        StatusCode::OK
    );
    assert_eq!(r.binding_count(), 2);
    while r.poll_event().is_some() {}
    r.handle_flow_closed(crate::path::FlowId(8));
    r.handle_flow_closed(crate::path::FlowId(7));
    assert_eq!(r.binding_count(), 1);
    assert_eq!(r.bindings(&Aor("2001".into()))[0].flow, None);
    assert!(matches!(
        r.poll_event(),
        Some(RegistrarEvent::Removed {
            reason: RemoveReason::FlowFailed,
            ..
        })
    ));
}

#[test]
fn quiet_refreshes_are_not_rewritten_but_real_changes_are() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let p = path(Zone::Internal, Transport::Udp);
    let upserts = |r: &mut Registrar| {
        std::iter::from_fn(|| r.poll_event())
            .filter(|e| matches!(e, RegistrarEvent::Upserted(_)))
            .count()
    };
    r.handle_register(t0, &register("2001", 1, ""), &p, Some(&st));
    assert_eq!(upserts(&mut r), 1);
    // Refreshed a second later: nothing new worth a write.
    r.handle_register(
        t0 + Duration::from_secs(1),
        &register("2001", 2, ""),
        &p,
        Some(&st),
    );
    assert_eq!(upserts(&mut r), 0);
    // Refreshed half an interval later (as phones do): written.
    r.handle_register(
        t0 + Duration::from_secs(1800),
        &register("2001", 3, ""),
        &p,
        Some(&st),
    );
    assert_eq!(upserts(&mut r), 1);
    // Moved to another source port (a NAT rebinding): written at once.
    let mut moved = p;
    moved.remote.set_port(40001);
    r.handle_register(
        t0 + Duration::from_secs(1801),
        &register("2001", 4, ""),
        &moved,
        Some(&st),
    );
    assert_eq!(upserts(&mut r), 1);
}

#[test]
fn rfc5626_5_3_requests_reach_external_devices_at_their_nat_and_internal_ones_at_their_contact() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let st = station(false, false);
    let internal = path(Zone::Internal, Transport::Udp);
    r.handle_register(t0, &register("2001", 1, ""), &internal, Some(&st));
    let b = &r.bindings(&Aor("2001".into()))[0];
    assert_eq!(
        b.path().remote,
        "10.0.0.20:5060".parse().unwrap(),
        "internal: the Contact"
    );

    let flagged = station(true, true);
    let ext = path(Zone::External, Transport::Udp);
    let first = r.handle_register(t0, &register("2001", 2, ""), &ext, Some(&flagged));
    let ok = r.handle_register(
        t0,
        &authorize(
            &register("2001", 3, ""),
            &first,
            Algorithm::Md5,
            "2001",
            PASSWORD,
        ),
        &ext,
        Some(&flagged),
    );
    assert_eq!(ok.status, StatusCode::OK);
    let b = r
        .bindings(&Aor("2001".into()))
        .iter()
        .find(|b| b.zone == Zone::External)
        .unwrap();
    let p = b.path();
    assert_eq!(
        p.remote, ext.remote,
        "external: the NAT's public side, never 10.0.0.20"
    );
    assert_eq!(p.local, ext.local, "leaves from the listener it came in on");
    assert_eq!(p.zone, Zone::External);
}

#[test]
fn rfc3261_22_3_invite_is_authenticated_with_407_under_zone_rules() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let ext = path(Zone::External, Transport::Udp);
    let text = "INVITE sip:2002@pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5060;branch=z9hG4bKinv1\r\nFrom: <sip:2001@pbx.example>;tag=a\r\nTo: <sip:2002@pbx.example>\r\nCall-ID: inv\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let Ok(Message::Request(invite)) = parse_datagram(text.as_bytes(), 65535) else {
        panic!()
    };
    let user = Aor("2001".into());
    let flagged = station(true, true);
    let RequestAuth::Refused(ch) =
        r.authorize_request(t0, &invite, &ext, &user, Some(&flagged), "t")
    else {
        panic!("challenge expected")
    };
    assert_eq!(ch.status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(ch.headers.count(&HeaderName::ProxyAuthenticate), 2);
    let answer = |password: &str| {
        let p = ch
            .headers
            .get_all(&HeaderName::ProxyAuthenticate)
            .filter_map(AuthParams::parse)
            .find(|p| p.get("algorithm") == Some("MD5"))
            .unwrap();
        let nonce = p.get("nonce").unwrap();
        let ha1 = digest::ha1(Algorithm::Md5, "2001", REALM, password);
        let resp = digest::response(
            Algorithm::Md5,
            &ha1,
            nonce,
            Some("00000001"),
            Some("c"),
            Some("auth"),
            "INVITE",
            "sip:2002@pbx.example",
        );
        let mut req = invite.clone();
        req.headers.push(HeaderName::ProxyAuthorization, format!("Digest username=\"2001\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"sip:2002@pbx.example\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\""));
        req
    };
    assert_eq!(
        r.authorize_request(t0, &answer(PASSWORD), &ext, &user, Some(&flagged), "t"),
        RequestAuth::Accepted
    );
    let RequestAuth::Refused(no) =
        r.authorize_request(t0, &answer("nope"), &ext, &user, Some(&flagged), "t")
    else {
        panic!()
    };
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    // Without the SBC flag the right password does not help from the Internet.
    let RequestAuth::Refused(no) = r.authorize_request(
        t0,
        &answer(PASSWORD),
        &ext,
        &user,
        Some(&station(true, false)),
        "t",
    ) else {
        panic!()
    };
    assert_eq!(no.status, StatusCode::FORBIDDEN);
}

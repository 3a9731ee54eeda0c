//! Bindings survive `kill -9` and a restart (issue: the spine, "what it must show").
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use common::{cli, Server, TempDir, Ua};
use sip::HeaderName;

#[test]
fn bindings_survive_kill_9_and_restart() {
    let data = TempDir::new("kill9");
    cli(
        &data.0,
        &[
            "station",
            "add",
            "2001",
            "--password",
            "Hl#kQ9vTz!mw",
            "--name",
            "Alice",
        ],
    );
    let server = Server::start(&data.0);
    let (internal, external) = (server.internal, server.external);
    let mut ua = Ua::new(internal);
    let contact = format!("<sip:2001@{}>", ua.local());
    let ok = ua.register_with_digest("2001", "Hl#kQ9vTz!mw", Some(&contact), Some(600));
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    // The write-behind commits within 20 ms; give it a comfortable margin before the kill.
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.kill9();

    let server = Server::start_on(&data.0, internal, external);
    // A REGISTER without Contact is a query: the 200 lists the current bindings (§10.2.3).
    let mut ua2 = Ua::new(server.internal);
    let query = ua2.register_with_digest("2001", "Hl#kQ9vTz!mw", None, None);
    assert_eq!(query.status.as_u16(), 200);
    let contacts: Vec<&str> = query.headers.values(&HeaderName::Contact).collect();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(contacts[0].starts_with(&contact), "{contacts:?}");
    let left: u32 = contacts[0]
        .rsplit("expires=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((500..=600).contains(&left), "expiry carried over: {left}");
}

/// RFC 5118: the listeners take IPv6, and the binding keeps the IPv6 source.
#[test]
fn registers_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: this host has no IPv6 loopback");
        return;
    }
    let data = TempDir::new("ipv6");
    cli(
        &data.0,
        &["station", "add", "2002", "--password", "Hl#kQ9vTz!mw"],
    );
    let port = common::free_port();
    let internal = format!("[::1]:{port}").parse().unwrap();
    let external = format!("[::1]:{}", common::free_port()).parse().unwrap();
    let server = Server::start_on(&data.0, internal, external);
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:2002@{}>", ua.local());
    let ok = ua.register_with_digest("2002", "Hl#kQ9vTz!mw", Some(&contact), Some(300));
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let via = sip::HeaderAccess::top_via(&ok).unwrap();
    assert_eq!(via.received(), Some("::1".parse().unwrap()));
    assert!(ok
        .headers
        .get(&HeaderName::Contact)
        .unwrap()
        .contains("[::1]"));
}

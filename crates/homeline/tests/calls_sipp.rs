//! Calls through the B2BUA with SIPp on both ends (internal zone): INVITE/180/200/ACK/BYE,
//! busy, unknown number, and a caller that is not registered from where it calls.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{cli, free_port, invite_final, Server, TempDir, Ua};

const PW: &str = "Hl#kQ9vTz!mw";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/sipp")).join(name)
}

/// A SIPp UAS from its built-in scenario (`uas`: 180, 200, waits for ACK and BYE), or `-sf`.
fn uas(dir: &Path, port: u16, calls: usize, builtin: &str) -> Child {
    Command::new("timeout")
        .current_dir(dir)
        .args([
            "60",
            "sipp",
            "-sn",
            builtin,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args([
            "-m",
            &calls.to_string(),
            "-nostdin",
            "-timeout",
            "50s",
            "-trace_err",
            "-error_file",
            "uas_err.log",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (Debian package sip-tester)")
}

fn uac(
    dir: &Path,
    target: std::net::SocketAddr,
    calls: usize,
    caller: &str,
    callee: &str,
) -> (i32, String) {
    let users = dir.join(format!("call-{caller}-{callee}.csv"));
    std::fs::write(&users, format!("SEQUENTIAL\n{caller};{callee};{PW}\n")).unwrap();
    let out = Command::new("timeout")
        .current_dir(dir)
        .args(["60", "sipp", &target.to_string(), "-sf"])
        .arg(scenario("call_uac.xml"))
        .arg("-inf")
        .arg(&users)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            &calls.to_string(),
            "-r",
            "20",
        ])
        .args([
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
            "-default_behaviors",
            "all,-bye",
        ])
        .args(["-trace_err", "-error_file", "uac_err.log"])
        .output()
        .unwrap();
    let errors = std::fs::read_to_string(dir.join("uac_err.log")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            &errors[..errors.len().min(3000)]
        ),
    )
}

fn setup(tag: &str) -> (TempDir, Server) {
    let data = TempDir::new(tag);
    for n in ["2001", "2002", "2003"] {
        cli(&data.0, &["station", "add", n, "--password", PW]);
    }
    let server = Server::start(&data.0);
    (data, server)
}

/// Registers `station` with its Contact pointing at `contact_port` on loopback.
fn register(server: &Server, station: &str, contact_port: u16) {
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:{station}@127.0.0.1:{contact_port}>");
    let ok = ua.register_with_digest(station, PW, Some(&contact), Some(600));
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
}

#[test]
fn rfc3261_13_calls_between_stations_through_the_b2bua() {
    let (data, server) = setup("calls");
    let uas_port = free_port();
    register(&server, "2002", uas_port);
    register(&server, "2001", free_port());
    let mut callee = uas(&data.0, uas_port, 10, "uas");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out) = uac(&data.0, server.internal, 10, "2001", "2002");
    assert_eq!(code, 0, "{out}");
    let status = callee.wait().unwrap();
    assert!(
        status.success(),
        "callee SIPp failed: {:?}",
        std::fs::read_to_string(data.0.join("uas_err.log"))
    );
}

#[test]
fn unknown_number_unregistered_callee_and_bad_credentials_are_refused() {
    let (_data, server) = setup("calls-refused");
    register(&server, "2001", free_port());
    let ua = Ua::new(server.internal);
    assert_eq!(
        invite_final(&ua, "9999", "2001", PW).status.as_u16(),
        404,
        "no such station, no trunk"
    );
    assert_eq!(
        invite_final(&ua, "2003", "2001", PW).status.as_u16(),
        480,
        "station known but not registered"
    );
    assert_eq!(
        invite_final(&ua, "2002", "2001", "Wrong#Passw0rd")
            .status
            .as_u16(),
        403,
        "wrong password"
    );
    assert_eq!(
        invite_final(&ua, "2002", "7777", PW).status.as_u16(),
        403,
        "unknown caller: challenged, then 403"
    );
}

/// Toll fraud through a stolen remote phone: a station registered on the external zone may
/// call stations and national numbers, never international or premium-rate ones.
#[test]
fn external_zone_class_of_service_refuses_international_and_premium() {
    let data = TempDir::new("calls-cos");
    cli(
        &data.0,
        &["station", "add", "2001", "--password", PW, "--sbc", "on"],
    );
    let server = Server::start(&data.0);
    let mut ua = Ua::new(server.external);
    let contact = format!("<sip:2001@{}>", ua.local());
    assert_eq!(
        ua.register_with_digest("2001", PW, Some(&contact), Some(120))
            .status
            .as_u16(),
        200
    );
    let final_response = |ua: &mut Ua, to: &str| invite_final(ua, to, "2001", PW);
    for (dialled, what) in [
        ("000442079460000", "international"),
        ("+442079460000", "international"),
        ("009001234567", "premium"),
    ] {
        let r = final_response(&mut ua, dialled);
        assert_eq!(r.status.as_u16(), 403, "{what} {dialled}: {r:?}");
        assert!(r.reason.contains("class of service"), "{}", r.reason);
    }
    // A national number (trunk access code 0, then 089...) passes class of service and then
    // finds no trunk: 404 with a Warning.
    let r = final_response(&mut ua, "00891234567");
    assert_eq!(r.status.as_u16(), 404);
    assert!(r
        .headers
        .get(&sip::HeaderName::Warning)
        .unwrap()
        .contains("trunk"));
    let log = server.drain_log().join("\n");
    assert!(
        log.contains("call refused by class of service")
            && log.contains("station=2001")
            && log.contains("zone=external"),
        "{log}"
    );
}

//! Classes of service per station and call forwarding through the running server: the calling
//! station's own class decides, busy and no-answer forwarding ring the target, and a target the
//! forwarding station's class refuses is logged with station, zone, class and rule.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cli, free_port, invite_final, Server, TempDir, Ua, BIN};
use sip::{parse_datagram, HeaderAccess, Message, Response, StatusCode};

const PW: &str = "Hl#kQ9vTz!mw";

/// `homeline station ...` with a configuration file.
fn cli_with(data: &Path, config: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(data: &Path, extra: &str) -> Server {
    let internal = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let external = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    Server::start_with(data, internal, external, extra)
}

/// Registers `station` on the internal zone and answers every INVITE to it with `answers`
/// (a CANCEL gets 200 and 487), in a thread, for 15 s. Each INVITE's To is sent on the
/// returned channel.
fn phone(server: &Server, station: &str, answers: &'static [u16]) -> mpsc::Receiver<String> {
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:{station}@{}>", ua.local());
    let ok = ua.register_with_digest(station, PW, Some(&contact), Some(600));
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let sock = ua.sock.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 65536];
        let mut ringing = None;
        while Instant::now() < until {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(Message::Request(req)) = parse_datagram(&buf[..n], 65536) else {
                continue;
            };
            let send = |r: Response| {
                sock.send_to(&r.to_bytes(), from).unwrap();
            };
            let reply =
                |code: u16| Response::for_request(&req, StatusCode::new(code).unwrap(), Some("ph"));
            match req.method {
                sip::Method::Invite => {
                    let _ = tx.send(req.to().map(|t| t.uri.to_string()).unwrap_or_default());
                    for code in answers {
                        send(reply(*code));
                    }
                    ringing = Some(req.clone());
                }
                sip::Method::Cancel => {
                    send(reply(200));
                    if let Some(inv) = ringing.take() {
                        send(Response::for_request(
                            &inv,
                            StatusCode::REQUEST_TERMINATED,
                            Some("ph"),
                        ));
                    }
                }
                sip::Method::Ack => {}
                _ => send(reply(200)),
            }
        }
    });
    rx
}

/// The log until a line containing `needle` (or 3 s), joined.
fn log_until(server: &Server, needle: &str) -> String {
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while let Ok(line) = server
        .log
        .recv_timeout(until.saturating_duration_since(Instant::now()))
    {
        let found = line.contains(needle);
        lines.push(line);
        if found {
            break;
        }
    }
    lines.join("\n")
}

fn caller(server: &Server) -> Ua {
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:2001@{}>", ua.local());
    let ok = ua.register_with_digest("2001", PW, Some(&contact), Some(600));
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    ua
}

fn add(data: &Path, number: &str, more: &[&str]) {
    let mut args = vec!["station", "add", number, "--password", PW];
    args.extend_from_slice(more);
    cli(data, &args);
}

#[test]
fn the_calling_stations_own_class_decides() {
    let data = TempDir::new("fwdcalls-class");
    add(&data.0, "2001", &["--class-internal", "internal-only"]);
    let server = start(&data.0, "");
    let ua = caller(&server);
    let r = invite_final(&ua, "00891234567", "2001", PW);
    assert_eq!(r.status.as_u16(), 403, "{r:?}");
    assert!(
        r.reason.contains("national calls not allowed"),
        "{}",
        r.reason
    );
    let log = log_until(&server, "call refused by class of service");
    assert!(
        log.contains("call refused by class of service")
            && log.contains("station=2001")
            && log.contains("zone=internal")
            && log.contains("class=internal-only"),
        "{log}"
    );
}

#[test]
fn busy_forwarding_rings_the_target() {
    let data = TempDir::new("fwdcalls-busy");
    add(&data.0, "2001", &[]);
    add(&data.0, "2002", &["--forward-busy", "2003"]);
    add(&data.0, "2003", &[]);
    let server = start(&data.0, "");
    let busy = phone(&server, "2002", &[486]);
    let target = phone(&server, "2003", &[180, 603]);
    let ua = caller(&server);
    let r = invite_final(&ua, "2002", "2001", PW);
    assert_eq!(r.status.as_u16(), 603, "the target's answer: {r:?}");
    assert!(busy.try_recv().unwrap().contains("2002"));
    assert!(target.try_recv().unwrap().contains("2003"));
    let log = log_until(&server, "call forwarded");
    assert!(
        log.contains("call forwarded") && log.contains("kind=busy"),
        "{log}"
    );
}

#[test]
fn no_answer_forwarding_after_the_stations_delay() {
    let data = TempDir::new("fwdcalls-noanswer");
    add(&data.0, "2001", &[]);
    add(
        &data.0,
        "2002",
        &["--forward-no-answer", "2003", "--no-answer-secs", "1"],
    );
    add(&data.0, "2003", &[]);
    let server = start(&data.0, "");
    let ringing = phone(&server, "2002", &[180]);
    let target = phone(&server, "2003", &[603]);
    let ua = caller(&server);
    let started = Instant::now();
    let r = invite_final(&ua, "2002", "2001", PW);
    assert_eq!(r.status.as_u16(), 603, "{r:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(ringing.try_recv().is_ok() && target.try_recv().is_ok());
}

#[test]
fn forwarding_target_refused_at_call_time_is_logged_and_not_followed() {
    let data = TempDir::new("fwdcalls-refused");
    // Set while the class allowed international numbers...
    let wide = data.0.join("wide.toml");
    std::fs::write(
        &wide,
        "[cos.vip]\nallow = [\"internal\", \"international\"]\n",
    )
    .unwrap();
    add(&data.0, "2001", &[]);
    cli_with(
        &data.0,
        &wide,
        &[
            "station",
            "add",
            "2002",
            "--password",
            PW,
            "--class-internal",
            "vip",
            "--forward-busy",
            "+442079460000",
        ],
    );
    // ...and the class was narrowed in the configuration since.
    let server = start(&data.0, "[cos.vip]\nallow = [\"internal\"]\n");
    let _busy = phone(&server, "2002", &[486]);
    let ua = caller(&server);
    let r = invite_final(&ua, "2002", "2001", PW);
    assert_eq!(r.status.as_u16(), 486, "busy relayed: {r:?}");
    let log = log_until(&server, "forwarding refused");
    assert!(
        log.contains("forwarding refused by class of service")
            && log.contains("station=2002")
            && log.contains("zone=internal")
            && log.contains("class=vip")
            && log.contains("international calls not allowed"),
        "{log}"
    );
    assert!(
        !log.contains("442079460000"),
        "no number in the log at info"
    );
}

//! STUN interop with coturn 4.6 (Debian package `coturn`), loopback only:
//! * our client and NAT probe (`homeline nat mapped|detect`) against coturn's `turnserver`
//!   as a plain STUN server, with and without its RFC 5780 second address (127.0.0.2);
//! * coturn's `turnutils_stunclient` and `turnutils_natdiscovery` against `homeline
//!   stun-server --alternate`.
//!
//! * `homeline serve` with `[nat] stun_servers` learning its public address from coturn and
//!   showing it, with the NAT type, in `homeline status`; with a silent STUN server, the
//!   error in status and remote calls refused 503 (never the listener's own address); with
//!   `nat.public_name`, the address resolved from DNS.
//!
//! On loopback there is no NAT, so every detection must say "open". Every process runs under
//! `timeout` and is stopped when its guard drops.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_homeline");

/// A background process, stopped on drop (SIGTERM through `timeout`, then SIGKILL).
struct Guard {
    child: Child,
    _dir: Option<TempDir>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // `timeout` passes SIGTERM on to the program it runs; SIGKILL would orphan it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "homeline-stun-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `program args` under `timeout secs`, returning its output.
fn run(secs: u32, program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port P with P and P+1 free for UDP on 127.0.0.1 and 127.0.0.2 (best effort: checked,
/// then released).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = probe.local_addr().unwrap().port();
        drop(probe);
        if p == u16::MAX {
            continue;
        }
        let all_free = ["127.0.0.1", "127.0.0.2"]
            .iter()
            .flat_map(|ip| [(ip, p), (ip, p + 1)])
            .all(|(ip, port)| UdpSocket::bind((*ip, port)).is_ok());
        if all_free {
            return p;
        }
    }
    panic!("no free UDP port pair on loopback");
}

/// Waits until something answers a STUN Binding request at `server`.
fn wait_for_stun(server: SocketAddr) {
    // A Binding request, transaction id 1..12, no attributes.
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend(1..=12u8);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let _ = sock.send_to(&req, server);
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 20 && buf[0..2] == [0x01, 0x01] {
                return;
            }
        }
    }
    panic!("no STUN answer from {server} within 15 s");
}

/// coturn's `turnserver` as a STUN-only server on 127.0.0.1:port, and with `alternate` also
/// on 127.0.0.2 and port+1 (its RFC 5780 mode).
fn coturn(port: u16, alternate: bool) -> Guard {
    let dir = TempDir::new("coturn");
    let log = dir.0.join("turn.log");
    let pid = dir.0.join("turn.pid");
    let port_s = port.to_string();
    let alt_s = (port + 1).to_string();
    let mut args = vec![
        "60",
        "turnserver",
        "-n",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--stun-only",
        "-L",
        "127.0.0.1",
        "--listening-port",
        &port_s,
        "--simple-log",
    ];
    if alternate {
        args.extend(["-L", "127.0.0.2", "--alt-listening-port", &alt_s]);
    }
    let (log_s, pid_s) = (log.to_string_lossy(), pid.to_string_lossy());
    args.extend(["--log-file", &log_s, "--pidfile", &pid_s]);
    let child = Command::new("timeout")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian package coturn) must be installed");
    let guard = Guard {
        child,
        _dir: Some(dir),
    };
    wait_for_stun(SocketAddr::from(([127, 0, 0, 1], port)));
    guard
}

/// `homeline stun-server` on 127.0.0.1:port with alternate 127.0.0.2:port+1; returns once
/// all four sockets listen.
fn our_server(port: u16) -> Guard {
    let mut child = Command::new("timeout")
        .args([
            "60",
            BIN,
            "stun-server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--alternate",
            &format!("127.0.0.2:{}", port + 1),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard { child, _dir: None };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut listening = Vec::new();
    while listening.len() < 4 {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("stun-server did not report its four sockets");
        if let Some(addr) = line.strip_prefix("stun-server listening on udp ") {
            listening.push(addr.to_owned());
        }
    }
    listening.sort();
    let mut expected = vec![
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{}", port + 1),
        format!("127.0.0.2:{port}"),
        format!("127.0.0.2:{}", port + 1),
    ];
    expected.sort();
    assert_eq!(listening, expected);
    guard
}

/// The value after `label` on the report line that starts with it.
fn field<'a>(report: &'a str, label: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"))
}

#[test]
fn rfc5780_our_probe_and_client_against_coturn_with_a_second_address() {
    let port = free_port_pair();
    let _coturn = coturn(port, true);
    let server = format!("127.0.0.1:{port}");

    let out = run(60, BIN, &["nat", "detect", "--server", &server]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(field(&report, "NAT type:"), "open (no NAT)", "{report}");
    assert_eq!(
        field(&report, "public address:"),
        field(&report, "local address:")
    );
    assert!(
        field(&report, "public address:").starts_with("127.0.0.1:"),
        "{report}"
    );
    assert_eq!(
        field(&report, "other address:"),
        format!("127.0.0.2:{} (RFC 5780)", port + 1)
    );
    assert_eq!(field(&report, "mapping:"), "none (no NAT)");
    // coturn honoured CHANGE-REQUEST: the answer from its other IP and port came through.
    assert_eq!(field(&report, "filtering:"), "endpoint-independent");
    assert!(field(&report, "Device@Home:").starts_with("supported"));

    let out = run(
        60,
        BIN,
        &[
            "nat",
            "mapped",
            "--server",
            &server,
            "--local",
            "127.0.0.1:0",
        ],
    );
    let line = text(&out);
    assert!(out.status.success(), "{line}");
    // "mapped LOCAL -> MAPPED (server S)"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[0], "mapped", "{line}");
    assert_eq!(words[1], words[3], "no NAT on loopback: {line}");
    assert!(words[1].starts_with("127.0.0.1:"), "{line}");
    assert_eq!(words[5].trim_end_matches(')'), server);
}

#[test]
fn brief_coturn_without_second_address_is_open_with_filtering_unknown() {
    let port = free_port_pair();
    let _coturn = coturn(port, false);
    let out = run(
        60,
        BIN,
        &[
            "nat",
            "detect",
            "--server",
            &format!("127.0.0.1:{port}"),
            "--local",
            "127.0.0.1:0",
        ],
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(field(&report, "NAT type:"), "open (no NAT)", "{report}");
    assert_eq!(field(&report, "other address:"), "none (no RFC 5780)");
    assert_eq!(field(&report, "filtering:"), "unknown");
}

#[test]
fn rfc5780_coturn_stunclient_against_our_server() {
    let port = free_port_pair();
    let _ours = our_server(port);
    let out = run(
        20,
        "turnutils_stunclient",
        &["-p", &port.to_string(), "127.0.0.1"],
    );
    let log = text(&out);
    assert!(out.status.success(), "turnutils_stunclient failed:\n{log}");
    // Three RFC 5780 responses: plain, CHANGE-REQUEST (IP and port), RESPONSE-PORT.
    assert!(log.contains("RFC 5780 response 3"), "{log}");
    let reflexive: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(reflexive.len(), 3, "{log}");
    for r in &reflexive {
        let addr: SocketAddr = r.parse().unwrap_or_else(|_| panic!("{r} in {log}"));
        assert_eq!(addr.ip().to_string(), "127.0.0.1", "{log}");
        assert_ne!(addr.port(), 0);
    }
    assert_eq!(
        reflexive[0], reflexive[1],
        "same socket, same mapping: {log}"
    );
    let origins: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("Response origin: : ").nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(
        origins.first().copied(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    // The change-request answer came from the other IP and port.
    assert!(
        origins.contains(&format!("127.0.0.2:{}", port + 1).as_str()),
        "{log}"
    );
    assert!(
        log.contains(&format!("Other addr: : 127.0.0.2:{}", port + 1)),
        "{log}"
    );
}

#[test]
fn rfc8489_coturn_stunclient_against_our_single_address_server() {
    let port = free_port_pair();
    let child = Command::new("timeout")
        .args([
            "60",
            BIN,
            "stun-server",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Guard { child, _dir: None };
    wait_for_stun(SocketAddr::from(([127, 0, 0, 1], port)));
    let out = run(
        20,
        "turnutils_stunclient",
        &["-p", &port.to_string(), "127.0.0.1"],
    );
    let log = text(&out);
    assert!(out.status.success(), "turnutils_stunclient failed:\n{log}");
    // No RFC 5780 here: no other address offered, just the mapping.
    assert!(!log.contains("Other addr"), "{log}");
    let reflexive = log
        .lines()
        .find_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .unwrap_or_else(|| panic!("no mapping in:\n{log}"));
    assert!(reflexive.trim().starts_with("127.0.0.1:"), "{log}");
}

#[test]
fn rfc5780_coturn_natdiscovery_completes_against_our_server() {
    let port = free_port_pair();
    let _ours = our_server(port);
    let out = run(
        40,
        "turnutils_natdiscovery",
        &["-m", "-f", "-p", &port.to_string(), "127.0.0.1"],
    );
    let log = text(&out);
    assert!(
        out.status.success(),
        "turnutils_natdiscovery failed:\n{log}"
    );
    // Both RFC 5780 test series ran to a verdict; on loopback both are the most open one.
    assert!(
        log.contains("NAT with Endpoint Independent Mapping!"),
        "{log}"
    );
    assert!(
        log.contains("NAT with Endpoint Independent Filtering!"),
        "{log}"
    );
    assert!(log.contains("No ALG: Mapped == XOR-Mapped"), "{log}");
    // The reflexive port is the local port: no NAT.
    let pair = |l: &str, label: &str| l.split(label).nth(1).map(|s| s.trim().to_owned());
    let reflexive: Vec<String> = log
        .lines()
        .filter_map(|l| pair(l, "UDP reflexive addr: "))
        .collect();
    let local: Vec<String> = log
        .lines()
        .filter_map(|l| pair(l, "Local addr: : "))
        .collect();
    assert!(
        reflexive.len() >= 4 && reflexive.len() == local.len(),
        "{log}"
    );
    for (r, l) in reflexive.iter().zip(&local) {
        assert_eq!(r.rsplit(':').next(), l.rsplit(':').next(), "{log}");
    }
}

#[test]
fn our_probe_against_our_server_is_open_with_endpoint_independent_filtering() {
    let port = free_port_pair();
    let _ours = our_server(port);
    let out = run(
        60,
        BIN,
        &["nat", "detect", "--server", &format!("127.0.0.1:{port}")],
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert_eq!(field(&report, "NAT type:"), "open (no NAT)", "{report}");
    assert_eq!(field(&report, "filtering:"), "endpoint-independent");
    assert_eq!(
        field(&report, "public address:"),
        field(&report, "local address:")
    );
}

#[test]
fn serve_learns_its_public_address_from_coturn_and_shows_it_in_status() {
    let port = free_port_pair();
    let _coturn = coturn(port, true);
    let data = common::TempDir::new("serve-stun");
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let server = common::Server::start_with(
        &data.0,
        internal,
        external,
        &format!("[nat]\nstun_servers = [\"127.0.0.1:{port}\"]\nrefresh_secs = 10\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let text = common::cli(&data.0, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let p = &v["public_address"];
        if p["source"] == "stun" && p["nat"].is_object() {
            break v;
        }
        assert!(Instant::now() < deadline, "not learned in 30 s: {text}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let p = &status["public_address"];
    assert_eq!(p["address"], "127.0.0.1", "{status}");
    assert_eq!(p["last_error"], serde_json::Value::Null, "{status}");
    assert_eq!(p["nat"]["kind"], "open (no NAT)", "{status}");
    assert_eq!(p["nat"]["verdict"], "supported", "{status}");
    let table = common::cli(&data.0, &["status"]);
    assert!(
        table.contains("Public address        127.0.0.1 (from stun)"),
        "{table}"
    );
    assert!(
        table.contains("NAT type              open (no NAT)"),
        "{table}"
    );
    let log = server.drain_log().join("\n");
    assert!(
        log.contains("public address changed from none to 127.0.0.1"),
        "{log}"
    );
}

#[test]
fn serve_without_a_stun_answer_shows_the_error_and_refuses_remote_calls() {
    // Nothing listens there: every request goes unanswered.
    let silent = free_port_pair();
    let data = common::TempDir::new("serve-stun-silent");
    for (n, sbc) in [("2001", "on"), ("2002", "off")] {
        common::cli(
            &data.0,
            &[
                "station",
                "add",
                n,
                "--password",
                common::baresip::PW,
                "--sbc",
                sbc,
            ],
        );
    }
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let server = common::Server::start_with(
        &data.0,
        internal,
        external,
        &format!("[nat]\nstun_servers = [\"127.0.0.1:{silent}\"]\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let text = common::cli(&data.0, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let p = &v["public_address"];
        if p["last_error"].is_string() && p["nat"].is_object() {
            break v;
        }
        assert!(Instant::now() < deadline, "no error in 30 s: {text}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let p = &status["public_address"];
    assert_eq!(p["address"], serde_json::Value::Null, "{status}");
    assert_eq!(p["source"], "none", "{status}");
    assert!(
        p["last_error"].as_str().unwrap().contains("no answer"),
        "{status}"
    );
    assert_eq!(p["nat"]["kind"], "UDP blocked", "{status}");
    assert_eq!(p["nat"]["verdict"], "unsupported", "{status}");
    let table = common::cli(&data.0, &["status"]);
    assert!(
        table.contains("Public address        none known"),
        "{table}"
    );
    assert!(
        table.contains("last error: STUN server 127.0.0.1:"),
        "{table}"
    );

    // A remote call needs the relay and there is no public address to give it.
    let mut office = common::Ua::new(internal);
    let ok = office.register_with_digest(
        "2002",
        common::baresip::PW,
        Some(&format!("<sip:2002@{}>", office.local())),
        Some(300),
    );
    assert_eq!(ok.status.as_u16(), 200);
    let remote = common::Ua::new(external);
    let r = common::invite_final(&remote, "2002", "2001", common::baresip::PW);
    assert_eq!(r.status.as_u16(), 503, "{r:?}");
    assert!(r.headers.get(&sip::HeaderName::Warning).is_some(), "{r:?}");
    let log = server.drain_log().join("\n");
    assert!(log.contains("public address not learned"), "{log}");
}

/// While the public address is still being learned, the keepalives to a phone at home must
/// not name the external listener's own (in an office: private) address, as an OPTIONS' Via
/// and From would: homeline sends the CRLF ping instead, which keeps the home NAT's mapping
/// open all the same (the brief: no private address on the external zone).
#[test]
fn keepalives_name_no_listener_address_while_the_public_one_is_unknown() {
    let silent = free_port_pair();
    let data = common::TempDir::new("serve-stun-keepalive");
    common::cli(
        &data.0,
        &[
            "station",
            "add",
            "2001",
            "--password",
            common::baresip::PW,
            "--sbc",
            "on",
        ],
    );
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _server = common::Server::start_configured(
        &data.0,
        internal,
        external,
        "keepalive_interval = 1\n",
        &format!("[nat]\nstun_servers = [\"127.0.0.1:{silent}\"]\n"),
    );
    let mut home = common::Ua::new(external);
    let ok = home.register_with_digest(
        "2001",
        common::baresip::PW,
        Some(&format!("<sip:2001@{}>", home.local())),
        Some(300),
    );
    assert_eq!(ok.status.as_u16(), 200);
    let mut pings = 0;
    let mut buf = [0u8; 65536];
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        let Ok((n, _)) = home.sock.recv_from(&mut buf) else {
            continue;
        };
        let got = String::from_utf8_lossy(&buf[..n]);
        assert_eq!(
            got, "\r\n\r\n",
            "only CRLF pings while no public address is known, got:\n{got}"
        );
        pings += 1;
    }
    assert!(pings >= 2, "{pings} keepalives in 3.5 s at a 1 s interval");
}

#[test]
fn serve_takes_its_public_address_from_a_dyndns_name() {
    let data = common::TempDir::new("serve-dns");
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _server = common::Server::start_with(
        &data.0,
        internal,
        external,
        "[nat]\npublic_name = \"localhost\"\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = common::cli(&data.0, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if v["public_address"]["source"] == "dns" {
            assert_eq!(v["public_address"]["address"], "127.0.0.1", "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "not resolved in 10 s: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A relay range of `channels` channels on 127.0.0.1, outside Linux's ephemeral ports, whose
/// ports are free right now (best effort: checked, then released).
fn free_relay_range(channels: u16) -> (u16, u16) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let seed = (std::process::id() ^ nanos) as u16;
    for i in 0..200u16 {
        let start = 61_000 + (seed.wrapping_add(i.wrapping_mul(97)) % 2_000) / 2 * 2;
        let end = start + 2 * channels - 1;
        if (start..=end).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return (start, end);
        }
    }
    panic!("no free relay range on loopback");
}

/// RFC 8489 through the SIP listener's own socket, and samples of the relay range: on loopback
/// nothing rewrites ports, so status shows every mapping as the local address and port,
/// preserved, with no fix, and the log says the port is kept.
#[test]
fn rfc8489_serve_learns_sip_listener_and_relay_port_mappings_preserved_on_loopback() {
    let port = free_port_pair();
    let _ours = our_server(port);
    let data = common::TempDir::new("serve-stun-ports");
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let (start, end) = free_relay_range(5);
    let server = common::Server::start_with(
        &data.0,
        internal,
        external,
        &format!(
            "[media]\nports = \"{start}-{end}\"\nbind_ip = \"127.0.0.1\"\n\
             [nat]\nstun_servers = [\"127.0.0.1:{port}\"]\nrefresh_secs = 10\n"
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let text = common::cli(&data.0, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let m = v["public_address"]["mappings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if m.len() == 3 && m.iter().all(|m| m["public"].is_string()) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no port mappings in 30 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let p = &status["public_address"];
    assert_eq!(p["address"], "127.0.0.1", "{status}");
    assert_eq!(p["source"], "stun", "{status}");
    let m = p["mappings"].as_array().unwrap();
    let ours = format!("127.0.0.1:{port}");
    let want = [
        ("sip", external.to_string()),
        ("relay", format!("127.0.0.1:{start}")),
        ("relay", format!("127.0.0.1:{}", end - 1)),
    ];
    for (m, (role, local)) in m.iter().zip(want) {
        assert_eq!(m["role"], role, "{status}");
        assert_eq!(m["local"], local.as_str(), "{status}");
        assert_eq!(m["public"], local.as_str(), "loopback has no NAT: {status}");
        assert_eq!(m["preserved"], true, "{status}");
        assert_eq!(m["fix"], serde_json::Value::Null, "{status}");
        assert_eq!(m["failures"], 0, "{status}");
        assert_eq!(m["server"], ours.as_str(), "{status}");
        assert!(m["refreshed_unix"].is_u64(), "{status}");
    }
    let table = common::cli(&data.0, &["status"]);
    assert!(
        table.contains(&format!(
            "Port mappings         sip   {external} -> {external}, port preserved"
        )),
        "{table}"
    );
    assert!(!table.contains("REWRITTEN"), "{table}");
    // The sample ports were closed again: the relay can bind them.
    for p in [start, end - 1] {
        assert!(
            UdpSocket::bind(("127.0.0.1", p)).is_ok(),
            "relay port {p} still held"
        );
    }
    let log = server.drain_log().join("\n");
    assert!(log.contains("the office router keeps the port"), "{log}");
    assert!(!log.contains("rewrites the port"), "{log}");
}

/// RFC 5626 §4.4.1: a phone using outbound sends STUN Binding requests to the SIP port as
/// keepalives. The listener tells them from SIP by the first byte (RFC 7983 §7) and answers
/// with the phone's address as the listener saw it; SIP on the same socket is unaffected.
#[test]
fn rfc5626_4_4_1_sip_listener_answers_stun_binding_requests() {
    let data = common::TempDir::new("listener-stun");
    let internal: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let _server = common::Server::start_with(&data.0, internal, external, "");
    for listener in [internal, external] {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // Binding request, transaction id 1..12, no attributes.
        let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        req.extend(1..=12u8);
        sock.send_to(&req, listener).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = sock.recv_from(&mut buf).expect("a Binding response");
        assert_eq!(from, listener);
        assert_eq!(buf[0..2], [0x01, 0x01], "Binding success response");
        assert_eq!(buf[8..20], req[8..20], "same transaction id");
        // XOR-MAPPED-ADDRESS (0x0020) with our port XORed with the cookie's top half.
        let me = sock.local_addr().unwrap();
        let attrs = &buf[20..n];
        let at = attrs
            .windows(2)
            .position(|w| w == [0x00, 0x20])
            .expect("XOR-MAPPED-ADDRESS");
        let xport = u16::from_be_bytes([attrs[at + 6], attrs[at + 7]]) ^ 0x2112;
        assert_eq!(xport, me.port());
        // Walk the attributes (RFC 8489 §14: type, length, value padded to 4): no SOFTWARE
        // (0x8022) naming homeline's version on a listener anyone can reach.
        let mut types = Vec::new();
        let mut i = 0;
        while i + 4 <= attrs.len() {
            types.push(u16::from_be_bytes([attrs[i], attrs[i + 1]]));
            i += 4 + usize::from(u16::from_be_bytes([attrs[i + 2], attrs[i + 3]])).div_ceil(4) * 4;
        }
        assert!(
            types.contains(&0x0020) && !types.contains(&0x8022),
            "{types:x?}"
        );
        // An RFC 3489 request (no magic cookie) gets no answer: its SOURCE-ADDRESS would name
        // the listener's own address, private behind the office router.
        let mut old = vec![0x00, 0x01, 0x00, 0x00];
        old.extend(1..=16u8);
        sock.send_to(&old, listener).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        assert!(
            sock.recv_from(&mut buf).is_err(),
            "an RFC 3489 request was answered"
        );
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // SIP still reaches the SIP core on the same socket.
        sock.send_to(
            format!(
                "OPTIONS sip:{listener} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKstun1\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=1\r\nTo: <sip:{listener}>\r\n\
                 Call-ID: stun-demux-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                listener.port()
            )
            .as_bytes(),
            listener,
        )
        .unwrap();
        let (n, _) = sock.recv_from(&mut buf).expect("an answer to OPTIONS");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("SIP/2.0 "), "{text}");
    }
}

//! Calls that cross the Internet go through the RTP relay: SIPp plays G.711 audio from a pcap
//! into the call, the far SIPp echoes it back (`-rtp_echo`), and homeline's relay counters
//! show the packets in both directions. RFC 4961 (symmetric RTP) is what makes the echo
//! reach the caller: the relay sends to the address it latched, not to the SDP's.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{cli, free_port, Server, TempDir, Ua};

const PW: &str = "Hl#kQ9vTz!mw";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/sipp")).join(name)
}

fn sipp(dir: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.current_dir(dir).args(["60", "sipp"]);
    c
}

/// The built-in UAS on `port` (registered there by a helper UA), echoing RTP.
fn internal_echo_uas(dir: &Path, port: u16) -> Child {
    sipp(dir)
        .args(["-sn", "uas", "-rtp_echo", "-i", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-mp", &free_port().to_string()])
        .args(["-m", "1", "-nostdin", "-timeout", "40s"])
        .args(["-trace_err", "-error_file", "uas_err.log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (Debian package sip-tester)")
}

/// One call from `caller` to `callee` through `server`, 2 s of audio.
fn call(dir: &Path, server: std::net::SocketAddr, caller: &str, callee: &str) -> (i32, String) {
    let users = dir.join(format!("call-{caller}-{callee}.csv"));
    std::fs::write(&users, format!("SEQUENTIAL\n{caller};{callee};{PW}\n")).unwrap();
    let out = sipp(dir)
        .arg(server.to_string())
        .arg("-sf")
        .arg(scenario("call_uac.xml"))
        .arg("-inf")
        .arg(&users)
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mp", &free_port().to_string(), "-d", "2000", "-m", "1"])
        .args(["-nostdin", "-timeout", "40s", "-timeout_error"])
        .args(["-default_behaviors", "all,-bye"])
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

/// `key=N` out of a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The relay's final counters of each channel of the test's call: (leg, received, sent).
fn closed_channels(server: &Server) -> Vec<(String, u64, u64)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut lines = Vec::new();
    while std::time::Instant::now() < deadline {
        lines.extend(server.drain_log());
        if lines.iter().any(|l| l.contains("call ended")) {
            // Closed reports follow the release within milliseconds.
            std::thread::sleep(std::time::Duration::from_millis(200));
            lines.extend(server.drain_log());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    lines
        .iter()
        .filter(|l| l.contains("relay channel closed"))
        .map(|l| {
            let leg = if l.contains("leg=\"caller\"") || l.contains("leg=caller") {
                "caller"
            } else {
                "callee"
            };
            (
                leg.to_string(),
                field(l, "received").unwrap_or(0),
                field(l, "sent").unwrap_or(0),
            )
        })
        .collect()
}

fn add_station(data: &Path, n: &str, sbc: bool) {
    let mut args = vec!["station", "add", n, "--password", PW];
    if sbc {
        args.extend(["--sbc", "on"]);
    }
    cli(data, &args);
}

/// A remote station calls an office phone: only the remote leg takes a channel; the office
/// phone sends to it on the internal address (RFC 4961 latching towards the remote side).
#[test]
fn rfc4961_external_to_internal_call_is_relayed_both_ways() {
    let data = TempDir::new("relay-ext-int");
    add_station(&data.0, "2001", true);
    add_station(&data.0, "2002", false);
    let server = Server::start(&data.0);
    let uas_port = free_port();
    let mut ua = Ua::new(server.internal);
    let contact = format!("<sip:2002@127.0.0.1:{uas_port}>");
    let ok = ua.register_with_digest("2002", PW, Some(&contact), Some(600));
    assert_eq!(ok.status.as_u16(), 200);
    let mut callee = internal_echo_uas(&data.0, uas_port);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out) = call(&data.0, server.external, "2001", "2002");
    assert_eq!(code, 0, "{out}");
    let _ = callee.wait();
    let channels = closed_channels(&server);
    assert_eq!(channels.len(), 1, "one relayed leg: {channels:?}");
    let (leg, received, sent) = &channels[0];
    assert_eq!(leg, "caller");
    assert!(*received > 30, "relay got the caller's audio: {channels:?}");
    assert!(*sent > 30, "the echo came back to the caller: {channels:?}");
}

/// Two remote stations: both legs are anchored and paired, audio goes through both channels.
#[test]
fn rfc4961_external_to_external_call_is_relayed_both_ways() {
    let data = TempDir::new("relay-ext-ext");
    add_station(&data.0, "2001", true);
    add_station(&data.0, "2003", true);
    let server = Server::start(&data.0);
    // The remote callee registers from the port its SIPp will answer on: the external zone
    // sends the INVITE to that observed source (the NATed address of a real phone).
    let uas_port = free_port();
    {
        let mut ua = Ua::bound(server.external, uas_port);
        let contact = format!("<sip:2003@127.0.0.1:{uas_port}>");
        let ok = ua.register_with_digest("2003", PW, Some(&contact), Some(120));
        assert_eq!(ok.status.as_u16(), 200);
    }
    let mut callee = internal_echo_uas(&data.0, uas_port);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out) = call(&data.0, server.external, "2001", "2003");
    assert_eq!(code, 0, "{out}");
    let status = callee.wait().unwrap();
    assert!(
        status.success(),
        "callee: {:?}",
        std::fs::read_to_string(data.0.join("uas_err.log"))
    );
    let channels = closed_channels(&server);
    assert_eq!(channels.len(), 2, "both legs relayed: {channels:?}");
    for (leg, received, sent) in &channels {
        assert!(*received > 30 && *sent > 30, "{leg}: {channels:?}");
    }
}

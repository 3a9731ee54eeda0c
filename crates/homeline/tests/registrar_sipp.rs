//! The registrar against SIPp (a third-party client): 1,000 stations with digest over UDP and TCP
//! on the internal zone; on the external zone only SBC-flagged stations get in, and everyone
//! else sees exactly what an unknown user sees.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cli, free_port, Server, TempDir, Ua};
use sip::header::AuthParams;
use sip::{parse_datagram, HeaderName, Message};

const FIRST: u32 = 400_000;
const STATIONS: u32 = 1_000;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/sipp")).join(name)
}

/// A password that passes the strong-password policy and does not contain the number.
fn strong_password(n: u32) -> String {
    let letters: String = n
        .to_string()
        .bytes()
        .map(|d| (b'a' + (d - b'0')) as char)
        .collect();
    format!("Hq#{letters}x7Z")
}

/// Odd numbers carry the SBC flag with a strong password; even ones have a weak one and no flag.
fn write_stations(dir: &Path) -> PathBuf {
    let mut csv = String::from("number,password,sbc\n");
    for n in FIRST..FIRST + STATIONS {
        if n % 2 == 1 {
            csv.push_str(&format!("{n},{},yes\n", strong_password(n)));
        } else {
            csv.push_str(&format!("{n},pw{n},no\n"));
        }
    }
    let path = dir.join("stations.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// A SIPp injection file for the numbers picked by `filter`, with the password `pw` gives.
fn users(
    dir: &Path,
    name: &str,
    numbers: impl Iterator<Item = u32>,
    pw: impl Fn(u32) -> String,
) -> (PathBuf, usize) {
    let mut text = String::from("SEQUENTIAL\n");
    let mut count = 0;
    for n in numbers {
        text.push_str(&format!("{n};{}\n", pw(n)));
        count += 1;
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    (path, count)
}

struct Sipp<'a> {
    dir: &'a Path,
    scenario: &'a str,
    target: std::net::SocketAddr,
    transport: &'a str,
    users: &'a Path,
    calls: usize,
    trace: Option<&'a str>,
}

impl Sipp<'_> {
    /// Runs SIPp to completion; returns (exit code, stdout+stderr).
    fn run(&self) -> (i32, String) {
        let mut cmd = Command::new("timeout");
        cmd.current_dir(self.dir)
            .arg("120")
            .arg("sipp")
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(scenario(self.scenario))
            .arg("-inf")
            .arg(self.users)
            .args([
                "-key",
                "expires",
                "300",
                "-t",
                self.transport,
                "-i",
                "127.0.0.1",
            ])
            .args(["-p", &free_port().to_string()])
            .args(["-m", &self.calls.to_string(), "-r", "250", "-l", "200"])
            .args([
                "-nostdin",
                "-timeout",
                "90s",
                "-timeout_error",
                "-default_behaviors",
                "all,-bye",
            ])
            .args([
                "-trace_err",
                "-error_file",
                "errors.log",
                "-trace_stat",
                "-stf",
                "stat.csv",
            ]);
        if let Some(file) = self.trace {
            cmd.args([
                "-trace_msg",
                "-message_overwrite",
                "true",
                "-message_file",
                file,
            ]);
        }
        let out = cmd
            .output()
            .expect("sipp (Debian package sip-tester) must be installed: .ci/run installs it");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors = std::fs::read_to_string(self.dir.join("errors.log")).unwrap_or_default();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{text}\n--- errors.log (head) ---\n{}",
                &errors[..errors.len().min(3000)]
            ),
        )
    }

    fn must_pass(&self) {
        let (code, text) = self.run();
        assert_eq!(
            code, 0,
            "SIPp {} over {} to {} failed:\n{text}",
            self.scenario, self.transport, self.target
        );
    }
}

fn server_with_stations(tag: &str) -> (TempDir, Server) {
    let data = TempDir::new(tag);
    let csv = write_stations(&data.0);
    let out = cli(&data.0, &["station", "import", csv.to_str().unwrap()]);
    assert!(out.contains(&format!("imported {STATIONS}")), "{out}");
    let server = Server::start(&data.0);
    (data, server)
}

fn password(n: u32) -> String {
    if n % 2 == 1 {
        strong_password(n)
    } else {
        format!("pw{n}")
    }
}

#[test]
fn internal_zone_1000_stations_register_over_udp_and_tcp() {
    let (data, server) = server_with_stations("sipp-internal");
    let (file, count) = users(&data.0, "all.csv", FIRST..FIRST + STATIONS, password);
    for transport in ["u1", "t1"] {
        Sipp {
            dir: &data.0,
            scenario: "reg_ok.xml",
            target: server.internal,
            transport,
            users: &file,
            calls: count,
            trace: None,
        }
        .must_pass();
    }
    // Spot check on the wire: a registered station's binding is there, over the protocol.
    let mut ua = Ua::new(server.internal);
    let n = FIRST + 7;
    let query = ua.register_with_digest(&n.to_string(), &password(n), None, None);
    assert_eq!(query.status.as_u16(), 200);
    assert!(query.headers.values(&HeaderName::Contact).count() >= 1);
}

#[test]
fn external_zone_admits_only_sbc_stations_and_refusals_look_alike() {
    let (data, server) = server_with_stations("sipp-external");
    let flagged = users(
        &data.0,
        "flagged.csv",
        (FIRST..FIRST + STATIONS).filter(|n| n % 2 == 1),
        strong_password,
    );
    let unflagged = users(
        &data.0,
        "unflagged.csv",
        (FIRST..FIRST + STATIONS).filter(|n| n % 2 == 0),
        |n| format!("pw{n}"),
    );
    let unknown = users(&data.0, "unknown.csv", 500_000..500_200, |n| {
        format!("pw{n}")
    });
    let wrong = users(
        &data.0,
        "wrong.csv",
        (FIRST..FIRST + 200).filter(|n| n % 2 == 1),
        |_| "Wrong#Passw0rd".into(),
    );
    let pass =
        |scenario: &str, (file, count): &(PathBuf, usize), transport: &str, trace: Option<&str>| {
            Sipp {
                dir: &data.0,
                scenario,
                target: server.external,
                transport,
                users: file,
                calls: *count,
                trace,
            }
            .must_pass()
        };
    pass("reg_ok.xml", &flagged, "u1", None);
    pass("reg_ok.xml", &flagged, "t1", None);
    pass("reg_denied.xml", &unflagged, "u1", None);
    pass("reg_denied.xml", &unknown, "u1", None);
    pass("reg_denied.xml", &wrong, "u1", None);

    // The three refusals, traced on the wire, have the same shape message for message.
    let one =
        |name: &str, n: u32, pw: &str| users(&data.0, name, std::iter::once(n), |_| pw.to_string());
    let cases = [
        ("no-sbc", one("t1.csv", FIRST + 2, "pw400002")),
        ("unknown", one("t2.csv", 500_500, "pw500500")),
        ("wrong-password", one("t3.csv", FIRST + 3, "Wrong#Passw0rd")),
    ];
    let mut shapes = Vec::new();
    for (label, users) in &cases {
        let trace = format!("{label}.msg");
        pass("reg_denied.xml", users, "u1", Some(&trace));
        let shape = received_shapes(&data.0.join(&trace));
        assert_eq!(
            shape.len(),
            2,
            "{label}: 401 then 403 expected, got {shape:?}"
        );
        assert!(
            shape[0].starts_with("401:") && shape[1].starts_with("403:"),
            "{label}: {shape:?}"
        );
        shapes.push((label, shape));
    }
    assert_eq!(shapes[0].1, shapes[1].1, "no-SBC station vs unknown user");
    assert_eq!(shapes[1].1, shapes[2].1, "unknown user vs wrong password");
}

/// Each message SIPp received, reduced to its status, header names and challenge parameter names.
fn received_shapes(trace: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(trace).unwrap_or_else(|e| panic!("{}: {e}", trace.display()));
    let mut shapes = Vec::new();
    for block in text.split("\n----------------------------------------------- ") {
        let mut lines = block.splitn(2, '\n');
        let _stamp = lines.next();
        let Some(rest) = lines.next() else { continue };
        let rest = rest.trim_start();
        let Some(body) = rest
            .strip_prefix("UDP message received")
            .or_else(|| rest.strip_prefix("TCP message received"))
        else {
            continue;
        };
        let raw = body
            .split_once('\n')
            .map(|x| x.1)
            .unwrap_or("")
            .trim_start()
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        let Ok(Message::Response(r)) = parse_datagram(raw.as_bytes(), 65536) else {
            continue;
        };
        let mut shape = format!("{}:", r.status);
        for h in r.headers.iter() {
            shape.push(' ');
            shape.push_str(h.name.as_str());
            if h.name == HeaderName::WwwAuthenticate {
                let p = AuthParams::parse(&h.value).unwrap();
                let mut names: Vec<&str> = p.params.iter().map(|(n, _)| n.as_str()).collect();
                names.sort();
                shape.push_str(&format!("{{{} {}}}", p.scheme, names.join(",")));
            }
        }
        shapes.push(shape);
    }
    shapes
}

//! The lab: the brief's reference network built with network namespaces, veth pairs and
//! iptables (`tests/lab/net.sh`), homeline in the office LAN behind the office router's port
//! forwards (exactly the rules `homeline router-rules --format iptables` prints), and real
//! baresip phones at home behind home NATs and in the office.
//!
//! ```text
//! hl-home  10.0.0.20 -- hl-homer  NAT 198.51.100.20 --+                                +-- hl-office      homeline 192.168.1.10
//! hl-home2 10.0.1.20 -- hl-homer2 NAT 198.51.100.21 --+-- hl-inet -- hl-officer 203.0.113.10 | 192.168.1.1
//!                        STUN (coturn) 198.51.100.10 --+                               +-- hl-officephone phone    192.168.1.20
//!                        (and 198.51.100.11:3479, RFC 5780)
//! ```
//!
//! Needs root, iproute2, iptables, baresip-core, coturn and tshark; without the rights or
//! tools to create namespaces every test prints `SKIP` and passes (tshark missing where the
//! lab can be built is a failure: `.ci/run` installs it). The tests share one set of
//! namespace names, so they take a lock (in this process and across processes) and build the
//! lab afresh each time; `tests/lab/net.sh down` removes a killed run's leftovers.
//!
//! Reproduce by hand: `tests/lab/net.sh up`, then `ip netns exec hl-home ...`. The home
//! routers are port-restricted cone NATs; `HOMELINE_LAB_NAT=full` or `=symmetric` changes that
//! for every scenario.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::baresip::{
    assert_audio_both_ways, connect_call, hold_and_resume, talk_and_hang_up, MediaAddr, Phone, PW,
    SIP_SETTINGS, TALK,
};
use common::{TempDir, BIN};

/// The office's public SIP address: what every phone at home is configured with.
const OFFICE_PUBLIC: &str = "203.0.113.10:5060";
/// homeline's internal listener: what the office phone is configured with.
const OFFICE_INTERNAL: &str = "192.168.1.10:5060";
/// The relay's ports in the lab (forwarded 1:1 by the office router).
const RELAY_PORTS: std::ops::RangeInclusive<u16> = 30000..=30099;
/// RTP packets each way after [`common::baresip::TALK`] (PCMU/20 ms: 50 per second).
const MIN_PACKETS: u64 = 50;
/// Server keepalive interval in the lab, seconds: below [`NAT_UDP_TIMEOUT`], as an operator
/// sets it for home routers with short UDP timeouts.
const KEEPALIVE_INTERVAL: u64 = 8;

/// UDP conntrack timeout of the home router in the keepalive scenario, seconds. A phone at
/// home stays reachable only if something crosses its NAT more often than this.
const NAT_UDP_TIMEOUT: u64 = 20;

fn net_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/net.sh")
}

/// Runs `net.sh ARGS`; `Err` with its output when it fails.
fn net(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(net_sh())
        .args(args)
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` inside namespace `ns` (`ip netns exec`).
fn in_ns(ns: &str, cmd: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, cmd]);
    c
}

/// One lab run at a time: the tests of this file (threads) and other processes (another
/// worktree's `cargo test`) all use the same namespace names.
struct LabLock {
    _thread: MutexGuard<'static, ()>,
    /// `flock` holding the machine-wide lock until its stdin closes.
    flock: Child,
}

impl Drop for LabLock {
    fn drop(&mut self) {
        let _ = self.flock.kill();
        let _ = self.flock.wait();
    }
}

fn lock() -> LabLock {
    static THREADS: Mutex<()> = Mutex::new(());
    let thread = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let mut flock = Command::new("flock")
        .args(["/tmp/homeline-lab.lock", "-c", "echo locked; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock (util-linux)");
    let mut line = String::new();
    BufReader::new(flock.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "flock /tmp/homeline-lab.lock");
    LabLock {
        _thread: thread,
        flock,
    }
}

/// The running lab: namespaces, port forwards, STUN server, homeline with stations
/// 2001 (home), 2002 (second home) with the SBC flag, and 2010 (office phone) without.
struct Lab {
    data: TempDir,
    server: Child,
    log: mpsc::Receiver<String>,
    /// Every log line read so far.
    seen: Vec<String>,
    stun: Option<Child>,
    /// `homeline stun-server` on the Internet, RFC 5780 ([`OWN_STUN`], [`OWN_STUN_OTHER`]).
    own_stun: Child,
    _lock: LabLock,
}

/// homeline's own STUN server on the lab's Internet (`homeline stun-server`), beside coturn's.
const OWN_STUN: &str = "198.51.100.12:3478";
/// Its second address (another IP and port): RFC 5780 CHANGE-REQUEST and OTHER-ADDRESS.
const OWN_STUN_OTHER: &str = "198.51.100.13:3479";

/// Starts `homeline stun-server` in hl-inet and waits until its four sockets listen.
fn own_stun_server() -> Child {
    let mut child = in_ns("hl-inet", BIN)
        .args([
            "stun-server",
            "--listen",
            OWN_STUN,
            "--alternate",
            OWN_STUN_OTHER,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut said = String::new();
    while said.matches("listening on udp").count() < 4 {
        let n = out.read_line(&mut said).unwrap();
        assert!(
            n > 0,
            "homeline stun-server in hl-inet did not start: {said}"
        );
    }
    // Its stdout stays drained so a late line never blocks it.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    child
}

impl Lab {
    /// Builds the lab with both home routers doing `nat` (`prc`, `full`, `symmetric`), or
    /// prints why it cannot and returns `None` (the test then passes as skipped).
    fn up(test: &str, nat: &str) -> Option<Lab> {
        Self::up_with(test, nat, "public_ip = \"203.0.113.10\"\n", "")
    }

    /// Like [`Lab::up`], with `media` added to the `[media]` section (where the fixed public
    /// address goes) and `extra` (more sections) at the end of homeline's configuration.
    fn up_with(test: &str, nat: &str, media: &str, extra: &str) -> Option<Lab> {
        Self::build(test, nat, "prc", media, extra)
    }

    /// The whole lab: home routers doing `nat`, the office router doing `office_nat` toward
    /// homeline (`net.sh office-nat`: `prc`, `restricted`, `full`, `symmetric`, `outfilter`,
    /// `blocked`), and `media` and `extra` in homeline's configuration as in [`Lab::up_with`].
    fn build(test: &str, nat: &str, office_nat: &str, media: &str, extra: &str) -> Option<Lab> {
        let missing: Vec<&str> = ["ip", "iptables", "baresip", "flock"]
            .into_iter()
            .filter(|t| !have(t))
            .collect();
        if !missing.is_empty() {
            eprintln!("SKIP {test}: lab tools missing: {missing:?} (see .ci/run)");
            return None;
        }
        if let Err(why) = net(&["check"]) {
            eprintln!(
                "SKIP {test}: cannot build the network-namespace lab here: {}",
                why.trim()
            );
            return None;
        }
        // HOMELINE_LAB_NAT=full|symmetric runs every scenario behind another NAT type.
        let nat = std::env::var("HOMELINE_LAB_NAT").unwrap_or_else(|_| nat.to_string());
        let nat = nat.as_str();
        eprintln!("{test}: home routers: {nat} NAT");
        let lock = lock();
        net(&["up", nat]).unwrap_or_else(|e| panic!("net.sh up {nat}: {e}"));
        let data = TempDir::new(&format!("lab-{test}"));
        let config = data.0.join("lab.toml");
        std::fs::write(
            &config,
            format!(
                "[sip]\ninternal = [\"{OFFICE_INTERNAL}\"]\nexternal = [\"192.168.1.10:5062\"]\n{SIP_SETTINGS}\
                 keepalive_interval = {KEEPALIVE_INTERVAL}\n\
                 [media]\n{media}ports = \"30000-30099\"\nworkers = 1\n\
                 [log]\nlevel = \"info\"\n{}{extra}",
                common::tls_ports(extra)
            ),
        )
        .unwrap();
        // The office router forwards what homeline says it must.
        net(&["forward", BIN, config.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("router-rules into hl-officer: {e}"));
        // After the forwards: its catch-all rules (full cone) must not shadow them.
        net(&["office-nat", office_nat])
            .unwrap_or_else(|e| panic!("net.sh office-nat {office_nat}: {e}"));
        for (n, sbc) in [("2001", "on"), ("2002", "on"), ("2010", "off")] {
            common::cli(
                &data.0,
                &["station", "add", n, "--password", PW, "--sbc", sbc],
            );
        }
        let stun = have("turnserver").then(|| {
            in_ns("hl-inet", "turnserver")
                .args([
                    "-n",
                    "--no-cli",
                    "--no-tls",
                    "--no-dtls",
                    "-L",
                    "198.51.100.10",
                    // The second address makes it an RFC 5780 server (homeline's NAT probe).
                    "-L",
                    "198.51.100.11",
                    "--alt-listening-port",
                    "3479",
                ])
                .args(["--listening-port", "3478", "--log-file", "stdout"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let own_stun = own_stun_server();
        let mut server = in_ns("hl-office", BIN)
            .arg("--data")
            .arg(&data.0)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = server.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lab = Lab {
            data,
            server,
            log,
            seen: Vec::new(),
            stun,
            own_stun,
            _lock: lock,
        };
        lab.wait_log("homeline ready", Duration::from_secs(20));
        Some(lab)
    }

    /// Waits for a log line containing `text` (not seen before `from`, an index into the
    /// lines read so far); returns its index.
    fn wait_log_from(&mut self, from: usize, text: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[from.min(self.seen.len())..]
                .iter()
                .position(|l| l.contains(text))
            {
                return from + i;
            }
            match self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "homeline never logged {text:?} within {timeout:?}; log:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn wait_log(&mut self, text: &str, timeout: Duration) -> usize {
        self.wait_log_from(0, text, timeout)
    }

    /// Takes the log lines written so far.
    fn drain(&mut self) {
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
    }

    /// `homeline status --json` of the running server.
    fn status(&self) -> String {
        common::cli(&self.data.0, &["status", "--json"])
    }

    /// The home phone (2001) in hl-home, registered to the office's public address.
    fn home(&self) -> Phone {
        phone("HOME-2001", "hl-home", "10.0.0.20", OFFICE_PUBLIC, "2001")
    }

    /// The second home phone (2002) in hl-home2, behind the second home NAT.
    fn home2(&self) -> Phone {
        phone("HOME2-2002", "hl-home2", "10.0.1.20", OFFICE_PUBLIC, "2002")
    }

    /// The office phone (2010) in hl-officephone, on homeline's internal listener.
    fn office(&self) -> Phone {
        phone(
            "OFFICE-2010",
            "hl-officephone",
            "192.168.1.20",
            OFFICE_INTERNAL,
            "2010",
        )
    }

    /// The relay's per-leg counters logged since line `from` ("relay channel closed"):
    /// (received, sent) of each leg; waits until `legs` of them are there.
    fn relay_closed(&mut self, from: usize, legs: usize) -> Vec<(u64, u64)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.drain();
            let found: Vec<(u64, u64)> = self.seen[from..]
                .iter()
                .filter(|l| l.contains("relay channel closed"))
                .map(|l| (field(l, "received"), field(l, "sent")))
                .collect();
            if found.len() >= legs {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{legs} \"relay channel closed\" lines expected, found {found:?}; log:\n{}",
                self.seen[from..].join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        for s in self.stun.iter_mut().chain([&mut self.own_stun]) {
            let _ = s.kill();
            let _ = s.wait();
        }
        if std::thread::panicking() {
            self.drain();
            eprintln!(
                "===== homeline log =====\n{}\n===== end of homeline log =====",
                self.seen.join("\n")
            );
        }
        if let Err(e) = net(&["down"]) {
            eprintln!("net.sh down: {e}");
        }
    }
}

/// `key=N` in a tracing line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn phone(name: &str, ns: &str, ip: &str, registrar: &str, user: &str) -> Phone {
    let registrar: SocketAddr = registrar.parse().unwrap();
    let mut p = Phone::start_in(name, ns, ip, registrar, user, PW);
    p.wait_registered();
    p
}

/// Every SDP the phone received asks for media at `ip` on a relay port.
fn assert_relayed_at(received: &[MediaAddr], ip: &str, who: &str) {
    assert!(!received.is_empty(), "{who}: no SDP received");
    for m in received {
        assert!(
            m.ip == ip && RELAY_PORTS.contains(&m.port),
            "{who} was told to send RTP to {m:?}, want {ip} on a relay port {RELAY_PORTS:?}"
        );
    }
}

/// Both legs of the relay carried the call: every closed leg received and sent audio.
fn assert_relay_carried(legs: &[(u64, u64)], who: &str) {
    for &(received, sent) in legs {
        assert!(
            received > MIN_PACKETS && sent > MIN_PACKETS,
            "{who}: relay leg received {received} / sent {sent} packets, want more than {MIN_PACKETS} each way ({legs:?})"
        );
    }
}

/// Scenario 1: a phone at home registers to the office's public address through its home NAT
/// and the office router's forwards, and calls an office phone and back: audio both ways
/// through the relay, hang-up from either side.
#[test]
fn lab_home_phone_through_both_nats_calls_the_office_and_back() {
    let Some(mut lab) = Lab::up("home-office", "prc") else {
        return;
    };
    // The STUN server on the Internet sees the home router's public address (coturn needs a
    // moment to listen: retried).
    if lab.stun.is_some() && have("turnutils_stunclient") {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = in_ns("hl-home", "timeout")
                .args(["2", "turnutils_stunclient", "198.51.100.10"])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if text.contains("reflexive addr: 198.51.100.20:") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "STUN from hl-home should map to 198.51.100.20:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let mut home = lab.home();
    let mut office = lab.office();
    // The registration went through the home NAT: homeline saw the home router's public
    // address (Via received=, RFC 3581) and accepted it on the external zone.
    let ok = home
        .trace()
        .into_iter()
        .find(|m| !m.sent && m.status() == Some(200) && m.text.contains(" REGISTER\n"));
    let ok = ok.expect("a 200 OK to REGISTER in the home phone's trace");
    assert!(
        ok.text.contains("received=198.51.100.20"),
        "REGISTER should arrive from 198.51.100.20:\n{}",
        ok.text
    );

    // Home calls the office; the office phone hangs up.
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut home, &mut office);
    // Hold and resume from home: re-INVITEs through both NATs, the relay re-latches.
    hold_and_resume(&mut home, &mut office);
    let (so, sh) = talk_and_hang_up(&mut office, &mut home, 1);
    assert_audio_both_ways((&home, sh), (&office, so), MIN_PACKETS);
    let legs = lab.relay_closed(from, 1);
    assert_relay_carried(&legs, "home -> office");

    // The office calls home; the home phone hangs up.
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut office, &mut home);
    let (sh, so) = talk_and_hang_up(&mut home, &mut office, 2);
    assert_audio_both_ways((&home, sh), (&office, so), MIN_PACKETS);
    let legs = lab.relay_closed(from, 1);
    assert_relay_carried(&legs, "office -> home");

    assert_relayed_at(&home.received_media(), "203.0.113.10", "home phone");
    assert_relayed_at(&office.received_media(), "192.168.1.10", "office phone");
    // The live counters agree: the relay moved the audio of both calls.
    let status = lab.status();
    let packets = json_u64_after(&status, "\"relay\"", "packets");
    assert!(
        packets > 4 * MIN_PACKETS,
        "status relay packets {packets}, want more than {}:\n{status}",
        4 * MIN_PACKETS
    );
}

/// Scenario 1b: homeline without `media.public_ip` learns the office's public address from
/// the STUN server on the Internet (through the office router's NAT), shows it in status, and a
/// home phone's call has audio through the relay at that address. Then the office line gets
/// another address (the router's WAN address changes from 203.0.113.10 to 203.0.113.11, as a
/// new DHCP lease would do; MASQUERADE follows it and drops the flows translated to the old
/// one): homeline's STUN refresh notices, logs the change, and the next call's SDP names the
/// new address, with audio.
#[test]
fn lab_public_address_learned_by_stun_and_followed_when_it_changes() {
    if !have("turnserver") {
        eprintln!("SKIP lab_public_address_learned_by_stun: turnserver (coturn) missing");
        return;
    }
    let Some(mut lab) = Lab::up_with(
        "stun-public",
        "prc",
        "",
        "[nat]\nstun_servers = [\"198.51.100.10:3478\"]\nrefresh_secs = 10\n",
    ) else {
        return;
    };
    lab.wait_log(
        "public address changed from none to 203.0.113.10",
        Duration::from_secs(40),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: serde_json::Value = serde_json::from_str(&lab.status()).unwrap();
        let p = &status["public_address"];
        if p["nat"].is_object() {
            assert_eq!(p["address"], "203.0.113.10", "{status}");
            assert_eq!(p["source"], "stun", "{status}");
            // MASQUERADE maps endpoint-independently; the router's stateful FORWARD filters
            // by address and port.
            assert_eq!(p["nat"]["kind"], "port-restricted cone", "{status}");
            assert_eq!(p["nat"]["verdict"], "supported", "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "no NAT type in status: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }

    let mut home = lab.home();
    let mut office = lab.office();
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut home, &mut office);
    // Hold and resume from home: re-INVITEs through both NATs, the relay re-latches.
    hold_and_resume(&mut home, &mut office);
    let (so, sh) = talk_and_hang_up(&mut office, &mut home, 1);
    assert_audio_both_ways((&home, sh), (&office, so), MIN_PACKETS);
    assert_relay_carried(
        &lab.relay_closed(from, 1),
        "home -> office (learned address)",
    );
    assert_relayed_at(&home.received_media(), "203.0.113.10", "home phone");
    drop(home);

    // The office line's address changes (deleting the old one drops the MASQUERADE flows
    // translated to it, and with it the default route).
    for args in [
        "ip addr del 203.0.113.10/24 dev wan0",
        "ip addr add 203.0.113.11/24 dev wan0",
        "ip route replace default via 203.0.113.1",
    ] {
        let ok = in_ns("hl-officer", "sh")
            .args(["-c", args])
            .status()
            .unwrap()
            .success();
        assert!(ok, "hl-officer: {args}");
    }
    lab.drain();
    let from = lab.seen.len();
    lab.wait_log_from(
        from,
        "public address changed from 203.0.113.10 to 203.0.113.11",
        Duration::from_secs(40),
    );
    let status: serde_json::Value = serde_json::from_str(&lab.status()).unwrap();
    assert_eq!(
        status["public_address"]["address"], "203.0.113.11",
        "{status}"
    );

    // The home phone is told the new address (DynDNS would do that for a name).
    let mut home = phone(
        "HOME-2001",
        "hl-home",
        "10.0.0.20",
        "203.0.113.11:5060",
        "2001",
    );
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut office, &mut home);
    std::thread::sleep(TALK);
    home.hangup();
    home.wait_closed();
    office.wait_closed();
    // The new home phone's first call, the office phone's second.
    let (sh, so) = (home.wait_rtp_stats(1), office.wait_rtp_stats(2));
    assert_audio_both_ways((&home, sh), (&office, so), MIN_PACKETS);
    assert_relay_carried(&lab.relay_closed(from, 1), "office -> home (new address)");
    assert_relayed_at(
        &home.received_media(),
        "203.0.113.11",
        "home phone after the change",
    );
    lab.drain();
    for l in lab.seen.iter().filter(|l| {
        ["public address", "NAT type", "STUN"]
            .iter()
            .any(|k| l.contains(k))
    }) {
        eprintln!("homeline: {l}");
    }
}

/// What the NAT probe must say for one office-router variant (`net.sh office-nat`).
struct NatCase {
    office_nat: &'static str,
    /// The classic name (`NAT type:` of `homeline nat detect`, `nat.kind` in status).
    kind: &'static str,
    /// Device@Home in status: supported, unsupported, unknown.
    verdict: &'static str,
    /// Lines `homeline nat detect` must print besides the NAT type.
    says: &'static [&'static str],
}

const NAT_CASES: &[NatCase] = &[
    NatCase {
        office_nat: "full",
        kind: "full cone",
        verdict: "supported",
        says: &[
            "mapping:         endpoint-independent",
            "filtering:       endpoint-independent",
            "Device@Home:     supported",
        ],
    },
    NatCase {
        office_nat: "restricted",
        kind: "restricted cone",
        verdict: "supported",
        says: &[
            "mapping:         endpoint-independent",
            "filtering:       address-dependent",
        ],
    },
    NatCase {
        office_nat: "prc",
        kind: "port-restricted cone",
        verdict: "supported",
        says: &[
            "mapping:         endpoint-independent",
            "filtering:       address- and port-dependent",
        ],
    },
    NatCase {
        office_nat: "symmetric",
        kind: "symmetric",
        verdict: "unsupported",
        says: &[
            "mapping:         address- and port-dependent",
            "Device@Home:     NOT supported",
            "fix:             change the office router's NAT to endpoint-independent mapping",
            "forward the relay port range 1:1",
        ],
    },
    NatCase {
        office_nat: "outfilter",
        kind: "cannot tell",
        verdict: "unknown",
        says: &[
            "198.51.100.13:3478 never answered although the first address did: a symmetric NAT \
             and an outbound filter on the router look alike",
            "Device@Home:     cannot tell yet",
        ],
    },
    NatCase {
        office_nat: "blocked",
        kind: "UDP blocked",
        verdict: "unsupported",
        says: &["public address:  unknown", "Device@Home:     NOT supported"],
    },
];

/// The SIP listener's and the relay samples' mappings in status once all three are known (or,
/// with UDP blocked, have failed): kept behind a port-keeping router, rewritten behind the
/// symmetric one, with the fix.
fn lab_port_mappings(lab: &mut Lab, name: &str, office_nat: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    let (status, mappings) = loop {
        let status: serde_json::Value = serde_json::from_str(&lab.status()).unwrap();
        let m = status["public_address"]["mappings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let settled = |m: &serde_json::Value| {
            if office_nat == "blocked" {
                m["failures"].as_u64().unwrap_or(0) > 0
            } else {
                m["public"].is_string()
            }
        };
        if m.len() == 3 && m.iter().all(settled) {
            break (status, m);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: port mappings not settled in status: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let want = [
        ("sip", "192.168.1.10:5062"),
        ("relay", "0.0.0.0:30000"),
        ("relay", "0.0.0.0:30098"),
    ];
    for (m, (role, local)) in mappings.iter().zip(want) {
        assert_eq!(
            (m["role"].as_str(), m["local"].as_str()),
            (Some(role), Some(local)),
            "{name}: {status}"
        );
        let port = &local[local.rfind(':').unwrap() + 1..];
        match office_nat {
            "blocked" => {
                assert!(m["public"].is_null(), "{name}: {status}");
                assert!(
                    m["last_error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("no answer"),
                    "{name}: {status}"
                );
            }
            "symmetric" => {
                let public = m["public"].as_str().unwrap();
                assert!(public.starts_with("203.0.113.10:"), "{name}: {status}");
                assert_ne!(
                    &public[13..],
                    port,
                    "{name}: --random-fully kept the port: {status}"
                );
                assert_eq!(m["preserved"], false, "{name}: {status}");
                let fix = m["fix"].as_str().unwrap_or_default();
                let want = if role == "sip" {
                    "forward UDP 5060 to 5062 and keep source ports"
                } else {
                    "forward UDP 30000-30099 1:1 and keep source ports"
                };
                assert!(fix.starts_with(want), "{name}: {fix}");
            }
            _ => {
                assert_eq!(
                    m["public"],
                    format!("203.0.113.10:{port}"),
                    "{name}: {status}"
                );
                assert_eq!(m["preserved"], true, "{name}: {status}");
                assert!(m["fix"].is_null(), "{name}: {status}");
            }
        }
    }
    let table = common::cli(&lab.data.0, &["status"]);
    eprintln!("{name}: homeline status:\n{table}");
    match office_nat {
        "symmetric" => {
            assert!(table.contains("PORT REWRITTEN"), "{name}: {table}");
            assert!(
                table.contains("fix: forward UDP 30000-30099 1:1 and keep source ports"),
                "{name}: {table}"
            );
            lab.wait_log(
                "the office router rewrites the port",
                Duration::from_secs(5),
            );
        }
        "blocked" => assert!(table.contains("not learned yet"), "{name}: {table}"),
        _ => {
            assert!(
                table.contains("sip   192.168.1.10:5062 -> 203.0.113.10:5062, port preserved"),
                "{name}: {table}"
            );
            assert!(!table.contains("REWRITTEN"), "{name}: {table}");
        }
    }
}

/// `homeline nat detect` against homeline's own RFC 5780 STUN server, run in namespace `ns`.
fn nat_detect(ns: &str) -> String {
    let out = in_ns(ns, BIN)
        .args(["nat", "detect", "--server", OWN_STUN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "homeline nat detect in {ns} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Scenario 5 (RFC 5780 §4.3, §4.4 in the brief's network): the office router is built as each
/// kind of NAT (tests/lab/net.sh `lab_office_nat`: full cone, restricted cone, port-restricted
/// cone, symmetric with `--random-fully`, an outbound filter, UDP blocked), and both
/// `homeline nat detect` in the office LAN and the running server's status name it, against
/// homeline's own STUN server with two addresses on the Internet. The symmetric router is
/// reported unsupported with the fix; the outbound filter is not passed off as a symmetric
/// NAT; the public address learned is the office router's. "Open" is the router itself, which
/// has the public address (no host behind a NAT can be open).
///
/// RFC 8489 port mappings in the same runs: the server asks from its SIP listener's own
/// socket (192.168.1.10:5062) and from two sample ports of the relay range (30000 and 30098):
/// behind every port-keeping router (MASQUERADE) status shows each public port equal to the
/// local one, behind the symmetric one (`--random-fully`) each rewritten, with the fix in
/// status and the log; with UDP blocked, the failures.
///
/// A restricted-cone router cannot be built per socket with iptables: xt_recent remembers the
/// destination IPs of the whole host, so the list is cleared before the command-line probe
/// (the server's own probe and STUN refreshes would otherwise have opened it).
#[test]
fn rfc5780_lab_nat_type_of_each_office_router_variant() {
    let mut ran = 0;
    for case in NAT_CASES {
        let name = format!("nat-{}", case.office_nat);
        let Some(mut lab) = Lab::build(
            &name,
            "prc",
            case.office_nat,
            "",
            &format!("[nat]\nstun_servers = [\"{OWN_STUN}\"]\nrefresh_secs = 30\n"),
        ) else {
            return;
        };
        ran += 1;
        // The server's own probe, at start: status.
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            let status: serde_json::Value = serde_json::from_str(&lab.status()).unwrap();
            let p = &status["public_address"];
            if p["nat"].is_object() && (case.office_nat == "blocked" || p["address"].is_string()) {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no NAT type or public address in status: {status}"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        let p = &status["public_address"];
        assert_eq!(p["nat"]["kind"], case.kind, "{name}: {status}");
        assert_eq!(p["nat"]["verdict"], case.verdict, "{name}: {status}");
        if case.office_nat == "blocked" {
            assert!(p["address"].is_null(), "{name}: {status}");
            assert!(p["last_error"].is_string(), "{name}: {status}");
        } else {
            assert_eq!(p["address"], "203.0.113.10", "{name}: {status}");
            assert_eq!(p["source"], "stun", "{name}: {status}");
        }
        if case.office_nat == "symmetric" {
            let fix = p["nat"]["fix"].as_str().unwrap_or_default();
            assert!(fix.contains("endpoint-independent mapping"), "{status}");
            lab.wait_log(
                "the office NAT does not support Device@Home",
                Duration::from_secs(5),
            );
        }
        lab_port_mappings(&mut lab, &name, case.office_nat);

        // The command line, from homeline's host in the office LAN.
        if case.office_nat == "restricted" {
            let ok = in_ns("hl-officer", "sh")
                .args(["-c", "echo / > /proc/net/xt_recent/hl-sent"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "clearing hl-officer's xt_recent list hl-sent");
        }
        let text = nat_detect("hl-office");
        eprintln!("{name}: homeline nat detect:\n{text}");
        assert!(
            text.contains(&format!("NAT type:        {}\n", case.kind)),
            "{name}: want NAT type {:?}:\n{text}",
            case.kind
        );
        for want in case.says {
            assert!(text.contains(want), "{name}: want {want:?}:\n{text}");
        }
        if case.office_nat != "blocked" {
            assert!(
                text.contains("public address:  203.0.113.10:"),
                "{name}: the public address should be the office router's:\n{text}"
            );
        }
        if case.office_nat == "prc" {
            // The plain mapping, and the router itself: no NAT in front of it.
            let out = in_ns("hl-office", BIN)
                .args(["nat", "mapped", "--server", OWN_STUN])
                .output()
                .unwrap();
            let mapped = String::from_utf8_lossy(&out.stdout);
            assert!(
                mapped.contains(" -> 203.0.113.10:") && mapped.contains("192.168.1.10:"),
                "nat mapped: {mapped}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let open = nat_detect("hl-officer");
            eprintln!("the office router itself: homeline nat detect:\n{open}");
            for want in [
                "NAT type:        open (no NAT)\n",
                "public address:  203.0.113.10:",
                "filtering:       endpoint-independent",
                "Device@Home:     supported",
            ] {
                assert!(open.contains(want), "open: want {want:?}:\n{open}");
            }
        }
    }
    assert_eq!(ran, NAT_CASES.len());
}

/// The number of `"key":N` after `anchor` in a JSON text.
fn json_u64_after(json: &str, anchor: &str, key: &str) -> u64 {
    let rest = &json[json
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} in {json}"))..];
    let pat = format!("\"{key}\":");
    let at = rest.find(&pat).unwrap_or_else(|| panic!("{key} in {rest}")) + pat.len();
    rest[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {rest}"))
}

/// Scenario 2: a phone behind a second home NAT calls the first: audio both ways, both legs
/// through the relay at the office's public address.
/// The two home routers are the brief's other home NAT variants: a symmetric NAT
/// (`--random-fully`: a new port per destination) in front of the first phone and a full cone
/// in front of the second; latching on the relay (RFC 4961) carries both.
#[test]
fn lab_two_home_phones_behind_two_nats_talk_through_the_relay() {
    let Some(mut lab) = Lab::up("home-home", "prc") else {
        return;
    };
    if std::env::var_os("HOMELINE_LAB_NAT").is_none() {
        net(&["nat", "hl-homer", "symmetric"]).unwrap_or_else(|e| panic!("symmetric: {e}"));
        net(&["nat", "hl-homer2", "full"]).unwrap_or_else(|e| panic!("full cone: {e}"));
    }
    let mut home = lab.home();
    let mut home2 = lab.home2();
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut home2, &mut home);
    let (s2, s1) = talk_and_hang_up(&mut home2, &mut home, 1);
    assert_audio_both_ways((&home, s1), (&home2, s2), MIN_PACKETS);
    let legs = lab.relay_closed(from, 2);
    assert_relay_carried(&legs, "home2 -> home");
    assert_relayed_at(&home.received_media(), "203.0.113.10", "home phone");
    assert_relayed_at(&home2.received_media(), "203.0.113.10", "second home phone");
}

/// Scenario 3: a tshark capture on the Internet segment while home phones register and call
/// (home to office, office to home, home to home) shows no private address (RFC 1918, RFC 6598,
/// link-local, ULA, loopback) outside the NATs, in the IP header or in any SIP header or SDP
/// line as tshark's SIP and SDP dissectors read them; the one exception is what homeline must
/// echo to a phone of that phone's own addresses (RFC 3261: its Via in responses, its
/// registered Contact as Request-URI), which never names the office.
///
/// tshark is required (`.ci/run` installs it): without it the test fails rather than skip.
#[test]
fn lab_no_private_address_crosses_the_internet() {
    let Some(lab) = Lab::up("capture", "prc") else {
        return;
    };
    assert!(
        have("tshark"),
        "tshark is missing: the capture on the lab's Internet needs it \
         (Debian package tshark; .ci/run installs it)"
    );
    let pcap = lab.data.0.join("inet.pcapng");
    // tshark hands the capture to dumpcap, which needs to write the file as root.
    let mut dump = in_ns("hl-inet", "tshark")
        .args(["-i", "any", "-n", "-q", "-f", "udp or tcp", "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says "Capturing on 'any'" once it captures.
    let mut said = String::new();
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    while !said.contains("Capturing on") {
        let n = err.read_line(&mut said).unwrap();
        assert!(n > 0, "tshark in hl-inet did not start: {said}");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));

    let mut home = lab.home();
    let mut home2 = lab.home2();
    let mut office = lab.office();
    call_and_hang_up(&mut home, &mut office);
    call_and_hang_up(&mut office, &mut home2);
    call_and_hang_up(&mut home2, &mut home);
    std::thread::sleep(Duration::from_millis(500));
    // SIGINT: tshark stops dumpcap, which writes out what it holds.
    let ok = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT tshark");
    let _ = dump.wait();

    let packets = tshark_sip(&pcap);
    let sip: Vec<&SipPacket> = packets.iter().filter(|p| !p.sip.is_empty()).collect();
    assert!(sip.len() > 10, "only {} SIP packets dissected", sip.len());
    let sdp = sip
        .iter()
        .filter(|p| p.sip.iter().any(|(f, _)| f.starts_with("sdp.")))
        .count();
    assert!(sdp >= 6, "only {sdp} SIP messages with SDP dissected");

    let mut problems = Vec::new();
    for p in &packets {
        for a in [p.src, p.dst] {
            if is_private(a) {
                problems.push(format!(
                    "frame {}: {} -> {}: a private IP address on the Internet",
                    p.frame, p.src, p.dst
                ));
            }
        }
    }
    let office_ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
    let mut own_private = 0;
    // The first message with a leak, whole, for the failure output.
    let mut example = String::new();
    for p in &sip {
        // What the receiving phone itself sent us from behind its NAT: its own addresses.
        let phone_own: Vec<IpAddr> = sip
            .iter()
            .filter(|q| q.src == p.dst && q.dst == office_ip)
            .flat_map(|q| q.sip.iter().flat_map(|(_, v)| ips(v)))
            .filter(|a| is_private(*a))
            .collect();
        for (field, value) in &p.sip {
            for a in ips(value).into_iter().filter(|a| is_private(*a)) {
                if p.src != office_ip {
                    own_private += 1; // the phone's own message: no SIP ALG at home, as the brief wants
                } else if !phone_own.contains(&a) {
                    problems.push(format!(
                        "frame {}: homeline -> {}: {field} {value:?}",
                        p.frame, p.dst
                    ));
                    if example.is_empty() {
                        example = p
                            .sip
                            .iter()
                            .map(|(f, v)| format!("{f}: {v}"))
                            .collect::<Vec<_>>()
                            .join("\n");
                    }
                }
            }
        }
    }
    eprintln!(
        "tshark: {} packets, {} SIP ({sdp} with SDP); {own_private} private addresses in the phones' own messages",
        packets.len(),
        sip.len()
    );
    problems.dedup();
    let kept = std::env::temp_dir().join("homeline-lab-inet.pcapng");
    if !problems.is_empty() {
        let _ = std::fs::copy(&pcap, &kept); // the data folder goes with the lab
    }
    assert!(
        problems.is_empty(),
        "private addresses on the Internet segment (capture kept in {kept:?}):\n{}\n\nfirst such message:\n{example}",
        problems.join("\n")
    );
}

/// Scenario 4: the home router forgets idle UDP mappings after [`NAT_UDP_TIMEOUT`] s; after
/// a longer silence, a call to the home phone must still ring (registration refreshes or
/// keepalives keep the mapping).
#[test]
fn lab_home_phone_still_rings_after_the_nat_idle_timeout() {
    let Some(lab) = Lab::up("keepalive", "prc") else {
        return;
    };
    let t = NAT_UDP_TIMEOUT.to_string();
    for key in [
        "nf_conntrack_udp_timeout",
        "nf_conntrack_udp_timeout_stream",
    ] {
        let ok = in_ns("hl-homer", "sysctl")
            .args(["-q", "-w", &format!("net.netfilter.{key}={t}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "sysctl {key} in hl-homer");
    }
    let mut home = lab.home();
    let mut office = lab.office();
    std::thread::sleep(Duration::from_secs(NAT_UDP_TIMEOUT + 5));
    office.dial("2001");
    let rang = home.try_wait_any(&["CALL_INCOMING"], Duration::from_secs(8));
    if rang.is_none() {
        // The home router's connection table (procfs, per namespace), when the kernel has it.
        let table = in_ns("hl-homer", "cat")
            .arg("/proc/net/nf_conntrack")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let sent: Vec<String> = home
            .trace()
            .iter()
            .filter(|m| m.sent)
            .map(|m| m.start.clone())
            .collect();
        panic!(
            "2001 at home did not ring after {}s of silence behind a NAT with a {t}s UDP timeout: \
             nothing kept its NAT mapping on 198.51.100.20 open (messages the phone sent: {sent:?}); \
             hl-homer conntrack:\n{table}",
            NAT_UDP_TIMEOUT + 5
        );
    }
    home.answer();
    home.wait_established();
    office.wait_established();
    office.hangup();
    home.wait_closed();
}

/// `a` calls `b`, they talk for [`TALK`], `a` hangs up.
fn call_and_hang_up(a: &mut Phone, b: &mut Phone) {
    connect_call(a, b);
    std::thread::sleep(TALK);
    a.hangup();
    a.wait_closed();
    b.wait_closed();
}

/// One IP packet of a capture as tshark dissects it.
struct SipPacket {
    frame: u64,
    src: IpAddr,
    dst: IpAddr,
    /// (field, value) of every SIP header and SDP line tshark found; empty when not SIP.
    sip: Vec<(String, String)>,
}

/// The SIP and SDP fields tshark reads: the start line, every header (`sip.msg_hdr` holds the
/// whole header block, so no header escapes), and every SDP line naming an address.
const TSHARK_FIELDS: &[&str] = &[
    "sip.Request-Line",
    "sip.Status-Line",
    "sip.msg_hdr",
    "sdp.owner",
    "sdp.connection_info",
    "sdp.media",
    "sdp.media_attr",
];

/// Every IPv4/IPv6 packet of `pcap` with its SIP and SDP fields (`tshark -T json -e ...`).
/// SIP over UDP and TCP port 5060 is dissected by tshark's default port table.
fn tshark_sip(pcap: &Path) -> Vec<SipPacket> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-n", "-T", "json"]);
    for f in ["frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst"]
        .iter()
        .chain(TSHARK_FIELDS)
    {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "tshark -r {pcap:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("tshark -T json output: {e}"));
    let values = |layers: &serde_json::Value, f: &str| -> Vec<String> {
        layers[f]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut packets = Vec::new();
    for p in json.as_array().expect("tshark -T json: an array") {
        let layers = &p["_source"]["layers"];
        let first_ip = |a: &str, b: &str| {
            values(layers, a)
                .into_iter()
                .chain(values(layers, b))
                .next()
                .and_then(|v| v.parse::<IpAddr>().ok())
        };
        let (Some(src), Some(dst)) = (
            first_ip("ip.src", "ipv6.src"),
            first_ip("ip.dst", "ipv6.dst"),
        ) else {
            continue;
        };
        let frame = values(layers, "frame.number")
            .first()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        let sip = TSHARK_FIELDS
            .iter()
            .flat_map(|f| values(layers, f).into_iter().map(|v| (f.to_string(), v)))
            .collect();
        packets.push(SipPacket {
            frame,
            src,
            dst,
            sip,
        });
    }
    packets
}

/// Addresses that must not cross the Internet: RFC 1918, RFC 6598 (100.64/10), link-local,
/// loopback; IPv6 ULA (fc00::/7), link-local (fe80::/10), loopback.
fn is_private(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || (a == 100 && (64..128).contains(&b))
                || v4.is_link_local()
                || v4.is_loopback()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Every IPv4 (dotted quad) and IPv6 (bracketed or bare, with at least two colons) address
/// in `text`.
fn ips(text: &str) -> Vec<IpAddr> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .flat_map(|w| {
            let w = w.trim_matches(|c| c == '.' || c == ':');
            // host:port for IPv4; IPv6 parses whole.
            [
                w.parse::<IpAddr>().ok(),
                w.split(':').next().and_then(|h| h.parse().ok()),
            ]
        })
        .flatten()
        .collect::<std::collections::BTreeSet<IpAddr>>()
        .into_iter()
        .collect()
}

#[test]
fn lab_private_address_ranges_and_their_extraction() {
    for a in [
        "10.0.0.20",
        "192.168.1.10",
        "172.31.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "fd00::1",
        "fe80::1",
    ] {
        assert!(is_private(a.parse().unwrap()), "{a}");
    }
    for a in [
        "203.0.113.10",
        "198.51.100.20",
        "100.128.0.1",
        "2001:db8::1",
    ] {
        assert!(!is_private(a.parse().unwrap()), "{a}");
    }
    let found = ips("Via: SIP/2.0/UDP 10.0.0.20:5060;received=198.51.100.20;rport=5060\r\nContact: <sip:2001@[fd00::5]:5060>\r\nc=IN IP4 100.64.1.2");
    let want: Vec<IpAddr> = ["10.0.0.20", "100.64.1.2", "198.51.100.20", "fd00::5"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(found, want);
}

/// Issue 5 in the brief's network: the home phone registers over TLS to the office's public
/// address (the office router forwards 5061 to homeline's external TLS listener, as
/// `homeline router-rules` prints it) with SDES-SRTP mandatory (`mediaenc=srtp-mand`, the
/// station's payload-security flag on), trusting homeline's own CA made on first start, and
/// calls the plain-RTP office phone through both NATs: audio both ways, the home leg SRTP in
/// the relay, nothing private on the Internet side (the TLS payload is opaque anyway).
#[test]
fn lab_home_phone_over_tls_with_srtp_through_both_nats() {
    let Some(mut lab) = Lab::up_with(
        "home-tls",
        "prc",
        "public_ip = \"203.0.113.10\"\n",
        "[tls]\ninternal_port = 5061\nexternal_port = 5063\n",
    ) else {
        return;
    };
    common::cli(
        &lab.data.0,
        &["station", "set", "2001", "--payload-security", "on"],
    );
    let ca = lab.data.0.join("homeline-ca.pem");
    std::fs::write(
        &ca,
        common::cli(&lab.data.0, &["cert", "export", "homeline-root"]),
    )
    .unwrap();
    let files = common::tls::phone_files(&lab.data.0, "home-tls", &[&ca]);
    // The station cache follows the store within a second.
    std::thread::sleep(Duration::from_millis(1500));
    let mut home = Phone::start_tls_in(
        "HOME-TLS-2001",
        "hl-home",
        "10.0.0.20",
        "203.0.113.10:5061".parse().unwrap(),
        "2001",
        PW,
        &files,
        ";mediaenc=srtp-mand",
    );
    home.wait_registered();
    let mut office = lab.office();
    lab.drain();
    let from = lab.seen.len();
    connect_call(&mut home, &mut office);
    let (sh, so) = talk_and_hang_up(&mut home, &mut office, 1);
    assert_audio_both_ways((&home, sh), (&office, so), MIN_PACKETS);
    let legs = lab.relay_closed(from, 1);
    assert_relay_carried(&legs, "home (TLS, SRTP) -> office");
    let srtp_leg = lab.seen[from..]
        .iter()
        .find(|l| l.contains("relay channel closed"))
        .cloned()
        .unwrap_or_default();
    assert!(
        srtp_leg.contains("srtp_in=true") && srtp_leg.contains("srtp_out=true"),
        "the home leg is SRTP in the relay: {srtp_leg}"
    );
    // Every SDP the home phone got asks for SRTP at the public address.
    let sdp: Vec<_> = home
        .trace()
        .into_iter()
        .filter(|m| !m.sent && m.text.contains("m=audio"))
        .collect();
    assert!(!sdp.is_empty());
    for m in &sdp {
        assert!(
            m.text.contains("RTP/SAVP") && m.text.contains("a=crypto:"),
            "{}",
            m.text
        );
    }
    assert_relayed_at(&home.received_media(), "203.0.113.10", "home phone");
}

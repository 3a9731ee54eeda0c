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
//! Needs root, iproute2, iptables, baresip-core, coturn and tcpdump; without the rights or
//! tools to create namespaces every test prints `SKIP` and passes. The tests share one set of
//! namespace names, so they take a lock (in this process and across processes) and build the
//! lab afresh each time; `tests/lab/net.sh down` removes a killed run's leftovers.
//!
//! Reproduce by hand: `tests/lab/net.sh up`, then `ip netns exec hl-home ...`. The home
//! routers are port-restricted cone NATs; `HOMELINE_LAB_NAT=full` or `=symmetric` changes that
//! for every scenario.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::baresip::{
    assert_audio_both_ways, connect_call, talk_and_hang_up, MediaAddr, Phone, PW, SIP_SETTINGS,
    TALK,
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
    _lock: LabLock,
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
        let missing: Vec<&str> = ["ip", "iptables", "baresip", "flock", "tcpdump"]
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
        if let Some(s) = self.stun.as_mut() {
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
#[test]
fn lab_two_home_phones_behind_two_nats_talk_through_the_relay() {
    let Some(mut lab) = Lab::up("home-home", "prc") else {
        return;
    };
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

/// Scenario 3: a capture on the Internet segment while home phones register and call (home to
/// office, office to home, home to home) shows no private address outside the NATs, and
/// nothing homeline sends to the Internet names a private address other than the receiving
/// phone's own (which RFC 3261 makes it echo: its Via, its registered Contact as Request-URI).
#[test]
fn lab_no_private_address_crosses_the_internet() {
    let Some(lab) = Lab::up("capture", "prc") else {
        return;
    };
    let pcap = lab.data.0.join("inet.pcap");
    let mut dump = in_ns("hl-inet", "tcpdump")
        .args(["-i", "any", "-n", "-U", "-s", "0", "-w"])
        .arg(&pcap)
        .arg("udp or tcp")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on any" once it captures.
    let mut said = String::new();
    let mut err = BufReader::new(dump.stderr.take().unwrap());
    while !said.contains("listening") {
        let n = err.read_line(&mut said).unwrap();
        assert!(n > 0, "tcpdump in hl-inet did not start: {said}");
    }

    let mut home = lab.home();
    let mut home2 = lab.home2();
    let mut office = lab.office();
    call_and_hang_up(&mut home, &mut office);
    call_and_hang_up(&mut office, &mut home2);
    call_and_hang_up(&mut home2, &mut home);
    std::thread::sleep(Duration::from_millis(500));
    // SIGTERM would be nicer; -U writes every packet at once, so a kill loses nothing.
    let _ = dump.kill();
    let _ = dump.wait();

    let mut bytes = Vec::new();
    std::fs::File::open(&pcap)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let packets = pcap_udp_tcp(&bytes);
    let sip: Vec<&Packet> = packets.iter().filter(|p| is_sip(&p.payload)).collect();
    assert!(sip.len() > 10, "only {} SIP packets captured", sip.len());

    let mut problems = Vec::new();
    for p in &packets {
        for a in [p.src.0, p.dst.0] {
            if is_private(a) {
                problems.push(format!(
                    "packet {}:{} -> {}:{} has a private IP address on the Internet",
                    p.src.0, p.src.1, p.dst.0, p.dst.1
                ));
            }
        }
    }
    let office_ip = Ipv4Addr::new(203, 0, 113, 10);
    let mut own_private = 0;
    // The first message with a leak, whole, for the failure output.
    let mut example = String::new();
    for p in &sip {
        let text = String::from_utf8_lossy(&p.payload);
        let first_line = text.lines().next().unwrap_or_default().to_string();
        // What the receiving phone itself sent us from behind its NAT: its own addresses.
        let phone_own: Vec<Ipv4Addr> = sip
            .iter()
            .filter(|q| q.src.0 == p.dst.0 && q.dst.0 == office_ip)
            .flat_map(|q| ipv4s(&String::from_utf8_lossy(&q.payload)))
            .filter(|a| is_private(*a))
            .collect();
        for line in text.lines() {
            for a in ipv4s(line).into_iter().filter(|a| is_private(*a)) {
                if p.src.0 != office_ip {
                    own_private += 1; // the phone's own message: no SIP ALG at home, as the brief wants
                } else if !phone_own.contains(&a) {
                    problems.push(format!(
                        "homeline -> {}:{} \"{first_line}\": {:?}",
                        p.dst.0,
                        p.dst.1,
                        line.trim_end()
                    ));
                    if example.is_empty() {
                        example = text.replace('\r', "");
                    }
                }
            }
        }
    }
    eprintln!(
        "capture: {} packets, {} SIP; {own_private} private addresses in the phones' own messages",
        packets.len(),
        sip.len()
    );
    problems.dedup();
    let kept = std::env::temp_dir().join("homeline-lab-inet.pcap");
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

/// A UDP or TCP packet of a capture.
struct Packet {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: Vec<u8>,
}

/// UDP and TCP over IPv4 in a pcap file (link types Ethernet, Linux cooked v1 and v2).
fn pcap_udp_tcp(b: &[u8]) -> Vec<Packet> {
    assert!(b.len() >= 24, "pcap file too short");
    let le = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("not a pcap file: magic {m:?}"),
    };
    let u32_at = |i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(20);
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let caplen = u32_at(i + 8) as usize;
        let frame = &b[i + 16..(i + 16 + caplen).min(b.len())];
        i += 16 + caplen;
        let (proto, ip) = match link {
            1 if frame.len() >= 14 => (u16::from_be_bytes([frame[12], frame[13]]), &frame[14..]),
            113 if frame.len() >= 16 => (u16::from_be_bytes([frame[14], frame[15]]), &frame[16..]),
            276 if frame.len() >= 20 => (u16::from_be_bytes([frame[0], frame[1]]), &frame[20..]),
            1 | 113 | 276 => continue,
            other => panic!("pcap link type {other} not handled"),
        };
        if proto != 0x0800 || ip.len() < 20 || ip[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        if total < ihl + 8 {
            continue;
        }
        let l4 = &ip[ihl..total];
        let sport = u16::from_be_bytes([l4[0], l4[1]]);
        let dport = u16::from_be_bytes([l4[2], l4[3]]);
        let payload = match ip[9] {
            17 => &l4[8..],
            6 if l4.len() >= 20 => {
                let off = usize::from(l4[12] >> 4) * 4;
                &l4[off.min(l4.len())..]
            }
            _ => continue,
        };
        out.push(Packet {
            src: (src, sport),
            dst: (dst, dport),
            payload: payload.to_vec(),
        });
    }
    out
}

fn is_sip(payload: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&payload[..payload.len().min(200)]);
    let first = head.lines().next().unwrap_or_default();
    first.starts_with("SIP/2.0 ") || first.ends_with(" SIP/2.0")
}

/// 10/8, 172.16/12, 192.168/16.
fn is_private(a: Ipv4Addr) -> bool {
    a.is_private()
}

/// Every dotted-quad IPv4 address in `text`.
fn ipv4s(text: &str) -> Vec<Ipv4Addr> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.trim_matches('.').parse().ok())
        .collect()
}

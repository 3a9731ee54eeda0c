//! Call features and limits end to end with real softphones (baresip, `common::baresip`):
//! hold/resume through the relay, forwarding on no answer, blind transfer, the media timeout,
//! the relay pool and the Internet-call limit refusing the next call while the running one
//! keeps its audio, and toll-fraud refusals for remote (external-zone) stations. Audio is
//! checked with baresip's live RTP counters (`audio_debug`) and its end-of-call statistics.
//! Each server has a relay port range of its own: the tests run at the same time.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::baresip::{
    assert_audio_both_ways, assert_flowing, connect_call, flow, registered, start_server,
    talk_and_hang_up, Phone, TraceMsg, FLOWING, PW, SAMPLE, STOPPED,
};
use common::{cli, Server, TempDir};

/// Packets each way after [`TALK`]: PCMU/20 ms sends 50 per second.
const MIN_PACKETS: u64 = 50;
/// A data folder with `stations` (number, SBC flag) and a server on it with `[media] ports`.
fn pbx(tag: &str, stations: &[(&str, bool)], media: &str) -> (TempDir, Server) {
    let data = add_stations(tag, stations);
    let server = start_server(&data.0, &format!("[media]\n{media}"));
    (data, server)
}

fn add_stations(tag: &str, stations: &[(&str, bool)]) -> TempDir {
    let data = TempDir::new(tag);
    for (n, sbc) in stations {
        let sbc = if *sbc { "on" } else { "off" };
        cli(
            &data.0,
            &["station", "add", n, "--password", PW, "--sbc", sbc],
        );
    }
    data
}

/// Packets each phone sent and received during `d` (live counters).
fn wait_msg(
    phone: &Phone,
    before: usize,
    what: &str,
    pred: impl Fn(&TraceMsg) -> bool,
) -> TraceMsg {
    phone.wait_received(before, what, pred)
}

fn received(phone: &Phone, pred: &impl Fn(&TraceMsg) -> bool) -> usize {
    phone.count_received(pred)
}

fn is_request(m: &TraceMsg, method: &str) -> bool {
    m.start.starts_with(&format!("{method} "))
}

fn is_invite_answer(m: &TraceMsg) -> bool {
    m.status() == Some(200)
        && m.text
            .lines()
            .any(|l| l.starts_with("CSeq:") && l.ends_with(" INVITE"))
}

fn has_line(m: &TraceMsg, line: &str) -> bool {
    m.text.lines().any(|l| l.trim() == line)
}

/// A header's value (first occurrence, case-insensitive name).
fn header(m: &TraceMsg, name: &str) -> Option<String> {
    m.text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `homeline status --json`.
fn status(data: &Path) -> serde_json::Value {
    serde_json::from_str(&cli(data, &["status", "--json"])).unwrap()
}

/// Polls the status until `pred` holds (5 s), returns the last one.
fn wait_status(
    data: &Path,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = status(data);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never showed {what}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RFC 3264 §8.4 / RFC 6337 §5: the remote phone puts the office phone on hold (re-INVITE with
/// `a=sendonly` through homeline, answered `a=recvonly`): audio stops both ways; resume
/// (`a=sendrecv`) brings it back both ways, through the same relay channel.
#[test]
fn rfc3264_8_4_hold_and_resume_between_external_and_internal_phones() {
    let (data, server) = pbx(
        "ft-hold",
        &[("2101", true), ("2002", false)],
        "ports = \"30200-30299\"\n",
    );
    let mut ext = registered("EXT-2101", server.external, "2101");
    let mut int = registered("INT-2002", server.internal, "2002");
    connect_call(&mut ext, &mut int);
    let (e, i) = flow(&mut ext, &mut int, SAMPLE);
    assert_flowing((&ext, e), (&int, i), "before hold");

    let held_offer = |m: &TraceMsg| is_request(m, "INVITE") && has_line(m, "a=sendonly");
    let held_answer = |m: &TraceMsg| is_invite_answer(m) && has_line(m, "a=recvonly");
    let (offers, answers) = (received(&int, &held_offer), received(&ext, &held_answer));
    ext.hold();
    wait_msg(&int, offers, "re-INVITE with a=sendonly", held_offer);
    wait_msg(&ext, answers, "200 with a=recvonly", held_answer);
    std::thread::sleep(Duration::from_millis(300)); // packets in flight
    let (e, i) = flow(&mut ext, &mut int, SAMPLE);
    eprintln!("on hold: {}: {e:?}, {}: {i:?}", ext.name, int.name);
    assert!(
        i.rx <= STOPPED,
        "the held phone still receives audio: {i:?}"
    );
    assert!(
        e.rx <= STOPPED,
        "the holding phone still receives audio: {e:?}"
    );
    assert_eq!(
        status(&data.0)["relay"]["in_use"],
        1,
        "the channel stays while on hold"
    );

    let offer = |m: &TraceMsg| is_request(m, "INVITE") && has_line(m, "a=sendrecv");
    let answer = |m: &TraceMsg| is_invite_answer(m) && has_line(m, "a=sendrecv");
    let (offers, answers) = (received(&int, &offer), received(&ext, &answer));
    ext.resume();
    wait_msg(&int, offers, "re-INVITE with a=sendrecv", offer);
    wait_msg(&ext, answers, "200 with a=sendrecv", answer);
    std::thread::sleep(Duration::from_millis(500));
    let (e, i) = flow(&mut ext, &mut int, SAMPLE);
    assert_flowing((&ext, e), (&int, i), "after resume");

    ext.hangup();
    ext.wait_closed();
    int.wait_closed();
    wait_status(&data.0, "the channel released", |s| {
        s["relay"]["in_use"] == 0
    });
}

/// Forwarding on no answer: the remote caller rings 2002, which does not answer within its
/// 2 s; homeline cancels it and rings 2003, which answers: audio between caller and 2003.
#[test]
fn forwarding_on_no_answer_rings_the_target_and_connects_the_audio() {
    let data = add_stations(
        "ft-noanswer",
        &[("2101", true), ("2002", false), ("2003", false)],
    );
    cli(
        &data.0,
        &[
            "station",
            "set",
            "2002",
            "--forward-no-answer",
            "2003",
            "--no-answer-secs",
            "2",
        ],
    );
    let server = start_server(&data.0, "[media]\nports = \"30300-30399\"\n");
    let mut a = registered("A-2101", server.external, "2101");
    let mut b = registered("B-2002", server.internal, "2002");
    let mut c = registered("C-2003", server.internal, "2003");

    a.dial("2002");
    b.wait_incoming();
    let rang = Instant::now();
    let incoming = c.try_wait_any(&["CALL_INCOMING"], Duration::from_secs(8));
    assert!(incoming.is_some(), "2003 never rang");
    let after = rang.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "forwarded after {after:?}, before the 2 s no-answer delay"
    );
    let reason = b.wait_closed();
    eprintln!("B closed: {reason}");
    wait_msg(&b, 0, "CANCEL of 2002's ringing", |m| {
        is_request(m, "CANCEL")
    });
    c.answer();
    c.wait_established();
    a.wait_established();
    c.wait_rtp();
    a.wait_rtp();
    let (sa, sc) = talk_and_hang_up(&mut a, &mut c, 1);
    assert_audio_both_ways((&a, sa), (&c, sc), MIN_PACKETS);
}

/// RFC 3515 blind transfer: the remote caller talks to 2002, 2002 transfers it to 2003
/// (REFER); 2003 answers, the caller and 2003 talk both ways, 2002 hears NOTIFY 200 and is
/// hung up. 2002 puts the call on hold before the REFER, as desk phones do: on loopback every
/// phone shares the remote phone's address, so 2002's audio, still sent to the relay port
/// until its BYE, would be taken for the remote phone's when the transferee's answer reopens
/// the remote leg's latch (renegotiation) — on a real network 2002's LAN address is not one
/// `latching = "known-ips"` accepts for the remote leg.
#[test]
fn rfc3515_blind_transfer_connects_the_transferee_to_the_target() {
    let (data, server) = pbx(
        "ft-transfer",
        &[("2101", true), ("2002", false), ("2003", false)],
        "ports = \"30400-30499\"\n",
    );
    let mut a = registered("A-2101", server.external, "2101");
    let mut b = registered("B-2002", server.internal, "2002");
    let mut c = registered("C-2003", server.internal, "2003");
    connect_call(&mut a, &mut b);
    std::thread::sleep(Duration::from_millis(500));

    let held = |m: &TraceMsg| is_invite_answer(m) && has_line(m, "a=recvonly");
    b.hold();
    wait_msg(&b, 0, "200 with a=recvonly to the hold", held);
    b.transfer("2003");
    c.wait_incoming();
    c.answer();
    c.wait_established();
    let reason = b.wait_closed();
    eprintln!("B closed: {reason}");
    wait_msg(&b, 0, "NOTIFY with 200", |m| {
        is_request(m, "NOTIFY") && m.text.lines().any(|l| l.starts_with("SIP/2.0 200"))
    });
    wait_msg(&b, 0, "BYE", |m| is_request(m, "BYE"));
    c.wait_rtp();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.closed_reason(), None, "the transferee's call ended");
    let (sa, sc) = flow(&mut a, &mut c, SAMPLE);
    assert_flowing((&a, sa), (&c, sc), "after the transfer");
    assert_eq!(status(&data.0)["calls_active"], 1, "one call left");

    a.hangup();
    a.wait_closed();
    c.wait_closed();
    let sc = c.wait_rtp_stats(1);
    assert!(sc.tx > FLOWING && sc.rx > FLOWING, "2003: {sc:?}");
}

/// The media timeout: both phones of a remote-to-office call stop sending (SIGSTOP); after
/// `media_timeout` homeline ends the call with a BYE carrying a Reason to each side and
/// releases the relay channel. Both, because the relay's deadline is the last packet on any
/// channel of the call, the office phone's included: a remote phone that goes silent alone
/// (its Internet link dropped) while the office phone keeps talking never times out.
#[test]
fn media_timeout_ends_the_call_with_bye_and_reason_and_releases_the_channel() {
    let (data, server) = pbx(
        "ft-timeout",
        &[("2101", true), ("2002", false)],
        "ports = \"30500-30599\"\nmedia_timeout = 2\nmedia_start_timeout = 3\n",
    );
    let mut ext = registered("EXT-2101", server.external, "2101");
    let mut int = registered("INT-2002", server.internal, "2002");
    connect_call(&mut ext, &mut int);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&data.0)["relay"]["in_use"], 1);

    ext.pause_process();
    int.pause_process();
    let stopped = Instant::now();
    wait_status(&data.0, "the channel released", |s| {
        s["relay"]["in_use"] == 0 && s["calls_active"] == 0
    });
    let after = stopped.elapsed();
    ext.resume_process();
    int.resume_process();
    assert!(
        after >= Duration::from_millis(1500),
        "ended {after:?} after the media stopped, before the 2 s timeout"
    );
    for p in [&mut ext, &mut int] {
        let reason = p.wait_closed();
        eprintln!("{}: closed: {reason}", p.name);
        let bye = wait_msg(p, 0, "BYE", |m| is_request(m, "BYE"));
        let why = header(&bye, "Reason");
        eprintln!("{}: BYE Reason: {why:?}", p.name);
        assert!(
            why.as_deref()
                .is_some_and(|w| w.starts_with("SIP;cause=") && w.contains("no media")),
            "{}: BYE without a media Reason:\n{}",
            p.name,
            bye.text
        );
    }
}

/// Pool exhaustion: a relay of 2 channels carries one remote-to-remote call (one channel per
/// leg); the next call needing a channel is refused with 503 and a Warning naming the limit
/// before it rings, and the first call's audio goes on.
#[test]
fn exhausted_relay_pool_refuses_the_next_call_with_503_and_keeps_the_first_calls_audio() {
    let (data, server) = pbx(
        "ft-pool",
        &[
            ("2101", true),
            ("2102", true),
            ("2103", true),
            ("2004", false),
        ],
        "ports = \"31000-31003\"\n",
    );
    let mut a = registered("A-2101", server.external, "2101");
    let mut b = registered("B-2102", server.external, "2102");
    let mut c = registered("C-2103", server.external, "2103");
    let mut d = registered("D-2004", server.internal, "2004");
    connect_call(&mut a, &mut b);
    assert_eq!(status(&data.0)["relay"]["in_use"], 2);

    assert_refused_while_audio_flows(&mut a, &mut b, &mut c, &mut d, "relay channels");
    let s = status(&data.0);
    assert_eq!(s["refused"]["pool"], 1, "{s}");
    assert_eq!(s["relay"]["in_use"], 2, "{s}");
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);
    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
}

/// The Internet-call limit (`internet_calls = 1`): a remote-to-office call holds the only
/// Internet call (one relayed leg); the next remote call is refused with 503 and a Warning
/// naming the limit, and the first call's audio goes on.
#[test]
fn internet_call_limit_refuses_the_next_call_with_503_and_keeps_the_first_calls_audio() {
    let (data, server) = pbx(
        "ft-inetcalls",
        &[
            ("2101", true),
            ("2002", false),
            ("2103", true),
            ("2004", false),
        ],
        "ports = \"31100-31199\"\ninternet_calls = 1\n",
    );
    let mut a = registered("A-2101", server.external, "2101");
    let mut b = registered("B-2002", server.internal, "2002");
    let mut c = registered("C-2103", server.external, "2103");
    let mut d = registered("D-2004", server.internal, "2004");
    connect_call(&mut a, &mut b);
    let s = status(&data.0);
    assert_eq!(s["internet_calls"]["in_use"], 1, "{s}");

    assert_refused_while_audio_flows(
        &mut a,
        &mut b,
        &mut c,
        &mut d,
        "simultaneous Internet calls",
    );
    let s = status(&data.0);
    assert_eq!(s["refused"]["internet_calls"], 1, "{s}");
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);
    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
}

/// `c` calls `d` while `a` and `b` talk: 503 with a Warning containing `limit`, `d` never
/// rings, and `a`/`b` keep their audio both ways.
fn assert_refused_while_audio_flows(
    a: &mut Phone,
    b: &mut Phone,
    c: &mut Phone,
    d: &mut Phone,
    limit: &str,
) {
    let (sa, sb) = flow(a, b, SAMPLE);
    assert_flowing((a, sa), (b, sb), "before the refused call");
    c.dial(&d.user.clone());
    let reason = c.wait_closed();
    assert!(reason.contains("503"), "{}: closed with {reason}", c.name);
    let refusal = wait_msg(c, 0, "503", |m| m.status() == Some(503));
    let warning = header(&refusal, "Warning").unwrap_or_default();
    assert!(
        warning.starts_with("399 ") && warning.contains(limit),
        "Warning {warning:?} does not name the limit ({limit}):\n{}",
        refusal.text
    );
    assert!(
        d.try_wait_any(&["CALL_INCOMING"], Duration::from_millis(300))
            .is_none(),
        "{} rang",
        d.name
    );
    let (sa, sb) = flow(a, b, SAMPLE);
    assert_flowing((a, sa), (b, sb), "after the refused call");
}

/// Toll fraud, forwarding, set by the operator: no station may forward to a premium-rate
/// number; the CLI refuses it naming the option and the rule, and stores nothing.
#[test]
fn toll_fraud_forwarding_to_premium_numbers_is_refused_by_the_cli() {
    let data = add_stations("ft-fraud-fwd", &[("2101", true)]);
    for (option, target) in [
        ("--forward-always", "00900123456"),
        ("--forward-busy", "0 0190 123456"),
        ("--forward-no-answer", "0 0137 123456"),
    ] {
        let out = std::process::Command::new(common::BIN)
            .arg("--data")
            .arg(&data.0)
            .args(["station", "set", "2101", option, target])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{option} {target} accepted: {}{err}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            err.contains(option) && err.contains("blocked prefix"),
            "{option} {target}: {err}"
        );
    }
    let show = cli(&data.0, &["station", "show", "2101"]);
    assert!(
        show.contains("forward always:    off")
            && show.contains("forward busy:      off")
            && show.contains("forward no answer: off"),
        "{show}"
    );
}

/// Toll fraud, forwarding, while registered remotely: an international forwarding target the
/// office class allows (accepted by the CLI with a note) is not followed while the station is
/// registered on the external zone, whose class refuses it: the station rings itself, nothing
/// is dialled, and the refusal is logged with station, zone, class and rule.
#[test]
fn toll_fraud_remote_station_forwarding_to_an_international_number_is_not_followed() {
    let data = add_stations("ft-fraud-fwd-call", &[("2101", true), ("2002", false)]);
    let note = cli(
        &data.0,
        &["station", "set", "2101", "--forward-always", "+41445551234"],
    );
    assert!(note.contains("note: --forward-always"), "{note}");
    let server = start_server(&data.0, "[media]\nports = \"30700-30799\"\n");
    let mut ext = registered("EXT-2101", server.external, "2101");
    let mut int = registered("INT-2002", server.internal, "2002");
    connect_call(&mut int, &mut ext);
    let log = wait_log(&server, "forwarding refused");
    assert!(
        log.contains("forwarding refused by class of service")
            && log.contains("station=2101")
            && log.contains("zone=external")
            && log.contains("class=remote")
            && log.contains("international calls not allowed"),
        "{log}"
    );
    let (si, se) = talk_and_hang_up(&mut int, &mut ext, 1);
    assert_audio_both_ways((&int, si), (&ext, se), MIN_PACKETS);
}

/// The server's log until a line containing `needle` (10 s), joined.
fn wait_log(server: &Server, needle: &str) -> String {
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    while let Ok(line) = server
        .log
        .recv_timeout(until.saturating_duration_since(Instant::now()))
    {
        let found = line.contains(needle);
        lines.push(line);
        if found {
            return lines.join("\n");
        }
    }
    panic!("no {needle:?} in the log:\n{}", lines.join("\n"));
}

/// Toll fraud, transfer: a remote station (SIPp, `tests/sipp/refer_refused_uac.xml`) calls an
/// office phone (baresip) and transfers it to a premium-rate number (REFER). homeline answers
/// 202, then NOTIFY 100 and NOTIFY 403 (subscription terminated), dials nothing, and the call
/// stays up with its audio: the office phone keeps receiving, and the caller's BYE after the
/// refusal gets 200 (a dropped call would give 481). baresip cannot be the referrer here: its
/// menu hangs up by itself when a transfer fails.
#[test]
fn toll_fraud_remote_station_cannot_transfer_to_a_premium_number() {
    let (data, server) = pbx(
        "ft-fraud-xfer",
        &[("2101", true), ("2002", false)],
        "ports = \"30600-30699\"\n",
    );
    let mut int = registered("INT-2002", server.internal, "2002");
    let users = data.0.join("refer.csv");
    std::fs::write(&users, format!("SEQUENTIAL\n2101;2002;{PW};00900123456\n")).unwrap();
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sipp/refer_refused_uac.xml");
    let mut sipp = std::process::Command::new("timeout")
        .current_dir(&data.0)
        .args(["30", "sipp"])
        .arg(server.external.to_string())
        .arg("-sf")
        .arg(&scenario)
        .arg("-inf")
        .arg(&users)
        .args(["-i", "127.0.0.1", "-p", &common::free_port().to_string()])
        .args([
            "-mp",
            &common::free_port().to_string(),
            "-d",
            "3000",
            "-m",
            "1",
        ])
        .args(["-nostdin", "-timeout", "25s", "-timeout_error"])
        .args(["-default_behaviors", "all,-bye"])
        .args(["-trace_err", "-error_file", "refer_err.log"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp (Debian package sip-tester)");
    int.wait_incoming();
    int.answer();
    int.wait_established();
    let log = wait_log(&server, "transfer failed");
    assert!(
        log.contains("transfer refused by class of service")
            && log.contains("station=2101")
            && log.contains("zone=external")
            && log.contains("blocked prefix 0900")
            && log.contains("status=403"),
        "{log}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(int.closed_reason(), None, "the call ended");
    let (a0, _) = (int.live_rtp(), ());
    std::thread::sleep(SAMPLE);
    let a1 = int.live_rtp();
    eprintln!("office phone after the refused transfer: {a0:?} -> {a1:?}");
    assert!(
        a1.rx - a0.rx >= 25 && a1.tx - a0.tx >= FLOWING,
        "audio after the refused transfer: {a0:?} -> {a1:?}"
    );
    assert_eq!(status(&data.0)["calls_active"], 1);
    let reason = int.wait_closed(); // the caller's BYE
    let code = sipp.wait().unwrap();
    let errors = std::fs::read_to_string(data.0.join("refer_err.log")).unwrap_or_default();
    assert!(code.success(), "sipp {code:?}: {errors}");
    eprintln!("office phone closed: {reason}");
    let log = wait_log(&server, "relay channel closed");
    let sent = log
        .lines()
        .rev()
        .find(|l| l.contains("relay channel closed"))
        .and_then(|l| l.split(" sent=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        sent > 150,
        "the office phone's audio reached the caller: {log}"
    );
}

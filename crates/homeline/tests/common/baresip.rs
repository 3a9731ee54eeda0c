//! A baresip softphone (Debian package `baresip-core`, 1.0.0) driven from a test: one process per
//! phone with its own config folder, SIP and RTP on 127.0.0.1 only, a 440 Hz tone as microphone,
//! ALSA's `null` device as speaker, and the `ctrl_tcp` interface (netstring-framed JSON) for
//! commands and call events. Recipe and traps: `shared/design/CLIENTS.md` §1.
//!
//! [`Phone::start_in`] runs one inside a network namespace of the lab (`tests/lab/net.sh`):
//! `ip netns exec NS baresip`, SIP and RTP on the namespace's own address, the control port on
//! the namespace's loopback, reached through a small `bash` bridge started in the namespace.
//!
//! Everything is bounded: baresip quits by itself after [`LIFETIME`] (`-t`), every wait has a
//! deadline, the process is killed on drop, and when the test is failing its output (SIP trace
//! included, `-s`) is printed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, TempDir};

/// baresip quits by itself after this many seconds, whatever happens to the test.
pub const LIFETIME: u64 = 120;
/// Default deadline of a wait.
pub const WAIT: Duration = Duration::from_secs(10);
/// RTP ports of the phones: below the relay ranges the tests use (30000-32767), so a port in
/// such a range in an SDP can only come from homeline, and below the kernel's ephemeral ports
/// (32768-60999), where [`free_port`] picks listener ports that are bound only later (by the
/// next server or phone) and a phone's RTP socket must not take in between.
const RTP_PORTS: &str = "20000-29999";
/// Seconds of tone in the microphone file (aufile plays it once).
const TONE_SECONDS: usize = 60;

/// A call event from `ctrl_tcp` (`{"event":true,"type":...}`).
#[derive(Debug, Clone)]
pub struct Event {
    /// `CALL_INCOMING`, `CALL_RINGING`, `CALL_ESTABLISHED`, `CALL_CLOSED`, `REGISTER_OK`, ...
    pub kind: String,
    /// Event parameter: the peer URI, or for `CALL_CLOSED` the reason ("486 Busy Here", ...).
    pub param: String,
    /// baresip's call id.
    pub id: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
}

/// End-of-call RTP counters of one call (printed by baresip with `rtp_stats yes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpStats {
    /// RTP packets sent.
    pub tx: u64,
    /// RTP packets received.
    pub rx: u64,
}

/// Where an SDP body asks for audio to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAddr {
    /// `c=` address.
    pub ip: String,
    /// `m=audio` port.
    pub port: u16,
}

/// One SIP message from baresip's trace (`-s`).
#[derive(Debug, Clone)]
pub struct TraceMsg {
    /// True when this phone sent it.
    pub sent: bool,
    /// Start line ("INVITE sip:... SIP/2.0", "SIP/2.0 200 OK").
    pub start: String,
    /// The whole message, CRs removed.
    pub text: String,
}

impl TraceMsg {
    /// The audio address in the body, if the message carries SDP.
    pub fn media(&self) -> Option<MediaAddr> {
        let mut ip = None;
        let mut port = None;
        for line in self.text.lines() {
            if let Some(c) = line.strip_prefix("c=IN IP4 ") {
                ip.get_or_insert_with(|| c.trim().to_string());
            } else if let Some(m) = line.strip_prefix("m=audio ") {
                port = m.split_whitespace().next().and_then(|p| p.parse().ok());
            }
        }
        Some(MediaAddr {
            ip: ip?,
            port: port?,
        })
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        self.start
            .strip_prefix("SIP/2.0 ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// A running baresip with one account registering to a homeline listener; killed on drop.
pub struct Phone {
    /// Label used in failure output.
    pub name: String,
    /// The account's user (station number).
    pub user: String,
    /// SIP port (UDP and TCP) on 127.0.0.1, or on the namespace's address.
    pub sip_port: u16,
    /// The homeline listener the account registers to.
    pub registrar: SocketAddr,
    /// The address SIP and RTP use: 127.0.0.1, or the namespace's address.
    ip: String,
    child: Child,
    _dir: TempDir,
    output: Arc<Mutex<String>>,
    ctrl: Box<dyn Write + Send>,
    /// The control bridge of a phone in a namespace (killed on drop).
    bridge: Option<Child>,
    frames: mpsc::Receiver<Json>,
    /// Events received but not consumed by a wait yet.
    queue: VecDeque<Event>,
    /// Every event, for failure output.
    history: Vec<String>,
    token: u32,
}

impl Phone {
    /// Starts baresip with an account `user`/`password` registering to `registrar` over UDP,
    /// and connects to its control port.
    pub fn start(name: &str, registrar: SocketAddr, user: &str, password: &str) -> Phone {
        Self::start_at(
            name,
            None,
            "127.0.0.1",
            registrar,
            user,
            password,
            None,
            "",
            false,
        )
    }

    /// Like [`Phone::start`], with `params` appended to the account line (e.g.
    /// `;mediaenc=srtp-mand`; a `mediaenc` loads baresip's `srtp.so`).
    pub fn start_with(
        name: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        params: &str,
    ) -> Phone {
        Self::start_at(
            name,
            None,
            "127.0.0.1",
            registrar,
            user,
            password,
            None,
            params,
            false,
        )
    }

    /// Like [`Phone::start`], registering over TLS to the TLS listener `registrar`
    /// (`sip:user@host:port;transport=tls`): baresip presents `tls.certkey` when asked for a
    /// client certificate and trusts `tls.cafile`.
    pub fn start_tls(
        name: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tls: &TlsFiles,
    ) -> Phone {
        Self::start_tls_with(name, registrar, user, password, tls, "")
    }

    /// Like [`Phone::start_tls`], with `params` appended to the account line (see
    /// [`Phone::start_with`]).
    pub fn start_tls_with(
        name: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tls: &TlsFiles,
        params: &str,
    ) -> Phone {
        Self::start_at(
            name,
            None,
            "127.0.0.1",
            registrar,
            user,
            password,
            Some(tls),
            params,
            false,
        )
    }

    /// Like [`Phone::start_tls`], with a `sips:` AOR (RFC 5630): the account is
    /// `<sips:user@host;transport=tls>` with the TLS listener `registrar` as outbound proxy,
    /// so REGISTER goes to `sips:host`.
    pub fn start_sips(
        name: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tls: &TlsFiles,
    ) -> Phone {
        Self::start_at(
            name,
            None,
            "127.0.0.1",
            registrar,
            user,
            password,
            Some(tls),
            "",
            true,
        )
    }

    /// Like [`Phone::start`], inside the network namespace `netns` with SIP (port 5060) and RTP
    /// on the namespace's address `ip`, as a phone on that LAN would be.
    pub fn start_in(
        name: &str,
        netns: &str,
        ip: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
    ) -> Phone {
        Self::start_at(
            name,
            Some(netns),
            ip,
            registrar,
            user,
            password,
            None,
            "",
            false,
        )
    }

    /// Like [`Phone::start_tls_with`], inside network namespace `netns` at `ip` (the lab's
    /// home phones).
    #[allow(clippy::too_many_arguments)] // who, where, whom to register with, how
    pub fn start_tls_in(
        name: &str,
        netns: &str,
        ip: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tls: &TlsFiles,
        params: &str,
    ) -> Phone {
        Self::start_at(
            name,
            Some(netns),
            ip,
            registrar,
            user,
            password,
            Some(tls),
            params,
            false,
        )
    }

    #[allow(clippy::too_many_arguments)] // private: the public constructors name the cases
    fn start_at(
        name: &str,
        netns: Option<&str>,
        ip: &str,
        registrar: SocketAddr,
        user: &str,
        password: &str,
        tls: Option<&TlsFiles>,
        params: &str,
        sips: bool,
    ) -> Phone {
        let dir = TempDir::new(&format!("baresip-{name}"));
        // A namespace of its own has every port free.
        let (sip_port, ctrl_port) = match netns {
            Some(_) => (5060, 4444),
            None => (free_port_pair(), free_port()),
        };
        let tone = dir.0.join("tone.wav");
        std::fs::write(&tone, tone_wav(TONE_SECONDS)).unwrap();
        let mut conf = config(ip, sip_port, ctrl_port, tone.to_str().unwrap());
        if let Some(t) = tls {
            // TLS is listened for on sip_port + 1 (see free_port_pair) and used as a client.
            conf.push_str(&format!(
                "sip_certificate\t\t{}\nsip_cafile\t\t{}\n",
                t.certkey.display(),
                t.cafile.display()
            ));
        }
        if params.contains("mediaenc=srtp") {
            // SDES-SRTP (RFC 4568): the account's mediaenc names this module.
            conf.push_str("module\t\t\tsrtp.so\n");
        }
        std::fs::write(dir.0.join("config"), conf).unwrap();
        // The AOR's host is the listener: baresip sends REGISTER and INVITE there.
        let transport = if tls.is_some() { ";transport=tls" } else { "" };
        let account = if sips {
            // baresip 1.0 cannot resolve a sips: AOR with a port itself (ENOSYS): the AOR
            // names the host only and the TLS listener is its outbound proxy.
            let host = registrar.ip();
            format!("<sips:{user}@{host};transport=tls>;outbound=\"sip:{registrar};transport=tls\"")
        } else {
            format!("<sip:{user}@{registrar}{transport}>")
        };
        std::fs::write(
            dir.0.join("accounts"),
            format!("{account};auth_pass={password};regint=60;answermode=manual{params}\n"),
        )
        .unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "baresip"]); // ip execs baresip: same pid
                c
            }
            None => Command::new("baresip"),
        };
        let mut child = cmd
            .arg("-s") // SIP trace: the SDP assertions read it
            .arg("-f")
            .arg(&dir.0)
            .args(["-t", &LIFETIME.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("baresip (Debian package baresip-core)");
        let output = Arc::new(Mutex::new(String::new()));
        capture(child.stdout.take().unwrap(), output.clone());
        capture(child.stderr.take().unwrap(), output.clone());
        let (ctrl, frames, bridge): (Box<dyn Write + Send>, _, _) = match netns {
            None => {
                let ctrl = connect(ctrl_port, &mut child, &output, name);
                let frames = read_frames(ctrl.try_clone().unwrap());
                (Box::new(ctrl), frames, None)
            }
            Some(ns) => {
                let mut bridge = connect_in(ns, ctrl_port, &mut child, &output, name);
                let frames = read_frames(bridge.stdout.take().unwrap());
                (Box::new(bridge.stdin.take().unwrap()), frames, Some(bridge))
            }
        };
        Phone {
            name: name.to_string(),
            user: user.to_string(),
            sip_port,
            registrar,
            ip: ip.to_string(),
            child,
            _dir: dir,
            output,
            ctrl,
            bridge,
            frames,
            queue: VecDeque::new(),
            history: Vec::new(),
            token: 0,
        }
    }

    /// Waits for `REGISTER_OK` (a digest-authenticated 200 to REGISTER).
    pub fn wait_registered(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            // The first REGISTER often completes before the control connection is up (no
            // event then), and some failures ("reg: ...: Register: <error>") are only printed:
            // poll both the events and the output ("2001@127.0.0.1: {0/UDP/v4} 200 OK ...").
            let out = self.output();
            let failed = out.lines().any(|l| l.contains(": Register: "));
            assert!(!failed, "{}: registration failed", self.name);
            if out.lines().any(|l| l.contains("/v4} 200 OK")) {
                return;
            }
            let step =
                Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now()));
            if let Some(ev) = self.try_wait_any(&["REGISTER_OK", "REGISTER_FAIL"], step) {
                assert_eq!(ev.kind, "REGISTER_OK", "{}: {ev:?}", self.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not registered within {WAIT:?}",
                self.name
            );
        }
    }

    /// Calls `number` at the registrar (baresip completes the URI with the account's host).
    pub fn dial(&mut self, number: &str) {
        self.command("dial", number);
    }

    /// Answers the incoming call.
    pub fn answer(&mut self) {
        self.command("accept", "");
    }

    /// Hangs up the current call: BYE when established, CANCEL when calling out, and a
    /// rejection (486) of a call still ringing here.
    pub fn hangup(&mut self) {
        self.command("hangup", "");
    }

    /// Puts the call on hold (re-INVITE with `a=sendonly`).
    pub fn hold(&mut self) {
        self.command("hold", "");
    }

    /// Takes the call off hold (re-INVITE with `a=sendrecv`).
    pub fn resume(&mut self) {
        self.command("resume", "");
    }

    /// Blind transfer of the current call to `number` (REFER, RFC 3515). baresip 1.0.0 wants
    /// a full URI here (a bare number is "Invalid argument"), so one is made at the registrar.
    pub fn transfer(&mut self, number: &str) {
        let uri = if number.contains(':') {
            number.to_string()
        } else {
            format!("sip:{number}@{}", self.registrar)
        };
        self.command("transfer", &uri);
    }

    /// Waits for the next incoming call.
    pub fn wait_incoming(&mut self) -> Event {
        self.wait_event("CALL_INCOMING")
    }

    /// Waits until the call is established; panics if it closes first.
    pub fn wait_established(&mut self) -> Event {
        self.wait_event("CALL_ESTABLISHED")
    }

    /// Waits until RTP arrives on the call (`CALL_RTPESTAB`).
    pub fn wait_rtp(&mut self) -> Event {
        self.wait_event("CALL_RTPESTAB")
    }

    /// Waits until the call is closed; returns the reason baresip gives (e.g. "486 Busy Here").
    pub fn wait_closed(&mut self) -> String {
        self.wait_any(&["CALL_CLOSED"], WAIT).param
    }

    /// Waits for an event of `kind`; a `CALL_CLOSED` on the way fails the test with its reason.
    /// (The `CALL_CLOSED` stays queued for a later [`Phone::wait_closed`].)
    pub fn wait_event(&mut self, kind: &str) -> Event {
        let ev = self.wait_any(&[kind, "CALL_CLOSED"], WAIT);
        if ev.kind != kind {
            let reason = ev.param.clone();
            self.queue.push_front(ev);
            panic!(
                "{}: call closed ({reason}) while waiting for {kind}",
                self.name
            );
        }
        ev
    }

    /// Drops every event received so far and not consumed (between two calls of one phone).
    pub fn forget_events(&mut self) {
        while let Ok(frame) = self.frames.try_recv() {
            self.take(frame);
        }
        self.queue.clear();
    }

    /// RTP packets sent and received so far on the current call, read from baresip's stream
    /// debug (`audio_debug`: the RTCP session's `TX: packets=` and each peer source's
    /// `rcvd=`), unlike [`Phone::rtp_stats`] available while the call is up.
    pub fn live_rtp(&mut self) -> RtpStats {
        let text = self.command("audio_debug", "");
        parse_live_rtp(&text)
            .unwrap_or_else(|| panic!("{}: no RTP counters in audio_debug:\n{text}", self.name))
    }

    /// Stops the process (SIGSTOP): it neither sends nor answers until [`Phone::resume_process`].
    pub fn pause_process(&self) {
        signal(self.child.id(), "STOP");
    }

    /// Continues a process stopped by [`Phone::pause_process`] (SIGCONT).
    pub fn resume_process(&self) {
        signal(self.child.id(), "CONT");
    }

    /// Waits up to `timeout` for the first event whose kind is one of `kinds` and consumes it;
    /// other events stay queued for later waits. They must: baresip's events of one call do
    /// not come in a fixed order (the callee's first RTP packet often reaches the caller before
    /// the 200 OK does, so `CALL_RTPESTAB` precedes `CALL_ESTABLISHED`), and a wait for one
    /// must not throw the other away.
    pub fn wait_any(&mut self, kinds: &[&str], timeout: Duration) -> Event {
        match self.try_wait_any(kinds, timeout) {
            Some(ev) => ev,
            None => panic!("{}: no {kinds:?} within {timeout:?}", self.name),
        }
    }

    /// Like [`Phone::wait_any`], `None` when `timeout` passes.
    pub fn try_wait_any(&mut self, kinds: &[&str], timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .queue
                .iter()
                .position(|ev| kinds.contains(&ev.kind.as_str()))
            {
                return self.queue.remove(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(frame) => self.take(frame),
                Err(_) => return None,
            }
        }
    }

    /// RTP counters of every call ended so far, oldest first.
    pub fn rtp_stats(&self) -> Vec<RtpStats> {
        parse_rtp_stats(&self.output())
    }

    /// Waits until `calls` calls have printed their RTP counters, and returns the last one.
    pub fn wait_rtp_stats(&self, calls: usize) -> RtpStats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.rtp_stats();
            if stats.len() >= calls {
                return stats[calls - 1];
            }
            assert!(
                Instant::now() < deadline,
                "{}: no RTP statistics for call {calls}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every SIP message in the trace so far.
    pub fn trace(&self) -> Vec<TraceMsg> {
        parse_trace(
            &self.output(),
            &format!("{}:{}", self.ip, self.sip_port),
            &self.registrar.to_string(),
        )
    }

    /// Messages received so far that match `pred`.
    pub fn count_received(&self, pred: impl Fn(&TraceMsg) -> bool) -> usize {
        self.trace().iter().filter(|m| !m.sent && pred(m)).count()
    }

    /// Waits until more than `before` received messages match `pred` (count them with
    /// [`Phone::count_received`] before the action), and returns the last one. The trace is
    /// read from baresip's output by another thread than the events: a message may show up
    /// there a moment after the event it caused, so whatever follows an event must wait too.
    pub fn wait_received(
        &self,
        before: usize,
        what: &str,
        pred: impl Fn(&TraceMsg) -> bool,
    ) -> TraceMsg {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut found: Vec<TraceMsg> = self
                .trace()
                .into_iter()
                .filter(|m| !m.sent && pred(m))
                .collect();
            if found.len() > before {
                return found.pop().unwrap_or_else(|| unreachable!());
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {what} within {WAIT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a final response `code` to an INVITE is in the trace, and returns the
    /// status codes of every response to this phone's INVITEs.
    pub fn wait_invite_status(&self, code: u16) -> Vec<u16> {
        self.wait_received(0, &format!("{code} to an INVITE"), |m| {
            m.status() == Some(code)
                && m.text
                    .lines()
                    .any(|l| l.starts_with("CSeq:") && l.ends_with(" INVITE"))
        });
        self.invite_statuses()
    }

    /// Audio addresses of the SDP bodies this phone received.
    pub fn received_media(&self) -> Vec<MediaAddr> {
        self.trace()
            .iter()
            .filter(|m| !m.sent)
            .filter_map(TraceMsg::media)
            .collect()
    }

    /// Audio addresses of the SDP bodies this phone sent (its own RTP socket).
    pub fn sent_media(&self) -> Vec<MediaAddr> {
        self.trace()
            .iter()
            .filter(|m| m.sent)
            .filter_map(TraceMsg::media)
            .collect()
    }

    /// Status codes of the responses this phone received to its INVITEs.
    pub fn invite_statuses(&self) -> Vec<u16> {
        self.trace()
            .iter()
            .filter(|m| {
                !m.sent
                    && m.text
                        .lines()
                        .any(|l| l.ends_with(" INVITE") && l.starts_with("CSeq:"))
            })
            .filter_map(TraceMsg::status)
            .collect()
    }

    /// baresip's output so far (status-bar updates removed).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Sends a menu command and waits for its response; panics if baresip refuses it.
    pub fn command(&mut self, command: &str, params: &str) -> String {
        self.token += 1;
        let token = format!("t{}", self.token);
        let json = format!(
            "{{\"command\":{},\"params\":{},\"token\":{}}}",
            json_string(command),
            json_string(params),
            json_string(&token)
        );
        self.ctrl
            .write_all(format!("{}:{json},", json.len()).as_bytes())
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(frame) = self.frames.recv_timeout(left) else {
                panic!("{}: no response to {command} {params}", self.name);
            };
            if frame.get("response").is_some() && frame.str("token") == Some(token.as_str()) {
                let data = frame.str("data").unwrap_or_default().to_string();
                assert!(
                    frame.get("ok") == Some(&Json::Bool(true)),
                    "{}: {command} {params} refused: {data}",
                    self.name
                );
                return data;
            }
            self.take(frame);
        }
    }

    /// The reason of a `CALL_CLOSED` received and not consumed yet (does not consume it).
    pub fn closed_reason(&mut self) -> Option<String> {
        while let Ok(frame) = self.frames.try_recv() {
            self.take(frame);
        }
        self.queue
            .iter()
            .find(|e| e.kind == "CALL_CLOSED")
            .map(|e| e.param.clone())
    }

    fn take(&mut self, frame: Json) {
        if frame.get("event").is_none() {
            return;
        }
        let field = |k: &str| frame.str(k).unwrap_or_default().to_string();
        let ev = Event {
            kind: field("type"),
            param: field("param"),
            id: field("id"),
            direction: field("direction"),
        };
        self.history
            .push(format!("{} {} {}", ev.kind, ev.direction, ev.param));
        self.queue.push_back(ev);
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(b) = self.bridge.as_mut() {
            let _ = b.kill();
            let _ = b.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "===== baresip {} (events: {:?}) =====\n{}\n===== end of {} =====",
                self.name,
                self.history,
                self.output(),
                self.name
            );
        }
    }
}

fn config(ip: &str, sip_port: u16, ctrl_port: u16, tone: &str) -> String {
    // No stdio.so/cons.so: stdin is not a TTY (CLIENTS.md §1). net_interface pins SDP and SIP
    // to loopback (or the namespace's address); the build machine's eth0 must never be used.
    format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t{ip}:{sip_port}\n\
         net_interface\t\t{ip}\n\
         rtp_ports\t\t{RTP_PORTS}\n\
         audio_player\t\talsa,null\n\
         audio_source\t\taufile,{tone}\n\
         audio_alert\t\talsa,null\n\
         rtp_stats\t\tyes\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\talsa.so\n\
         module\t\t\tctrl_tcp.so\n\
         module_tmp\t\tuuid.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n"
    )
}

/// A WAV file (8 kHz mono 16-bit, the PCMU/PCMA rate) with a 440 Hz tone.
fn tone_wav(seconds: usize) -> Vec<u8> {
    let samples = 8000 * seconds;
    let data_len = (samples * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let v = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Appends a pipe's lines to `output`, dropping the status bar baresip redraws with `\r`.
fn capture(pipe: impl Read + Send + 'static, output: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            let mut kept = String::new();
            for piece in line.split('\r') {
                // "[0:00:05] audio=64021/63597 (bit/s)    " then maybe real output
                let piece = match piece.find("(bit/s)") {
                    Some(i) if piece.starts_with('[') => piece[i + 7..].trim_start(),
                    _ => piece,
                };
                kept.push_str(piece);
            }
            let mut out = output.lock().unwrap();
            out.push_str(&kept);
            out.push('\n');
        }
    });
}

/// Connects to ctrl_tcp, retrying until baresip listens (or has died).
fn connect(port: u16, child: &mut Child, output: &Mutex<String>, name: &str) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            return s;
        }
        let dead = child.try_wait().unwrap();
        if dead.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100)); // let the readers finish
            panic!(
                "baresip {name} ({dead:?}) has no control port 127.0.0.1:{port}:\n{}",
                output.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Connects to ctrl_tcp on the loopback of namespace `ns` (which this process cannot reach):
/// a `bash` started there opens the TCP connection and copies it to and from its stdin and
/// stdout. Retried until baresip listens (or has died).
fn connect_in(ns: &str, port: u16, child: &mut Child, output: &Mutex<String>, name: &str) -> Child {
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/{port} || exit 7; echo up >&2; cat <&3 & exec cat >&3");
    let deadline = Instant::now() + WAIT;
    loop {
        let mut bridge = Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec bash");
        let mut first = String::new();
        let _ = BufReader::new(bridge.stderr.take().unwrap()).read_line(&mut first);
        if first.trim() == "up" {
            return bridge;
        }
        let _ = bridge.kill();
        let _ = bridge.wait();
        let dead = child.try_wait().unwrap();
        if dead.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100)); // let the readers finish
            panic!(
                "baresip {name} ({dead:?}) has no control port 127.0.0.1:{port} in {ns}:\n{}",
                output.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Splits the control stream into netstrings (`<len>:<json>,`) and parses each.
fn read_frames(stream: impl Read + Send + 'static) -> mpsc::Receiver<Json> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        loop {
            let mut len = Vec::new();
            if r.read_until(b':', &mut len).unwrap_or(0) == 0 {
                return;
            }
            let Ok(n) = String::from_utf8_lossy(&len[..len.len() - 1])
                .trim()
                .parse::<usize>()
            else {
                return;
            };
            let mut body = vec![0; n + 1]; // payload and the ','
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&body[..n]);
            if let Some(json) = Json::parse(&text) {
                if tx.send(json).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// TLS material of a phone: its own certificate and key in one PEM file (presented when the
/// server asks for a client certificate), and the CAs it trusts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate and private key, PEM.
    pub certkey: std::path::PathBuf,
    /// Trusted certificates, PEM.
    pub cafile: std::path::PathBuf,
}

/// A free port `p` whose `p + 1` is free too: baresip listens for SIP over TLS on the port
/// after `sip_listen`'s, and does not start when that one is taken.
fn free_port_pair() -> u16 {
    loop {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}

/// `TX: packets=N` and the sum of `rcvd=N` of the sources heard, out of `audio_debug`.
fn parse_live_rtp(text: &str) -> Option<RtpStats> {
    let num = |rest: &str| -> Option<u64> {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
    };
    let tx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("TX: packets=").and_then(num))?;
    let rx = text
        .lines()
        .filter_map(|l| l.split_once(" rcvd=").and_then(|(_, r)| num(r)))
        .sum();
    Some(RtpStats { tx, rx })
}

fn parse_rtp_stats(output: &str) -> Vec<RtpStats> {
    let mut stats = Vec::new();
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if !(line.starts_with("audio") && line.contains("Transmit:") && line.contains("Receive:")) {
            continue;
        }
        let Some(packets) = lines.next() else { break };
        let n: Vec<u64> = packets
            .strip_prefix("packets:")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [tx, rx] = n[..] {
            stats.push(RtpStats { tx, rx });
        }
    }
    stats
}

/// Trace blocks look like `ESC[36;1m#` / `UDP 127.0.0.1:a -> 127.0.0.1:b` / message / `ESC[;m`.
/// A message is `sent` when its source is the phone's own `ip:port` (the peer may use the
/// same port on another address, as in the lab where both sides use 5060), or, on a
/// connection the phone opened (TLS: its source port is an ephemeral one), when it goes to
/// the registrar.
fn parse_trace(output: &str, own: &str, registrar: &str) -> Vec<TraceMsg> {
    let mut msgs = Vec::new();
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if !line.ends_with("\x1b[36;1m#") {
            continue;
        }
        let Some(route) = lines.next() else { break };
        let mut ends = route.split(" -> ");
        let src = ends.next().and_then(|src| src.split_whitespace().last());
        let dst = ends.next().map(str::trim);
        let sent = src == Some(own) || dst == Some(registrar);
        let mut text = String::new();
        for l in lines.by_ref() {
            if l.contains("\x1b[;m") {
                break;
            }
            text.push_str(l.trim_end_matches('\r'));
            text.push('\n');
        }
        msgs.push(TraceMsg {
            sent,
            start: text.lines().next().unwrap_or_default().to_string(),
            text,
        });
    }
    msgs
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Just enough JSON for baresip's control frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses one value; `None` on anything malformed.
    pub fn parse(text: &str) -> Option<Json> {
        let b = text.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i)?;
        skip_ws(b, &mut i);
        (i == b.len()).then_some(v)
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A string member of an object.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn value(b: &[u8], i: &mut usize) -> Option<Json> {
    skip_ws(b, i);
    match *b.get(*i)? {
        b'{' => {
            *i += 1;
            let mut members = Vec::new();
            loop {
                skip_ws(b, i);
                if b.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Some(Json::Obj(members));
                }
                if !members.is_empty() {
                    (b.get(*i) == Some(&b',')).then_some(())?;
                    *i += 1;
                    skip_ws(b, i);
                }
                let Json::Str(k) = value(b, i)? else {
                    return None;
                };
                skip_ws(b, i);
                (b.get(*i) == Some(&b':')).then_some(())?;
                *i += 1;
                members.push((k, value(b, i)?));
            }
        }
        b'[' => {
            *i += 1;
            let mut items = Vec::new();
            loop {
                skip_ws(b, i);
                if b.get(*i) == Some(&b']') {
                    *i += 1;
                    return Some(Json::Arr(items));
                }
                if !items.is_empty() {
                    (b.get(*i) == Some(&b',')).then_some(())?;
                    *i += 1;
                }
                items.push(value(b, i)?);
            }
        }
        b'"' => {
            *i += 1;
            let mut s = Vec::new();
            loop {
                let c = *b.get(*i)?;
                *i += 1;
                match c {
                    b'"' => return Some(Json::Str(String::from_utf8_lossy(&s).into_owned())),
                    b'\\' => {
                        let e = *b.get(*i)?;
                        *i += 1;
                        let ch = match e {
                            b'n' => '\n',
                            b't' => '\t',
                            b'r' => '\r',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'u' => {
                                let hex = std::str::from_utf8(b.get(*i..*i + 4)?).ok()?;
                                *i += 4;
                                char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                                    .unwrap_or('\u{fffd}')
                            }
                            other => other as char, // \" \\ \/
                        };
                        let mut buf = [0; 4];
                        s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    c => s.push(c),
                }
            }
        }
        b't' if b[*i..].starts_with(b"true") => {
            *i += 4;
            Some(Json::Bool(true))
        }
        b'f' if b[*i..].starts_with(b"false") => {
            *i += 5;
            Some(Json::Bool(false))
        }
        b'n' if b[*i..].starts_with(b"null") => {
            *i += 4;
            Some(Json::Null)
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            std::str::from_utf8(&b[start..*i])
                .ok()?
                .parse()
                .ok()
                .map(Json::Num)
        }
    }
}

/// Strong enough for the SBC flag (external zone) and safe in a baresip `accounts` line.
pub const PW: &str = "Hl7kQ9vTzXmw";
/// Talk time before hanging up: ~50 RTP packets per second each way with PCMU/20 ms.
pub const TALK: Duration = Duration::from_secs(2);

/// A data folder with `stations` (number, SBC flag) and a server on it.
pub fn pbx(tag: &str, stations: &[(&str, bool)]) -> (TempDir, super::Server) {
    pbx_with(tag, stations, "")
}

/// Like [`pbx`], with `extra` appended to the configuration (e.g. a `[media]` section; tests
/// running at the same time must not share relay `ports`: a port another server holds costs
/// a channel).
pub fn pbx_with(tag: &str, stations: &[(&str, bool)], extra: &str) -> (TempDir, super::Server) {
    let data = TempDir::new(tag);
    for (n, sbc) in stations {
        let sbc = if *sbc { "on" } else { "off" };
        super::cli(
            &data.0,
            &["station", "add", n, "--password", PW, "--sbc", sbc],
        );
    }
    let server = start_server(&data.0, extra);
    (data, server)
}

/// Server settings for baresip 1.0.0: its SIP stack (libre) fails the whole REGISTER/INVITE
/// with ENOSYS ("Function not implemented") when any of the challenges in a 401/407 names an
/// algorithm other than MD5, so homeline's default pair of challenges (MD5, SHA-256) locks it
/// out; offer MD5 alone. Keys of `[sip]`.
pub const SIP_SETTINGS: &str = "digest_algorithms = [\"MD5\"]\n";

/// `homeline serve` like [`super::Server::start`], with [`SIP_SETTINGS`] on top of the
/// listeners on free loopback ports.
pub fn start_server(data: &std::path::Path, extra: &str) -> super::Server {
    let internal: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let external: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = data.join("test.toml");
    std::fs::write(
        &config,
        format!("[sip]\ninternal = [\"{internal}\"]\nexternal = [\"{external}\"]\n{SIP_SETTINGS}[log]\nlevel = \"info\"\n{}{extra}", super::tls_ports(extra)),
    )
    .unwrap();
    let mut child = Command::new(super::BIN)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, log) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("homeline ready") => break,
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("homeline did not become ready with {config:?}");
            }
        }
    }
    super::Server {
        child,
        internal,
        external,
        log,
    }
}

/// A phone for station `user` registered on `listener`.
pub fn registered(name: &str, listener: SocketAddr, user: &str) -> Phone {
    let mut p = Phone::start(name, listener, user, PW);
    p.wait_registered();
    p
}

/// `caller` dials `callee`'s number, `callee` answers; returns once RTP flows both ways.
pub fn connect_call(caller: &mut Phone, callee: &mut Phone) {
    let number = callee.user.clone();
    caller.dial(&number);
    let deadline = Instant::now() + WAIT;
    while callee
        .try_wait_any(&["CALL_INCOMING"], Duration::from_millis(100))
        .is_none()
    {
        if let Some(reason) = caller.closed_reason() {
            let refusal =
                caller.trace().into_iter().rev().find(|m| {
                    !m.sent && m.status().is_some_and(|s| s >= 300 && s != 401 && s != 407)
                });
            panic!(
                "{} calling {number}: closed ({reason}) before it rang; last refusal:\n{}",
                caller.name,
                refusal.map(|m| m.text).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{number} never rang");
    }
    callee.answer();
    callee.wait_established();
    caller.wait_established();
    callee.wait_rtp();
    caller.wait_rtp();
}

/// Talks for [`TALK`], `caller` hangs up, both see the call closed; returns each side's RTP
/// counters for the call (`nth` call of each phone, from 1).
pub fn talk_and_hang_up(
    caller: &mut Phone,
    callee: &mut Phone,
    nth: usize,
) -> (RtpStats, RtpStats) {
    std::thread::sleep(TALK);
    caller.hangup();
    caller.wait_closed();
    callee.wait_closed();
    (caller.wait_rtp_stats(nth), callee.wait_rtp_stats(nth))
}

/// Asserts that both phones sent and received more than `min` RTP packets.
pub fn assert_audio_both_ways(a: (&Phone, RtpStats), b: (&Phone, RtpStats), min: u64) {
    for (p, s) in [a, b] {
        eprintln!("{}: RTP {s:?}", p.name);
        assert!(
            s.tx > min && s.rx > min,
            "{}: RTP {s:?}, want more than {min} packets each way",
            p.name
        );
    }
}

/// How long [`flow`] samples the live RTP counters.
pub const SAMPLE: Duration = Duration::from_millis(1500);
/// Packets each way in a [`SAMPLE`] that count as audio flowing (75 at 20 ms).
pub const FLOWING: u64 = 40;
/// At most this many packets in a [`SAMPLE`] count as audio stopped (in flight at the switch).
pub const STOPPED: u64 = 3;

/// RTP each phone sent and received during `d`.
pub fn flow(a: &mut Phone, b: &mut Phone, d: Duration) -> (RtpStats, RtpStats) {
    let (a0, b0) = (a.live_rtp(), b.live_rtp());
    std::thread::sleep(d);
    let (a1, b1) = (a.live_rtp(), b.live_rtp());
    let delta = |x: RtpStats, y: RtpStats| RtpStats {
        tx: y.tx - x.tx,
        rx: y.rx.saturating_sub(x.rx),
    };
    (delta(a0, a1), delta(b0, b1))
}

/// Asserts audio flowed both ways at both phones in a [`SAMPLE`].
pub fn assert_flowing(a: (&Phone, RtpStats), b: (&Phone, RtpStats), when: &str) {
    for (p, s) in [a, b] {
        eprintln!("{when}: {}: {s:?}", p.name);
        assert!(
            s.tx >= FLOWING && s.rx >= FLOWING,
            "{when}: {} sent/received {s:?} in {SAMPLE:?}, want {FLOWING} each way",
            p.name
        );
    }
}

/// `holder` puts the call on hold (RFC 3264 §8.4: re-INVITE with a=sendonly, answered
/// a=recvonly): neither phone receives audio; then resumes (a=sendrecv): audio both ways again.
pub fn hold_and_resume(holder: &mut Phone, other: &mut Phone) {
    let line = |m: &TraceMsg, l: &str| m.text.lines().any(|x| x.trim() == l);
    let invite = |m: &TraceMsg| m.start.starts_with("INVITE ");
    let answer = |m: &TraceMsg| {
        m.status() == Some(200)
            && m.text
                .lines()
                .any(|l| l.starts_with("CSeq:") && l.ends_with(" INVITE"))
    };
    let held_offer = |m: &TraceMsg| invite(m) && line(m, "a=sendonly");
    let held_answer = |m: &TraceMsg| answer(m) && line(m, "a=recvonly");
    let (o, a) = (
        other.count_received(held_offer),
        holder.count_received(held_answer),
    );
    holder.hold();
    other.wait_received(o, "re-INVITE with a=sendonly", held_offer);
    holder.wait_received(a, "200 with a=recvonly", held_answer);
    std::thread::sleep(Duration::from_millis(300)); // packets in flight
    let (h, x) = flow(holder, other, SAMPLE);
    assert!(
        h.rx <= STOPPED && x.rx <= STOPPED,
        "audio on hold: {h:?} / {x:?}"
    );
    let offer = |m: &TraceMsg| invite(m) && line(m, "a=sendrecv");
    let resumed = |m: &TraceMsg| answer(m) && line(m, "a=sendrecv");
    let (o, a) = (other.count_received(offer), holder.count_received(resumed));
    holder.resume();
    other.wait_received(o, "re-INVITE with a=sendrecv", offer);
    holder.wait_received(a, "200 with a=sendrecv", resumed);
    std::thread::sleep(Duration::from_millis(500));
    let (h, x) = flow(holder, other, SAMPLE);
    assert_flowing((holder, h), (other, x), "after resume");
}

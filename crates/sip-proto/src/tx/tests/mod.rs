//! Transaction layer tests on a virtual clock: timers are fired at their deadlines, so 32 s of
//! RFC 3261 timers run in microseconds. Test names follow the RFC sections they check.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod client_invite;
mod client_non_invite;
#[allow(clippy::disallowed_methods)] // a throughput measurement reads the real clock
mod load;
mod matching;
mod server_invite;
mod server_non_invite;
mod timers;

use std::time::{Duration, Instant};

use policy::Zone;
use sip::{HeaderAccess, Message, Request, Response, StatusCode};

use super::{TxConfig, TxEvent, TxId, TxLayer};
use crate::path::{FlowId, Path, Transmit, Transport};

/// A UDP path from a phone behind a NAT to our external listener.
fn udp() -> Path {
    Path {
        local: "192.0.2.10:5060".parse().unwrap(),
        remote: "198.51.100.20:40000".parse().unwrap(),
        transport: Transport::Udp,
        zone: Zone::External,
        flow: None,
    }
}

/// The same peer over a TCP connection.
fn tcp() -> Path {
    Path {
        local: "192.0.2.10:5060".parse().unwrap(),
        remote: "198.51.100.20:40001".parse().unwrap(),
        transport: Transport::Tcp,
        zone: Zone::External,
        flow: Some(FlowId(7)),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Parses a message written with `\n` line ends.
fn parse(text: &str) -> Message {
    sip::parse_datagram(text.replace('\n', "\r\n").as_bytes(), usize::MAX).unwrap()
}

fn parse_request(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn parse_bytes(t: &Transmit) -> Message {
    sip::parse_datagram(&t.bytes, usize::MAX).unwrap()
}

/// A request from the phone. `via_params` follow the sent-by (e.g. `;branch=z9hG4bKx;rport`);
/// `to_tag` makes it in-dialog.
fn request(method: &str, via_params: &str, cseq: u32, to_tag: Option<&str>) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    parse_request(&format!(
        "{method} sip:2001@192.0.2.10 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.20:5060{via_params}\n\
         Max-Forwards: 70\n\
         From: <sip:2002@192.0.2.10>;tag=from1\n\
         To: <sip:2001@192.0.2.10>{to_tag}\n\
         Call-ID: call-1@10.0.0.20\n\
         CSeq: {cseq} {method}\n\
         Contact: <sip:2002@10.0.0.20:5060>\n\
         Content-Length: 0\n\n"
    ))
}

/// A request we send (the TU's side), with the branch given.
fn outgoing(method: &str, branch: &str) -> Request {
    parse_request(&format!(
        "{method} sip:2002@198.51.100.20:40000 SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\n\
         Route: <sip:proxy.example.com;lr>\n\
         Max-Forwards: 70\n\
         From: <sip:2001@192.0.2.10>;tag=ours\n\
         To: <sip:2002@192.0.2.10>\n\
         Call-ID: out-1@192.0.2.10\n\
         CSeq: 5 {method}\n\
         Content-Length: 0\n\n"
    ))
}

/// The answer a peer gives to `req`, as it arrives here.
fn answer(req: &Request, status: u16) -> Message {
    let status = parse_status(status);
    Message::Response(Response::for_request(req, status, Some("theirs")))
}

fn parse_status(code: u16) -> StatusCode {
    StatusCode::new(code).unwrap()
}

/// The layer on a virtual clock, recording what it sends and says with their times.
struct Sim {
    layer: TxLayer,
    t0: Instant,
    now: Instant,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<(Duration, TxEvent)>,
}

impl Sim {
    fn new() -> Sim {
        let t0 = Instant::now();
        Sim {
            layer: TxLayer::new(TxConfig::default(), 7),
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        let at = self.elapsed();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((at, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((at, e));
        }
    }

    /// Fires every timer due up to `t0 + until`, then sets the clock there.
    fn run_until(&mut self, until: Duration) {
        let end = self.t0 + until;
        while let Some(at) = self.layer.poll_timeout() {
            if at > end {
                break;
            }
            assert!(at >= self.now, "poll_timeout went back in time");
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = end;
    }

    fn receive(&mut self, path: Path, msg: Message) {
        self.layer.handle_message(self.now, path, msg);
        self.drain();
    }

    fn receive_request(&mut self, path: Path, req: &Request) {
        self.receive(path, Message::Request(req.clone()));
    }

    fn send(&mut self, req: &Request, path: Path) -> TxId {
        let id = self.layer.send_request(self.now, req.clone(), path);
        self.drain();
        id
    }

    fn respond(&mut self, tx: TxId, resp: Response) {
        self.layer.respond(self.now, tx, resp);
        self.drain();
    }

    /// Send times so far, in milliseconds, and forgets them.
    fn take_sent_ms(&mut self) -> Vec<u128> {
        self.sent.drain(..).map(|(t, _)| t.as_millis()).collect()
    }

    fn take_sent(&mut self) -> Vec<(Duration, Transmit)> {
        std::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<(Duration, TxEvent)> {
        std::mem::take(&mut self.events)
    }

    /// The single new server transaction reported, with its request.
    fn take_new_request(&mut self) -> (TxId, Request) {
        let mut evs = self.take_events();
        assert_eq!(evs.len(), 1, "expected one event, got {evs:?}");
        match evs.remove(0).1 {
            TxEvent::Request { tx, request, .. } => (tx, request),
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

/// The status codes of the sent messages that are responses.
fn statuses(sent: &[(Duration, Transmit)]) -> Vec<u16> {
    sent.iter()
        .filter_map(|(_, t)| match parse_bytes(t) {
            Message::Response(r) => Some(r.status.as_u16()),
            Message::Request(_) => None,
        })
        .collect()
}

/// The top Via branch of a message.
fn branch_of(m: &impl HeaderAccess) -> String {
    m.top_via().and_then(|v| v.branch()).unwrap()
}

/// Send times of a UDP retransmission series starting at T1 and doubling up to `cap`, below
/// `end` (all in ms).
fn doubling_series(first: u128, cap: Option<u128>, end: u128) -> Vec<u128> {
    let mut out = vec![0];
    let (mut at, mut step) = (first, first);
    while at < end {
        out.push(at);
        step = cap.map_or(step * 2, |c| (step * 2).min(c));
        at += step;
    }
    out
}

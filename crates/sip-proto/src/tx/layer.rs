//! [`TxLayer`]: every transaction of one SIP core, their index and their timers.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sip::header::{Via, BRANCH_COOKIE};
use sip::{HeaderAccess, HeaderName, Message, Method, Request, Response};
use tracing::{debug, trace};

use super::client_invite::ClientInvite;
use super::client_non_invite::ClientNonInvite;
use super::ctx::Ctx;
use super::key::{self, AckParts, ClientKey, Index, KeyHasher, LegacyKey, ServerKey, ToTagRule};
use super::server_invite::ServerInvite;
use super::server_non_invite::ServerNonInvite;
use super::slab::Slab;
use super::timers::{Deadline, Timer, TimerQueue, Timers};
use super::{via, TxConfig, TxEvent, TxId};
use crate::path::{Path, Transmit};

/// The transaction layer of one SIP core (RFC 3261 §17, RFC 6026); see the [module](super)
/// documentation for the drive loop, the matching rules and who retransmits a 2xx.
pub struct TxLayer {
    cfg: TxConfig,
    rng: StdRng,
    hasher: KeyHasher,
    slab: Slab<Transaction>,
    /// Server transactions by key.
    servers: Index,
    /// Client transactions by key.
    clients: Index,
    /// INVITE server transactions in *Accepted*, by the identity of the ACK they await.
    acks: Index,
    queue: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

/// One transaction: where it talks, its timers, its key and its state.
struct Transaction {
    path: Path,
    timers: Timers,
    key: TxKey,
    /// Hash of `key` in `servers` or `clients`.
    hash: u64,
    /// Hash under which `acks` files it, while it awaits the ACK for a 2xx.
    ack_hash: Option<u64>,
    machine: Machine,
}

enum TxKey {
    Server(ServerKey),
    Client(ClientKey),
}

/// The four state machines (RFC 3261 names, hence the shared suffix).
#[allow(clippy::enum_variant_names)]
enum Machine {
    ServerInvite(ServerInvite),
    ServerNonInvite(ServerNonInvite),
    ClientInvite(ClientInvite),
    ClientNonInvite(ClientNonInvite),
}

impl TxLayer {
    /// A layer with `config` (brought into range, see [`TxConfig`]) whose branches and hash
    /// keys come from an RNG seeded with `rng_seed`.
    pub fn new(config: TxConfig, rng_seed: u64) -> TxLayer {
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let hasher = KeyHasher::new(rng.gen());
        TxLayer {
            cfg: config.sanitized(),
            rng,
            hasher,
            slab: Slab::default(),
            servers: Index::default(),
            clients: Index::default(),
            acks: Index::default(),
            queue: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A fresh branch: the magic cookie `z9hG4bK` and 96 random bits in hex (§8.1.1.7).
    pub fn new_branch(&mut self) -> String {
        let (a, b): (u64, u32) = (self.rng.gen(), self.rng.gen());
        format!("{BRANCH_COOKIE}{a:016x}{b:08x}")
    }

    /// A message arrived over `path`, already parsed and validated by the caller.
    ///
    /// A request opens a server transaction ([`TxEvent::Request`] / [`TxEvent::Cancel`]) or is a
    /// retransmission (absorbed, the last response re-sent); an ACK is absorbed by its INVITE
    /// transaction or passed on as [`TxEvent::Ack`]. A response goes to its client transaction
    /// or, matching none, is dropped. A request without a parsable Via is dropped.
    pub fn handle_message(&mut self, now: Instant, path: Path, msg: Message) {
        match msg {
            Message::Request(r) => self.handle_request(now, path, r),
            Message::Response(r) => self.handle_response(now, r),
        }
        self.tidy();
    }

    /// Starts a client transaction: sends `request` over `path` and retransmits it as needed.
    ///
    /// The top Via should carry a branch from [`TxLayer::new_branch`]; if it has no RFC 3261
    /// branch one is set, and without any Via one is added (`SIP/2.0/<transport> <path.local>`
    /// with `rport`). An ACK is no transaction (§17.1.1.3, §13.2.2.4): it is sent once, like
    /// [`TxLayer::send_stateless`], and the returned id names no transaction.
    pub fn send_request(&mut self, now: Instant, mut request: Request, path: Path) -> TxId {
        if request.method == Method::Ack {
            self.transmits.push_back(Transmit {
                path,
                bytes: Bytes::from(request.to_bytes()),
            });
            return TxId::DETACHED;
        }
        let branch = self.ensure_branch(&mut request, &path);
        let method = request.method.clone();
        let hash = self.hasher.client(&branch, &method);
        let bytes = Bytes::from(request.to_bytes());
        let is_invite = method == Method::Invite;
        let machine = if is_invite {
            Machine::ClientInvite(ClientInvite::Terminated)
        } else {
            Machine::ClientNonInvite(ClientNonInvite::Terminated)
        };
        let id = self.slab.insert(Transaction {
            path,
            timers: Timers::default(),
            key: TxKey::Client(ClientKey { branch, method }),
            hash,
            ack_hash: None,
            machine,
        });
        self.clients.insert(hash, id);
        self.drive(now, id, move |_, ctx| {
            if is_invite {
                Machine::ClientInvite(ClientInvite::start(ctx, request, bytes))
            } else {
                Machine::ClientNonInvite(ClientNonInvite::start(ctx, bytes))
            }
        });
        self.tidy();
        id
    }

    /// Server transaction `tx` sends `response` back over the path its request came on.
    ///
    /// Provisional responses may be sent several times; the first final response moves the
    /// transaction on and later ones are ignored, except further 2xx to an INVITE, which are
    /// sent as given (RFC 6026 §7.1). Send each 2xx once: the layer retransmits it over UDP
    /// until the ACK. Ignored for a client or finished transaction.
    pub fn respond(&mut self, now: Instant, tx: TxId, response: Response) {
        let Some(t) = self.slab.get_mut(tx) else {
            debug!(target: "sip::tx", %tx, "response for a finished transaction ignored");
            return;
        };
        if response.status.is_final() {
            if let TxKey::Server(ServerKey::Legacy(k)) = &mut t.key {
                // RFC 2543 ACK matching needs the To tag of the final response (§17.2.3).
                if k.response_to_tag.is_none() {
                    k.response_to_tag = Some(response.to().and_then(|n| n.tag()));
                }
            }
        }
        self.drive(now, tx, |m, ctx| m.respond(ctx, response));
        if let Some(t) = self.slab.get_mut(tx) {
            if let (None, Some(parts)) = (t.ack_hash, t.machine.ack_parts()) {
                let h = self.hasher.ack(parts);
                t.ack_hash = Some(h);
                self.acks.insert(h, tx);
            }
        }
        self.tidy();
    }

    /// Sends `msg` over `path` outside any transaction (an ACK for a 2xx, a response to a
    /// message that opened no transaction).
    pub fn send_stateless(&mut self, path: Path, msg: &Message) {
        self.transmits.push_back(Transmit {
            path,
            bytes: Bytes::from(msg.to_bytes()),
        });
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(d) = self.queue.pop_due(now) {
            let Some(t) = self.slab.get_mut(d.id) else {
                self.queue.unmark_stale();
                continue;
            };
            if t.timers.get(d.timer) != Some(d.at) {
                self.queue.unmark_stale();
                continue;
            }
            t.timers.clear(d.timer);
            trace!(target: "sip::tx", tx = %d.id, timer = ?d.timer, "timer fired");
            self.drive(now, d.id, |m, ctx| m.on_timer(ctx, d.timer));
        }
        self.tidy();
    }

    /// The driver could not deliver a message of `tx` (§17.1.4, §17.2.4): the transaction ends
    /// with [`TxEvent::TransportError`]. `now` is unused; it is taken like every other input's.
    pub fn handle_transport_error(&mut self, now: Instant, tx: TxId) {
        let _ = now;
        if self.slab.get(tx).is_none() {
            return;
        }
        self.events.push_back(TxEvent::TransportError { tx });
        self.remove(tx);
        self.tidy();
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`TxLayer::handle_timeout`] must next be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|d| d.at)
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// True while transaction `tx` exists.
    pub fn is_live(&self, tx: TxId) -> bool {
        self.slab.get(tx).is_some()
    }

    /// Sizes of the internal tables: deadline queue (stale entries included), server, client
    /// and ACK index entries.
    #[cfg(test)]
    pub(super) fn table_sizes(&self) -> [usize; 4] {
        [
            self.queue.len(),
            self.servers.len(),
            self.clients.len(),
            self.acks.len(),
        ]
    }

    fn handle_request(&mut self, now: Instant, path: Path, mut request: Request) {
        let Some(mut via) = request.top_via() else {
            debug!(target: "sip::tx", method = %request.method, "request without a usable Via dropped");
            return;
        };
        let branch = rfc3261_branch(&via);
        if request.method == Method::Ack {
            self.handle_ack(now, path, request, &via, branch.as_deref());
            return;
        }
        let method = &request.method;
        if let Some(id) = self.find_server(
            &request,
            &via,
            branch.as_deref(),
            method,
            ToTagRule::Request,
        ) {
            trace!(target: "sip::tx", tx = %id, "retransmission absorbed");
            self.drive(now, id, |m, ctx| m.on_retransmission(ctx));
            return;
        }
        let invite = match request.method {
            Method::Cancel => self.find_server(
                &request,
                &via,
                branch.as_deref(),
                key::invite(),
                ToTagRule::Ignore,
            ),
            _ => None,
        };
        // The RFC 2543 key holds the top Via as received, so it is taken before stamping.
        let legacy = match branch {
            Some(_) => None,
            None => {
                let Some(k) = LegacyKey::of(&request, &via, &request.method) else {
                    debug!(target: "sip::tx", "RFC 2543 request without Call-ID or CSeq dropped");
                    return;
                };
                Some(Box::new(k))
            }
        };
        stamp_source(&mut request, &mut via, &path);
        let (key, hash) = match (branch, legacy) {
            (_, Some(k)) => {
                let h = self.hasher.legacy(&k);
                (ServerKey::Legacy(k), h)
            }
            (Some(branch), None) => {
                let h = self
                    .hasher
                    .branch(&branch, &via.host, via.port, &request.method);
                let key = ServerKey::Branch {
                    branch,
                    host: via.host,
                    port: via.port,
                    method: request.method.clone(),
                };
                (key, h)
            }
            (None, None) => return,
        };
        let is_invite = request.method == Method::Invite;
        let machine = if is_invite {
            Machine::ServerInvite(ServerInvite::Terminated)
        } else {
            Machine::ServerNonInvite(ServerNonInvite::Trying)
        };
        let id = self.slab.insert(Transaction {
            path,
            timers: Timers::default(),
            key: TxKey::Server(key),
            hash,
            ack_hash: None,
            machine,
        });
        self.servers.insert(hash, id);
        if is_invite {
            self.drive(now, id, |_, ctx| {
                Machine::ServerInvite(ServerInvite::start(ctx, &request))
            });
        }
        trace!(target: "sip::tx", tx = %id, method = %request.method, "server transaction opened");
        let event = if request.method == Method::Cancel {
            TxEvent::Cancel {
                tx: id,
                invite,
                request,
                path,
            }
        } else {
            TxEvent::Request {
                tx: id,
                request,
                path,
            }
        };
        self.events.push_back(event);
    }

    /// An ACK: absorbed by an INVITE transaction in Completed/Confirmed, passed on once for a
    /// 2xx in Accepted, passed on when it matches nothing.
    fn handle_ack(
        &mut self,
        now: Instant,
        path: Path,
        request: Request,
        via: &Via,
        branch: Option<&str>,
    ) {
        let found = self
            .find_server(
                &request,
                via,
                branch,
                key::invite(),
                ToTagRule::FinalResponse,
            )
            .or_else(|| self.find_accepted(&request));
        if let Some(id) = found {
            let mut to_tu = false;
            self.drive(now, id, |m, ctx| {
                let (m, pass) = m.on_ack(ctx);
                to_tu = pass;
                m
            });
            if !to_tu {
                trace!(target: "sip::tx", tx = %id, "ACK absorbed");
                return;
            }
        }
        self.events.push_back(TxEvent::Ack { request, path });
    }

    fn handle_response(&mut self, now: Instant, response: Response) {
        let Some(via) = response.top_via() else {
            return;
        };
        let (Some(branch), Some(cseq)) = (via.branch(), response.cseq()) else {
            return;
        };
        let h = self.hasher.client(&branch, &cseq.method);
        let found = self.clients.candidates(h).iter().copied().find(|id| {
            matches!(self.slab.get(*id), Some(Transaction { key: TxKey::Client(k), .. })
                if k.branch == branch && k.method == cseq.method)
        });
        let Some(id) = found else {
            trace!(target: "sip::tx", status = %response.status, "response matching no transaction dropped");
            return;
        };
        self.drive(now, id, |m, ctx| m.on_response(ctx, response));
    }

    /// The server transaction `request` belongs to when its method is taken as `method`
    /// (§17.2.3; `branch` is the top Via branch when it has the magic cookie).
    fn find_server(
        &self,
        request: &Request,
        via: &Via,
        branch: Option<&str>,
        method: &Method,
        rule: ToTagRule,
    ) -> Option<TxId> {
        let method = key::method_class(method);
        let server_key = |id: &TxId| match self.slab.get(*id) {
            Some(Transaction {
                key: TxKey::Server(k),
                ..
            }) => Some(k),
            _ => None,
        };
        match branch {
            Some(b) => {
                let h = self.hasher.branch(b, &via.host, via.port, method);
                self.servers
                    .candidates(h)
                    .iter()
                    .copied()
                    .find(|id| server_key(id).is_some_and(|k| k.is_branch(b, via, method)))
            }
            None => {
                let probe = LegacyKey::of(request, via, method)?;
                let h = self.hasher.legacy(&probe);
                self.servers
                    .candidates(h)
                    .iter()
                    .copied()
                    .find(|id| server_key(id).is_some_and(|k| k.is_legacy(&probe, rule)))
            }
        }
    }

    /// The INVITE server transaction in Accepted whose 2xx this ACK acknowledges.
    fn find_accepted(&self, ack: &Request) -> Option<TxId> {
        let parts = AckParts::of(ack);
        let h = self.hasher.ack(&parts);
        self.acks
            .candidates(h)
            .iter()
            .copied()
            .find(|id| self.slab.get(*id).and_then(|t| t.machine.ack_parts()) == Some(&parts))
    }

    /// The RFC 3261 branch of the top Via, set or added when missing.
    fn ensure_branch(&mut self, request: &mut Request, path: &Path) -> String {
        let via = request.top_via();
        if let Some(b) = via.as_ref().and_then(rfc3261_branch) {
            return b;
        }
        let branch = self.new_branch();
        match via {
            Some(mut v) => {
                v.params.set("branch", Some(branch.clone()));
                via::replace_top(&mut request.headers, &v.to_string());
            }
            None => request.headers.push_front(
                HeaderName::Via,
                format!(
                    "SIP/2.0/{} {};branch={branch};rport",
                    path.transport.via_name(),
                    path.local
                ),
            ),
        }
        branch
    }

    /// Runs one transition of transaction `id`, dropping it when it terminates.
    fn drive(&mut self, now: Instant, id: TxId, f: impl FnOnce(Machine, &mut Ctx<'_>) -> Machine) {
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let Transaction {
            path,
            timers,
            machine,
            ..
        } = tx;
        let mut ctx = Ctx {
            now,
            id,
            cfg: &self.cfg,
            path,
            timers,
            queue: &mut self.queue,
            transmits: &mut self.transmits,
            events: &mut self.events,
        };
        let next = f(machine.take(), &mut ctx);
        let done = next.is_terminated();
        *machine = next;
        if done {
            self.remove(id);
        }
    }

    /// Drops transaction `id` with its index entries; its queued deadlines go stale.
    fn remove(&mut self, id: TxId) {
        let Some(tx) = self.slab.remove(id) else {
            return;
        };
        trace!(target: "sip::tx", tx = %id, "transaction terminated");
        self.queue.mark_stale(tx.timers.armed());
        match tx.key {
            TxKey::Server(_) => self.servers.remove(tx.hash, id),
            TxKey::Client(_) => self.clients.remove(tx.hash, id),
        }
        if let Some(h) = tx.ack_hash {
            self.acks.remove(h, id);
        }
    }

    /// Drops stale deadlines from the head of the queue (so `poll_timeout` is exact), and
    /// compacts the queue when stale entries dominate it.
    fn tidy(&mut self) {
        let slab = &self.slab;
        if self.queue.should_compact() {
            self.queue.retain(|d| is_current(slab, d));
        }
        while let Some(d) = self.queue.peek() {
            if is_current(slab, d) {
                break;
            }
            self.queue.pop();
            self.queue.unmark_stale();
        }
    }
}

impl fmt::Debug for TxLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxLayer")
            .field("config", &self.cfg)
            .field("transactions", &self.slab.len())
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// True when deadline `d` is still armed in its transaction.
fn is_current(slab: &Slab<Transaction>, d: &Deadline) -> bool {
    slab.get(d.id)
        .is_some_and(|t| t.timers.get(d.timer) == Some(d.at))
}

/// The top Via branch when it is an RFC 3261 one: the magic cookie and more (RFC 4475 §3.2.1).
fn rfc3261_branch(via: &Via) -> Option<String> {
    via.branch()
        .filter(|b| b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE))
}

/// Stamps `received`/`rport` on the top Via of a new request (RFC 3581 §4, §18.2.1).
fn stamp_source(request: &mut Request, via: &mut Via, path: &Path) {
    let ip = path.remote.ip().to_canonical();
    if !via.wants_rport() && via.host.ip() == Some(ip) {
        return;
    }
    via.stamp_source(ip, path.remote.port());
    via::replace_top(&mut request.headers, &via.to_string());
}

impl Machine {
    /// Moves the state out, leaving a terminated machine of the same kind behind.
    fn take(&mut self) -> Machine {
        let gone = match self {
            Machine::ServerInvite(_) => Machine::ServerInvite(ServerInvite::Terminated),
            Machine::ServerNonInvite(_) => Machine::ServerNonInvite(ServerNonInvite::Terminated),
            Machine::ClientInvite(_) => Machine::ClientInvite(ClientInvite::Terminated),
            Machine::ClientNonInvite(_) => Machine::ClientNonInvite(ClientNonInvite::Terminated),
        };
        std::mem::replace(self, gone)
    }

    fn is_terminated(&self) -> bool {
        matches!(
            self,
            Machine::ServerInvite(ServerInvite::Terminated)
                | Machine::ServerNonInvite(ServerNonInvite::Terminated)
                | Machine::ClientInvite(ClientInvite::Terminated)
                | Machine::ClientNonInvite(ClientNonInvite::Terminated)
        )
    }

    fn on_retransmission(self, ctx: &mut Ctx<'_>) -> Machine {
        match self {
            Machine::ServerInvite(m) => Machine::ServerInvite(m.on_retransmission(ctx)),
            Machine::ServerNonInvite(m) => Machine::ServerNonInvite(m.on_retransmission(ctx)),
            client => client,
        }
    }

    fn on_ack(self, ctx: &mut Ctx<'_>) -> (Machine, bool) {
        match self {
            Machine::ServerInvite(m) => {
                let (m, pass) = m.on_ack(ctx);
                (Machine::ServerInvite(m), pass)
            }
            other => (other, false),
        }
    }

    fn respond(self, ctx: &mut Ctx<'_>, response: Response) -> Machine {
        match self {
            Machine::ServerInvite(m) => Machine::ServerInvite(m.respond(ctx, response)),
            Machine::ServerNonInvite(m) => Machine::ServerNonInvite(m.respond(ctx, response)),
            client => {
                debug!(target: "sip::tx", tx = %ctx.id, "respond() on a client transaction ignored");
                client
            }
        }
    }

    fn on_response(self, ctx: &mut Ctx<'_>, response: Response) -> Machine {
        match self {
            Machine::ClientInvite(m) => Machine::ClientInvite(m.on_response(ctx, response)),
            Machine::ClientNonInvite(m) => Machine::ClientNonInvite(m.on_response(ctx, response)),
            server => server,
        }
    }

    fn on_timer(self, ctx: &mut Ctx<'_>, timer: Timer) -> Machine {
        match self {
            Machine::ServerInvite(m) => Machine::ServerInvite(m.on_timer(ctx, timer)),
            Machine::ServerNonInvite(m) => Machine::ServerNonInvite(m.on_timer(timer)),
            Machine::ClientInvite(m) => Machine::ClientInvite(m.on_timer(ctx, timer)),
            Machine::ClientNonInvite(m) => Machine::ClientNonInvite(m.on_timer(ctx, timer)),
        }
    }

    /// The ACK identity of a 2xx, for an INVITE server transaction in Accepted.
    fn ack_parts(&self) -> Option<&AckParts> {
        match self {
            Machine::ServerInvite(m) => m.ack_parts(),
            _ => None,
        }
    }
}

/// Stamps `received`/`rport` on the top Via of a request answered without a transaction
/// (§8.2.7 stateless UAS, e.g. the 401 challenge of §26.3.2.4), as a new transaction would.
pub fn stamp_received(request: &mut Request, path: &Path) {
    let Some(mut via) = request.top_via() else {
        return;
    };
    stamp_source(request, &mut via, path);
}

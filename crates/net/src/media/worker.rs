//! One relay worker: a thread that owns a [`Relay`] over its share of the port range and every
//! socket of that share. Packets never leave this thread's memory: the signalling core talks to
//! it only through a command queue and a wake-up, read between batches of packets, so the
//! per-packet path takes no lock.
//!
//! Readiness is level-triggered epoll: each wake-up reports every socket with a datagram
//! waiting (up to [`EVENTS`] at once), and each gets exactly one `recvfrom`. A phone sends 50
//! packets a second per socket, so there is almost never a second datagram to batch on one
//! socket; edge-triggered readiness would instead cost a third system call per packet, the
//! `recvfrom` that returns EAGAIN to prove the socket drained. A socket that does hold more
//! is simply reported again by the next `epoll_wait`, which does not block then.
//!
//! Sending goes through a second, *connected* socket on the same port once a channel has a
//! destination ([`Connected`]): `send` on a connected UDP socket reuses the route the kernel
//! cached at `connect` instead of looking it up and building the address for every `sendto`
//! (≈ 0.45 µs of ≈ 4 µs per send on the project VM). The port's unconnected socket stays, so
//! what reaches the relay core is unchanged: the kernel hands the destination's packets to the
//! connected socket and every other source's to the unconnected one, and each datagram reaches
//! the core with its true source (the connected socket's, once proven to be its peer's, are read
//! without the address: [`Connected::sourced`]), so latching, re-latching and the counters of
//! third addresses are the core's as before.

use std::collections::{BTreeSet, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::UdpSocket;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use relay::{
    CallRef, ChannelId, ChannelStats, Config, DirectPeer, LegRef, LimitHit, Peer, Relay,
    RelayCommand, RelayEvent, RelayPort, SrtpKeys,
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::MediaReport;
use crate::Inbound;

/// The waker's key: above every port number.
const WAKE: u64 = u64::MAX;
/// Set in the epoll key of a port's connected socket (the low bits are the port).
const CONNECTED: u64 = 1 << 32;
/// A channel whose destination changes more often than this keeps sending unconnected: each
/// `connect` costs more than the route look-ups it saves over a few packets.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Largest datagram read: RTP over a 1500-byte Ethernet MTU fits with room to spare; a longer
/// one is truncated and dropped as malformed by the relay core.
const MAX_DATAGRAM: usize = 2048;
/// How often counters are published for `homeline status`.
const PUBLISH: Duration = Duration::from_secs(1);
/// Readiness events handled per wake-up.
const EVENTS: usize = 1024;

/// What the signalling core asks of a worker.
#[derive(Debug)]
pub(crate) enum Command {
    Allocate {
        call: CallRef,
        leg: LegRef,
        reply: std_mpsc::SyncSender<Result<(ChannelId, u16), LimitHit>>,
    },
    SetPeer {
        channel: ChannelId,
        peer: Peer,
        renegotiated: bool,
    },
    /// SRTP keys of a channel's device (boxed: key material is large next to the rest).
    SetSrtp(ChannelId, Box<SrtpKeys>),
    Pair(ChannelId, ChannelId),
    PairDirect(ChannelId, DirectPeer),
    Release(ChannelId),
    Stop,
}

/// A worker's figures, written once per [`PUBLISH`] period, read by status.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Packets received on the worker's ports.
    pub received: AtomicU64,
    /// Packets forwarded.
    pub forwarded: AtomicU64,
    /// Bytes forwarded (UDP payload).
    pub forwarded_bytes: AtomicU64,
    /// Packets dropped (third addresses, no destination yet, malformed, stray).
    pub dropped: AtomicU64,
    /// Channels allocated now.
    pub in_use: AtomicU64,
    /// SRTP/SRTCP packets that failed authentication, over every channel so far.
    pub srtp_auth_failures: AtomicU64,
    /// SRTP/SRTCP replays dropped, over every channel so far.
    pub srtp_replays: AtomicU64,
}

/// The control side's handle on a worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub(crate) commands: std_mpsc::Sender<Command>,
    pub(crate) waker: Arc<EventFd>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) channels: Arc<Mutex<Vec<ChannelStats>>>,
    pub(crate) capacity: u32,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    pub(crate) fn send(&self, cmd: Command) {
        if self.commands.send(cmd).is_ok() {
            let _ = self.waker.write(1);
        }
    }
}

/// Binds every port of `config`'s range on `bind_ip` and starts the worker thread.
pub(crate) fn spawn(
    index: usize,
    config: Config,
    bind_ip: IpAddr,
    to_core: mpsc::Sender<Inbound>,
) -> std::io::Result<WorkerHandle> {
    let poll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(std::io::Error::from)?;
    let waker = Arc::new(
        EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(std::io::Error::from)?,
    );
    poll.add(&*waker, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
        .map_err(std::io::Error::from)?;
    let base = *config.ports.start();
    let config_ports = config.ports.len();
    let sockets = std::iter::repeat_with(|| None)
        .take(config.ports.len())
        .collect();
    let capacity = config.channels();
    let relay = Relay::new(config, &mut rand::thread_rng())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
    let (tx, rx) = std_mpsc::channel();
    let counters = Arc::new(WorkerCounters::default());
    let channels = Arc::new(Mutex::new(Vec::new()));
    let mut worker = Worker {
        relay,
        bind_ip,
        waker: waker.clone(),
        poll,
        sockets,
        connected: std::iter::repeat_with(|| None).take(config_ports).collect(),
        base,
        commands: rx,
        to_core,
        pending: VecDeque::new(),
        calls: BTreeSet::new(),
        counters: counters.clone(),
        channels: channels.clone(),
        local: Local::default(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("relay-{index}"))
        .spawn(move || worker.run())?;
    Ok(WorkerHandle {
        commands: tx,
        waker,
        counters,
        channels,
        capacity,
        thread: Some(thread),
    })
}

/// Binds a relay port. `SO_REUSEPORT` lets the port's [`Connected`] socket share it; only
/// sockets of the same user that set it too can share a port, so a port held by another
/// program still fails here as before.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReusePort, &true)
        .map_err(std::io::Error::from)?;
    // 1 MB covers 50 ms of a few hundred calls' packets should the worker be descheduled.
    let _ = sock.set_recv_buffer_size(1 << 20);
    sock.bind(&addr.into())
        .map_err(|e| std::io::Error::new(e.kind(), format!("relay port {addr}: {e}")))?;
    Ok(sock.into())
}

/// Counters kept in the worker's own memory and published now and then.
#[derive(Debug, Default)]
struct Local {
    received: u64,
    forwarded: u64,
    forwarded_bytes: u64,
    dropped: u64,
    /// SRTP counters of released channels.
    srtp_auth_failures: u64,
    srtp_replays: u64,
}

/// A second socket on a channel's port, connected to where that port sends. The kernel prefers
/// a connected socket for datagrams from its peer, so it also receives that source's packets.
struct Connected {
    sock: UdpSocket,
    peer: SocketAddr,
    since: Instant,
    /// Read with the source address until a datagram from `peer` itself has been read. A
    /// connected UDP socket only receives from its peer, so its datagrams can then be read
    /// without the kernel writing out an address (`recv`: ≈ 2.5 % of a relayed packet's CPU).
    /// But the socket may hold older datagrams from elsewhere: those that reached it before its
    /// `connect` (as a fresh member of the port's `SO_REUSEPORT` group it may get any source's)
    /// or before it was re-pointed. The queue is first in, first out, so the first datagram
    /// from `peer` proves they are all read; until then each is read with its true source and
    /// the relay core judges it as before.
    sourced: bool,
}

impl Connected {
    /// Connects `sock` (bound to the port) to `peer`.
    fn new(sock: UdpSocket, peer: SocketAddr, now: Instant) -> std::io::Result<Self> {
        sock.connect(peer)?;
        Ok(Self {
            sock,
            peer,
            since: now,
            sourced: true,
        })
    }

    /// Re-points the socket at `peer`; on failure it stays connected where it was.
    fn repoint(&mut self, peer: SocketAddr, now: Instant) -> std::io::Result<()> {
        self.sock.connect(peer)?;
        self.peer = peer;
        self.since = now;
        self.sourced = true;
        Ok(())
    }

    /// The next datagram and its source (see [`Connected::sourced`]).
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        if !self.sourced {
            return self.sock.recv(buf).map(|n| (n, self.peer));
        }
        let r = self.sock.recv_from(buf);
        // The peer's datagram proves only that what queued before it is read: another
        // address's, handed to this socket between its bind and its connect, may sit behind
        // it. An empty queue after it proves everything from before connect is read.
        if matches!(r, Ok((_, from)) if from == self.peer)
            && matches!(self.sock.peek_from(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock)
        {
            self.sourced = false;
        }
        r
    }
}

struct Worker {
    relay: Relay,
    bind_ip: IpAddr,
    waker: Arc<EventFd>,
    poll: Epoll,
    /// The sockets of allocated channels, indexed by `port - base`: ports are bound when a
    /// channel is handed out and closed when it is released, so late packets of a finished
    /// call meet a closed port rather than the next call.
    sockets: Vec<Option<UdpSocket>>,
    /// Each port's connected send socket, same index as `sockets`.
    connected: Vec<Option<Connected>>,
    base: u16,
    commands: std_mpsc::Receiver<Command>,
    to_core: mpsc::Sender<Inbound>,
    /// Reports the core's queue had no room for yet.
    pending: VecDeque<MediaReport>,
    /// Calls holding channels here, to publish their channels' counters.
    calls: BTreeSet<CallRef>,
    counters: Arc<WorkerCounters>,
    channels: Arc<Mutex<Vec<ChannelStats>>>,
    local: Local,
}

impl Worker {
    fn run(&mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS];
        // Room after the datagram for an SRTP trailer appended in place.
        let mut buf = [0u8; MAX_DATAGRAM + relay::SRTP_TRAILER];
        let mut next_publish = Instant::now() + PUBLISH;
        loop {
            let now = Instant::now();
            let wake = self
                .relay
                .poll_timeout()
                .map_or(next_publish, |t| t.min(next_publish));
            let wait = if self.pending.is_empty() {
                wake.saturating_duration_since(now)
            } else {
                Duration::from_millis(10)
            };
            // Round up: a timer due in 0.4 ms must not spin with a 0 ms wait.
            let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            let n = match self.poll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    warn!(error = %e, "relay worker poll failed; worker stops");
                    return;
                }
            };
            // One clock reading per batch: packets of one wake-up arrived within microseconds.
            let now = Instant::now();
            for ev in &events[..n] {
                let key = ev.data();
                if key == WAKE {
                    let _ = self.waker.read();
                    continue;
                }
                self.receive(now, key, &mut buf);
            }
            if !self.drain_commands(now) {
                return;
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
            }
            // Timeouts release nothing themselves, but keep the sockets in step regardless.
            if let Err(port) = self.apply_socket_commands() {
                warn!(%port, "relay port could not be bound");
            }
            while let Some(ev) = self.relay.poll_event() {
                self.report(ev);
            }
            self.flush_reports();
            if now >= next_publish {
                self.publish();
                next_publish = now + PUBLISH;
            }
        }
    }

    /// Reads the one datagram a ready socket reported and forwards it.
    #[inline]
    fn receive(
        &mut self,
        now: Instant,
        key: u64,
        buf: &mut [u8; MAX_DATAGRAM + relay::SRTP_TRAILER],
    ) {
        let port = (key & 0xffff) as usize;
        let Some(i) = port.checked_sub(usize::from(self.base)) else {
            return;
        };
        let read = if key & CONNECTED != 0 {
            match self.connected.get_mut(i) {
                Some(Some(c)) => c.recv(&mut buf[..MAX_DATAGRAM]),
                _ => return,
            }
        } else {
            match self.sockets.get(i) {
                Some(Some(s)) => s.recv_from(&mut buf[..MAX_DATAGRAM]),
                _ => return,
            }
        };
        let (n, from) = match read {
            Ok(r) => r,
            // Spurious readiness, or an ICMP error of an earlier send surfacing on Linux: not
            // this packet's fault, and level-triggered readiness reports real data again.
            Err(_) => return,
        };
        self.local.received += 1;
        let Some((fwd, len)) =
            self.relay
                .handle_packet(now, RelayPort::new(port as u16), from, buf, n)
        else {
            self.local.dropped += 1;
            return;
        };
        let pkt = &buf[..len];
        let out = usize::from(fwd.from_port.get()).wrapping_sub(usize::from(self.base));
        let sent = match self.connected.get(out) {
            Some(Some(c)) if c.peer == fwd.to => {
                c.sock.send(pkt).is_ok()
                // A pending ICMP error fails one send on a connected socket: retry unconnected.
                || self.send_unconnected(out, pkt, fwd.to)
            }
            _ => {
                let sent = self.send_unconnected(out, pkt, fwd.to);
                if sent {
                    self.connect(now, fwd.from_port, fwd.to);
                }
                sent
            }
        };
        if sent {
            self.local.forwarded += 1;
            self.local.forwarded_bytes += len as u64;
        } else {
            self.local.dropped += 1;
        }
    }

    fn send_unconnected(&self, out: usize, pkt: &[u8], to: SocketAddr) -> bool {
        match self.sockets.get(out) {
            Some(Some(s)) => s.send_to(pkt, to).is_ok(),
            _ => false,
        }
    }

    /// Gives `port` a socket connected to `peer` (or re-points the one it has), unless it was
    /// re-pointed less than [`RECONNECT_AFTER`] ago. Failing is harmless: sends stay unconnected.
    fn connect(&mut self, now: Instant, port: RelayPort, peer: SocketAddr) {
        let i = usize::from(port.get() - self.base);
        if let Some(Some(c)) = self.connected.get_mut(i) {
            if now.saturating_duration_since(c.since) < RECONNECT_AFTER {
                return;
            }
            // Packets the old peer sends from now on reach the unconnected socket.
            let _ = c.repoint(peer, now);
            return;
        }
        let Ok(sock) = bind(SocketAddr::new(self.bind_ip, port.get())) else {
            return;
        };
        let Ok(c) = Connected::new(sock, peer, now) else {
            return;
        };
        let key = CONNECTED | u64::from(port.get());
        if self
            .poll
            .add(&c.sock, EpollEvent::new(EpollFlags::EPOLLIN, key))
            .is_err()
        {
            return;
        }
        self.connected[i] = Some(c);
    }

    /// Applies the core's commands; false when told to stop.
    fn drain_commands(&mut self, now: Instant) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(std_mpsc::TryRecvError::Empty) => return true,
                Err(std_mpsc::TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Allocate { call, leg, reply } => {
                    let _ = reply.try_send(self.allocate(now, call, leg));
                }
                Command::SetPeer {
                    channel,
                    peer,
                    renegotiated,
                } => {
                    let r = if renegotiated {
                        self.relay.renegotiate(now, channel, peer)
                    } else {
                        self.relay.set_peer(now, channel, peer)
                    };
                    log_channel_error(r);
                }
                Command::SetSrtp(channel, keys) => {
                    log_channel_error(self.relay.set_srtp(channel, &keys))
                }
                Command::Pair(a, b) => log_channel_error(self.relay.pair(now, a, b)),
                Command::PairDirect(ch, peer) => {
                    log_channel_error(self.relay.pair_direct(now, ch, peer))
                }
                Command::Release(channel) => {
                    if let Ok(stats) = self.relay.snapshot(channel) {
                        let call = stats.call;
                        self.local.srtp_auth_failures += stats.srtp_auth_failures;
                        self.local.srtp_replays += stats.srtp_replays;
                        self.pending.push_back(MediaReport::Closed(Box::new(stats)));
                        log_channel_error(self.relay.release(now, channel));
                        if self.relay.channels_of(call).next().is_none() {
                            self.calls.remove(&call);
                        }
                    }
                }
                Command::Stop => return false,
            }
        }
    }

    /// Takes a channel and binds its ports. A port held by another program costs that channel
    /// (it goes to the back of the free list) and the next one is tried.
    fn allocate(
        &mut self,
        now: Instant,
        call: CallRef,
        leg: LegRef,
    ) -> Result<(ChannelId, u16), LimitHit> {
        const ATTEMPTS: usize = 8;
        let mut last_err = None;
        for _ in 0..ATTEMPTS {
            let id = self.relay.allocate(now, call, leg)?;
            match self.apply_socket_commands() {
                Ok(()) => {
                    self.calls.insert(call);
                    let port = self.relay.rtp_port(id).map(|p| p.get()).unwrap_or(0);
                    return Ok((id, port));
                }
                Err(port) => {
                    last_err = Some(port);
                    let _ = self.relay.release(now, id);
                    let _ = self.apply_socket_commands();
                }
            }
        }
        if let Some(port) = last_err {
            warn!(%port, "relay ports are held by another program; channel refused");
        }
        Err(LimitHit::PoolExhausted {
            capacity: self.relay.config().channels(),
        })
    }

    /// Binds and closes sockets as the relay core asks. Err: the port that could not be bound
    /// (every command is still applied).
    fn apply_socket_commands(&mut self) -> Result<(), RelayPort> {
        let mut failed = Ok(());
        while let Some(cmd) = self.relay.poll_command() {
            match cmd {
                RelayCommand::Bind(port) => {
                    if let Err(e) = self.open(port) {
                        debug!(%port, error = %e, "relay port bind failed");
                        failed = Err(port);
                    }
                }
                RelayCommand::Release(port) => self.close(port),
                _ => {}
            }
        }
        failed
    }

    fn open(&mut self, port: RelayPort) -> std::io::Result<()> {
        let i = usize::from(port.get() - self.base);
        let sock = bind(SocketAddr::new(self.bind_ip, port.get()))?;
        self.poll
            .add(
                &sock,
                EpollEvent::new(EpollFlags::EPOLLIN, u64::from(port.get())),
            )
            .map_err(std::io::Error::from)?;
        self.sockets[i] = Some(sock);
        Ok(())
    }

    fn close(&mut self, port: RelayPort) {
        let i = usize::from(port.get() - self.base);
        if let Some(sock) = self.sockets[i].take() {
            let _ = self.poll.delete(&sock);
        }
        if let Some(c) = self.connected[i].take() {
            let _ = self.poll.delete(&c.sock);
        }
    }

    fn report(&mut self, ev: RelayEvent) {
        let report = match ev {
            RelayEvent::MediaTimeout { call, kind } => MediaReport::Timeout { call, kind },
            RelayEvent::Latched {
                call,
                leg,
                port,
                source,
                relatch,
                ..
            } => {
                debug!(call = call.0, leg = leg.0, %port, %source, ?relatch, "media source latched");
                return;
            }
            RelayEvent::SourceRejected {
                call,
                leg,
                last_source,
                packets,
                ..
            } => {
                // A third address sending into a call's port: scanning, or a stale stream.
                warn!(call = call.0, leg = leg.0, %last_source, packets, "relay dropped packets from an unexpected source");
                return;
            }
            _ => return,
        };
        self.pending.push_back(report);
    }

    fn flush_reports(&mut self) {
        while let Some(r) = self.pending.pop_front() {
            match self.to_core.try_send(Inbound::Media(r)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Inbound::Media(r))) => {
                    self.pending.push_front(r);
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn publish(&mut self) {
        let c = &self.counters;
        c.received.store(self.local.received, Ordering::Relaxed);
        c.forwarded.store(self.local.forwarded, Ordering::Relaxed);
        c.forwarded_bytes
            .store(self.local.forwarded_bytes, Ordering::Relaxed);
        c.dropped.store(self.local.dropped, Ordering::Relaxed);
        c.in_use
            .store(u64::from(self.relay.pool_stats().in_use), Ordering::Relaxed);
        let snapshot: Vec<ChannelStats> = self
            .calls
            .iter()
            .flat_map(|call| self.relay.channels_of(*call).collect::<Vec<_>>())
            .filter_map(|id| self.relay.snapshot(id).ok())
            .collect();
        let (auth, replays) = snapshot.iter().fold(
            (self.local.srtp_auth_failures, self.local.srtp_replays),
            |(a, r), s| (a + s.srtp_auth_failures, r + s.srtp_replays),
        );
        c.srtp_auth_failures.store(auth, Ordering::Relaxed);
        c.srtp_replays.store(replays, Ordering::Relaxed);
        if let Ok(mut shared) = self.channels.lock() {
            *shared = snapshot;
        }
    }
}

fn log_channel_error(r: Result<(), relay::ChannelError>) {
    if let Err(e) = r {
        // The call layer named a channel that is gone (released by a timeout meanwhile).
        debug!(error = %e, "relay command for a released channel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(300);

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    fn phone() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s
    }

    /// The next datagram on `s` and where it came from, or None after [`WAIT`].
    fn recv(s: &UdpSocket) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; MAX_DATAGRAM];
        s.recv_from(&mut buf)
            .ok()
            .map(|(n, f)| (buf[..n].to_vec(), f))
    }

    fn allocate(w: &WorkerHandle, leg: u64) -> (ChannelId, u16) {
        let (tx, rx) = std_mpsc::sync_channel(1);
        w.send(Command::Allocate {
            call: CallRef(1),
            leg: LegRef(leg),
            reply: tx,
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("worker answers")
            .expect("channel")
    }

    /// A connected socket's datagrams are read without their source only once its peer's own
    /// first datagram has been read: one queued before `connect` (from any source) or before a
    /// re-point (from the old peer) comes with its true source, so the relay core never takes
    /// another address's packet for the peer's (RFC 4961 latching stays the core's).
    #[test]
    fn rfc4961_connected_socket_keeps_true_sources_of_datagrams_queued_before_connect() {
        let (x, p, q) = (phone(), phone(), phone());
        let addr_of = |s: &UdpSocket| s.local_addr().expect("addr");
        let sock = phone();
        let port = addr_of(&sock);
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut read = |c: &mut Connected| {
            c.recv(&mut buf)
                .map(|(n, from)| (buf[..n].to_vec(), from))
                .expect("a datagram")
        };
        // Queued while the socket was not yet connected: a third address's.
        x.send_to(&rtp(1), port).expect("send");
        sock.peek_from(&mut [0u8; 1]).expect("queued");
        let now = Instant::now();
        let mut c = Connected::new(sock, addr_of(&p), now).expect("connect");
        p.send_to(&rtp(2), port).expect("send");
        assert_eq!(read(&mut c), (rtp(1), addr_of(&x)));
        assert!(c.sourced, "a third address's datagram proved nothing");
        assert_eq!(read(&mut c), (rtp(2), addr_of(&p)));
        assert!(!c.sourced, "the peer's datagram ends the checking");
        p.send_to(&rtp(3), port).expect("send");
        assert_eq!(read(&mut c), (rtp(3), addr_of(&p)));

        // Re-pointed at Q with one of P's still queued: it is read as P's, then Q's as Q's.
        p.send_to(&rtp(4), port).expect("send");
        c.sock.peek_from(&mut [0u8; 1]).expect("queued");
        c.repoint(addr_of(&q), now).expect("re-point");
        q.send_to(&rtp(5), port).expect("send");
        assert_eq!(read(&mut c), (rtp(4), addr_of(&p)));
        assert_eq!(read(&mut c), (rtp(5), addr_of(&q)));
        q.send_to(&rtp(6), port).expect("send");
        assert_eq!(read(&mut c), (rtp(6), addr_of(&q)));
        assert!(!c.sourced);
    }

    /// The peer's datagram first, then a third address's, both queued before `connect`: the
    /// peer's proves nothing about what sits behind it, so the third address's still comes
    /// with its own source.
    #[test]
    fn rfc4961_third_address_queued_behind_the_peers_first_datagram_keeps_its_source() {
        let (x, p) = (phone(), phone());
        let addr_of = |s: &UdpSocket| s.local_addr().expect("addr");
        let sock = phone();
        let port = addr_of(&sock);
        let mut buf = [0u8; MAX_DATAGRAM];
        p.send_to(&rtp(1), port).expect("send");
        x.send_to(&rtp(2), port).expect("send");
        sock.peek_from(&mut [0u8; 1]).expect("queued");
        let mut c = Connected::new(sock, addr_of(&p), Instant::now()).expect("connect");
        let mut read = |c: &mut Connected| {
            c.recv(&mut buf)
                .map(|(n, from)| (buf[..n].to_vec(), from))
                .expect("a datagram")
        };
        assert_eq!(read(&mut c), (rtp(1), addr_of(&p)));
        assert!(c.sourced, "a datagram was still queued behind the peer's");
        assert_eq!(read(&mut c), (rtp(2), addr_of(&x)));
        p.send_to(&rtp(3), port).expect("send");
        assert_eq!(read(&mut c), (rtp(3), addr_of(&p)));
        assert!(
            !c.sourced,
            "nothing queued behind the peer's: checking ends"
        );
    }

    /// The connected send sockets must not change what the relay core decides: RFC 4961
    /// symmetric RTP with a latched source, a third address never forwarded (and counted as
    /// dropped) whether it reaches the port's unconnected socket or not, re-latching after
    /// silence, after which the old source is the third address and the socket that was
    /// connected to it now sends to the new one.
    #[test]
    fn rfc4961_connected_send_sockets_keep_latching_and_third_address_rules() {
        // Outside Linux's default ephemeral range (32768-60999), so nothing else binds them.
        let ports = 61_200..=61_211;
        let config = Config {
            ports: ports.clone(),
            relatch_after_silence: Duration::from_millis(400),
            ..Config::default()
        };
        let (to_core, _core) = mpsc::channel(16);
        let mut w = spawn(0, config, IpAddr::from([127, 0, 0, 1]), to_core).expect("worker");
        let (a, b, c) = (phone(), phone(), phone());
        let (ch_a, port_a) = allocate(&w, 1);
        let (ch_b, port_b) = allocate(&w, 2);
        let relay_a = SocketAddr::from(([127, 0, 0, 1], port_a));
        let relay_b = SocketAddr::from(([127, 0, 0, 1], port_b));
        for (ch, s) in [(ch_a, &a), (ch_b, &b)] {
            w.send(Command::SetPeer {
                channel: ch,
                // Its SIP came from its media's IP: reached before it latches (B, first packet).
                peer: Peer {
                    signalling_ip: Some(IpAddr::from([127, 0, 0, 1])),
                    ..Peer::new(s.local_addr().expect("addr"))
                },
                renegotiated: false,
            });
        }
        w.send(Command::Pair(ch_a, ch_b));
        // The worker reads commands after the packets of a wake-up: let it take these first.
        std::thread::sleep(Duration::from_millis(50));

        // Both ways, several packets: each port now sends through its connected socket.
        for seq in 0..5 {
            a.send_to(&rtp(seq), relay_a).expect("send");
            let (p, from) = recv(&b).expect("A's packet reaches B");
            assert_eq!((p, from), (rtp(seq), relay_b));
            b.send_to(&rtp(100 + seq), relay_b).expect("send");
            let (p, from) = recv(&a).expect("B's packet reaches A");
            assert_eq!((p, from), (rtp(100 + seq), relay_a));
        }

        // A third address while A is live: not forwarded, counted as dropped.
        c.send_to(&rtp(7), relay_a).expect("send");
        assert!(recv(&b).is_none(), "a third address was forwarded");
        std::thread::sleep(PUBLISH + Duration::from_millis(200));
        assert!(w.counters.dropped.load(Ordering::Relaxed) >= 1);

        // A silent longer than relatch_after_silence: C takes its place, both ways.
        c.send_to(&rtp(8), relay_a).expect("send");
        assert_eq!(
            recv(&b).expect("C's packet reaches B after re-latching").0,
            rtp(8)
        );
        b.send_to(&rtp(200), relay_b).expect("send");
        assert_eq!(recv(&c).expect("B's packet reaches C").0, rtp(200));
        assert!(
            recv(&a).is_none(),
            "B's packet still went to the old source"
        );

        // A is now the third address; its packets are dropped whichever socket reads them.
        for seq in 9..12 {
            a.send_to(&rtp(seq), relay_a).expect("send");
            c.send_to(&rtp(300 + seq), relay_a).expect("send");
            assert_eq!(recv(&b).expect("C still reaches B").0, rtp(300 + seq));
        }
        assert!(
            recv(&b).is_none(),
            "the old source was forwarded after re-latching"
        );

        w.send(Command::Stop);
        if let Some(t) = w.thread.take() {
            t.join().expect("worker thread");
        }
    }
}

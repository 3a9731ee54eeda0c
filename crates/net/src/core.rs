//! The core task: drives the transaction layer and the registrar from listener input, timers and
//! control messages, and sends what they produce. Only this code reads the clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use call::b2bua::{B2bua, B2buaConfig, CallEvent, CallRef, MediaAddresses, NotFollowed, Target};
use policy::Zone;
use sip::{
    parse_datagram, parse_framed, validate_request, validate_response, HeaderAccess, HeaderName,
    Message, Method, Request, Response, StatusCode,
};
use sip_proto::keepalive::{BindingRef, KeepAlive, KeepAliveEvent, Probe, ProbeKind};
use sip_proto::path::{FlowId, Path, Transmit, Transport};
use sip_proto::registrar::{Aor, Registrar, RegistrarEvent, RemoveReason, RequestAuth};
use sip_proto::tx::{stamp_received, TxConfig, TxEvent, TxId, TxLayer};
use sip_proto::uas;
use store::{BindingWriter, Store};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::NetConfig;
use crate::media::{MediaReport, RelayPool, SharedPool};
use crate::stations::{self, StationCache};
use crate::stats::{PublicAddress, RemoteBinding, Stats};
use crate::tls::{CertificateInfo, TlsIdentity, TlsServer};
use crate::udp::ListenerStun;
use crate::{persist, tcp, udp, Inbound};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not be bound (port in use, address not local, no permission).
    #[error("cannot listen on {transport} {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// "udp" or "tcp".
        transport: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store could not be read.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    /// The RTP relay could not bind its port range (another program holds part of it).
    #[error("media relay: {0}")]
    Relay(std::io::Error),
    /// The TLS certificate or settings were refused.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    /// Counters.
    pub stats: Arc<Stats>,
    /// Every bound listener: zone, transport, address.
    pub listeners: Vec<(Zone, Transport, SocketAddr)>,
    /// The RTP relay's channel pool (figures and live channel counters).
    pub relay: SharedPool,
    to_core: mpsc::Sender<Inbound>,
    stop: Option<oneshot::Sender<()>>,
    core: JoinHandle<()>,
    tls: Option<TlsServer>,
    /// STUN through each external UDP listener, until taken.
    listener_stun: Mutex<HashMap<SocketAddr, ListenerStun>>,
}

/// Sets the running server's public address from another task (see
/// [`ServerHandle::set_public_ip`]).
#[derive(Debug, Clone)]
pub struct PublicIpSetter(mpsc::Sender<Inbound>);

impl PublicIpSetter {
    /// Same as [`ServerHandle::set_public_ip`].
    pub async fn set(&self, ip: Option<IpAddr>) {
        // Fails only when the core has stopped, and then nothing is advertised anyway.
        let _ = self.0.send(Inbound::SetPublic(ip)).await;
    }
}

/// Why a certificate was not put in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetIdentityError {
    /// The server runs without TLS listeners.
    #[error("the server has no TLS listener")]
    NoTls,
    /// The identity was refused.
    #[error(transparent)]
    Refused(#[from] crate::tls::TlsError),
}

/// Replaces the TLS certificate from another task (see [`ServerHandle::set_tls_identity`]).
#[derive(Debug, Clone)]
pub struct TlsIdentitySetter {
    tls: TlsServer,
    stats: Arc<Stats>,
}

impl TlsIdentitySetter {
    /// Same as [`ServerHandle::set_tls_identity`].
    pub fn set(&self, identity: &TlsIdentity) -> Result<CertificateInfo, crate::tls::TlsError> {
        let info = self.tls.replace(identity)?;
        *self
            .stats
            .tls_certificate
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
        Ok(info)
    }
}

impl ServerHandle {
    /// STUN through the external UDP listener bound to `local` (an address of
    /// [`Self::listeners`]): Binding requests sent through it leave from the listener's own
    /// socket, so the mapping a server reports is the listener's. Handed out once; `None` for
    /// an address that is no external UDP listener, or a second time.
    pub fn take_listener_stun(&self, local: SocketAddr) -> Option<ListenerStun> {
        self.listener_stun
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&local)
    }

    /// A handle that sets the public address from another task.
    pub fn public_ip_setter(&self) -> PublicIpSetter {
        PublicIpSetter(self.to_core.clone())
    }

    /// Gives the running server the office's public address (learned by STUN, resolved from
    /// DynDNS) or takes it away (`None`): calls set up afterwards advertise it in SDP, Via and
    /// Contact towards external-zone devices; calls already up keep theirs. The core logs a
    /// change. Status is not touched: the caller knows the source and writes
    /// [`Stats::public_address`].
    pub async fn set_public_ip(&self, ip: Option<IpAddr>) {
        self.public_ip_setter().set(ip).await;
    }

    /// Replaces the TLS certificate: new handshakes present `identity`, connections already
    /// up (and the calls on them) keep the session they have. A refused identity (key not
    /// matching, RSA key too short, unparsable) leaves the current one in place.
    pub fn set_tls_identity(
        &self,
        identity: &TlsIdentity,
    ) -> Result<CertificateInfo, SetIdentityError> {
        let tls = self.tls.as_ref().ok_or(SetIdentityError::NoTls)?;
        let info = tls.replace(identity)?;
        *self
            .stats
            .tls_certificate
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
        Ok(info)
    }

    /// A handle that replaces the TLS certificate from another task; `None` without TLS.
    pub fn tls_identity_setter(&self) -> Option<TlsIdentitySetter> {
        self.tls.clone().map(|tls| TlsIdentitySetter {
            tls,
            stats: self.stats.clone(),
        })
    }

    /// Stops the core and waits until every binding change is on disk.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.core).await;
    }
}

/// Binds every listener, loads stations and bindings, and starts the core task.
pub async fn start(config: NetConfig, store: Store) -> Result<ServerHandle, StartError> {
    let stats = Arc::new(Stats::default());
    let (to_core, from_listeners) = mpsc::channel::<Inbound>(8192);
    let mut listeners = Vec::new();
    let mut udp_sockets = HashMap::new();
    let zones = config
        .internal
        .iter()
        .map(|a| (Zone::Internal, *a))
        .chain(config.external.iter().map(|a| (Zone::External, *a)));
    let tls = config.tls.as_ref().map(TlsServer::new).transpose()?;
    let mut tasks = Vec::new();
    let mut tls_listeners = Vec::new();
    for (zone, addr) in zones {
        let sock = udp::bind(addr, config.udp_buffer).map_err(|source| StartError::Bind {
            addr,
            transport: "udp",
            source,
        })?;
        let sock = Arc::new(sock);
        let local = sock.local_addr().map_err(|source| StartError::Bind {
            addr,
            transport: "udp",
            source,
        })?;
        udp_sockets.insert(local, sock.clone());
        listeners.push((zone, Transport::Udp, local));
        tasks.push((zone, sock, None));
        // TCP on the same port as UDP (the brief's table); port 0 follows the UDP choice.
        let tcp_addr = SocketAddr::new(addr.ip(), local.port());
        let tcp = bind_tcp(tcp_addr).map_err(|source| StartError::Bind {
            addr: tcp_addr,
            transport: "tcp",
            source,
        })?;
        let tcp_local = tcp.local_addr().map_err(|source| StartError::Bind {
            addr,
            transport: "tcp",
            source,
        })?;
        listeners.push((zone, Transport::Tcp, tcp_local));
        tasks.last_mut().expect("just pushed").2 = Some(tcp);
        if let Some(tls_config) = &config.tls {
            // TLS on its own port per zone (the brief: 5061 internal, 5063 external).
            let port = match zone {
                Zone::Internal => tls_config.internal_port,
                Zone::External => tls_config.external_port,
            };
            let tls_addr = SocketAddr::new(addr.ip(), port);
            let listener = bind_tcp(tls_addr).map_err(|source| StartError::Bind {
                addr: tls_addr,
                transport: "tls",
                source,
            })?;
            let local = listener.local_addr().map_err(|source| StartError::Bind {
                addr: tls_addr,
                transport: "tls",
                source,
            })?;
            listeners.push((zone, Transport::Tls, local));
            tls_listeners.push((zone, listener));
        }
    }
    let stream_listener = |zone, tls: Option<TlsServer>| tcp::Listener {
        zone,
        max_message: config.max_message,
        to_core: to_core.clone(),
        stats: stats.clone(),
        tls,
    };
    let mut listener_stun = HashMap::new();
    for (zone, sock, tcp) in tasks {
        // Only the external listeners face the STUN servers on the Internet.
        let responses = match (zone, sock.local_addr()) {
            (Zone::External, Ok(local)) => {
                let (handle, tx) = udp::listener_stun(local, sock.clone());
                listener_stun.insert(local, handle);
                Some(tx)
            }
            _ => None,
        };
        tokio::spawn(udp::recv_loop(sock, zone, to_core.clone(), responses));
        if let Some(tcp) = tcp {
            tokio::spawn(tcp::accept_loop(tcp, stream_listener(zone, None)));
        }
    }
    for (zone, listener) in tls_listeners {
        tokio::spawn(tcp::accept_loop(
            listener,
            stream_listener(zone, tls.clone()),
        ));
    }
    if let Some(tls) = &tls {
        *stats
            .tls_certificate
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tls.certificate());
    }

    let pool = RelayPool::start(&config.media, to_core.clone()).map_err(StartError::Relay)?;
    let relay = SharedPool(Arc::new(Mutex::new(pool)));

    let realm = config.registrar.realm.clone();
    let generation = store.generation().await?;
    let cache = stations::load(&store, &realm, &config.classes).await?;
    tokio::spawn(stations::refresh_loop(
        store.clone(),
        realm,
        config.classes.clone(),
        generation,
        config.station_poll,
        to_core.clone(),
    ));

    let now = Instant::now();
    let wall = SystemTime::now();
    let mut secret = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut secret);
    let mut registrar = Registrar::new(config.registrar.clone(), now, secret);
    let mut keepalive = KeepAlive::new(config.keepalive.clone());
    let rows = store.load_bindings(unix_now(wall)).await?;
    let restored = rows.len();
    for row in rows {
        if let Some(b) = persist::from_row(row, now, wall) {
            if b.zone == Zone::External {
                keepalive.track(now, binding_ref(&b), b.path());
            }
            registrar.restore(now, b);
        }
    }
    stats
        .bindings
        .store(registrar.binding_count() as u64, Ordering::Relaxed);
    info!(stations = cache.len(), bindings = restored, "state loaded");

    let core = Core {
        tx: TxLayer::new(TxConfig::default(), rand::random()),
        registrar,
        stations: cache,
        udp: udp_sockets,
        flows: HashMap::new(),
        flow_certs: HashMap::new(),
        check_subject_name: tls.as_ref().is_some_and(|t| t.check_subject_name),
        writer: store.binding_writer(),
        calls: B2bua::new(
            B2buaConfig {
                media: MediaAddresses {
                    public: config.media.public_ip,
                    internal: config.media.internal_ip.or_else(|| lan_address(&config)),
                    learned: config.media.learn_public && config.media.public_ip.is_none(),
                },
                public_sip: config
                    .media
                    .public_ip
                    .map(|ip| SocketAddr::new(ip, config.public_sip_port)),
                ..B2buaConfig::default()
            },
            rand::random(),
            Box::new(relay.clone()),
        ),
        relay: relay.clone(),
        media_timeouts: config.media.relay.clone(),
        plan: policy::NumberingPlan::default(),
        stats: stats.clone(),
        max_message: config.max_message,
        tags: 0,
        keepalive,
        probes: HashMap::new(),
        status_published: None,
        public_sip_port: config.public_sip_port,
    };
    *stats
        .public_address
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = PublicAddress::at_start(&config, &listeners);
    let (stop_tx, stop_rx) = oneshot::channel();
    let core = tokio::spawn(core.run(from_listeners, stop_rx));
    crate::control::spawn(&config, stats.clone(), listeners.clone());
    Ok(ServerHandle {
        stats,
        listeners,
        relay,
        to_core,
        stop: Some(stop_tx),
        core,
        tls,
        listener_stun: Mutex::new(listener_stun),
    })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

/// The office LAN address to advertise (Via, Contact, relayed SDP) when an internal listener
/// is bound to every address and `media.internal_ip` is not set: the first private IPv4
/// address of an interface that is up, else any non-loopback IPv4 one. Logged, because a host
/// with several LANs should name its own with `media.internal_ip`.
fn lan_address(config: &NetConfig) -> Option<std::net::IpAddr> {
    let wildcard = config.internal.iter().any(|a| a.ip().is_unspecified());
    if !wildcard {
        return None;
    }
    let ifaces = if_addrs::get_if_addrs().ok()?;
    let v4: Vec<std::net::Ipv4Addr> = ifaces
        .iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| match i.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_link_local() => Some(ip),
            _ => None,
        })
        .collect();
    let chosen = v4
        .iter()
        .find(|ip| ip.is_private())
        .or(v4.first())
        .copied()
        .map(std::net::IpAddr::V4);
    match chosen {
        Some(ip) => {
            info!(%ip, "internal listener on every address: office phones are given this one (set media.internal_ip to choose)")
        }
        None => warn!(
            "internal listener on every address and no LAN address found: set media.internal_ip"
        ),
    }
    chosen
}

/// The keepalive core's name for a binding.
fn binding_ref(b: &sip_proto::registrar::Binding) -> BindingRef {
    BindingRef {
        aor: b.aor.clone(),
        key: b.key(),
    }
}

fn unix_now(wall: SystemTime) -> i64 {
    wall.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

/// Longest sleep when no core has a timer.
const IDLE: Duration = Duration::from_secs(1);
/// Inputs handled per wake-up before the cores are drained.
const BATCH: usize = 256;

struct Core {
    tx: TxLayer,
    registrar: Registrar,
    stations: StationCache,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    flows: HashMap<FlowId, mpsc::UnboundedSender<Bytes>>,
    /// Names in the certificates TLS devices presented, per flow.
    flow_certs: HashMap<FlowId, Arc<[String]>>,
    /// `tls.check_subject_name`: a device certificate must name the station it registers.
    check_subject_name: bool,
    writer: BindingWriter,
    calls: B2bua,
    /// The relay pool the call core allocates from; read here for the status counters.
    relay: SharedPool,
    /// The relay's timeouts, to say which one ended a call.
    media_timeouts: relay::Config,
    plan: policy::NumberingPlan,
    stats: Arc<Stats>,
    max_message: usize,
    tags: u64,
    /// Probes of external bindings (NAT keepalives, liveness).
    keepalive: KeepAlive,
    /// OPTIONS probes in flight: their client transaction → the binding probed.
    probes: HashMap<TxId, (BindingRef, u64)>,
    /// When the status figures were last published.
    status_published: Option<Instant>,
    /// The public SIP port, written with a learned public address.
    public_sip_port: u16,
}

impl Core {
    async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>, mut stop: oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let wake = self.next_wake();
            tokio::select! {
                n = inbound.recv_many(&mut batch, BATCH) => {
                    if n == 0 { break; }
                    let now = Instant::now();
                    for item in batch.drain(..) {
                        self.handle_inbound(now, item);
                    }
                    self.drain(now);
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    self.tx.handle_timeout(now);
                    self.registrar.handle_timeout(now);
                    self.keepalive.handle_timeout(now);
                    self.calls.handle_timeout(&mut self.tx, now);
                    self.drain(now);
                }
                _ = &mut stop => break,
            }
        }
        if let Err(e) = self.writer.flush().await {
            warn!(error = %e, "bindings not all written at shutdown");
        }
        info!("core stopped");
    }

    fn next_wake(&self) -> Instant {
        let idle = Instant::now() + IDLE;
        [
            self.tx.poll_timeout(),
            self.registrar.poll_timeout(),
            self.keepalive.poll_timeout(),
            self.calls.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map_or(idle, |t| t.min(idle))
    }

    fn handle_inbound(&mut self, now: Instant, item: Inbound) {
        match item {
            Inbound::Datagram { path, bytes } => self.handle_bytes(now, path, &bytes, true),
            Inbound::Stream { path, bytes } => self.handle_bytes(now, path, &bytes, false),
            Inbound::FlowOpened { flow, writer, peer } => {
                self.flows.insert(flow, writer);
                if let Some(names) = peer {
                    self.flow_certs.insert(flow, names);
                }
            }
            Inbound::FlowClosed { flow } => {
                self.flows.remove(&flow);
                self.flow_certs.remove(&flow);
                self.registrar.handle_flow_closed(flow);
            }
            Inbound::Stations(cache) => self.stations = cache,
            Inbound::Media(report) => self.handle_media_report(now, report),
            Inbound::SetPublic(ip) => {
                let old = self.calls.set_public(ip, self.public_sip_port);
                if old != ip {
                    let show =
                        |a: Option<IpAddr>| a.map_or_else(|| "none".to_owned(), |a| a.to_string());
                    info!(
                        old = %show(old),
                        new = %show(ip),
                        "public address changed from {} to {}: new calls advertise it",
                        show(old),
                        show(ip)
                    );
                }
            }
        }
    }

    fn handle_bytes(&mut self, now: Instant, path: Path, bytes: &[u8], datagram: bool) {
        Stats::bump(&self.stats.received);
        // RFC 5626 §3.5.1 keepalive on UDP is a bare CRLF CRLF: nothing to answer.
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return;
        }
        let parsed = if datagram {
            parse_datagram(bytes, self.max_message)
        } else {
            parse_framed(bytes)
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                match (e.status(), e.headers.as_ref()) {
                    (Some(status), Some(h)) => {
                        Stats::bump(&self.stats.rejected);
                        let resp = with_warning(
                            Response::from_headers(h, status, Some(&self.next_tag())),
                            &e.kind.to_string(),
                        );
                        self.send(Transmit {
                            path,
                            bytes: Bytes::from(resp.to_bytes()),
                        });
                    }
                    _ => Stats::bump(&self.stats.dropped),
                }
                debug!(remote = %path.remote, error = %e, "unparsable message");
                return;
            }
        };
        match msg {
            Message::Request(req) => {
                if let Err(e) = validate_request(&req) {
                    Stats::bump(&self.stats.rejected);
                    debug!(remote = %path.remote, error = %e, "invalid request");
                    if req.method != Method::Ack {
                        let resp = with_warning(
                            Response::for_request(&req, e.status(), Some(&self.next_tag())),
                            &e.to_string(),
                        );
                        self.send(Transmit {
                            path,
                            bytes: Bytes::from(resp.to_bytes()),
                        });
                    }
                    return;
                }
                // §26.3.2.4: challenges are sent statelessly, so a flood of unauthenticated
                // REGISTERs costs no transaction state (§8.2.7 stateless UAS).
                let stateless = req.method == Method::Register
                    && req.headers.get(&HeaderName::Authorization).is_none();
                if stateless {
                    self.handle_stateless(now, req, path);
                    return;
                }
                self.tx.handle_message(now, path, Message::Request(req));
            }
            Message::Response(resp) => {
                if validate_response(&resp).is_err() {
                    Stats::bump(&self.stats.dropped);
                    return;
                }
                self.tx.handle_message(now, path, Message::Response(resp));
            }
        }
    }

    /// Drains every core until none has anything left to say.
    fn drain(&mut self, now: Instant) {
        // Call events are where channels and calls come and go: their figures are published
        // at once; everything else at most once a second.
        let mut calls_changed = false;
        loop {
            let mut progressed = false;
            while let Some(ev) = self.tx.poll_event() {
                progressed = true;
                self.handle_tx_event(now, ev);
            }
            while let Some(ev) = self.registrar.poll_event() {
                progressed = true;
                self.handle_registrar_event(now, ev);
            }
            while let Some(ev) = self.calls.poll_event() {
                progressed = true;
                calls_changed = true;
                match ev {
                    CallEvent::Started { call, forks, .. } => {
                        info!(call = call.0, forks, "call started")
                    }
                    CallEvent::Refused { call, status, why } => {
                        info!(call = call.0, status = status.as_u16(), %why, "call refused")
                    }
                    CallEvent::Answered { call } => info!(call = call.0, "call answered"),
                    CallEvent::Forwarded { call, kind, forks } => {
                        info!(call = call.0, %kind, forks, "call forwarded")
                    }
                    CallEvent::ForwardNotFollowed {
                        call,
                        station,
                        kind,
                        why: NotFollowed::ClassOfService { zone, refusal },
                    } => {
                        info!(call = call.0, %station, %zone, class = %refusal.class_name(), rule = %refusal.rule(), %kind, "forwarding refused by class of service")
                    }
                    CallEvent::ForwardNotFollowed {
                        call,
                        station,
                        kind,
                        why,
                    } => info!(call = call.0, %station, %kind, %why, "forwarding not followed"),
                    CallEvent::Ended { call, reason } => {
                        info!(call = call.0, ?reason, "call ended")
                    }
                    CallEvent::TransferRequested {
                        call,
                        by,
                        zone,
                        target,
                        sips,
                    } => {
                        info!(call = call.0, %by, %zone, "transfer requested");
                        debug!(call = call.0, %target, "transfer target");
                        let targets = self.transfer_targets(&by, zone, &target, sips);
                        self.calls
                            .handle_transfer_targets(&mut self.tx, now, call, targets);
                    }
                    CallEvent::Transferred { call, .. } => info!(call = call.0, "call transferred"),
                    CallEvent::TransferFailed { call, status } => {
                        info!(call = call.0, status = status.as_u16(), "transfer failed")
                    }
                }
            }
            while let Some(p) = self.keepalive.poll_probe() {
                progressed = true;
                self.send_probe(now, p);
            }
            while let Some(KeepAliveEvent::Dead(b)) = self.keepalive.poll_event() {
                progressed = true;
                info!(aor = %b.aor.0, "binding unreachable: keepalives unanswered, removed");
                self.registrar
                    .remove_binding(&b.aor, &b.key, RemoveReason::Unreachable);
            }
            while let Some(t) = self.tx.poll_transmit() {
                progressed = true;
                self.send(t);
            }
            if !progressed {
                break;
            }
        }
        self.stats
            .bindings
            .store(self.registrar.binding_count() as u64, Ordering::Relaxed);
        if calls_changed {
            self.publish_media_stats();
        }
        self.publish_status(now);
    }

    fn handle_tx_event(&mut self, now: Instant, ev: TxEvent) {
        match ev {
            TxEvent::Request { tx, request, path } => {
                let in_dialog = request.to().and_then(|t| t.tag()).is_some();
                match request.method {
                    Method::Invite if !in_dialog => self.handle_invite(now, tx, request, path),
                    Method::Register | Method::Options if !in_dialog => {
                        self.handle_request(now, tx, &request, &path)
                    }
                    _ if in_dialog => {
                        if !self.calls.handle_in_dialog(&mut self.tx, now, tx, &request) {
                            let resp = Response::for_request(
                                &request,
                                StatusCode::CALL_DOES_NOT_EXIST,
                                None,
                            );
                            self.tx.respond(now, tx, resp);
                        }
                    }
                    _ => self.handle_request(now, tx, &request, &path),
                }
            }
            TxEvent::Cancel {
                tx,
                invite,
                request,
                ..
            } => self
                .calls
                .handle_cancel(&mut self.tx, now, tx, invite, &request),
            TxEvent::Ack { request, .. } => {
                self.calls.handle_ack(&mut self.tx, now, &request);
            }
            TxEvent::Response { tx, response } => {
                if let Some((b, _)) = self.probes.remove(&tx) {
                    // Any answer, even 404 or 405, proves the phone and its NAT mapping alive.
                    self.keepalive.answered(now, &b);
                    return;
                }
                self.calls.handle_response(&mut self.tx, now, tx, response);
            }
            TxEvent::TimedOut { tx } | TxEvent::TransportError { tx } => {
                if let Some((b, seq)) = self.probes.remove(&tx) {
                    self.keepalive.unanswered(&b, seq);
                    return;
                }
                self.calls.handle_timed_out(&mut self.tx, now, tx);
            }
            // The caller never acknowledged our 2xx (§13.3.1.4): session timers (next step) will
            // end such calls; until then a BYE from either side does.
            _ => {}
        }
    }

    /// A new call. The caller (From) must be a station and authenticate with digest (407) under
    /// the registrar's zone rules; the callee is looked up among the stations and their
    /// bindings; a number that is no station goes through class of service first.
    fn handle_invite(&mut self, now: Instant, tx: TxId, req: Request, path: Path) {
        let tag = self.next_tag();
        if let Some(resp) = uas::precheck(&req, &tag) {
            self.tx.respond(now, tx, resp);
            return;
        }
        if let Err(why) = sip_proto::sips::check_request(&req, path.transport) {
            self.tx.respond(now, tx, sips_refusal(&req, why, &tag));
            return;
        }
        let caller = req
            .from()
            .and_then(|f| f.uri.as_sip().and_then(|u| u.user_unescaped()))
            .and_then(|u| String::from_utf8(u).ok());
        let Some(caller) = caller else {
            let resp = with_warning(
                Response::for_request(&req, StatusCode::FORBIDDEN, Some(&tag)),
                "From must name a station",
            );
            self.tx.respond(now, tx, resp);
            return;
        };
        // The caller proves who it is with digest (407), under the registrar's zone rules.
        // (An Arc clone: entries are read while the cores are driven.)
        let stations = Arc::clone(&self.stations);
        let station = stations.get(&caller);
        match self.registrar.authorize_request(
            now,
            &req,
            &path,
            &Aor(caller.clone()),
            station.map(|s| &s.credentials),
            &tag,
        ) {
            RequestAuth::Accepted => {}
            RequestAuth::Refused(resp) => {
                self.tx.respond(now, tx, resp);
                return;
            }
        }
        if station.is_some_and(|s| s.payload_security) {
            if let Err(why) = call::payload_security::check_invite(&path, &req) {
                info!(station = %caller, %why, "call refused: payload security");
                let resp = Response::for_request(&req, why.status(), Some(&tag));
                self.tx
                    .respond(now, tx, with_warning(resp, &why.to_string()));
                return;
            }
        }
        let callee = match &req.uri {
            sip::Uri::Sip(u) => u.user_unescaped().and_then(|u| String::from_utf8(u).ok()),
            sip::Uri::Tel(t) => Some(t.digits()),
            _ => None,
        }
        .unwrap_or_default();
        let Some(callee_station) = stations.get(&callee) else {
            // Not a station: class of service decides before any route is looked for, so toll
            // fraud through a stolen remote phone is refused with a reason, not just unrouted.
            // The caller's class for the zone it calls from applies: the INVITE arrives on the
            // listener of the zone the caller registered on.
            let default_class;
            let class = match station {
                Some(s) => s.classes.for_zone(path.zone),
                None => {
                    default_class = match path.zone {
                        Zone::External => policy::CosClass::default_external(),
                        Zone::Internal => policy::CosClass::default_internal(),
                    };
                    &default_class
                }
            };
            let verdict = policy::check_call(class, &callee, &self.plan);
            let resp = match verdict {
                Err(refusal) => {
                    info!(station = %caller, zone = %path.zone, class = %refusal.class_name(), rule = %refusal.rule(), "call refused by class of service");
                    debug!(dialled = %callee, "call refused by class of service (number)");
                    let status = StatusCode::new(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
                    let mut r = Response::for_request(&req, status, Some(&tag));
                    r.reason = refusal.reason_phrase();
                    r
                }
                // The dial plan's hook: trunks come later, so an outside number has no route.
                Ok(_) => with_warning(
                    Response::for_request(&req, StatusCode::NOT_FOUND, Some(&tag)),
                    "no route: numbers outside the office need a trunk, and none is configured",
                ),
            };
            self.tx.respond(now, tx, resp);
            return;
        };
        // RFC 5630 §5.3: a sips: call rings only contacts reached over TLS, with a sips:
        // Request-URI; a sip: call is never upgraded.
        let sips = sip_proto::sips::is_sips(&req.uri);
        let forwarding = call::sips::forwarding(
            stations::forwarding_for(
                &callee,
                callee_station,
                &stations,
                &self.registrar,
                &self.plan,
            ),
            sips,
        );
        // The station's own contacts do not matter when it forwards unconditionally, so
        // neither filter refuses such a call.
        let always = call::sips::forwards_always(&forwarding);
        let targets =
            match stations::reachable_contacts(&self.registrar, &callee, callee_station, sips) {
                Ok(t) => t,
                Err(_) if always => Vec::new(),
                Err(why) => {
                    info!(station = %callee, %why, "callee not reachable");
                    let resp = match why {
                        stations::Unreachable::Sips(why) => sips_refusal(&req, why, &tag),
                        stations::Unreachable::PayloadSecurity(why) => with_warning(
                            Response::for_request(&req, why.status(), Some(&tag)),
                            &why.to_string(),
                        ),
                    };
                    self.tx.respond(now, tx, resp);
                    return;
                }
            };
        self.calls.handle_invite(
            &mut self.tx,
            now,
            tx,
            req,
            path,
            &caller,
            &callee,
            Ok(targets),
            forwarding,
        );
    }

    /// Refreshes what status shows beyond the plain counters (call and relay figures, remote
    /// bindings' health) at most once a second: the pool lock and the binding walk stay off
    /// the per-message path. The core wakes at least once a second, so nothing goes stale.
    fn publish_status(&mut self, now: Instant) {
        if self
            .status_published
            .is_some_and(|t| now < t + Duration::from_secs(1))
        {
            return;
        }
        self.status_published = Some(now);
        self.publish_media_stats();
        self.publish_remote_bindings(now);
    }

    /// Refreshes the remote-binding health list status shows.
    fn publish_remote_bindings(&mut self, now: Instant) {
        let rows: Vec<RemoteBinding> = self
            .registrar
            .all_bindings()
            .into_iter()
            .filter(|b| b.zone == Zone::External)
            .map(|b| {
                let health = self.keepalive.health(&binding_ref(b));
                RemoteBinding {
                    station: b.aor.0.clone(),
                    source: b.source,
                    transport: b.transport.to_string(),
                    nat: b.nat.as_str().to_string(),
                    last_seen_secs: health
                        .map_or(0, |h| now.saturating_duration_since(h.last_seen).as_secs()),
                    missed_probes: health.map_or(0, |h| h.misses),
                    expires_in_secs: b.expires_at.saturating_duration_since(now).as_secs(),
                }
            })
            .collect();
        if let Ok(mut shared) = self.stats.remote_bindings.lock() {
            *shared = rows;
        }
    }

    /// Copies call and relay figures into the shared counters `homeline status` reads.
    fn publish_media_stats(&self) {
        let st = &self.stats;
        st.calls_active
            .store(self.calls.len() as u64, Ordering::Relaxed);
        let Ok(pool) = self.relay.0.lock() else {
            return;
        };
        let f = pool.figures();
        st.relay_capacity
            .store(u64::from(f.capacity), Ordering::Relaxed);
        st.relay_in_use
            .store(u64::from(f.in_use), Ordering::Relaxed);
        st.internet_in_use
            .store(u64::from(f.in_use), Ordering::Relaxed);
        st.internet_limit
            .store(u64::from(f.internet_calls.unwrap_or(0)), Ordering::Relaxed);
        st.refused_pool.store(f.refused_pool, Ordering::Relaxed);
        st.refused_internet
            .store(f.refused_internet, Ordering::Relaxed);
        let (packets, bytes, auth, replays) = pool.counters().fold((0, 0, 0, 0), |t, c| {
            (
                t.0 + c.forwarded.load(Ordering::Relaxed),
                t.1 + c.forwarded_bytes.load(Ordering::Relaxed),
                t.2 + c.srtp_auth_failures.load(Ordering::Relaxed),
                t.3 + c.srtp_replays.load(Ordering::Relaxed),
            )
        });
        st.relay_packets.store(packets, Ordering::Relaxed);
        st.relay_bytes.store(bytes, Ordering::Relaxed);
        st.relay_srtp_auth_failures.store(auth, Ordering::Relaxed);
        st.relay_srtp_replays.store(replays, Ordering::Relaxed);
    }

    fn handle_media_report(&mut self, now: Instant, report: MediaReport) {
        match report {
            MediaReport::Timeout { call, kind } => {
                let cfg = &self.media_timeouts;
                let why = match kind {
                    relay::TimeoutKind::NeverStarted => {
                        format!(
                            "no media within {} s of the answer",
                            cfg.media_start_timeout.as_secs()
                        )
                    }
                    relay::TimeoutKind::Held => {
                        format!(
                            "no media for {} s while on hold",
                            cfg.held_timeout.as_secs()
                        )
                    }
                    _ => format!("no media for {} s", cfg.media_timeout.as_secs()),
                };
                info!(call = call.0, %why, "media timeout: ending the call");
                self.calls
                    .handle_media_timeout(&mut self.tx, now, CallRef(call.0), &why);
            }
            MediaReport::Closed(stats) => {
                let r = &stats.received;
                info!(
                    call = stats.call.0,
                    leg = if stats.leg.0 == 0 { "caller" } else { "callee" },
                    rtp_port = %stats.rtp_port,
                    received = r.packets,
                    lost = r.lost,
                    jitter_ms = format!("{:.1}", r.jitter.as_secs_f64() * 1000.0),
                    sent = stats.sent_packets,
                    rejected = stats.rejected,
                    srtp_in = stats.srtp_inbound,
                    srtp_out = stats.srtp_outbound,
                    srtp_auth_failures = stats.srtp_auth_failures,
                    srtp_replays = stats.srtp_replays,
                    "relay channel closed"
                );
            }
        }
    }

    /// Where a blind transfer to `number` goes: a station's contacts, or the refusal the
    /// referrer hears. A number outside the office is checked against the referrer's class of
    /// service for the zone it transfers from (the brief: a transfer target is checked against
    /// the class of the station that set it).
    fn transfer_targets(
        &self,
        referrer: &str,
        zone: Zone,
        number: &str,
        sips: bool,
    ) -> Result<Vec<Target>, (StatusCode, String)> {
        if let Some(station) = self.stations.get(number) {
            // The same filters as a call to the station.
            return stations::reachable_contacts(&self.registrar, number, station, sips)
                .map_err(|why| (why.status(), why.to_string()));
        }
        let default_class = match zone {
            Zone::External => policy::CosClass::default_external(),
            Zone::Internal => policy::CosClass::default_internal(),
        };
        let class = self
            .stations
            .get(referrer)
            .map_or(&default_class, |s| s.classes.for_zone(zone));
        if let Err(refusal) = policy::check_transfer_target(class, number, &self.plan) {
            info!(station = %referrer, %zone, class = %refusal.class_name(), rule = %refusal.rule(), "transfer refused by class of service");
            return Err((
                StatusCode::new(refusal.status()).unwrap_or(StatusCode::FORBIDDEN),
                refusal.reason_phrase(),
            ));
        }
        Err((
            StatusCode::NOT_FOUND,
            "no route: numbers outside the office need a trunk".into(),
        ))
    }

    /// Answers a request without a transaction: a retransmission just gets a new answer.
    fn handle_stateless(&mut self, now: Instant, mut req: Request, path: Path) {
        stamp_received(&mut req, &path);
        let resp = self.answer(now, &req, &path);
        self.send(Transmit {
            path,
            bytes: Bytes::from(resp.to_bytes()),
        });
    }

    fn handle_request(&mut self, now: Instant, tx: TxId, req: &Request, path: &Path) {
        let resp = self.answer(now, req, path);
        self.tx.respond(now, tx, resp);
    }

    /// The final response to a request for us.
    fn answer(&mut self, now: Instant, req: &Request, path: &Path) -> Response {
        let tag = self.next_tag();
        if let Some(resp) = uas::precheck(req, &tag) {
            return resp;
        }
        if let Err(why) = sip_proto::sips::check_request(req, path.transport) {
            debug!(remote = %path.remote, %why, "request refused: SIPS");
            return sips_refusal(req, why, &tag);
        }
        match req.method {
            Method::Register => {
                if let Some(refusal) = self.certificate_refusal(req, path, &tag) {
                    return refusal;
                }
                let station = Registrar::aor_of(req).and_then(|aor| self.stations.get(&aor.0));
                let secure = station.is_some_and(|s| s.payload_security);
                let credentials = station.map(|s| s.credentials.clone());
                // Payload security is checked after digest: before it, a 403 would tell a
                // prober that the number exists (and has the flag).
                let resp = self.registrar.handle_register_checked(
                    now,
                    req,
                    path,
                    credentials.as_ref(),
                    |tag| {
                        let why = call::payload_security::check_register(path)
                            .err()
                            .filter(|_| secure)?;
                        info!(zone = %path.zone, transport = ?path.transport, "REGISTER refused: payload security requires TLS");
                        let resp = Response::for_request(req, why.status(), Some(tag));
                        Some(with_warning(resp, &why.to_string()))
                    },
                );
                if resp.status == StatusCode::OK {
                    Stats::bump(&self.stats.registered);
                }
                resp
            }
            Method::Options => uas::options_response(req, &tag),
            _ => Response::for_request(req, StatusCode::METHOD_NOT_ALLOWED, Some(&tag)),
        }
    }

    /// `tls.check_subject_name`: a REGISTER over a TLS connection whose device presented a
    /// certificate must come from a certificate naming the station (see
    /// [`crate::tls::names_station`]); else 403 with a Warning saying why. A device without a
    /// certificate is not checked here (`client_certificates = "required"` refuses it at the
    /// handshake).
    fn certificate_refusal(&self, req: &Request, path: &Path, tag: &str) -> Option<Response> {
        if !self.check_subject_name || path.transport != Transport::Tls {
            return None;
        }
        let names = self.flow_certs.get(&path.flow?)?;
        let aor = Registrar::aor_of(req)?;
        let domain = req
            .to()
            .and_then(|t| t.uri.as_sip().map(|u| u.host.to_string()))
            .unwrap_or_default();
        if crate::tls::names_station(names, &aor.0, &domain) {
            return None;
        }
        info!(station = %aor.0, remote = %path.remote, "registration refused: the client certificate does not name the station");
        Some(with_warning(
            Response::for_request(req, StatusCode::FORBIDDEN, Some(tag)),
            "the client certificate does not name this station",
        ))
    }

    fn handle_registrar_event(&mut self, now: Instant, ev: RegistrarEvent) {
        let wall = SystemTime::now();
        match ev {
            RegistrarEvent::Upserted(b) => {
                debug!(aor = %b.aor.0, zone = %b.zone, source = %b.source, nat = b.nat.as_str(), "binding stored");
                if b.zone == Zone::External {
                    self.keepalive.track(now, binding_ref(&b), b.path());
                }
                if let Err(e) = self.writer.upsert(persist::to_row(&b, now, wall)) {
                    warn!(error = %e, "binding not persisted");
                }
            }
            RegistrarEvent::Removed { binding, reason } => {
                debug!(aor = %binding.aor.0, ?reason, "binding removed");
                self.keepalive.untrack(&binding_ref(&binding));
                if let Err(e) = self
                    .writer
                    .remove(binding.aor.0.clone(), binding.contact.clone())
                {
                    warn!(error = %e, "binding removal not persisted");
                }
            }
            RegistrarEvent::AuthFailed {
                aor,
                zone,
                source,
                reason,
            } => {
                Stats::bump(&self.stats.auth_failed);
                info!(%zone, ?reason, "authentication refused");
                debug!(aor = %aor.0, %source, "authentication refused (details)");
            }
        }
    }

    fn send(&mut self, t: Transmit) {
        match t.path.transport {
            Transport::Udp => {
                let Some(sock) = self.udp.get(&t.path.local) else {
                    warn!(local = %t.path.local, "no udp socket for path");
                    return;
                };
                match sock.try_send_to(&t.bytes, t.path.remote) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let sock = sock.clone();
                        tokio::spawn(async move {
                            let _ = sock.send_to(&t.bytes, t.path.remote).await;
                        });
                    }
                    Err(e) => debug!(remote = %t.path.remote, error = %e, "udp send failed"),
                }
            }
            _ => {
                let writer = t.path.flow.and_then(|f| self.flows.get(&f));
                if writer.is_none_or(|w| w.send(t.bytes).is_err()) {
                    debug!(remote = %t.path.remote, "stream flow gone; message not delivered");
                }
            }
        }
    }

    /// Sends one keepalive probe: OPTIONS over UDP (a client transaction; its answer or
    /// timeout comes back as a transaction event), CRLF CRLF on a stream flow.
    fn send_probe(&mut self, now: Instant, p: Probe) {
        match p.kind {
            ProbeKind::Ping => {
                self.send(Transmit {
                    path: p.path,
                    bytes: Bytes::from_static(b"\r\n\r\n"),
                });
            }
            ProbeKind::Options => {
                let Some(binding) = self
                    .registrar
                    .bindings(&p.binding.aor)
                    .iter()
                    .find(|b| b.key() == p.binding.key)
                else {
                    return;
                };
                let Ok(uri) = sip::Uri::parse(&binding.contact) else {
                    return;
                };
                let Some(advertised) = self.calls.config().advertised_known(&p.path) else {
                    // The public address is still being learned: an OPTIONS would have to name
                    // the office's private address in Via and From. The CRLF ping keeps the
                    // home NAT's mapping open all the same; it has no answer to wait for.
                    self.send(Transmit {
                        path: p.path,
                        bytes: Bytes::from_static(b"\r\n\r\n"),
                    });
                    self.keepalive.sent_unanswerable(&p.binding, p.seq);
                    return;
                };
                let branch = self.tx.new_branch();
                let tag = self.next_tag();
                let text = format!(
                    "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/{} {advertised};branch={branch};rport\r\n\
                     Max-Forwards: 70\r\nFrom: <sip:homeline@{advertised}>;tag={tag}\r\nTo: <{uri}>\r\n\
                     Call-ID: ka-{tag}-{branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                    p.path.transport.via_name()
                );
                let Ok(Message::Request(req)) = parse_datagram(text.as_bytes(), self.max_message)
                else {
                    warn!(aor = %p.binding.aor.0, "keepalive OPTIONS could not be built");
                    return;
                };
                let tx = self.tx.send_request(now, req, p.path);
                self.probes.insert(tx, (p.binding, p.seq));
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tags += 1;
        format!("hl{:x}", self.tags)
    }
}

fn with_warning(mut resp: Response, why: &str) -> Response {
    let why = why.replace(['"', '\\'], "'");
    resp.headers
        .push(HeaderName::Warning, format!("399 homeline \"{why}\""));
    resp
}

/// The answer to a request refused under the SIPS rules: the status RFC 5630 names and a
/// Warning saying why (warn-code 380 "SIPS Not Allowed" where it applies).
fn sips_refusal(req: &Request, why: sip_proto::sips::SipsRefusal, tag: &str) -> Response {
    let mut resp = Response::for_request(req, why.status(), Some(tag));
    resp.headers
        .push(HeaderName::Warning, why.warning("homeline"));
    resp
}

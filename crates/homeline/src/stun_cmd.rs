//! `homeline stun-server` and `homeline nat`: tokio drivers for the `stun` crate's cores.
//!
//! Each driver is the only code that reads the clock and touches sockets; after every input it
//! drains the core's datagrams before waiting again (STYLE.md §2).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::{
    BindingClient, ClientConfig, ClientEvent, NatProbe, ProbeConfig, ServerConfig, StunServer,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::cli::{NatCommand, StunTarget};

/// Largest datagram read; STUN over UDP stays far below (RFC 8489 §6.1: path MTU).
pub(crate) const MAX_DATAGRAM: usize = 2048;

/// Runs the STUN server until interrupted.
pub(crate) async fn server(
    listen: SocketAddr,
    alternate: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut core = StunServer::new(ServerConfig::new(listen, alternate))?;
    let (tx, mut rx) = mpsc::channel::<(SocketAddr, SocketAddr, Vec<u8>)>(1024);
    let mut sockets = HashMap::new();
    for &addr in core.sockets() {
        let socket = Arc::new(
            UdpSocket::bind(addr)
                .await
                .with_context(|| format!("cannot listen on udp {addr}"))?,
        );
        println!("stun-server listening on udp {}", socket.local_addr()?);
        // One reader per socket; the core runs on this task alone, so it needs no lock.
        let (reader, tx) = (socket.clone(), tx.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                match reader.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        if tx.send((addr, from, buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                    // ICMP errors surface here on some systems; the socket stays usable.
                    Err(e) => tracing::debug!("stun recv on {addr}: {e}"),
                }
            }
        });
        sockets.insert(addr, socket);
    }
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some((local, from, bytes)) = rx.recv() => {
                core.handle_input(local, from, &bytes);
                while let Some(t) = core.poll_transmit() {
                    if let Some(socket) = sockets.get(&t.from) {
                        if let Err(e) = socket.send_to(&t.bytes, t.to).await {
                            tracing::debug!("stun send {} -> {}: {e}", t.from, t.to);
                        }
                    }
                }
            }
            _ = &mut shutdown => break,
        }
    }
    let s = core.stats();
    println!(
        "stun-server stopped: {} answered ({} RFC 3489), {} errors, {} dropped",
        s.answered, s.rfc3489, s.errors, s.dropped
    );
    Ok(())
}

/// `homeline nat ...`.
pub(crate) async fn nat(command: &NatCommand) -> anyhow::Result<()> {
    match command {
        NatCommand::Detect { target } => detect(target).await,
        NatCommand::Mapped { target } => mapped(target).await,
    }
}

/// Resolves HOST:PORT names; IPv4 first, as most STUN deployments are.
pub(crate) async fn resolve(servers: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for s in servers {
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host(s)
            .await
            .with_context(|| format!("cannot resolve STUN server {s} (HOST:PORT)"))?
            .collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        out.push(
            *addrs
                .first()
                .with_context(|| format!("{s} has no address"))?,
        );
    }
    Ok(out)
}

/// Binds the socket to test. Its IP must be the real interface address: the probe decides
/// "no NAT" by comparing it with what the server saw, so a wildcard is replaced by the address
/// the system routes toward the first server.
pub(crate) async fn bind_local(
    local: Option<SocketAddr>,
    first: SocketAddr,
) -> anyhow::Result<UdpSocket> {
    let wildcard = match first {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let want = local.unwrap_or(SocketAddr::new(wildcard, 0));
    let ip = if want.ip().is_unspecified() {
        // connect() on UDP sends nothing; it only asks the routing table for a source address.
        let route = std::net::UdpSocket::bind(SocketAddr::new(wildcard, 0))?;
        route
            .connect(first)
            .with_context(|| format!("no route to {first}"))?;
        route.local_addr()?.ip()
    } else {
        want.ip()
    };
    let addr = SocketAddr::new(ip, want.port());
    UdpSocket::bind(addr)
        .await
        .with_context(|| format!("cannot bind udp {addr}"))
}

async fn detect(target: &StunTarget) -> anyhow::Result<()> {
    print!("{}", probe(&target.servers, target.local).await?);
    Ok(())
}

/// One RFC 5780 probe against `names` from a socket on `local` (any address when `None`).
pub(crate) async fn probe(
    names: &[String],
    local: Option<SocketAddr>,
) -> anyhow::Result<stun::NatReport> {
    let servers = resolve(names).await?;
    let socket = bind_local(local, servers[0]).await?;
    let mut probe = NatProbe::new(
        ProbeConfig::new(servers),
        socket.local_addr()?,
        StdRng::from_entropy(),
        Instant::now(),
    );
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if let Some(report) = probe.report() {
            return Ok(report.clone());
        }
        exchange(&mut probe, &socket, &mut buf).await;
    }
}

/// A sans-IO STUN core as the tokio drivers run it (the binding client and the NAT probe).
pub(crate) trait StunCore {
    /// The next datagram to send.
    fn poll_transmit(&mut self) -> Option<stun::Transmit>;
    /// A datagram arrived.
    fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// When to call `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
}

impl<R: rand::RngCore> StunCore for BindingClient<R> {
    fn poll_transmit(&mut self) -> Option<stun::Transmit> {
        BindingClient::poll_transmit(self)
    }
    fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        BindingClient::handle_input(self, now, from, bytes);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        BindingClient::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        BindingClient::handle_timeout(self, now)
    }
}

impl<R: rand::RngCore> StunCore for NatProbe<R> {
    fn poll_transmit(&mut self) -> Option<stun::Transmit> {
        NatProbe::poll_transmit(self)
    }
    fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        NatProbe::handle_input(self, now, from, bytes);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        NatProbe::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        NatProbe::handle_timeout(self, now)
    }
}

/// One turn of a STUN core's drive loop: sends what it has to send, then feeds it the next
/// datagram or its timer, whichever comes first.
pub(crate) async fn exchange(core: &mut impl StunCore, socket: &UdpSocket, buf: &mut [u8]) {
    while let Some(t) = core.poll_transmit() {
        // A send error (e.g. a local firewall) is a lost request to the core.
        if let Err(e) = socket.send_to(&t.bytes, t.to).await {
            tracing::debug!("stun send to {}: {e}", t.to);
        }
    }
    let wake = core
        .poll_timeout()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
    tokio::select! {
        r = socket.recv_from(buf) => {
            if let Ok((n, from)) = r {
                core.handle_input(Instant::now(), from, &buf[..n]);
            }
        }
        _ = tokio::time::sleep_until(wake.into()) => core.handle_timeout(Instant::now()),
    }
}

/// [`exchange`] through an external SIP listener's socket ([`net::ListenerStun`]): the
/// listener's receive task hands over the STUN responses that arrive on it. False once the
/// listener has stopped.
pub(crate) async fn exchange_listener(
    core: &mut impl StunCore,
    listener: &mut net::ListenerStun,
) -> bool {
    while let Some(t) = core.poll_transmit() {
        if let Err(e) = listener.send_to(&t.bytes, t.to).await {
            tracing::debug!("stun send to {} from the SIP listener: {e}", t.to);
        }
    }
    let wake = core
        .poll_timeout()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
    tokio::select! {
        r = listener.recv() => match r {
            Some((from, bytes)) => core.handle_input(Instant::now(), from, &bytes),
            None => return false,
        },
        _ = tokio::time::sleep_until(wake.into()) => core.handle_timeout(Instant::now()),
    }
    true
}

/// The servers of `local`'s address family: a socket cannot reach the others.
pub(crate) fn same_family(
    servers: &[SocketAddr],
    local: IpAddr,
) -> anyhow::Result<Vec<SocketAddr>> {
    let same: Vec<SocketAddr> = servers
        .iter()
        .filter(|s| s.is_ipv4() == local.is_ipv4())
        .copied()
        .collect();
    if same.is_empty() {
        bail!(
            "no STUN server of {local}'s address family among {}",
            servers
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(same)
}

async fn mapped(target: &StunTarget) -> anyhow::Result<()> {
    let servers = resolve(&target.servers).await?;
    let socket = bind_local(target.local, servers[0]).await?;
    match first_mapping(&socket, ClientConfig::new(servers)).await {
        Ok((server, local, mapped)) => {
            println!("mapped {local} -> {mapped} (server {server})");
            Ok(())
        }
        Err(failures) => {
            for why in failures {
                eprintln!("{why}");
            }
            bail!("no STUN server gave a mapping")
        }
    }
}

/// Asks `config`'s servers in order about `socket` until one answers: that server, the
/// socket's local address and its mapping; or why each server failed.
pub(crate) async fn first_mapping(
    socket: &UdpSocket,
    config: ClientConfig,
) -> Result<(SocketAddr, SocketAddr, SocketAddr), Vec<String>> {
    let local = socket
        .local_addr()
        .map_err(|e| vec![format!("STUN socket: {e}")])?;
    let count = config.servers.len();
    let mut client = BindingClient::new(config, local, StdRng::from_entropy(), Instant::now())
        .map_err(|e| vec![e.to_string()])?;
    let mut failures = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        exchange(&mut client, socket, &mut buf).await;
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::Mapped { server, mapped, .. } => return Ok((server, local, mapped)),
                ClientEvent::Failed { server, why } => {
                    failures.push(format!("STUN server {server}: {why}"));
                    if failures.len() >= count {
                        return Err(failures);
                    }
                }
                // Only a refresh reports a change; this stops at the first mapping.
                _ => {}
            }
        }
    }
}

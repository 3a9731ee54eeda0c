//! UDP listeners: one receive task per socket feeding the core.
//!
//! STUN shares the SIP port (RFC 7983 §7 tells them apart by the first byte): Binding
//! requests, RFC 5626 §4.4.1 keepalives of phones using outbound, are answered here without
//! reaching the core, and Binding responses go to whoever learns the listener's public mapping
//! ([`ListenerStun`]), so the mapping learned is the listener's own.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use policy::Zone;
use sip_proto::path::{Path, Transport};
use stun::{Demux, ServerConfig, StunServer};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::Inbound;

/// Binding responses queued for the learner before the listener drops them: the learner has
/// one request in flight, so more than a few waiting means nobody reads them.
const STUN_QUEUE: usize = 16;

/// STUN through one UDP listener's own socket: requests go out from the listener's address
/// and port, and the Binding responses that arrive there come back here (the SIP core never
/// sees them). Taken from the server once ([`crate::ServerHandle::take_listener_stun`]).
#[derive(Debug)]
pub struct ListenerStun {
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    responses: mpsc::Receiver<(SocketAddr, Bytes)>,
}

impl ListenerStun {
    /// The listener's address (as bound: a wildcard stays a wildcard).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one datagram from the listener's socket.
    pub async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<()> {
        self.socket.send_to(bytes, to).await.map(|_| ())
    }

    /// The next STUN response that arrived on the listener, and where from; `None` once the
    /// listener has stopped.
    pub async fn recv(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.responses.recv().await
    }
}

/// A listener's STUN side: the handle for the learner and the sender its receive task keeps.
pub(crate) fn listener_stun(
    local: SocketAddr,
    socket: Arc<UdpSocket>,
) -> (ListenerStun, mpsc::Sender<(SocketAddr, Bytes)>) {
    let (tx, responses) = mpsc::channel(STUN_QUEUE);
    (
        ListenerStun {
            local,
            socket,
            responses,
        },
        tx,
    )
}

/// Binds a UDP socket with large buffers (registration bursts arrive faster than one wake-up).
pub(crate) fn bind(addr: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // The kernel may clamp these; a smaller buffer is not an error.
    let _ = sock.set_recv_buffer_size(buffer);
    let _ = sock.set_send_buffer_size(buffer);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Receives datagrams until the core goes away. STUN responses go to `stun_responses` (dropped
/// when there is none, or it is full), STUN requests are answered from this socket.
pub(crate) async fn recv_loop(
    sock: Arc<UdpSocket>,
    zone: Zone,
    to_core: mpsc::Sender<Inbound>,
    stun_responses: Option<mpsc::Sender<(SocketAddr, Bytes)>>,
) {
    let local = match sock.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "udp listener has no local address");
            return;
        }
    };
    // A plain binding server on this socket: without an alternate address the configuration
    // cannot be refused.
    // No SOFTWARE: the version is nobody's business on the external zone, and the answer
    // stays small (an unauthenticated port should not amplify).
    let mut stun_server = StunServer::new(ServerConfig {
        software: String::new(),
        ..ServerConfig::new(local, None)
    })
    .ok();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, remote) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems; keep listening.
            Err(_) => continue,
        };
        let bytes = &buf[..n];
        match stun::demux(bytes) {
            // A malformed one reaches the SIP parser, which counts it as dropped.
            Demux::Other | Demux::Malformed => {}
            // Only RFC 5389+ requests (magic cookie), as RFC 5626 §4.4.1 keepalives are: an
            // RFC 3489 answer carries SOURCE-ADDRESS, the listener's own (private) address.
            Demux::Request if !stun::has_magic_cookie(bytes) => continue,
            Demux::Request => {
                if let Some(server) = stun_server.as_mut() {
                    server.handle_input(local, remote, bytes);
                    while let Some(t) = server.poll_transmit() {
                        if let Err(e) = sock.send_to(&t.bytes, t.to).await {
                            debug!(to = %t.to, error = %e, "STUN answer not sent");
                        }
                    }
                }
                continue;
            }
            Demux::Response => {
                if let Some(tx) = &stun_responses {
                    // Full or closed: the learner will retransmit or has gone.
                    let _ = tx.try_send((remote, Bytes::copy_from_slice(bytes)));
                }
                continue;
            }
            Demux::Indication => continue,
        }
        let path = Path {
            local,
            remote,
            transport: Transport::Udp,
            zone,
            flow: None,
        };
        let item = Inbound::Datagram {
            path,
            bytes: Bytes::copy_from_slice(bytes),
        };
        if to_core.send(item).await.is_err() {
            return;
        }
    }
}

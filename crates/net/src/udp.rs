//! UDP listeners: one receive task per socket feeding the core.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use policy::Zone;
use sip_proto::path::{Path, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::warn;

use crate::Inbound;

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

/// Receives datagrams until the core goes away.
pub(crate) async fn recv_loop(sock: Arc<UdpSocket>, zone: Zone, to_core: mpsc::Sender<Inbound>) {
    let local = match sock.local_addr() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "udp listener has no local address");
            return;
        }
    };
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, remote) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems; keep listening.
            Err(_) => continue,
        };
        let path = Path {
            local,
            remote,
            transport: Transport::Udp,
            zone,
            flow: None,
        };
        let item = Inbound::Datagram {
            path,
            bytes: Bytes::copy_from_slice(&buf[..n]),
        };
        if to_core.send(item).await.is_err() {
            return;
        }
    }
}

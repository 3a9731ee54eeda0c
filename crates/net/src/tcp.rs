//! Stream listeners and connections, TCP and TLS alike: Content-Length framing (RFC 3261
//! §18.3), CRLF keepalives (RFC 5626 §3.5.1), and a writer per connection so requests reach a
//! device over *its* flow. A TLS connection is a TCP one with a handshake first (RFC 3261
//! §26.3.1); from then on the same code reads and writes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use policy::Zone;
use sip::{frame, Frame, Response};
use sip_proto::path::{FlowId, Path, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::stats::Stats;
use crate::tls::TlsServer;
use crate::Inbound;

static NEXT_FLOW: AtomicU64 = AtomicU64::new(1);

/// Read buffer of a connection: small, because most connections are idle phones; grown while
/// a large message arrives and given back once it is handled.
const READ_CHUNK: usize = 2048;
/// A buffer larger than this is dropped once empty.
const KEEP_BUFFER: usize = 16 * 1024;

/// What every connection of one listener shares.
#[derive(Clone)]
pub(crate) struct Listener {
    pub(crate) zone: Zone,
    pub(crate) max_message: usize,
    pub(crate) to_core: mpsc::Sender<Inbound>,
    pub(crate) stats: Arc<Stats>,
    /// `Some`: a TLS listener.
    pub(crate) tls: Option<TlsServer>,
}

/// Accepts connections until the core goes away.
pub(crate) async fn accept_loop(listener: TcpListener, l: Listener) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        if l.to_core.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let flow = FlowId(NEXT_FLOW.fetch_add(1, Ordering::Relaxed));
        let path = Path {
            local,
            remote,
            transport: if l.tls.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            },
            zone: l.zone,
            flow: Some(flow),
        };
        match l.tls.clone() {
            None => {
                tokio::spawn(connection(stream, path, None, l.clone()));
            }
            Some(tls) => {
                tokio::spawn(handshake(stream, path, tls, l.clone()));
            }
        }
    }
}

/// The server side of a TLS handshake, bounded in time (a peer that never finishes it must
/// not hold a task and a descriptor), then the connection.
async fn handshake(stream: TcpStream, path: Path, tls: TlsServer, l: Listener) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let stream = match tokio::time::timeout(tls.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            Stats::bump(&l.stats.tls_handshake_failed);
            debug!(remote = %path.remote, error = %e, "tls handshake failed");
            return;
        }
        Err(_) => {
            Stats::bump(&l.stats.tls_handshake_failed);
            debug!(remote = %path.remote, "tls handshake timed out");
            return;
        }
    };
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|leaf| Arc::<[String]>::from(crate::tls::peer_names(leaf)));
    connection(stream, path, peer, l).await;
}

/// Reads framed messages and writes what the core sends, until either side closes.
async fn connection<S>(stream: S, path: Path, peer: Option<Arc<[String]>>, l: Listener)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Some(flow) = path.flow else { return };
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if l.to_core
        .send(Inbound::FlowOpened {
            flow,
            writer: tx.clone(),
            peer,
        })
        .await
        .is_err()
    {
        return;
    }
    let tls = path.transport == Transport::Tls;
    l.stats.flows.fetch_add(1, Ordering::Relaxed);
    if tls {
        l.stats.tls_flows.fetch_add(1, Ordering::Relaxed);
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::new();
    let reason = 'conn: loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            out = rx.recv() => {
                let Some(bytes) = out else { break 'conn "writer closed" };
                // TLS buffers records until flushed; on TCP flushing is free.
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    break 'conn "write failed";
                }
            }
            n = rd.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => break 'conn "peer closed",
                    Ok(_) => {}
                }
                loop {
                    match frame(&buf, l.max_message) {
                        Ok(Frame::Incomplete) => break,
                        Ok(Frame::Keepalive { len, ping }) => {
                            let _ = buf.split_to(len);
                            if ping && (wr.write_all(b"\r\n").await.is_err() || wr.flush().await.is_err()) {
                                break 'conn "write failed";
                            }
                        }
                        Ok(Frame::Message(len)) => {
                            let bytes = buf.split_to(len).freeze();
                            if l.to_core.send(Inbound::Stream { path, bytes }).await.is_err() {
                                break 'conn "core gone";
                            }
                        }
                        Err(e) => {
                            // The stream cannot be resynchronised: answer if we can, then close.
                            Stats::bump(&l.stats.dropped);
                            if let (Some(status), Some(h)) = (e.status(), e.headers.as_ref()) {
                                let resp = Response::from_headers(h, status, None);
                                let _ = wr.write_all(&resp.to_bytes()).await;
                                let _ = wr.flush().await;
                            }
                            break 'conn "framing error";
                        }
                    }
                }
                if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
                    buf = BytesMut::new();
                }
            }
        }
    };
    if tls {
        // close_notify, so the peer sees an orderly end (RFC 8446 §6.1); bounded, the peer
        // may be gone.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wr.shutdown()).await;
        l.stats.tls_flows.fetch_sub(1, Ordering::Relaxed);
    }
    debug!(flow = flow.0, remote = %path.remote, transport = %path.transport, reason, "stream connection closed");
    l.stats.flows.fetch_sub(1, Ordering::Relaxed);
    let _ = l.to_core.send(Inbound::FlowClosed { flow }).await;
}

//! TCP listeners and connections: Content-Length framing (RFC 3261 §18.3), CRLF keepalives
//! (RFC 5626 §3.5.1), and a writer per connection so requests reach a device over *its* flow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use policy::Zone;
use sip::{frame, Frame, Response};
use sip_proto::path::{FlowId, Path, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::stats::Stats;
use crate::Inbound;

static NEXT_FLOW: AtomicU64 = AtomicU64::new(1);

/// Accepts connections until the core goes away.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    zone: Zone,
    max_message: usize,
    to_core: mpsc::Sender<Inbound>,
    stats: Arc<Stats>,
) {
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
        if to_core.is_closed() {
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
            transport: Transport::Tcp,
            zone,
            flow: Some(flow),
        };
        tokio::spawn(connection(
            stream,
            path,
            max_message,
            to_core.clone(),
            stats.clone(),
        ));
    }
}

async fn connection(
    stream: TcpStream,
    path: Path,
    max_message: usize,
    to_core: mpsc::Sender<Inbound>,
    stats: Arc<Stats>,
) {
    let Some(flow) = path.flow else { return };
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    if to_core
        .send(Inbound::FlowOpened {
            flow,
            writer: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    stats.flows.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(8192);
    let reason = 'conn: loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(bytes) = out else { break 'conn "writer closed" };
                if wr.write_all(&bytes).await.is_err() {
                    break 'conn "write failed";
                }
            }
            n = rd.read_buf(&mut buf) => {
                match n {
                    Ok(0) | Err(_) => break 'conn "peer closed",
                    Ok(_) => {}
                }
                loop {
                    match frame(&buf, max_message) {
                        Ok(Frame::Incomplete) => break,
                        Ok(Frame::Keepalive { len, ping }) => {
                            let _ = buf.split_to(len);
                            if ping && wr.write_all(b"\r\n").await.is_err() {
                                break 'conn "write failed";
                            }
                        }
                        Ok(Frame::Message(len)) => {
                            let bytes = buf.split_to(len).freeze();
                            if to_core.send(Inbound::Stream { path, bytes }).await.is_err() {
                                break 'conn "core gone";
                            }
                        }
                        Err(e) => {
                            // The stream cannot be resynchronised: answer if we can, then close.
                            Stats::bump(&stats.dropped);
                            if let (Some(status), Some(h)) = (e.status(), e.headers.as_ref()) {
                                let resp = Response::from_headers(h, status, None);
                                let _ = wr.write_all(&resp.to_bytes()).await;
                            }
                            break 'conn "framing error";
                        }
                    }
                }
            }
        }
    };
    debug!(flow = flow.0, remote = %path.remote, reason, "tcp connection closed");
    stats.flows.fetch_sub(1, Ordering::Relaxed);
    let _ = to_core.send(Inbound::FlowClosed { flow }).await;
}

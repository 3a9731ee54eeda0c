//! The control socket: a Unix socket in the data folder (`control.sock`, mode 0600) where
//! `homeline status` reads the running server's live state.
//!
//! The protocol is one line each way: the client sends `status\n`, the server answers one JSON
//! document ([`Status`]) followed by a newline and closes. Anything else is answered with
//! `{"error": "..."}`. The task reads only [`Stats`] and what was fixed at start (listeners), so
//! it never waits for the core and a slow client cannot slow a call down.
//!
//! Who may connect is decided by the file mode (0600: the user the server runs as, and root),
//! which is why the socket lives on the file system and not on a TCP port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use policy::Zone;
use serde::{Deserialize, Serialize};
use sip_proto::path::Transport;
use tracing::{debug, info, warn};

use crate::config::NetConfig;
use crate::stats::Stats;

/// Name of the socket file inside the data folder.
pub const SOCKET_FILE: &str = "control.sock";
/// The one request understood today.
pub const STATUS_REQUEST: &str = "status";
/// Longest request line read, octets; a longer one is refused (a client that is not ours).
const MAX_REQUEST: usize = 256;
/// A client that has not sent its line by then is disconnected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The server's live state, as sent on the control socket. The CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// homeline's version (the `net` crate's, which is the workspace's).
    pub version: String,
    /// Process id of the server.
    pub pid: u32,
    /// Every bound SIP listener.
    pub listeners: Vec<Listener>,
    /// Registrar bindings held (registered contacts).
    pub bindings: u64,
    /// Stream (TCP and TLS) connections open.
    pub flows: u64,
    /// TLS connections open, TLS handshakes failed, and the certificate presented.
    #[serde(default)]
    pub tls: Option<TlsStatus>,
    /// Calls in progress.
    pub calls_active: u64,
    /// The RTP relay's channel pool.
    pub relay: RelayStatus,
    /// Simultaneous Internet calls.
    pub internet_calls: InternetCalls,
    /// Calls refused before ringing, per limit.
    pub refused: Refused,
    /// SIP message counters since start.
    pub messages: Messages,
    /// Remote (external-zone) registrations with their health: source, NAT, last seen,
    /// unanswered keepalives.
    #[serde(default)]
    pub remote_bindings: Vec<crate::stats::RemoteBinding>,
    /// The office's public address, its source, the last error learning it, and the NAT type.
    #[serde(default)]
    pub public_address: crate::stats::PublicAddress,
}

/// SIP over TLS as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsStatus {
    /// TLS connections open.
    pub connections: u64,
    /// Handshakes that failed or timed out since start.
    pub handshakes_failed: u64,
    /// The certificate new handshakes get.
    pub certificate: crate::tls::CertificateInfo,
}

/// One SIP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// "internal" or "external".
    pub zone: String,
    /// "udp", "tcp" or "tls".
    pub transport: String,
    /// The bound address.
    pub addr: SocketAddr,
}

/// The relay's channels and traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// Channels in the pool (0: no relay).
    pub capacity: u64,
    /// Channels allocated now.
    pub in_use: u64,
    /// RTP and RTCP packets forwarded.
    pub packets: u64,
    /// Octets forwarded.
    pub bytes: u64,
    /// SRTP/SRTCP packets dropped because they failed authentication.
    #[serde(default)]
    pub srtp_auth_failures: u64,
    /// SRTP/SRTCP replays dropped (RFC 3711 §3.3.2).
    #[serde(default)]
    pub srtp_replays: u64,
}

/// The simultaneous-Internet-calls limit and its use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternetCalls {
    /// The limit in force; `None`: only the channel pool limits.
    pub limit: Option<u64>,
    /// Internet calls in progress.
    pub in_use: u64,
}

/// Calls refused, per limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Because every relay channel was in use.
    pub pool: u64,
    /// Because the Internet-call limit was reached.
    pub internet_calls: u64,
}

/// SIP message counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Messages {
    /// Messages received.
    pub received: u64,
    /// Messages dropped (unparseable, unanswerable).
    pub dropped: u64,
    /// Requests answered 400/505/513 before a transaction.
    pub rejected: u64,
    /// REGISTERs answered 200.
    pub registered: u64,
    /// REGISTERs answered 403.
    pub auth_failed: u64,
}

impl Status {
    /// Reads the counters now.
    pub fn collect(stats: &Stats, listeners: &[(Zone, Transport, SocketAddr)]) -> Status {
        let r = Stats::read;
        let limit = r(&stats.internet_limit);
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            listeners: listeners
                .iter()
                .map(|(zone, transport, addr)| Listener {
                    zone: zone.to_string(),
                    transport: transport.to_string(),
                    addr: *addr,
                })
                .collect(),
            bindings: r(&stats.bindings),
            flows: r(&stats.flows),
            tls: stats
                .tls_certificate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|certificate| TlsStatus {
                    connections: r(&stats.tls_flows),
                    handshakes_failed: r(&stats.tls_handshake_failed),
                    certificate,
                }),
            calls_active: r(&stats.calls_active),
            relay: RelayStatus {
                capacity: r(&stats.relay_capacity),
                in_use: r(&stats.relay_in_use),
                packets: r(&stats.relay_packets),
                bytes: r(&stats.relay_bytes),
                srtp_auth_failures: r(&stats.relay_srtp_auth_failures),
                srtp_replays: r(&stats.relay_srtp_replays),
            },
            internet_calls: InternetCalls {
                limit: (limit > 0).then_some(limit),
                in_use: r(&stats.internet_in_use),
            },
            refused: Refused {
                pool: r(&stats.refused_pool),
                internet_calls: r(&stats.refused_internet),
            },
            messages: Messages {
                received: r(&stats.received),
                dropped: r(&stats.dropped),
                rejected: r(&stats.rejected),
                registered: r(&stats.registered),
                auth_failed: r(&stats.auth_failed),
            },
            remote_bindings: stats
                .remote_bindings
                .lock()
                .map(|b| b.clone())
                .unwrap_or_default(),
            public_address: stats
                .public_address
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default(),
        }
    }
}

/// Fills the configured relay figures into `stats` (unless the core already did) and, when
/// `config.control_socket` is set, binds the socket and serves it on a task of its own.
///
/// Never fails the start: a server without a status socket still carries calls, so a problem
/// (a path too long for a Unix socket, a read-only folder) is logged as a warning.
pub fn spawn(config: &NetConfig, stats: Arc<Stats>, listeners: Vec<(Zone, Transport, SocketAddr)>) {
    let relay = &config.media.relay;
    Stats::fill_if_unset(&stats.relay_capacity, u64::from(relay.channels()));
    if let Some(limit) = relay.internet_calls {
        // The limit can never be reached above the pool: each Internet call takes a channel.
        let limit = limit.min(relay.channels());
        Stats::fill_if_unset(&stats.internet_limit, u64::from(limit));
    }
    let Some(path) = config.control_socket.clone() else {
        return;
    };
    #[cfg(unix)]
    match unix::bind(&path) {
        Ok(listener) => {
            info!(path = %path.display(), "control socket ready");
            tokio::spawn(unix::serve(listener, path, stats, listeners));
        }
        Err(e) => warn!(
            path = %path.display(),
            error = %e,
            "cannot open the control socket: `homeline status` will not reach this server"
        ),
    }
    #[cfg(not(unix))]
    {
        let _ = (stats, listeners);
        warn!(path = %path.display(), "no control socket on this platform");
    }
}

/// The answer to one request line.
pub fn answer(request: &str, stats: &Stats, listeners: &[(Zone, Transport, SocketAddr)]) -> String {
    let mut text = match request.trim() {
        STATUS_REQUEST => serde_json::to_string(&Status::collect(stats, listeners)),
        other => serde_json::to_string(&serde_json::json!({
            "error": format!("unknown command {other:?}; known: {STATUS_REQUEST}")
        })),
    }
    // Serializing plain structs of numbers and strings cannot fail.
    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

/// The control socket path for a data folder.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::unix::fs::PermissionsExt;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    use super::*;

    /// Removes the socket file when the serving task ends (runtime shut down).
    struct RemoveOnDrop(PathBuf);

    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Binds `path` with mode 0600. A socket left by a server that died is replaced; a live one
    /// (another server on the same data folder) is an error.
    pub(super) fn bind(path: &Path) -> io::Result<UnixListener> {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another server answers on this control socket",
            ));
        }
        // Bound under a temporary name, restricted, then renamed over the final path: nobody
        // can connect while the mode is still the umask's, and a stale file is replaced at once.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(listener)
    }

    /// Accepts clients until the runtime stops; each is answered on its own task.
    pub(super) async fn serve(
        listener: UnixListener,
        path: PathBuf,
        stats: Arc<Stats>,
        listeners: Vec<(Zone, Transport, SocketAddr)>,
    ) {
        let _remove = RemoveOnDrop(path);
        let listeners = Arc::new(listeners);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (stats, listeners) = (stats.clone(), listeners.clone());
            tokio::spawn(async move {
                if let Err(e) = handle(stream, &stats, &listeners).await {
                    debug!(error = %e, "control client");
                }
            });
        }
    }

    async fn handle(
        mut stream: UnixStream,
        stats: &Stats,
        listeners: &[(Zone, Transport, SocketAddr)],
    ) -> io::Result<()> {
        let line = tokio::time::timeout(REQUEST_TIMEOUT, read_line(&mut stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request line"))??;
        stream
            .write_all(answer(&line, stats, listeners).as_bytes())
            .await?;
        stream.shutdown().await
    }

    /// Reads up to the first newline (or the end of the stream), at most [`MAX_REQUEST`] octets.
    async fn read_line(stream: &mut UnixStream) -> io::Result<String> {
        let mut buf = Vec::with_capacity(32);
        let mut byte = [0u8; 64];
        loop {
            let n = stream.read(&mut byte).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&byte[..n]);
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                buf.truncate(end);
                break;
            }
            if buf.len() > MAX_REQUEST {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request line too long",
                ));
            }
        }
        String::from_utf8(buf).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn listeners() -> Vec<(Zone, Transport, SocketAddr)> {
        vec![(
            Zone::External,
            Transport::Udp,
            "192.168.1.10:5062".parse().expect("addr"),
        )]
    }

    #[test]
    fn status_document_carries_every_counter() {
        let stats = Stats::default();
        stats.calls_active.store(3, Ordering::Relaxed);
        stats.relay_in_use.store(4, Ordering::Relaxed);
        stats.refused_internet.store(1, Ordering::Relaxed);
        stats.relay_packets.store(1000, Ordering::Relaxed);
        let text = answer("status\n", &stats, &listeners());
        assert!(text.ends_with('\n'));
        let status: Status = serde_json::from_str(&text).expect("json");
        assert_eq!(status.calls_active, 3);
        assert_eq!(status.relay.in_use, 4);
        assert_eq!(status.refused.internet_calls, 1);
        assert_eq!(status.relay.packets, 1000);
        assert_eq!(status.internet_calls.limit, None, "0 means no limit");
        assert_eq!(status.listeners[0].zone, "external");
        assert_eq!(status.listeners[0].transport, "udp");
    }

    #[test]
    fn unknown_command_is_an_error_document() {
        let text = answer("reboot", &Stats::default(), &[]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(v["error"].as_str().expect("error").contains("reboot"));
    }

    #[test]
    fn configured_limits_are_filled_without_overwriting_the_core() {
        let mut config = NetConfig::default();
        config.media.relay.ports = 40000..=40007; // 4 channels
        config.media.relay.internet_calls = Some(9);
        let stats = Arc::new(Stats::default());
        spawn(&config, stats.clone(), Vec::new());
        assert_eq!(Stats::read(&stats.relay_capacity), 4);
        assert_eq!(Stats::read(&stats.internet_limit), 4, "lowered to the pool");
        let stats = Arc::new(Stats::default());
        stats.relay_capacity.store(2, Ordering::Relaxed);
        spawn(&config, stats.clone(), Vec::new());
        assert_eq!(Stats::read(&stats.relay_capacity), 2);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn socket_answers_status_with_mode_0600_and_replaces_a_stale_file() {
        use std::os::unix::fs::PermissionsExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = std::env::temp_dir().join(format!("homeline-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = socket_path(&dir);
        std::fs::write(&path, b"stale").expect("stale file");
        let config = NetConfig {
            control_socket: Some(path.clone()),
            ..NetConfig::default()
        };
        let stats = Arc::new(Stats::default());
        stats.bindings.store(7, Ordering::Relaxed);
        spawn(&config, stats, listeners());
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut client = tokio::net::UnixStream::connect(&path)
            .await
            .expect("connect");
        client.write_all(b"status\n").await.expect("send");
        let mut text = String::new();
        client.read_to_string(&mut text).await.expect("read");
        let status: Status = serde_json::from_str(&text).expect("json");
        assert_eq!(status.bindings, 7);
        assert_eq!(status.relay.capacity, 500);
        // A second server on the same folder does not steal the socket.
        assert!(unix::bind(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Test harness: runs the real `homeline` binary on loopback with a private data folder, and a
//! small SIP client for assertions on the wire.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each test file uses its own part of the harness
pub mod baresip;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sip::digest::{self, Algorithm};
use sip::header::AuthParams;
use sip::{parse_datagram, HeaderAccess, HeaderName, Message, Response};

pub const BIN: &str = env!("CARGO_BIN_EXE_homeline");

/// A data folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "homeline-test-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        % 1_000_000_007
}

/// A free loopback port for both UDP and TCP (best effort: checked, then released).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Runs `homeline` with `args` on `data`, returning stdout; panics with stderr on failure.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "homeline {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// TLS listeners on ports the kernel picks, unless `extra` has a `[tls]` section of its own:
/// servers of tests running at the same time must not all take the default 5061/5063.
pub fn tls_ports(extra: &str) -> &'static str {
    if extra.contains("[tls]") {
        ""
    } else {
        "[tls]\ninternal_port = 0\nexternal_port = 0\n"
    }
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub internal: SocketAddr,
    pub external: SocketAddr,
    pub log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `homeline serve` with listeners on free loopback ports and waits until it is ready.
    pub fn start(data: &Path) -> Server {
        let internal: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let external: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Self::start_on(data, internal, external)
    }

    pub fn start_on(data: &Path, internal: SocketAddr, external: SocketAddr) -> Server {
        Self::start_with(data, internal, external, "")
    }

    /// Like [`Server::start_on`], with `extra` appended to the configuration file.
    pub fn start_with(
        data: &Path,
        internal: SocketAddr,
        external: SocketAddr,
        extra: &str,
    ) -> Server {
        Self::start_configured(data, internal, external, "", extra)
    }

    /// Like [`Server::start_with`], with `sip` added to the `[sip]` section.
    pub fn start_configured(
        data: &Path,
        internal: SocketAddr,
        external: SocketAddr,
        sip: &str,
        extra: &str,
    ) -> Server {
        let config = data.join("test.toml");
        std::fs::write(
            &config,
            format!("[sip]\ninternal = [\"{internal}\"]\nexternal = [\"{external}\"]\n{sip}[log]\nlevel = \"info\"\n{}{extra}", tls_ports(extra)),
        )
        .unwrap();
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("homeline ready") => break,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("homeline did not become ready");
                }
            }
        }
        Server {
            child,
            internal,
            external,
            log: rx,
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every log line so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The test failed: what the server said (not consumed by the test) helps.
            std::thread::sleep(Duration::from_millis(100));
            let log = self.drain_log();
            eprintln!(
                "===== homeline log (last {} lines) =====\n{}\n===== end of homeline log =====",
                log.len().min(200),
                log[log.len().saturating_sub(200)..].join("\n")
            );
        }
    }
}

/// A minimal UDP SIP user agent for registrations.
pub struct Ua {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    cseq: u32,
    call_id: String,
}

impl Ua {
    pub fn new(server: SocketAddr) -> Ua {
        Self::bound(server, 0)
    }

    /// A UA on a chosen loopback port: registering from the port a SIPp instance will use
    /// later makes the external zone (which answers the observed source) reach that SIPp.
    pub fn bound(server: SocketAddr, port: u16) -> Ua {
        let sock = UdpSocket::bind(if server.is_ipv6() {
            format!("[::1]:{port}")
        } else {
            format!("127.0.0.1:{port}")
        })
        .unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Ua {
            sock,
            server,
            cseq: 0,
            call_id: format!("ua-{}", rand_suffix()),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends a REGISTER (optionally with an Authorization line) and returns the response.
    pub fn register(
        &mut self,
        user: &str,
        contact: Option<&str>,
        expires: Option<u32>,
        auth: Option<&str>,
    ) -> Response {
        self.cseq += 1;
        let local = self.local();
        let mut text = format!(
            "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{cid}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{server}>;tag=t{cseq}\r\nTo: <sip:{user}@{server}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\n",
            server = self.server,
            cid = self.call_id,
            cseq = self.cseq
        );
        if let Some(c) = contact {
            text.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            text.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        self.request(text.as_bytes())
    }

    /// Sends raw bytes and returns the first response.
    pub fn request(&self, bytes: &[u8]) -> Response {
        self.sock.send_to(bytes, self.server).unwrap();
        self.recv().expect("a response")
    }

    pub fn recv(&self) -> Option<Response> {
        let mut buf = [0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        match parse_datagram(&buf[..n], 65536) {
            Ok(Message::Response(r)) => Some(r),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// REGISTER answered through one digest challenge (SHA-256).
    pub fn register_with_digest(
        &mut self,
        user: &str,
        password: &str,
        contact: Option<&str>,
        expires: Option<u32>,
    ) -> Response {
        let challenge = self.register(user, contact, expires, None);
        if challenge.status.as_u16() != 401 {
            return challenge;
        }
        let auth = authorization(&challenge, user, password, &format!("sip:{}", self.server));
        self.register(user, contact, expires, Some(&auth))
    }
}

/// An Authorization value answering the SHA-256 challenge of `challenge`.
pub fn authorization(challenge: &Response, user: &str, password: &str, uri: &str) -> String {
    digest_answer(
        challenge,
        &HeaderName::WwwAuthenticate,
        "REGISTER",
        user,
        password,
        uri,
    )
}

/// Sends an INVITE from `from` to `to` (no body), answers a 407 with digest, and returns the
/// final response to the authenticated INVITE (or the first final one if it is not 407).
pub fn invite_final(ua: &Ua, to: &str, from: &str, password: &str) -> Response {
    let server = ua.server;
    let local = ua.local();
    let uri = format!("sip:{to}@{server}");
    let msg = |method: &str, cseq: u32, branch: &str, to_tag: &str, auth: Option<&str>| {
        let auth = auth
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{from}@{server}>;tag=inv{from}\r\nTo: <sip:{to}@{server}>{to_tag}\r\nCall-ID: inv-{from}-{to}-{local}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{from}@{local}>\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    let final_of = |cseq: u32| loop {
        let r = ua.recv().expect("a response");
        if r.status.is_final() && r.cseq().map(|c| c.seq) == Some(cseq) {
            break r;
        }
    };
    let b1 = format!("z9hG4bKi1{from}{to}");
    ua.sock
        .send_to(msg("INVITE", 1, &b1, "", None).as_bytes(), server)
        .unwrap();
    let first = final_of(1);
    if first.status.as_u16() != 407 {
        return first;
    }
    let tag = first
        .to()
        .and_then(|t| t.tag())
        .map(|t| format!(";tag={t}"))
        .unwrap_or_default();
    ua.sock
        .send_to(msg("ACK", 1, &b1, &tag, None).as_bytes(), server)
        .unwrap();
    let auth = digest_answer(
        &first,
        &HeaderName::ProxyAuthenticate,
        "INVITE",
        from,
        password,
        &uri,
    );
    ua.sock
        .send_to(
            msg(
                "INVITE",
                2,
                &format!("z9hG4bKi2{from}{to}"),
                "",
                Some(&auth),
            )
            .as_bytes(),
            server,
        )
        .unwrap();
    final_of(2)
}

/// A digest answer to the strongest challenge in `header` of `challenge` (SHA-256 when the
/// server offers it, else MD5: the default offers MD5 only).
pub fn digest_answer(
    challenge: &Response,
    header: &HeaderName,
    method: &str,
    user: &str,
    password: &str,
    uri: &str,
) -> String {
    let challenges: Vec<AuthParams> = challenge
        .headers
        .get_all(header)
        .filter_map(AuthParams::parse)
        .collect();
    let (ch, alg, name) = challenges
        .iter()
        .find(|p| p.get("algorithm") == Some("SHA-256"))
        .map(|c| (c, Algorithm::Sha256, "SHA-256"))
        .or_else(|| {
            challenges
                .iter()
                .find(|p| p.get("algorithm").is_none_or(|a| a == "MD5"))
                .map(|c| (c, Algorithm::Md5, "MD5"))
        })
        .expect("a SHA-256 or MD5 challenge");
    let realm = ch.get("realm").unwrap();
    let nonce = ch.get("nonce").unwrap();
    let ha1 = digest::ha1(alg, user, realm, password);
    let resp = digest::response(
        alg,
        &ha1,
        nonce,
        Some("00000001"),
        Some("abc123"),
        Some("auth"),
        method,
        uri,
    );
    format!("Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={name}, qop=auth, nc=00000001, cnonce=\"abc123\"")
}

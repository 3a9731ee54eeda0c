//! `homeline status`: asks the running server for its live state on the control socket in the
//! data folder (`net::control`) and prints it as a table, or as the server's JSON (`--json`).

use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use net::control::{self, Status};
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::ConfigFile;
use crate::setup_cmd::InternetLimit;

/// A server that has not answered by then is stuck; say so instead of hanging.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest document accepted; the real one is a few kilobytes.
const MAX_ANSWER: u64 = 1 << 20;

pub(crate) async fn run(json: bool, file: &ConfigFile, data: &Path) -> Result<()> {
    let path = control::socket_path(data);
    let text = match query(&path).await {
        Ok(text) => text,
        Err(e) if nobody_listens(&e) => bail!(
            "no server running with data folder {} (nothing answers on {})",
            data.display(),
            path.display()
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the status from {}", path.display()))
        }
    };
    if json {
        println!("{}", text.trim_end());
        return Ok(());
    }
    let status: Status = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            let error = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            match error {
                Some(msg) => bail!("the server answered: {msg}"),
                None => bail!("the server's status document does not parse: {e}"),
            }
        }
    };
    // The derivation is not on the socket (the server only keeps numbers): recompute it from
    // the same inputs the server started with. Best effort: the numbers print without it.
    let limit = match file.media.media_config() {
        Ok(media) => match Store::open(data).await {
            Ok(store) => {
                let l = InternetLimit::resolve(&store, &media.relay).await.ok();
                store.close().await;
                l
            }
            Err(_) => None,
        },
        Err(_) => None,
    };
    print!("{}", render(&status, limit.as_ref(), data));
    Ok(())
}

/// True when a server answers on the data folder's control socket (used before starting a
/// second server on the same folder, and to say when a setting takes effect).
pub(crate) fn server_answers(data: &Path) -> bool {
    #[cfg(unix)]
    {
        std::os::unix::net::UnixStream::connect(control::socket_path(data)).is_ok()
    }
    #[cfg(not(unix))]
    {
        let _ = data;
        false
    }
}

/// No socket file, or a file left behind by a server that is gone.
fn nobody_listens(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(unix)]
async fn query(path: &Path) -> io::Result<String> {
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(path).await?;
        stream
            .write_all(format!("{}\n", control::STATUS_REQUEST).as_bytes())
            .await?;
        let mut text = String::new();
        stream.take(MAX_ANSWER).read_to_string(&mut text).await?;
        Ok(text)
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the server did not answer"))?
}

#[cfg(not(unix))]
async fn query(_: &Path) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the control socket needs a Unix system",
    ))
}

/// The human table.
fn render(s: &Status, limit: Option<&InternetLimit>, data: &Path) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<22}{value}");
    };
    row(
        "homeline",
        format!(
            "{} (pid {}), data folder {}",
            s.version,
            s.pid,
            data.display()
        ),
    );
    let mut listeners = String::new();
    for (i, l) in s.listeners.iter().enumerate() {
        let indent = if i == 0 { "" } else { "                      " };
        let _ = writeln!(
            listeners,
            "{indent}{:<9} {:<4} {}",
            l.zone, l.transport, l.addr
        );
    }
    let listeners = listeners.trim_end().to_owned();
    row(
        "Listeners",
        if listeners.is_empty() {
            "none".into()
        } else {
            listeners
        },
    );
    let p = &s.public_address;
    let mut public = match p.address {
        Some(ip) => format!("{ip} (from {})", p.source),
        None => "none known: calls needing the relay are refused".to_owned(),
    };
    if let Some(e) = &p.last_error {
        public.push_str(&format!("\n                      last error: {e}"));
    }
    row("Public address", public);
    if let Some(n) = &p.nat {
        let mut nat = format!("{}: Device@Home {}, {}", n.kind, n.verdict, n.detail);
        if let Some(fix) = &n.fix {
            nat.push_str(&format!("\n                      fix: {fix}"));
        }
        row("NAT type", nat);
    }
    if !p.mappings.is_empty() {
        row(
            "Port mappings",
            port_mappings(&p.mappings, crate::port_map::unix_now()),
        );
    }
    row("Registered bindings", s.bindings.to_string());
    row(
        "Stream connections",
        match &s.tls {
            Some(t) => format!("{} (TCP and TLS), {} TLS", s.flows, t.connections),
            None => s.flows.to_string(),
        },
    );
    if let Some(t) = &s.tls {
        let c = &t.certificate;
        row(
            "TLS certificate",
            format!(
                "{} ({}), valid until {} (Unix time {})\n                      SHA-256 {}\n                      {} failed handshakes since start",
                c.subject,
                c.key,
                utc_date(c.not_after),
                c.not_after,
                c.sha256,
                t.handshakes_failed
            ),
        );
    }
    row("Calls in progress", s.calls_active.to_string());
    row(
        "Relay channels",
        if s.relay.capacity == 0 {
            "none (no relay running)".into()
        } else {
            format!("{} in use of {}", s.relay.in_use, s.relay.capacity)
        },
    );
    let live = s.internet_calls.limit;
    let mut internet = match live {
        Some(n) => format!("{} in use of {n}", s.internet_calls.in_use),
        None => format!(
            "{} in use, no limit beyond the relay channels",
            s.internet_calls.in_use
        ),
    };
    if let Some(l) = limit {
        internet.push_str(&format!(" ({l})"));
        if l.calls.map(u64::from) != live {
            let now = l
                .calls
                .map_or_else(|| "no limit".to_owned(), |n| n.to_string());
            internet.push_str(&format!(
                "\n                      the stored settings now give {now}: the server applies it within a second"
            ));
        }
    }
    row("Internet calls", internet);
    row(
        "Refused calls",
        format!(
            "{} (relay channels exhausted), {} (Internet-call limit)",
            s.refused.pool, s.refused.internet_calls
        ),
    );
    row(
        "Relayed media",
        format!(
            "{} packets, {}",
            s.relay.packets,
            human_bytes(s.relay.bytes)
        ),
    );
    row(
        "SRTP dropped",
        format!(
            "{} failed authentication, {} replayed",
            s.relay.srtp_auth_failures, s.relay.srtp_replays
        ),
    );
    let m = &s.messages;
    row(
        "SIP messages",
        format!(
            "{} received, {} dropped, {} rejected; {} REGISTER accepted, {} failed authentication",
            m.received, m.dropped, m.rejected, m.registered, m.auth_failed
        ),
    );
    if !s.remote_bindings.is_empty() {
        let _ = writeln!(
            out,
            "\nRemote phones          source                 via  NAT   last seen  missed  expires"
        );
        for b in &s.remote_bindings {
            let _ = writeln!(
                out,
                "  {:<20} {:<22} {:<4} {:<5} {:>7} s  {:>6}  {:>5} s",
                b.station,
                b.source,
                b.transport,
                b.nat,
                b.last_seen_secs,
                b.missed_probes,
                b.expires_in_secs
            );
        }
    }
    out
}

/// Octets with a decimal unit (1,500,000 → "1.5 MB").
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        let stats = net::Stats::default();
        let listeners = [(
            policy::Zone::Internal,
            sip_proto::path::Transport::Udp,
            "192.168.1.10:5060".parse().unwrap(),
        )];
        Status::collect(&stats, &listeners)
    }

    #[test]
    fn table_shows_listeners_calls_and_limits() {
        let text = render(&status(), None, Path::new("/srv/homeline"));
        assert!(text.contains("internal  udp  192.168.1.10:5060"), "{text}");
        assert!(text.contains("Calls in progress     0"), "{text}");
        assert!(text.contains("Relay channels        none"), "{text}");
        assert!(
            text.contains("no limit beyond the relay channels"),
            "{text}"
        );
    }

    #[test]
    fn a_stored_setting_the_server_does_not_use_yet_is_pointed_out() {
        let mut s = status();
        s.internet_calls.limit = Some(2);
        let limit = InternetLimit {
            calls: Some(4),
            source: crate::setup_cmd::LimitSource::ConfigFile(4),
            channels: 500,
        };
        let text = render(&s, Some(&limit), Path::new("d"));
        assert!(
            text.contains("0 in use of 2 (media.internet_calls = 4"),
            "{text}"
        );
        assert!(
            text.contains("now give 4: the server applies it within a second"),
            "{text}"
        );
    }

    #[test]
    fn bytes_are_readable() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }

    #[test]
    fn public_address_source_error_and_nat_verdict_are_shown() {
        let mut s = status();
        let text = render(&s, None, Path::new("/srv/homeline"));
        assert!(text.contains("Public address        none known"), "{text}");
        s.public_address = net::PublicAddress {
            address: Some("203.0.113.10".parse().unwrap()),
            source: "stun".into(),
            last_error: Some("STUN server 198.51.100.10:3478: no answer".into()),
            nat: Some(net::NatStatus {
                kind: "symmetric".into(),
                verdict: "unsupported".into(),
                detail: "a symmetric NAT gives every destination another public port".into(),
                fix: Some("change the office router's NAT".into()),
            }),
            mappings: Vec::new(),
        };
        let text = render(&s, None, Path::new("/srv/homeline"));
        assert!(
            text.contains("Public address        203.0.113.10 (from stun)"),
            "{text}"
        );
        assert!(text.contains("last error: STUN server"), "{text}");
        assert!(
            text.contains("NAT type              symmetric: Device@Home unsupported"),
            "{text}"
        );
        assert!(
            text.contains("fix: change the office router's NAT"),
            "{text}"
        );
    }

    fn mapping(role: &str, local: &str, public: Option<&str>) -> net::PortMapping {
        let local: std::net::SocketAddr = local.parse().unwrap();
        let public: Option<std::net::SocketAddr> = public.map(|p| p.parse().unwrap());
        let preserved = public.map(|p| p.port() == local.port());
        net::PortMapping {
            role: role.into(),
            local,
            public,
            preserved,
            server: public.map(|_| "198.51.100.12:3478".parse().unwrap()),
            refreshed_unix: public.map(|_| 1_000),
            failures: 0,
            last_error: None,
            fix: (preserved == Some(false))
                .then(|| "forward UDP 30000-30099 1:1 and keep source ports".into()),
        }
    }

    #[test]
    fn rfc4787_port_mappings_show_kept_and_rewritten_ports_with_the_fix() {
        let mut failing = mapping("relay", "0.0.0.0:30098", None);
        failing.failures = 2;
        failing.last_error = Some("STUN server 198.51.100.12:3478: no answer".into());
        let text = port_mappings(
            &[
                mapping("sip", "192.168.1.10:5062", Some("203.0.113.10:5062")),
                mapping("relay", "0.0.0.0:30000", Some("203.0.113.10:47111")),
                mapping("relay", "0.0.0.0:30002", Some("203.0.113.10:51234")),
                failing,
            ],
            1_012,
        );
        assert!(
            text.contains("sip   192.168.1.10:5062 -> 203.0.113.10:5062, port preserved (12 s ago, 198.51.100.12:3478)"),
            "{text}"
        );
        assert!(
            text.contains("relay 0.0.0.0:30000 -> 203.0.113.10:47111, PORT REWRITTEN"),
            "{text}"
        );
        assert!(
            text.contains("relay 0.0.0.0:30098 -> not learned yet"),
            "{text}"
        );
        assert!(
            text.contains(
                "2 failed attempt(s) since, last: STUN server 198.51.100.12:3478: no answer"
            ),
            "{text}"
        );
        // The same fix once, however many ports need it.
        assert_eq!(
            text.matches("fix: forward UDP 30000-30099 1:1 and keep source ports")
                .count(),
            1,
            "{text}"
        );
        let mut s = status();
        s.public_address.mappings = vec![mapping(
            "sip",
            "192.168.1.10:5062",
            Some("203.0.113.10:5062"),
        )];
        let table = render(&s, None, Path::new("d"));
        assert!(
            table.contains("Port mappings         sip   192.168.1.10:5062 -> 203.0.113.10:5062"),
            "{table}"
        );
    }
}

/// One line per checked port (the SIP listener, the relay samples): local → public, kept or
/// rewritten, how long ago, failures; the router fix under a rewritten one.
fn port_mappings(mappings: &[net::PortMapping], now: u64) -> String {
    const INDENT: &str = "                      ";
    let mut lines = Vec::new();
    let mut fixes: Vec<&str> = Vec::new();
    for m in mappings {
        let mut line = format!("{:<5} {} -> ", m.role, m.local);
        match (m.public, m.preserved) {
            (Some(public), Some(kept)) => {
                line.push_str(&public.to_string());
                line.push_str(if kept {
                    ", port preserved"
                } else {
                    ", PORT REWRITTEN: remote phones are sent to the wrong public port"
                });
            }
            _ => line.push_str("not learned yet"),
        }
        if let Some(t) = m.refreshed_unix {
            line.push_str(&format!(" ({} s ago", now.saturating_sub(t)));
            if let Some(server) = m.server {
                line.push_str(&format!(", {server}"));
            }
            line.push(')');
        }
        if m.failures > 0 {
            line.push_str(&format!(
                "\n{INDENT}      {} failed attempt(s) since, last: {}",
                m.failures,
                m.last_error.as_deref().unwrap_or("")
            ));
        }
        lines.push(line);
        if let Some(fix) = m.fix.as_deref().filter(|f| !fixes.contains(f)) {
            fixes.push(fix);
        }
    }
    for fix in fixes {
        lines.push(format!("fix: {fix}"));
    }
    lines.join(&format!("\n{INDENT}"))
}

/// `YYYY-MM-DD` (UTC) of a Unix time (civil-from-days, proleptic Gregorian).
fn utc_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29");
        assert_eq!(super::utc_date(4_102_444_800), "2100-01-01");
    }
}

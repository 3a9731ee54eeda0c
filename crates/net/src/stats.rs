//! Counters shared between the core task and status readers (the control socket,
//! [`crate::control`]). Every counter is a relaxed atomic: readers want a recent figure, not a
//! consistent snapshot across counters, and the packet path must never wait for a reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Message, registration, call and relay counters.
///
/// "Gauges" go up and down (`bindings`, `flows`, `calls_active`, `relay_in_use`,
/// `internet_in_use`); the others only grow while the server runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received (datagrams and framed stream messages).
    pub received: AtomicU64,
    /// Messages dropped because they could not be parsed or answered.
    pub dropped: AtomicU64,
    /// Requests answered 400/505/513 before reaching a transaction.
    pub rejected: AtomicU64,
    /// REGISTERs answered 200.
    pub registered: AtomicU64,
    /// REGISTERs answered 403.
    pub auth_failed: AtomicU64,
    /// Bindings currently held.
    pub bindings: AtomicU64,
    /// Stream connections currently open.
    pub flows: AtomicU64,
    /// Calls in progress (gauge): from the INVITE the B2BUA accepted until the call is gone,
    /// whether ringing or answered.
    pub calls_active: AtomicU64,
    /// Channels (RTP/RTCP port pairs) in the relay's pool. 0: no relay runs. Filled from the
    /// configuration at start by [`crate::control::spawn`] unless the core set it first.
    pub relay_capacity: AtomicU64,
    /// Relay channels allocated to calls right now (gauge).
    pub relay_in_use: AtomicU64,
    /// The simultaneous-Internet-calls limit in force (from the upstream bandwidth, lowered to
    /// the channel pool). 0: no limit beyond the channel pool (the relay refuses a limit of 0,
    /// so the value is free to mean "unset"). Filled like `relay_capacity`.
    pub internet_limit: AtomicU64,
    /// Internet calls in progress (gauge): relayed legs whose media crosses the office's
    /// Internet line, the unit `internet_limit` counts.
    pub internet_in_use: AtomicU64,
    /// Calls refused before ringing (503 + Warning) because every relay channel was in use.
    pub refused_pool: AtomicU64,
    /// Calls refused before ringing (503 + Warning) because the Internet-call limit was reached.
    pub refused_internet: AtomicU64,
    /// RTP and RTCP packets the relay forwarded.
    pub relay_packets: AtomicU64,
    /// Octets (UDP payload) the relay forwarded.
    pub relay_bytes: AtomicU64,
    /// Health of every external-zone (remote) binding, refreshed by the core about once a
    /// second for status; never read on a call's path.
    pub remote_bindings: Mutex<Vec<RemoteBinding>>,
}

/// One remote phone's registration as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteBinding {
    /// Station number.
    pub station: String,
    /// Where its packets come from (its home NAT's public side).
    pub source: std::net::SocketAddr,
    /// "udp", "tcp", ...
    pub transport: String,
    /// "none", "nat" or "alg" (a SIP ALG rewrote the Contact).
    pub nat: String,
    /// Seconds since the phone was last heard from (REGISTER or keepalive answer).
    pub last_seen_secs: u64,
    /// Keepalive probes unanswered in a row.
    pub missed_probes: u32,
    /// Seconds until the registration expires.
    pub expires_in_secs: u64,
}

impl Stats {
    /// Adds one to a counter.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets a figure only if nobody has set it yet (it is still 0): lets start-up fill in a
    /// configured value without overwriting one the core already measured.
    pub(crate) fn fill_if_unset(c: &AtomicU64, value: u64) {
        let _ = c.compare_exchange(0, value, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn read(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

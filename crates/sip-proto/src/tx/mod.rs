//! The SIP transaction layer (RFC 3261 §17 with the RFC 6026 corrections), sans-IO.
//!
//! [`TxLayer`] holds every client and server transaction of one SIP core. The driver feeds it
//! parsed, validated messages ([`TxLayer::handle_message`]) and the TU's requests and responses
//! ([`TxLayer::send_request`], [`TxLayer::respond`]); after each input it drains
//! [`TxLayer::poll_transmit`] (bytes to send along a [`Path`]) and [`TxLayer::poll_event`]
//! ([`TxEvent`]s for the TU), then sleeps until [`TxLayer::poll_timeout`] and calls
//! [`TxLayer::handle_timeout`]. No clock, socket or global RNG is used: `now` is an argument and
//! branches come from the RNG seeded in [`TxLayer::new`].
//!
//! # State machines
//!
//! | machine | states | timers |
//! |---|---|---|
//! | INVITE client (§17.1.1, RFC 6026 §7.2) | Calling → Proceeding → Completed / Accepted → Terminated | A, B, D, M |
//! | non-INVITE client (§17.1.2) | Trying → Proceeding → Completed → Terminated | E, F, K |
//! | INVITE server (§17.2.1, RFC 6026 §7.1) | Proceeding → Completed → Confirmed / Accepted → Terminated | G, H, I, L, 100 Trying, 2xx |
//! | non-INVITE server (§17.2.2) | Trying → Proceeding → Completed → Terminated | J |
//!
//! Durations follow RFC 3261 Table 4 (one table, `timers.rs`). Nothing is retransmitted over a
//! reliable transport (TCP, TLS, WS, WSS), and the waiting timers D, I, J and K are zero there,
//! so such transactions end as soon as their final exchange is done.
//!
//! # Who retransmits a 2xx to INVITE
//!
//! RFC 3261 §13.3.1.4 gives that job to the UAS core; RFC 6026 keeps the server transaction
//! alive in *Accepted* only to absorb retransmitted INVITEs. As a convenience for the B2BUA,
//! **this layer retransmits the 2xx itself over UDP** (T1, doubling up to T2) until the ACK
//! arrives or Timer L (64·T1) fires; the TU sends each 2xx once with [`TxLayer::respond`]. The ACK
//! is matched to the 2xx by Call-ID, CSeq number and the From and To tags (it carries a new
//! branch, §13.2.2.4), handed to the TU once as [`TxEvent::Ack`], and its retransmissions are
//! absorbed while the transaction lives. When no ACK came, [`TxEvent::AckTimedOut`] tells the TU
//! to end the session with a BYE (§13.3.1.4).
//!
//! # Matching
//!
//! Requests match server transactions by top-Via branch (with the magic cookie), sent-by and
//! method, an ACK matching its INVITE (§17.2.3). Requests without the cookie (or with the bare
//! cookie, RFC 4475 §3.2.1) fall back to the RFC 2543 rules: Request-URI, From tag, Call-ID,
//! CSeq number, top Via and To tag. Responses match client transactions by branch and CSeq
//! method (§17.1.3); responses matching none are dropped (RFC 6026's change to §18.1.2). Lookups are hash-map
//! probes keyed by a seeded hash, never scans.

mod client_invite;
mod client_non_invite;
mod ctx;
mod key;
mod layer;
mod server_invite;
mod server_non_invite;
mod slab;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests;
mod timers;
mod via;

use std::fmt;
use std::time::Duration;

use sip::{Request, Response};

pub use layer::{stamp_received, TxLayer};

use crate::path::Path;

/// Timer settings of RFC 3261 Table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxConfig {
    /// RTT estimate: first retransmission interval; 64·T1 is the transaction timeout.
    /// Default 500 ms. Values below 1 ms are raised to 1 ms, above 60 s lowered to 60 s.
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE responses.
    /// Default 4 s. Never below T1, never above 1 h.
    pub t2: Duration,
    /// Longest time a message may stay in the network (Timers I and K over UDP).
    /// Default 5 s. Never above 1 h.
    pub t4: Duration,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TxConfig {
    /// The configuration with every value brought into its documented range, so that no
    /// timer can overflow an `Instant` or retransmit in a loop at one instant.
    fn sanitized(self) -> TxConfig {
        let t1 = self
            .t1
            .clamp(Duration::from_millis(1), Duration::from_secs(60));
        TxConfig {
            t1,
            t2: self.t2.clamp(t1, Duration::from_secs(3600)),
            t4: self.t4.min(Duration::from_secs(3600)),
        }
    }
}

/// Names one transaction for as long as it lives; never reused for another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId {
    index: u32,
    generation: u32,
}

impl TxId {
    /// The id handed out for an ACK given to [`TxLayer::send_request`]: no transaction has it.
    const DETACHED: TxId = TxId {
        index: u32::MAX,
        generation: u32::MAX,
    };
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}.{}", self.index, self.generation)
    }
}

/// What the transaction layer tells the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request opened server transaction `tx`; answer it with [`TxLayer::respond`].
    /// The top Via already carries `received`/`rport` (RFC 3581 §4), so a response built with
    /// [`Response::for_request`] finds its way back. Retransmissions never show up again.
    Request {
        /// The new server transaction.
        tx: TxId,
        /// The request, top Via stamped.
        request: Request,
        /// Where it came from; responses go back over it.
        path: Path,
    },
    /// An ACK that is not absorbed by a transaction: the ACK for a 2xx (first copy only while
    /// the INVITE server transaction is in RFC 6026 *Accepted*), or one matching nothing at all
    /// (stray, or arriving after Timer L). It goes to the dialog.
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        path: Path,
    },
    /// A CANCEL opened non-INVITE server transaction `tx` (§9.2). The layer does not answer it:
    /// the TU responds 200 to `tx` (or 481 when `invite` is `None`) and 487 to `invite`; a
    /// response to an INVITE that already had a final response is ignored.
    Cancel {
        /// The CANCEL's own server transaction.
        tx: TxId,
        /// The INVITE server transaction it targets, in any state, if one matched.
        invite: Option<TxId>,
        /// The CANCEL, top Via stamped.
        request: Request,
        /// Where it came from.
        path: Path,
    },
    /// A response for client transaction `tx`: every provisional, the first final response,
    /// and (RFC 6026 §7.2) every 2xx to an INVITE while in *Accepted*, so the TU can ACK each.
    /// Retransmitted non-2xx finals are absorbed (the layer re-sends the ACK itself).
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        response: Response,
    },
    /// No final response in time (Timer B or F, client; the TU acts as on a 408), or no ACK for
    /// a 3xx–6xx to an INVITE (Timer H, server). The transaction is gone.
    TimedOut {
        /// The transaction.
        tx: TxId,
    },
    /// The driver reported a transport failure ([`TxLayer::handle_transport_error`],
    /// §17.1.4 / §17.2.4). The transaction is gone.
    TransportError {
        /// The transaction.
        tx: TxId,
    },
    /// A 2xx to INVITE got no ACK within 64·T1 (Timer L): per §13.3.1.4 the TU should consider
    /// the dialog confirmed and end the session with a BYE. The transaction is gone.
    AckTimedOut {
        /// The INVITE server transaction.
        tx: TxId,
    },
}

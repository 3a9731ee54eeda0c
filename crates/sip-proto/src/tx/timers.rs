//! The timers of RFC 3261 §17 and RFC 6026, their durations in one table, and the deadline
//! queue shared by every transaction.
//!
//! | timer | role | UDP | reliable |
//! |---|---|---|---|
//! | A | INVITE request retransmission (§17.1.1.2) | T1, doubling | — |
//! | B | INVITE client timeout | 64·T1 | 64·T1 |
//! | D | absorb retransmitted INVITE finals | 32 s | 0 |
//! | E | non-INVITE request retransmission (§17.1.2.2) | T1, doubling to T2 | — |
//! | F | non-INVITE client timeout | 64·T1 | 64·T1 |
//! | G | INVITE final response retransmission (§17.2.1) | T1, doubling to T2 | — |
//! | H | wait for ACK | 64·T1 | 64·T1 |
//! | I | absorb ACK retransmissions | T4 | 0 |
//! | J | absorb non-INVITE request retransmissions (§17.2.2) | 64·T1 | 0 |
//! | K | absorb non-INVITE response retransmissions | T4 | 0 |
//! | L | server *Accepted*: absorb INVITE retransmissions (RFC 6026 §7.1) | 64·T1 | 64·T1 |
//! | M | client *Accepted*: pass 2xx retransmissions to the TU (RFC 6026 §7.2) | 64·T1 | 64·T1 |
//! | Trying | send 100 if the TU has not answered an INVITE (§17.2.1) | 200 ms | 200 ms |
//! | Retransmit2xx | 2xx to INVITE until the ACK (§13.3.1.4, done here for the TU) | T1, doubling to T2 | — |
//!
//! Each transaction keeps its armed deadlines ([`Timers`]); the layer keeps one min-heap of
//! all of them ([`TimerQueue`]). Cancelling or re-arming a timer leaves its heap entry behind;
//! such stale entries are recognised (the transaction no longer holds that deadline) and
//! skipped when popped, and the heap is compacted when they outnumber the live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::{TxConfig, TxId};
use crate::path::Transport;

/// §17.2.1: the INVITE server transaction sends 100 Trying after 200 ms of TU silence.
const TRYING_AFTER: Duration = Duration::from_millis(200);
/// Table 4: Timer D is "> 32 s" over UDP.
const TIMER_D_UDP: Duration = Duration::from_secs(32);

/// A transaction timer, by its RFC name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    Trying,
    Retransmit2xx,
}

impl Timer {
    /// The first duration of this timer on `transport` (the table above).
    pub(crate) fn initial(self, transport: Transport, c: &TxConfig) -> Duration {
        let wait = |unreliable: Duration| {
            if transport.is_reliable() {
                Duration::ZERO
            } else {
                unreliable
            }
        };
        let timeout = c.t1.saturating_mul(64);
        match self {
            Timer::A | Timer::E | Timer::G | Timer::Retransmit2xx => c.t1,
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => timeout,
            Timer::D => wait(TIMER_D_UDP),
            Timer::I | Timer::K => wait(c.t4),
            Timer::J => wait(timeout),
            Timer::Trying => TRYING_AFTER,
        }
    }

    /// The interval after a retransmission timer that ran for `previous` fired.
    pub(crate) fn backoff(self, previous: Duration, c: &TxConfig) -> Duration {
        let doubled = previous.saturating_mul(2);
        match self {
            // §17.1.1.2: Timer A doubles without a cap; Timer B ends the doubling.
            Timer::A => doubled,
            // §17.1.2.2, §17.2.1, §13.3.1.4: capped at T2.
            _ => doubled.min(c.t2),
        }
    }

    /// True for the timers that retransmit: never armed over a reliable transport.
    pub(crate) fn retransmits(self) -> bool {
        matches!(self, Timer::A | Timer::E | Timer::G | Timer::Retransmit2xx)
    }
}

/// Most timers one transaction has armed at once (Calling: A+B; Completed: G+H; ...).
const SLOTS: usize = 3;

/// The deadlines one transaction has armed.
#[derive(Debug, Default)]
pub(crate) struct Timers([Option<(Timer, Instant)>; SLOTS]);

impl Timers {
    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0
            .iter()
            .flatten()
            .find(|(t, _)| *t == timer)
            .map(|(_, at)| *at)
    }

    /// Arms `timer` at `at`; true when that replaced an armed deadline (now stale in the queue).
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) -> bool {
        if let Some(slot) = self.0.iter_mut().flatten().find(|(t, _)| *t == timer) {
            slot.1 = at;
            return true;
        }
        debug_assert!(
            self.armed() < SLOTS,
            "a transaction armed more than {SLOTS} timers"
        );
        match self.0.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some((timer, at));
                false
            }
            None => {
                self.0[0] = Some((timer, at));
                true
            }
        }
    }

    /// Disarms `timer`; true when it was armed.
    pub(crate) fn clear(&mut self, timer: Timer) -> bool {
        match self
            .0
            .iter_mut()
            .find(|s| matches!(s, Some((t, _)) if *t == timer))
        {
            Some(slot) => {
                *slot = None;
                true
            }
            None => false,
        }
    }

    /// Disarms every timer; returns how many were armed.
    pub(crate) fn clear_all(&mut self) -> usize {
        let n = self.armed();
        self.0 = Default::default();
        n
    }

    /// Number of armed timers.
    pub(crate) fn armed(&self) -> usize {
        self.0.iter().flatten().count()
    }
}

/// One entry of the queue: `timer` of transaction `id` fires at `at`. At equal instants a
/// timeout fires before a retransmission (no resend at the moment the transaction gives up),
/// then transactions in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    retransmits: bool,
    pub(crate) id: TxId,
    pub(crate) timer: Timer,
}

impl Deadline {
    /// `timer` of `id` at `at`.
    pub(crate) fn new(at: Instant, id: TxId, timer: Timer) -> Deadline {
        Deadline {
            at,
            retransmits: timer.retransmits(),
            id,
            timer,
        }
    }
}

/// Below this many stale entries the heap is never compacted.
const COMPACT_MIN_STALE: usize = 1024;

/// Min-heap of every armed deadline, with lazy deletion.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<Deadline>>,
    /// Entries known to be stale (an estimate: it never undercounts by much).
    stale: usize,
}

impl TimerQueue {
    /// Adds a deadline.
    pub(crate) fn push(&mut self, d: Deadline) {
        self.heap.push(Reverse(d));
    }

    /// Records that `n` entries no longer match their transaction.
    pub(crate) fn mark_stale(&mut self, n: usize) {
        self.stale += n;
    }

    /// Records that a stale entry left the heap.
    pub(crate) fn unmark_stale(&mut self) {
        self.stale = self.stale.saturating_sub(1);
    }

    /// The earliest entry, stale or not.
    pub(crate) fn peek(&self) -> Option<&Deadline> {
        self.heap.peek().map(|Reverse(d)| d)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<Deadline> {
        self.heap.pop().map(|Reverse(d)| d)
    }

    /// Removes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        if self.peek()?.at <= now {
            self.pop()
        } else {
            None
        }
    }

    /// True when stale entries are many and outnumber the live ones.
    pub(crate) fn should_compact(&self) -> bool {
        self.stale > COMPACT_MIN_STALE && self.stale * 2 > self.heap.len()
    }

    /// Keeps only the entries `live` accepts (O(n), amortised by [`Self::should_compact`]).
    pub(crate) fn retain(&mut self, mut live: impl FnMut(&Deadline) -> bool) {
        self.heap.retain(|Reverse(d)| live(d));
        self.stale = 0;
    }

    /// Entries in the heap, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

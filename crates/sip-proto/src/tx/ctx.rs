//! What a state machine may touch while it handles one input: its own timers and path, the
//! shared deadline queue, and the layer's output queues.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timers::{Deadline, Timer, TimerQueue, Timers};
use super::{TxConfig, TxEvent, TxId};
use crate::path::{Path, Transmit};

/// The context of one transition of transaction `id`.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) id: TxId,
    pub(crate) cfg: &'a TxConfig,
    pub(crate) path: &'a Path,
    pub(crate) timers: &'a mut Timers,
    pub(crate) queue: &'a mut TimerQueue,
    pub(crate) transmits: &'a mut VecDeque<Transmit>,
    pub(crate) events: &'a mut VecDeque<TxEvent>,
}

impl Ctx<'_> {
    /// Sends `bytes` over the transaction's path.
    pub(crate) fn send(&mut self, bytes: &Bytes) {
        self.transmits.push_back(Transmit {
            path: *self.path,
            bytes: bytes.clone(),
        });
    }

    /// Tells the TU.
    pub(crate) fn emit(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }

    /// The first duration of `timer` on this path (RFC 3261 Table 4).
    pub(crate) fn initial(&self, timer: Timer) -> Duration {
        timer.initial(self.path.transport, self.cfg)
    }

    /// Arms `timer` with its table duration; retransmission timers only over UDP.
    pub(crate) fn arm(&mut self, timer: Timer) {
        if timer.retransmits() && self.path.transport.is_reliable() {
            return;
        }
        self.arm_after(timer, self.initial(timer));
    }

    /// Arms `timer` to fire `after` from now, replacing an earlier deadline.
    pub(crate) fn arm_after(&mut self, timer: Timer, after: Duration) {
        let at = self.now + after;
        if self.timers.set(timer, at) {
            self.queue.mark_stale(1);
        }
        self.queue.push(Deadline::new(at, self.id, timer));
    }

    /// Disarms `timer`.
    pub(crate) fn cancel(&mut self, timer: Timer) {
        if self.timers.clear(timer) {
            self.queue.mark_stale(1);
        }
    }

    /// Disarms every timer (on a state change).
    pub(crate) fn cancel_all(&mut self) {
        let n = self.timers.clear_all();
        self.queue.mark_stale(n);
    }

    /// Arms a waiting timer (D, I, J, K); false when it is zero on this transport, i.e. the
    /// transaction terminates right away instead of waiting.
    pub(crate) fn wait(&mut self, timer: Timer) -> bool {
        let after = self.initial(timer);
        if after.is_zero() {
            return false;
        }
        self.arm_after(timer, after);
        true
    }
}

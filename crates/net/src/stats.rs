//! Counters shared between the core task and status readers.

use std::sync::atomic::{AtomicU64, Ordering};

/// Message and registration counters.
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
}

impl Stats {
    /// Adds one to a counter.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn read(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

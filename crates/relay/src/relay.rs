//! The relay core: the channel pool, pairing, signalling updates, and what it hands the
//! driver. The per-packet path is in `packet.rs`, timers in `timeout.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::RngCore;

use crate::channel::{Channel, ChannelStats, DirectPeer, Pairing, Peer};
use crate::config::{Config, ConfigError};
use crate::ids::{CallRef, ChannelId, LegRef, RelayPort};
use crate::latch::RelatchReason;
use crate::limit::LimitHit;
use crate::srtp_leg::SrtpKeys;
use crate::timeout::CallMedia;

/// The sans-IO media relay: a pool of channels over one port range. See the crate
/// documentation for the drive loop.
#[derive(Debug)]
pub struct Relay {
    pub(crate) config: Config,
    /// First port of the range (even); channel `i` owns `base + 2i` and `base + 2i + 1`.
    pub(crate) base: u16,
    pub(crate) channels: Vec<Channel>,
    /// Free slots, oldest release first, so a port rests as long as possible before reuse
    /// (late packets of the last call find a closed socket, not a new call).
    free: VecDeque<u32>,
    in_use: u32,
    pub(crate) calls: BTreeMap<CallRef, CallMedia>,
    pub(crate) timers: BTreeSet<(Instant, CallRef)>,
    commands: VecDeque<RelayCommand>,
    pub(crate) events: VecDeque<RelayEvent>,
    /// Channels with rejected packets not reported yet (capacity: one per channel).
    pub(crate) reject_queue: Vec<u32>,
    pub(crate) next_reject_report: Option<Instant>,
    pub(crate) last_reject_report: Option<Instant>,
    refused_pool: u64,
    refused_internet: u64,
    pub(crate) stray: u64,
}

/// Where to send a packet: out of the socket bound to `from_port`, to `to`, bytes unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The relay port to send from (the paired leg's port, so its device sees the address
    /// and port it was given in SDP).
    pub from_port: RelayPort,
    /// The destination: a latched source or a configured direct peer, nothing else.
    pub to: SocketAddr,
}

/// Socket work for the driver, drained with [`Relay::poll_command`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayCommand {
    /// Open a UDP socket on this port (a channel was allocated).
    Bind(RelayPort),
    /// Close the socket on this port (its channel was released).
    Release(RelayPort),
}

/// What happened, for the call layer and the logs, drained with [`Relay::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A port of a channel pinned its device's source address.
    Latched {
        /// The call.
        call: CallRef,
        /// The leg.
        leg: LegRef,
        /// The channel.
        channel: ChannelId,
        /// The relay port the packets arrived on (RTP or RTCP port).
        port: RelayPort,
        /// The source now pinned.
        source: SocketAddr,
        /// `None` the first time; else why the previous source was replaced.
        relatch: Option<RelatchReason>,
    },
    /// Packets from third addresses were dropped on a channel since the last report (at
    /// most one report per [`Config::reject_report_interval`]).
    SourceRejected {
        /// The call.
        call: CallRef,
        /// The leg.
        leg: LegRef,
        /// The channel.
        channel: ChannelId,
        /// The last rejected source.
        last_source: SocketAddr,
        /// Packets rejected since the last report.
        packets: u64,
    },
    /// No media in either direction on any channel of the call for the configured time:
    /// end the call on both sides (BYE with a Reason header) and release its channels.
    MediaTimeout {
        /// The call.
        call: CallRef,
        /// Which timeout.
        kind: TimeoutKind,
    },
}

/// Which media timeout ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Media never started ([`Config::media_start_timeout`]).
    NeverStarted,
    /// Media started, then stopped ([`Config::media_timeout`]).
    Stopped,
    /// Nothing while on hold ([`Config::held_timeout`]).
    Held,
}

/// Pool-level figures, for admission and `homeline status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Channels in the pool.
    pub capacity: u32,
    /// Channels allocated now (= Internet legs in calls).
    pub in_use: u32,
    /// The simultaneous-Internet-calls limit, if set.
    pub internet_call_limit: Option<u32>,
    /// Calls holding at least one channel.
    pub calls: u32,
    /// Allocations refused because the pool was empty.
    pub refused_pool: u64,
    /// Allocations refused by the Internet-call limit.
    pub refused_internet_calls: u64,
    /// Packets on ports of no allocated channel (late packets of released channels).
    pub stray_packets: u64,
}

/// A control call named a channel it may not use: a bug in the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Released, never allocated, or from another relay.
    #[error("channel {0} is not allocated")]
    Unknown(ChannelId),
    /// A channel cannot forward to itself.
    #[error("channel {0} cannot be paired with itself")]
    SelfPairing(ChannelId),
    /// An RTP clock rate of 0 was given.
    #[error("channel {0}: RTP clock rate must not be 0")]
    ZeroClockRate(ChannelId),
    /// The crypto library refused an SRTP key.
    #[error("channel {0}: SRTP key refused")]
    SrtpKey(ChannelId),
}

impl Relay {
    /// A relay over `config.ports`; `rng` shuffles the order in which channels are handed
    /// out, so the ports of live calls cannot be guessed from the order of allocation.
    pub fn new(config: Config, rng: &mut impl RngCore) -> Result<Self, ConfigError> {
        config.validate()?;
        let count = config.channels();
        let mut order: Vec<u32> = (0..count).collect();
        order.shuffle(rng);
        let capacity = count as usize;
        Ok(Self {
            base: *config.ports.start(),
            config,
            channels: std::iter::repeat_with(Channel::default)
                .take(capacity)
                .collect(),
            free: order.into(),
            in_use: 0,
            calls: BTreeMap::new(),
            timers: BTreeSet::new(),
            commands: VecDeque::with_capacity(64),
            events: VecDeque::with_capacity(capacity * 2),
            reject_queue: Vec::with_capacity(capacity),
            next_reject_report: None,
            last_reject_report: None,
            refused_pool: 0,
            refused_internet: 0,
            stray: 0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes a channel for one Internet leg of `call`, or says which limit refuses it (refuse
    /// the call before it rings). Queues [`RelayCommand::Bind`] for both ports.
    pub fn allocate(
        &mut self,
        now: Instant,
        call: CallRef,
        leg: LegRef,
    ) -> Result<ChannelId, LimitHit> {
        if let Some(limit) = self.config.internet_calls {
            if self.in_use >= limit {
                self.refused_internet += 1;
                return Err(LimitHit::InternetCalls { limit });
            }
        }
        let Some(index) = self.free.pop_front() else {
            self.refused_pool += 1;
            return Err(LimitHit::PoolExhausted {
                capacity: self.config.channels(),
            });
        };
        let ch = &mut self.channels[index as usize];
        ch.generation = ch.generation.wrapping_add(1);
        ch.assign(call, leg);
        let id = ChannelId {
            index,
            generation: ch.generation,
        };
        self.in_use += 1;
        let rtp = self.rtp_port_of(index);
        self.commands.push_back(RelayCommand::Bind(rtp));
        self.commands
            .push_back(RelayCommand::Bind(RelayPort::new(rtp.get() + 1)));
        self.calls
            .entry(call)
            .or_insert_with(|| CallMedia::new(now))
            .channels
            .push(index);
        self.reschedule(now, call, false);
        Ok(id)
    }

    /// Gives a channel back: its partner is left unpaired, [`RelayCommand::Release`] is
    /// queued for both ports, and the id is dead from now on.
    pub fn release(&mut self, now: Instant, channel: ChannelId) -> Result<(), ChannelError> {
        let index = self.index(channel)?;
        let old = self.detach(index);
        let ch = &mut self.channels[index];
        ch.in_use = false;
        let call = ch.call;
        self.in_use -= 1;
        self.free.push_back(channel.index);
        let rtp = self.rtp_port_of(channel.index);
        self.commands.push_back(RelayCommand::Release(rtp));
        self.commands
            .push_back(RelayCommand::Release(RelayPort::new(rtp.get() + 1)));
        if let Some(c) = self.calls.get_mut(&call) {
            c.channels.retain(|&i| i != channel.index);
            if c.channels.is_empty() {
                if let Some(t) = c.scheduled {
                    self.timers.remove(&(t, call));
                }
                self.calls.remove(&call);
            } else {
                self.reschedule(now, call, false);
            }
        }
        self.reschedule_calls_of(now, old.as_slice());
        Ok(())
    }

    /// Releases every channel of `call`; returns how many there were.
    pub fn release_call(&mut self, now: Instant, call: CallRef) -> usize {
        let ids: Vec<ChannelId> = self.channels_of(call).collect();
        for id in &ids {
            // Each id was just read from the live table.
            let _ = self.release(now, *id);
        }
        ids.len()
    }

    /// The channels `call` holds.
    pub fn channels_of(&self, call: CallRef) -> impl Iterator<Item = ChannelId> + '_ {
        self.calls
            .get(&call)
            .into_iter()
            .flat_map(|c| c.channels.iter())
            .map(|&index| ChannelId {
                index,
                generation: self.channels[index as usize].generation,
            })
    }

    /// The channel's RTP port, to write into the leg's SDP (RTCP is the next port, or the
    /// same one with rtcp-mux).
    pub fn rtp_port(&self, channel: ChannelId) -> Result<RelayPort, ChannelError> {
        let index = self.index(channel)?;
        Ok(self.rtp_port_of(index as u32))
    }

    /// Records what the leg's SDP says about its device (first offer or answer).
    pub fn set_peer(
        &mut self,
        now: Instant,
        channel: ChannelId,
        peer: Peer,
    ) -> Result<(), ChannelError> {
        self.update_peer(now, channel, peer, false)
    }

    /// The leg's stream was renegotiated (re-INVITE or UPDATE with new SDP): records the new
    /// SDP and, when the device announced a new address, lets the next acceptable source
    /// re-latch both ports, while the current source stays the destination until one does.
    /// Restarts the media timeout.
    pub fn renegotiate(
        &mut self,
        now: Instant,
        channel: ChannelId,
        peer: Peer,
    ) -> Result<(), ChannelError> {
        self.update_peer(now, channel, peer, true)
    }

    /// Sets the SRTP keys of the channel's device (see [`SrtpKeys`]). A key equal to the one
    /// in force keeps its context (rollover counter and replay window): a re-INVITE repeating
    /// the same `a=crypto` does not disturb the stream. `SrtpKeys::default()` makes both
    /// directions plain RTP.
    pub fn set_srtp(&mut self, channel: ChannelId, keys: &SrtpKeys) -> Result<(), ChannelError> {
        let index = self.index(channel)?;
        let ch = &mut self.channels[index];
        let mut srtp = ch.srtp.take().unwrap_or_default();
        let r = srtp.update(keys);
        if !srtp.is_empty() {
            ch.srtp = Some(srtp);
        }
        r.map_err(|_| ChannelError::SrtpKey(channel))
    }

    /// Pairs two channels (the two Internet legs of a call): packets from one's device leave
    /// from the other's port to the other's device. Previous partners are left unpaired.
    pub fn pair(&mut self, now: Instant, a: ChannelId, b: ChannelId) -> Result<(), ChannelError> {
        let (ia, ib) = (self.index(a)?, self.index(b)?);
        if ia == ib {
            return Err(ChannelError::SelfPairing(a));
        }
        let old = [self.detach(ia), self.detach(ib)];
        self.channels[ia].pairing = Pairing::Channel(b.index);
        self.channels[ib].pairing = Pairing::Channel(a.index);
        self.reschedule_calls_of(now, &[ia, ib]);
        self.reschedule_calls_of(now, &old.into_iter().flatten().collect::<Vec<_>>());
        Ok(())
    }

    /// Pairs a channel with an internal phone that keeps its own address: packets from the
    /// channel's device go from the channel's port to `peer`, and packets from `peer` to the
    /// channel's port go to the device. A previous partner is left unpaired.
    pub fn pair_direct(
        &mut self,
        now: Instant,
        channel: ChannelId,
        peer: DirectPeer,
    ) -> Result<(), ChannelError> {
        let index = self.index(channel)?;
        let old = self.detach(index);
        self.channels[index].pairing = Pairing::Direct(peer);
        self.reschedule_calls_of(now, &[index]);
        self.reschedule_calls_of(now, old.as_slice());
        Ok(())
    }

    /// Leaves a channel (and its partner) with nowhere to forward to.
    pub fn unpair(&mut self, now: Instant, channel: ChannelId) -> Result<(), ChannelError> {
        let index = self.index(channel)?;
        let old = self.detach(index);
        self.reschedule_calls_of(now, &[index]);
        self.reschedule_calls_of(now, old.as_slice());
        Ok(())
    }

    /// Changes the simultaneous-Internet-calls limit (the upstream bandwidth was set again).
    /// Calls already up keep their channels even above a lower limit.
    pub fn set_internet_call_limit(&mut self, limit: Option<u32>) {
        self.config.internet_calls = limit;
    }

    /// Counters and latched addresses of a channel.
    pub fn snapshot(&self, channel: ChannelId) -> Result<ChannelStats, ChannelError> {
        let index = self.index(channel)?;
        Ok(self.channels[index].stats(self.rtp_port_of(channel.index)))
    }

    /// Pool-level figures.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            capacity: self.config.channels(),
            in_use: self.in_use,
            internet_call_limit: self.config.internet_calls,
            calls: u32::try_from(self.calls.len()).unwrap_or(u32::MAX),
            refused_pool: self.refused_pool,
            refused_internet_calls: self.refused_internet,
            stray_packets: self.stray,
        }
    }

    /// The next socket command for the driver. Drain after every control call.
    pub fn poll_command(&mut self) -> Option<RelayCommand> {
        self.commands.pop_front()
    }

    /// The next event. Drain after every input.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    fn update_peer(
        &mut self,
        now: Instant,
        channel: ChannelId,
        peer: Peer,
        renegotiated: bool,
    ) -> Result<(), ChannelError> {
        let index = self.index(channel)?;
        if peer.clock_rate == 0 {
            return Err(ChannelError::ZeroClockRate(channel));
        }
        let policy = self.config.latching;
        let ch = &mut self.channels[index];
        // Only a device that announced a new address may move its stream: a hold, resume or
        // session refresh keeps the address, and reopening the latch then would let whichever
        // allowed source sends first (on a shared IP, another device) take the stream over.
        let moved = ch
            .peer
            .is_some_and(|old| old.rtp != peer.rtp || old.rtcp != peer.rtcp);
        ch.set_peer(peer, policy);
        if renegotiated && moved {
            ch.rtp_latch.open();
            ch.rtcp_latch.open();
        }
        let call = ch.call;
        self.reschedule(now, call, renegotiated);
        Ok(())
    }

    /// The slot of a live channel id.
    fn index(&self, channel: ChannelId) -> Result<usize, ChannelError> {
        let i = channel.index as usize;
        match self.channels.get(i) {
            Some(ch) if ch.in_use && ch.generation == channel.generation => Ok(i),
            _ => Err(ChannelError::Unknown(channel)),
        }
    }

    pub(crate) fn rtp_port_of(&self, index: u32) -> RelayPort {
        // index < channels(), so base + 2·index <= the range's last port.
        RelayPort::new(self.base + 2 * index as u16)
    }

    pub(crate) fn channel_id(&self, index: usize) -> ChannelId {
        ChannelId {
            index: index as u32,
            generation: self.channels[index].generation,
        }
    }

    /// Unpairs a slot and its partner channel; returns the partner.
    fn detach(&mut self, index: usize) -> Option<usize> {
        let mut partner = None;
        if let Pairing::Channel(o) = self.channels[index].pairing {
            let other = &mut self.channels[o as usize];
            if other.pairing == Pairing::Channel(index as u32) {
                other.pairing = Pairing::Unpaired;
                partner = Some(o as usize);
            }
        }
        self.channels[index].pairing = Pairing::Unpaired;
        partner
    }

    fn reschedule_calls_of(&mut self, now: Instant, indices: &[usize]) {
        for &i in indices {
            let call = self.channels[i].call;
            self.reschedule(now, call, false);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests;

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod srtp_tests;

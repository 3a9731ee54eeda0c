//! [`MediaControl`] over a [`relay::Relay`] owned by the same thread: for tests and tools that
//! drive the call core without relay workers.

use std::collections::HashMap;
use std::time::Instant;

use relay::{ChannelId, DirectPeer, LimitHit, Peer, Relay, SrtpKeys};

use super::{CallRef, MediaControl, MediaLeg};

/// A relay core and the channels each call's legs hold in it.
#[derive(Debug)]
pub struct LocalRelay {
    /// The relay core; drive its packets and timers from the owner.
    pub relay: Relay,
    channels: HashMap<(CallRef, MediaLeg), ChannelId>,
}

impl LocalRelay {
    /// Wraps a relay core.
    pub fn new(relay: Relay) -> LocalRelay {
        LocalRelay {
            relay,
            channels: HashMap::new(),
        }
    }

    /// The channel `leg` of `call` holds.
    pub fn channel(&self, call: CallRef, leg: MediaLeg) -> Option<ChannelId> {
        self.channels.get(&(call, leg)).copied()
    }
}

fn relay_call(call: CallRef) -> relay::CallRef {
    relay::CallRef(call.0)
}

impl MediaControl for LocalRelay {
    fn allocate(&mut self, now: Instant, call: CallRef, leg: MediaLeg) -> Result<u16, LimitHit> {
        let id = self.relay.allocate(now, relay_call(call), leg.leg_ref())?;
        self.channels.insert((call, leg), id);
        // The id was just allocated.
        Ok(self.relay.rtp_port(id).map(|p| p.get()).unwrap_or_default())
    }

    fn set_peer(
        &mut self,
        now: Instant,
        call: CallRef,
        leg: MediaLeg,
        peer: Peer,
        renegotiated: bool,
    ) {
        if let Some(id) = self.channel(call, leg) {
            let _ = if renegotiated {
                self.relay.renegotiate(now, id, peer)
            } else {
                self.relay.set_peer(now, id, peer)
            };
        }
    }

    fn set_srtp(&mut self, _now: Instant, call: CallRef, leg: MediaLeg, keys: SrtpKeys) {
        if let Some(id) = self.channel(call, leg) {
            let _ = self.relay.set_srtp(id, &keys);
        }
    }

    fn pair(&mut self, now: Instant, call: CallRef) {
        if let (Some(a), Some(b)) = (
            self.channel(call, MediaLeg::Caller),
            self.channel(call, MediaLeg::Callee),
        ) {
            let _ = self.relay.pair(now, a, b);
        }
    }

    fn pair_direct(&mut self, now: Instant, call: CallRef, leg: MediaLeg, peer: DirectPeer) {
        if let Some(id) = self.channel(call, leg) {
            let _ = self.relay.pair_direct(now, id, peer);
        }
    }

    fn release(&mut self, now: Instant, call: CallRef, leg: MediaLeg) {
        if let Some(id) = self.channels.remove(&(call, leg)) {
            let _ = self.relay.release(now, id);
        }
    }

    fn release_call(&mut self, now: Instant, call: CallRef) {
        self.channels.retain(|(c, _), _| *c != call);
        self.relay.release_call(now, relay_call(call));
    }
}

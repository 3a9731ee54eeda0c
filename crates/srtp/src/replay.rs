//! Per-SSRC state: the RTP packet index estimate (RFC 3711 §3.3.1, appendix A), the replay
//! window (§3.3.2) and the SRTCP index.

use crate::error::SrtpError;

/// Packets the replay window remembers behind the highest index (RFC 3711 §3.3.2: at least 64).
const WINDOW: u64 = 64;

/// SSRCs a context tracks. A full table refuses new SSRCs instead of forgetting one: a
/// forgotten stream would restart at ROC 0, so an old packet could be replayed inbound and a
/// keystream reused outbound.
pub(crate) const MAX_STREAMS: usize = 16;

/// The highest index accepted and which of the [`WINDOW`] before it were seen.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Window {
    highest: Option<u64>,
    /// Bit `d` set: index `highest - d` was accepted.
    seen: u64,
}

impl Window {
    pub(crate) fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Refuses an index accepted already or older than the window.
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(h) = self.highest else {
            return Ok(());
        };
        if index > h {
            return Ok(());
        }
        let delta = h - index;
        if delta >= WINDOW || self.seen & (1 << delta) != 0 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Records an authenticated index.
    pub(crate) fn accept(&mut self, index: u64) {
        match self.highest {
            None => {
                self.highest = Some(index);
                self.seen = 1;
            }
            Some(h) if index > h => {
                let shift = index - h;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(index);
            }
            Some(h) => self.seen |= 1 << (h - index),
        }
    }
}

/// The 48-bit packet index `ROC || SEQ` a packet with sequence number `seq` most likely has,
/// given the highest index so far (RFC 3711 §3.3.1 and appendix A). `None`: the packet would
/// precede the first one seen (ROC −1), so it is refused as too old.
pub(crate) fn estimate_index(highest: Option<u64>, seq: u16) -> Option<u64> {
    let Some(h) = highest else {
        // The first packet of a stream: s_l = SEQ, ROC = 0.
        return Some(u64::from(seq));
    };
    let roc = h >> 16;
    let s_l = (h & 0xffff) as i32;
    let seq_i = i32::from(seq);
    let v = if s_l < 32768 {
        if seq_i - s_l > 32768 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 32768 > seq_i {
        // The ROC is 32 bits: it wraps with the index.
        (roc + 1) & 0xffff_ffff
    } else {
        roc
    };
    Some((v << 16) | u64::from(seq))
}

/// The state of one SSRC in one context.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    pub(crate) rtp: Window,
    pub(crate) rtcp: Window,
    /// The next SRTCP index to send (outbound contexts).
    pub(crate) rtcp_next: u32,
}

/// A fixed table of streams: no allocation once built.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    slots: [Stream; MAX_STREAMS],
    used: usize,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            slots: [Stream::default(); MAX_STREAMS],
            used: 0,
        }
    }
}

impl Streams {
    /// The slot of `ssrc`, if known.
    pub(crate) fn find(&self, ssrc: u32) -> Option<usize> {
        self.slots[..self.used].iter().position(|s| s.ssrc == ssrc)
    }

    /// The slot of `ssrc`, taking a free one for a new SSRC.
    pub(crate) fn find_or_insert(&mut self, ssrc: u32) -> Result<usize, SrtpError> {
        if let Some(i) = self.find(ssrc) {
            return Ok(i);
        }
        if self.used == MAX_STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        self.slots[self.used] = Stream {
            ssrc,
            ..Stream::default()
        };
        self.used += 1;
        Ok(self.used - 1)
    }

    /// Whether a new SSRC could still be taken.
    pub(crate) fn has_room(&self) -> bool {
        self.used < MAX_STREAMS
    }

    pub(crate) fn get(&self, i: usize) -> &Stream {
        &self.slots[i]
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> &mut Stream {
        &mut self.slots[i]
    }
}

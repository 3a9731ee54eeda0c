//! The SRTP side of a channel: the device's key (inbound) and homeline's key for the device
//! (outbound), each with its context. A key given again unchanged keeps its context, rollover
//! counter and replay window included, so a re-INVITE that repeats `a=crypto` changes nothing.

use srtp::{Context, MasterKey, SrtpError};

use crate::rtp::Kind;

/// The keys of a channel's device: what it encrypts with, and what homeline encrypts towards
/// it with. `None` for a direction that is plain RTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The device's key, from its `a=crypto`: packets from the device are authenticated and
    /// decrypted with it. `None` with an `outbound` key: the device's key is not known yet,
    /// and packets from the device are dropped.
    pub inbound: Option<MasterKey>,
    /// Homeline's key for the device, from the `a=crypto` homeline sent it: packets to the
    /// device are encrypted with it.
    pub outbound: Option<MasterKey>,
}

/// One direction's key and context.
#[derive(Debug)]
struct Direction {
    key: MasterKey,
    context: Context,
}

/// A channel's SRTP state.
#[derive(Debug, Default)]
pub(crate) struct ChannelSrtp {
    inbound: Option<Direction>,
    outbound: Option<Direction>,
}

/// Why a packet failed SRTP, for the channel counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Authentication failed (or the packet was not SRTP at all).
    Auth,
    /// A replayed or too old packet.
    Replay,
    /// Anything else (too many SSRCs, index space used up, no room).
    Other,
    /// The device's key is not known yet (SRTP offered to it, its answer not in): nothing
    /// from it can be authenticated, and nothing may pass as plain RTP.
    KeyPending,
}

impl From<SrtpError> for Failure {
    fn from(e: SrtpError) -> Self {
        match e {
            SrtpError::Replayed => Failure::Replay,
            SrtpError::AuthFailed
            | SrtpError::TooShort
            | SrtpError::Malformed
            | SrtpError::Unencrypted => Failure::Auth,
            _ => Failure::Other,
        }
    }
}

impl ChannelSrtp {
    /// Applies `keys`: an unchanged key keeps its context. `Err` when a context cannot be
    /// built (the crypto library refused the key).
    pub(crate) fn update(&mut self, keys: &SrtpKeys) -> Result<(), SrtpError> {
        update(&mut self.inbound, keys.inbound.as_ref())?;
        update(&mut self.outbound, keys.outbound.as_ref())
    }

    /// Whether any direction is SRTP.
    pub(crate) fn is_empty(&self) -> bool {
        self.inbound.is_none() && self.outbound.is_none()
    }

    pub(crate) fn has_inbound(&self) -> bool {
        self.inbound.is_some()
    }

    pub(crate) fn has_outbound(&self) -> bool {
        self.outbound.is_some()
    }

    /// Authenticates and decrypts a packet from the device in place; returns its plain
    /// length. Plain RTP when the device sends no SRTP.
    #[inline]
    pub(crate) fn unprotect(&mut self, buf: &mut [u8], kind: Kind) -> Result<usize, Failure> {
        let Some(d) = self.inbound.as_mut() else {
            // SDES keys both directions at once (RFC 4568): a leg with a key for the device
            // and none from it is waiting for the device's answer.
            if self.outbound.is_some() {
                return Err(Failure::KeyPending);
            }
            return Ok(buf.len());
        };
        let r = match kind {
            Kind::Rtcp => d.context.unprotect_rtcp(buf),
            _ => d.context.unprotect_rtp(buf),
        };
        r.map_err(Failure::from)
    }

    /// Encrypts a packet for the device in place (`buf[..len]`, room after it); returns the
    /// length to send.
    #[inline]
    pub(crate) fn protect(
        &mut self,
        buf: &mut [u8],
        len: usize,
        rtcp: bool,
    ) -> Result<usize, Failure> {
        let Some(d) = self.outbound.as_mut() else {
            return Ok(len);
        };
        let r = if rtcp {
            d.context.protect_rtcp(buf, len)
        } else {
            d.context.protect_rtp(buf, len)
        };
        r.map_err(Failure::from)
    }
}

fn update(slot: &mut Option<Direction>, key: Option<&MasterKey>) -> Result<(), SrtpError> {
    match (slot.as_ref(), key) {
        (_, None) => *slot = None,
        (Some(d), Some(k)) if d.key == *k => {}
        (_, Some(k)) => {
            *slot = Some(Direction {
                key: k.clone(),
                context: Context::new(k)?,
            })
        }
    }
    Ok(())
}

//! SDES-SRTP per leg (RFC 4568): homeline terminates SRTP on each leg with its own keys, so a
//! leg can be SRTP while the other is plain RTP, or SRTP under other keys; the relay decrypts
//! and re-encrypts. A device's key is never passed to the other side.
//!
//! - Keys are only ever offered or answered on a leg whose signalling is TLS: an `a=crypto`
//!   arriving over anything else is answered without crypto (`RTP/AVP`, optional SRTP) or
//!   refused with 488 (`RTP/SAVP`, mandatory SRTP).
//! - Homeline's own key for a leg is made once and kept for the call, so re-INVITEs answer with
//!   the same `a=crypto` and the relay keeps the stream's rollover counter; a device that
//!   re-offers its key unchanged keeps its context too.
//! - Homeline offers SRTP to a TLS callee when the caller offered SRTP or the callee's station
//!   requires payload security (then as `RTP/SAVP`).

use rand::RngCore;
use relay::{MasterKey, SrtpKeys, SrtpSuite};
use sip_proto::path::{Path, Transport};

use super::media::MediaError;
use crate::sdp::{choose_crypto, crypto_value, Sdp};

/// Whether `sdp` is an offer or an answer (RFC 3264).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdpRole {
    /// A new offer (INVITE, re-INVITE, UPDATE, a target's offer in a transfer).
    Offer,
    /// The answer to the last offer.
    Answer,
}

/// The SRTP state of one leg.
#[derive(Debug, Clone, Default)]
pub(crate) struct LegSdes {
    /// Homeline's key for this leg's device; made on first use, kept for the call.
    ours: Option<MasterKey>,
    /// The device's key from its `a=crypto`; `None` while the leg is plain RTP.
    device: Option<MasterKey>,
    /// The tag of the device's offered line homeline accepted, echoed in the answer.
    answer_tag: Option<u32>,
    /// Homeline offered SRTP to this leg (tag 1) and awaits the answer.
    offered: bool,
    /// The profile of the device's last offer, or of homeline's last offer to it, was
    /// `RTP/SAVP`: SRTP is mandatory on this leg.
    savp: bool,
    /// The station requires payload security.
    pub(crate) required: bool,
}

impl LegSdes {
    /// The keys the relay channel of this leg uses: both directions SRTP once the device's key
    /// is known; while homeline's offer of SRTP awaits the answer, only the way to the device
    /// (which has homeline's key from the offer), so that the relay drops what comes from the
    /// device until its key is known: an answerer often sends its first SRTP packets before
    /// its answer is in, and they must not pass as plain RTP (nor anything else sent to the
    /// port meanwhile); else plain.
    pub(crate) fn keys(&self) -> SrtpKeys {
        match (&self.device, &self.ours) {
            (Some(d), Some(o)) => SrtpKeys {
                inbound: Some(d.clone()),
                outbound: Some(o.clone()),
            },
            (None, Some(o)) if self.offered => SrtpKeys {
                inbound: None,
                outbound: Some(o.clone()),
            },
            _ => SrtpKeys::default(),
        }
    }

    /// Whether the leg is (or is being offered) SRTP.
    pub(crate) fn is_srtp(&self) -> bool {
        self.device.is_some() || self.offered
    }
}

/// Whether the first audio stream of `sdp` carries `a=crypto` (the device offers SDES).
pub(crate) fn offers_sdes(sdp: &Sdp) -> bool {
    sdp.audio()
        .is_some_and(|a| a.crypto().next().is_some() || a.is_savp())
}

/// Reads the SRTP part of `sdp` from the device on `leg` (reached over `path`).
pub(crate) fn on_incoming(
    leg: &mut LegSdes,
    sdp: &Sdp,
    role: SdpRole,
    path: &Path,
    rng: &mut dyn RngCore,
) -> Result<(), MediaError> {
    let Some(audio) = sdp.audio() else {
        return Ok(());
    };
    let tls = path.transport == Transport::Tls;
    match role {
        SdpRole::Offer => {
            leg.savp = audio.is_savp();
            leg.offered = false;
            leg.answer_tag = None;
            let chosen = if tls {
                choose_crypto(audio.crypto())
            } else {
                Err(None)
            };
            match chosen {
                Ok((tag, key)) => {
                    if leg.ours.as_ref().is_none_or(|o| o.suite() != key.suite()) {
                        leg.ours = Some(new_key(key.suite(), rng));
                    }
                    leg.device = Some(key);
                    leg.answer_tag = Some(tag);
                }
                Err(why) => {
                    leg.device = None;
                    if leg.savp || leg.required {
                        return Err(MediaError::Srtp(match (tls, why) {
                            (false, _) if audio.crypto().next().is_some() => {
                                "SDES keys are only accepted over TLS".into()
                            }
                            (false, _) => "payload security requires TLS".into(),
                            (true, Some(why)) => format!("no acceptable a=crypto: {why}"),
                            (true, None) => "RTP/SAVP offer without a=crypto".into(),
                        }));
                    }
                }
            }
        }
        SdpRole::Answer if leg.offered => {
            let ours = leg.ours.as_ref().map(MasterKey::suite);
            let answered = audio.crypto().find(|c| c.tag == 1).map(|c| c.master_key());
            match answered {
                Some(Ok(key)) if tls && Some(key.suite()) == ours => leg.device = Some(key),
                _ if leg.savp => {
                    return Err(MediaError::Srtp(
                        "the answer to an RTP/SAVP offer has no usable a=crypto".into(),
                    ))
                }
                _ => leg.device = None,
            }
            leg.offered = false;
        }
        SdpRole::Answer => {}
    }
    Ok(())
}

/// Writes the SRTP part of the SDP `out` going to the device on `leg` (reached over `path`),
/// which is an offer or the answer to the device's offer. `from` is the other leg, whose
/// suite and profile an offer follows.
pub(crate) fn on_outgoing(
    leg: &mut LegSdes,
    from: &LegSdes,
    out: &mut Sdp,
    role: SdpRole,
    path: &Path,
    rng: &mut dyn RngCore,
) {
    let tls = path.transport == Transport::Tls;
    let mut lines = Vec::new();
    let mut savp = false;
    match role {
        SdpRole::Answer => {
            if let (Some(tag), Some(ours), true) = (leg.answer_tag, &leg.ours, tls) {
                lines.push(crypto_value(tag, ours));
                savp = leg.savp;
            }
        }
        SdpRole::Offer => {
            // The device's key stays in force until its answer replaces it.
            leg.offered = false;
            if tls && (from.is_srtp() || leg.required) {
                let suite = leg
                    .ours
                    .as_ref()
                    .map(MasterKey::suite)
                    .or(from.device.as_ref().map(MasterKey::suite))
                    .unwrap_or(SrtpSuite::AesCm128HmacSha1_80);
                let ours = leg.ours.get_or_insert_with(|| new_key(suite, rng));
                lines.push(crypto_value(1, ours));
                leg.offered = true;
                savp = leg.required || from.savp;
                leg.savp = savp;
            }
        }
    }
    let Some(i) = out.audio_index() else {
        return;
    };
    let audio = &mut out.media_mut()[i];
    audio.set_crypto(&lines);
    audio.set_savp(savp);
}

/// A fresh master key from `rng`: the operating system's CSPRNG in service (the core's seeded
/// RNG, whose seed is 64 bits, is no key source).
fn new_key(suite: SrtpSuite, rng: &mut dyn RngCore) -> MasterKey {
    let mut m = [0u8; 30];
    let n = suite.key_len() + suite.salt_len();
    rng.fill_bytes(&mut m[..n]);
    MasterKey::new(suite, &m[..n]).expect("key and salt have the suite's lengths")
}

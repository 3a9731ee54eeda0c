//! Media anchoring of a call: which legs take a relay channel, and what each SDP body becomes on
//! its way to the other side (RFC 3264 offer/answer through a B2BUA, RFC 4961 symmetric RTP).
//!
//! A leg whose device is in the external zone crosses the Internet: it gets a relay channel and
//! sees only homeline's public address and that channel's ports. An internal phone talking to
//! a remote one sends to the remote leg's channel on homeline's internal address. Two internal
//! phones keep direct media: their SDP passes unchanged and no channel is taken.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use policy::Zone;
use relay::{DirectPeer, LimitHit, Peer, SrtpKeys};
use sip::StatusCode;
use sip_proto::path::Path;

use super::sdes::{self, LegSdes, SdpRole};
use super::CallRef;
use crate::sdp::{self, MediaEndpoint, Sdp};

/// Which leg of a call a relay channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaLeg {
    /// The calling device's side.
    Caller,
    /// The called device's side (shared by every fork that crosses the Internet).
    Callee,
}

impl MediaLeg {
    /// The other leg.
    pub fn other(self) -> MediaLeg {
        match self {
            MediaLeg::Caller => MediaLeg::Callee,
            MediaLeg::Callee => MediaLeg::Caller,
        }
    }

    /// The relay's reference for this leg.
    pub fn leg_ref(self) -> relay::LegRef {
        relay::LegRef(match self {
            MediaLeg::Caller => 0,
            MediaLeg::Callee => 1,
        })
    }

    /// Lower-case name for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaLeg::Caller => "caller",
            MediaLeg::Callee => "callee",
        }
    }
}

/// The RTP relay as the call core drives it. The `net` crate implements it over its relay
/// workers; tests implement it over a [`relay::Relay`] in the same thread.
pub trait MediaControl: std::fmt::Debug + Send {
    /// Takes a channel for `leg` of `call` and returns its RTP port, or the limit that refuses
    /// it (the call is then refused before it rings).
    fn allocate(&mut self, now: Instant, call: CallRef, leg: MediaLeg) -> Result<u16, LimitHit>;
    /// What `leg`'s latest SDP says about its device; `renegotiated` when it replaces an
    /// earlier offer/answer (re-INVITE, UPDATE), which lets the channel re-latch.
    fn set_peer(
        &mut self,
        now: Instant,
        call: CallRef,
        leg: MediaLeg,
        peer: Peer,
        renegotiated: bool,
    );
    /// The SRTP keys of `leg`'s device (see [`SrtpKeys`]); an unchanged key keeps its
    /// context, rollover counter included.
    fn set_srtp(&mut self, now: Instant, call: CallRef, leg: MediaLeg, keys: SrtpKeys);
    /// Pairs the call's two channels (both legs cross the Internet).
    fn pair(&mut self, now: Instant, call: CallRef);
    /// Pairs `leg`'s channel with an internal phone that keeps its own address.
    fn pair_direct(&mut self, now: Instant, call: CallRef, leg: MediaLeg, peer: DirectPeer);
    /// Gives back `leg`'s channel.
    fn release(&mut self, now: Instant, call: CallRef, leg: MediaLeg);
    /// Gives back every channel of `call`.
    fn release_call(&mut self, now: Instant, call: CallRef);
}

/// A relay that is never needed: for cores that only ever see internal calls (tests, tools).
/// Any allocation is refused as if the pool were empty.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRelay;

impl MediaControl for NoRelay {
    fn allocate(&mut self, _: Instant, _: CallRef, _: MediaLeg) -> Result<u16, LimitHit> {
        Err(LimitHit::PoolExhausted { capacity: 0 })
    }
    fn set_peer(&mut self, _: Instant, _: CallRef, _: MediaLeg, _: Peer, _: bool) {}
    fn set_srtp(&mut self, _: Instant, _: CallRef, _: MediaLeg, _: SrtpKeys) {}
    fn pair(&mut self, _: Instant, _: CallRef) {}
    fn pair_direct(&mut self, _: Instant, _: CallRef, _: MediaLeg, _: DirectPeer) {}
    fn release(&mut self, _: Instant, _: CallRef, _: MediaLeg) {}
    fn release_call(&mut self, _: Instant, _: CallRef) {}
}

/// Why a body could not be passed to the other side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// SRTP cannot be agreed on a leg that requires it (no TLS, no usable `a=crypto`).
    #[error("{0}")]
    Srtp(String),
    /// The body is no SDP the relay can rewrite, on a call that needs the relay.
    #[error("{0}")]
    Unreadable(String),
    /// No address to give one side for the relay (no public address configured).
    #[error("no {0} media address is configured for the relay")]
    NoAddress(&'static str),
    /// A relay limit refuses the call.
    #[error("{0}")]
    Limit(#[from] LimitHit),
}

impl MediaError {
    /// The status that refuses the request carrying the body.
    pub fn status(&self) -> StatusCode {
        match self {
            MediaError::Unreadable(_) | MediaError::Srtp(_) => StatusCode::NOT_ACCEPTABLE_HERE,
            MediaError::NoAddress(_) | MediaError::Limit(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What homeline tells each zone's devices to send media to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaAddresses {
    /// Public address of the relay (the office router's, forwarded 1:1). `None`: the external
    /// listener's address when it is specific.
    pub public: Option<IpAddr>,
    /// Address internal phones send relayed media to. `None`: the internal listener's address
    /// when it is specific.
    pub internal: Option<IpAddr>,
    /// The public address is learned at run time (STUN, DynDNS) because the external listener
    /// sits behind the office NAT: its own address never stands in for `public`, so while
    /// nothing is known a call that needs the relay is refused (503 with a Warning) instead
    /// of being given a private address.
    pub learned: bool,
}

impl MediaAddresses {
    /// The address a device reached over `path` should send relayed media to.
    pub(crate) fn for_path(&self, path: &Path) -> Result<IpAddr, MediaError> {
        let listener = Some(path.local.ip()).filter(|ip| !ip.is_unspecified());
        match path.zone {
            Zone::External => self
                .public
                .or(listener.filter(|_| !self.learned))
                .ok_or(MediaError::NoAddress("public")),
            Zone::Internal => self
                .internal
                .or(listener)
                .ok_or(MediaError::NoAddress("internal")),
        }
    }
}

/// The media state of one leg.
#[derive(Debug, Clone, Default)]
pub(crate) struct LegMedia {
    /// The relay channel's RTP port, when the leg is anchored.
    pub(crate) port: Option<u16>,
    /// Where the device last said it receives.
    pub(crate) endpoint: Option<MediaEndpoint>,
    /// SDES-SRTP on this leg.
    pub(crate) sdes: LegSdes,
}

/// The media state of a call.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallMedia {
    pub(crate) caller: LegMedia,
    pub(crate) callee: LegMedia,
    paired: bool,
}

impl CallMedia {
    /// One leg's media state.
    pub(crate) fn leg_mut(&mut self, leg: MediaLeg) -> &mut LegMedia {
        match leg {
            MediaLeg::Caller => &mut self.caller,
            MediaLeg::Callee => &mut self.callee,
        }
    }

    /// One leg's media state, read only.
    pub(crate) fn leg_ref(&self, leg: MediaLeg) -> &LegMedia {
        match leg {
            MediaLeg::Caller => &self.caller,
            MediaLeg::Callee => &self.callee,
        }
    }

    /// Whether any leg is anchored.
    pub(crate) fn anchored(&self) -> bool {
        self.caller.port.is_some() || self.callee.port.is_some()
    }
}

/// Whether the caller's offer `body`, received over `path`, makes its leg SRTP: SDES keys
/// homeline accepts, over TLS.
pub fn caller_sdes(body: Option<&(String, Bytes)>, path: &Path) -> bool {
    path.transport == sip_proto::path::Transport::Tls
        && body
            .filter(|(ct, _)| is_sdp(ct))
            .and_then(|(_, b)| Sdp::parse(b).ok())
            .and_then(|s| s.audio().map(|a| sdp::choose_crypto(a.crypto()).is_ok()))
            .unwrap_or(false)
}

/// Whether a callee-side device reached over `path` needs a relay channel: it crosses the
/// Internet, or it is reached over TLS and its leg will be SRTP (`srtp`), whose keys only the
/// relay can translate.
pub(crate) fn needs_channel(path: &Path, srtp: bool) -> bool {
    path.zone == Zone::External || (srtp && path.transport == sip_proto::path::Transport::Tls)
}

/// Takes the channels a new call needs: one for the caller when it is external or SRTP
/// (`caller_srtp`), one for the callee side when any contact rung is external, or is reached
/// over TLS and will be offered SRTP (the caller's leg is SRTP, or the callee station requires
/// payload security, `callee_secure`). SRTP legs go through the relay even between two
/// internal phones: it translates keys. On a refusal nothing stays allocated.
#[allow(clippy::too_many_arguments)] // the call, both sides and their security
pub(crate) fn admit(
    ctl: &mut dyn MediaControl,
    addrs: &MediaAddresses,
    now: Instant,
    call: CallRef,
    caller: &Path,
    caller_srtp: bool,
    callees: &[&Path],
    callee_secure: bool,
) -> Result<CallMedia, MediaError> {
    let mut media = CallMedia::default();
    media.callee.sdes.required = callee_secure;
    let mut need = Vec::new();
    if caller.zone == Zone::External || caller_srtp {
        need.push((MediaLeg::Caller, caller));
    }
    if let Some(p) = callees
        .iter()
        .find(|p| needs_channel(p, caller_srtp || callee_secure))
    {
        need.push((MediaLeg::Callee, p));
    }
    // Both sides must have an address before any channel is taken.
    if !need.is_empty() {
        addrs.for_path(caller)?;
        for p in callees {
            addrs.for_path(p)?;
        }
    }
    for (leg, _) in need {
        match ctl.allocate(now, call, leg) {
            Ok(port) => media.leg_mut(leg).port = Some(port),
            Err(hit) => {
                ctl.release_call(now, call);
                return Err(MediaError::Limit(hit));
            }
        }
    }
    Ok(media)
}

/// Takes the callee side's channel for forks added to a running call (forwarding) when one of
/// them crosses the Internet and the side has none yet. On a refusal the call keeps what it
/// had: only the new forks are given up.
pub(crate) fn admit_more(
    ctl: &mut dyn MediaControl,
    addrs: &MediaAddresses,
    now: Instant,
    call: CallRef,
    media: &mut CallMedia,
    caller: &Path,
    callees: &[&Path],
) -> Result<(), MediaError> {
    let srtp = media.caller.sdes.is_srtp() || media.callee.sdes.required;
    if media.callee.port.is_some() || !callees.iter().any(|p| needs_channel(p, srtp)) {
        return Ok(());
    }
    addrs.for_path(caller)?;
    for p in callees {
        addrs.for_path(p)?;
    }
    media.callee.port = Some(ctl.allocate(now, call, MediaLeg::Callee)?);
    Ok(())
}

/// The body a message from `from` (reached over `from_path`) carries to the other side
/// (reached over `to_path`): unchanged when neither leg is anchored, else the SDP rewritten to
/// the relay; the relay learns the sender's device and the pairing on the way.
#[allow(clippy::too_many_arguments)] // one SDP hop: who, where from, where to, what
pub(crate) fn pass(
    ctl: &mut dyn MediaControl,
    addrs: &MediaAddresses,
    now: Instant,
    call: CallRef,
    media: &mut CallMedia,
    from: MediaLeg,
    from_path: &Path,
    to_path: &Path,
    body: Option<(String, Bytes)>,
    renegotiated: bool,
    role: SdpRole,
) -> Result<Option<(String, Bytes)>, MediaError> {
    let Some((ct, bytes)) = body else {
        return Ok(None);
    };
    let anchored = media.anchored();
    if !is_sdp(&ct) {
        if !anchored {
            // Direct media between two internal phones: homeline does not touch their SDP.
            return Ok(Some((ct, bytes)));
        }
        return Err(MediaError::Unreadable(format!(
            "a {ct} body cannot be anchored in the relay; send application/sdp"
        )));
    }
    let sdp = match Sdp::parse(&bytes) {
        Ok(s) => s,
        Err(_) if !anchored => return Ok(Some((ct, bytes))),
        Err(e) => return Err(MediaError::Unreadable(format!("SDP: {e}"))),
    };
    let to = from.other();
    sdes::on_incoming(
        &mut media.leg_mut(from).sdes,
        &sdp,
        role,
        from_path,
        &mut rand::rngs::OsRng,
    )?;
    if !anchored {
        if !sdes::offers_sdes(&sdp) {
            // Direct media between two internal phones: homeline does not touch their SDP.
            return Ok(Some((ct, bytes)));
        }
        // SDES that cannot be used here (no TLS) is answered plain; the keys go nowhere.
        let mut out = sdp;
        let other = media.leg_mut(from).sdes.clone();
        let rng = &mut rand::rngs::OsRng;
        sdes::on_outgoing(
            &mut media.leg_mut(to).sdes,
            &other,
            &mut out,
            role,
            to_path,
            rng,
        );
        out.bump_version();
        return Ok(Some((ct, Bytes::from(out.to_bytes()))));
    }
    let endpoint = sdp::media_endpoint(&sdp);
    media.leg_mut(from).endpoint = endpoint;
    let src_port = media.leg_mut(from).port;
    let dst_port = media.leg_mut(to).port;
    if src_port.is_some() {
        let peer = peer_of(&sdp, endpoint, from_path.remote.ip());
        ctl.set_peer(now, call, from, peer, renegotiated);
    }
    let ip = addrs.for_path(to_path)?;
    let mut out = match dst_port.or(src_port) {
        Some(port) => sdp::anchor(&sdp, ip, port, false),
        None => sdp,
    };
    let other = media.leg_mut(from).sdes.clone();
    sdes::on_outgoing(
        &mut media.leg_mut(to).sdes,
        &other,
        &mut out,
        role,
        to_path,
        &mut rand::rngs::OsRng,
    );
    for leg in [from, to] {
        if media.leg_mut(leg).port.is_some() {
            let keys = media.leg_mut(leg).sdes.keys();
            ctl.set_srtp(now, call, leg, keys);
        }
    }
    // A private relay address is the operator's choice (a lab, loopback tests); any other
    // private address on an external leg would be a leak.
    if to_path.zone == Zone::External && !sdp::is_private(ip) && sdp::contains_private_address(&out)
    {
        // anchor() rewrites every address line; reaching here is a bug, and the body would
        // leak the office's addressing, so it is not sent.
        return Err(MediaError::Unreadable(
            "the rewritten SDP still names a private address".into(),
        ));
    }
    match (src_port, dst_port) {
        (Some(_), Some(_)) if !media.paired => {
            ctl.pair(now, call);
            media.paired = true;
        }
        (Some(_), None) => {
            if let Some(peer) = media.leg_mut(to).endpoint.and_then(direct_peer) {
                ctl.pair_direct(now, call, from, peer);
            }
        }
        (None, Some(_)) => {
            if let Some(peer) = endpoint.and_then(direct_peer) {
                ctl.pair_direct(now, call, to, peer);
            }
        }
        _ => {}
    }
    Ok(Some((ct, Bytes::from(out.to_bytes()))))
}

fn is_sdp(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
}

/// An internal phone's address as the relay sends to it.
fn direct_peer(ep: MediaEndpoint) -> Option<DirectPeer> {
    if ep.addr.is_unspecified() {
        return None;
    }
    Some(DirectPeer {
        rtp: SocketAddr::new(ep.addr, ep.rtp_port),
        rtcp: Some(SocketAddr::new(ep.addr, ep.rtcp_port)),
    })
}

/// What the relay should know of the device that wrote `sdp`.
fn peer_of(sdp: &Sdp, ep: Option<MediaEndpoint>, signalling: IpAddr) -> Peer {
    let mut peer = Peer {
        signalling_ip: Some(signalling),
        ..Peer::default()
    };
    if let Some(ep) = ep.filter(|e| !e.addr.is_unspecified()) {
        peer.rtp = Some(SocketAddr::new(ep.addr, ep.rtp_port));
        peer.rtcp = Some(SocketAddr::new(ep.addr, ep.rtcp_port));
    }
    if let Some(audio) = sdp.audio() {
        let codecs = audio.codecs();
        if let Some(main) = codecs
            .iter()
            .filter_map(|(_, c)| c.as_ref())
            .find(|c| !c.is_auxiliary())
        {
            peer.clock_rate = main.clock_rate.max(1);
        }
        peer.telephone_event = codecs
            .iter()
            .find(|(_, c)| c.as_ref().is_some_and(|c| c.is_telephone_event()))
            .map(|(pt, _)| pt.number());
        peer.direction = match sdp.direction_of(audio) {
            sdp::Direction::SendRecv => relay::Direction::SendRecv,
            sdp::Direction::SendOnly => relay::Direction::SendOnly,
            sdp::Direction::RecvOnly => relay::Direction::RecvOnly,
            sdp::Direction::Inactive => relay::Direction::Inactive,
        };
    }
    peer
}

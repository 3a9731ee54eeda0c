//! Call control of homeline: the future sans-IO B2BUA.
//!
//! A B2BUA core will be a plain struct driven like every homeline core (STYLE.md §2): the `net`
//! crate feeds it SIP events with `handle_*(now, ..)`, drains its outputs with `poll_*`, and asks
//! `poll_timeout` when to call `handle_timeout`. It never reads a clock or opens a socket.
//!
//! Today the crate holds the piece every call needs first, the SDP layer ([`sdp`]):
//!
//! - an exact SDP parser and printer (RFC 8866): unknown lines are kept verbatim and in order, so a
//!   rewritten body differs from the received one only where homeline changed it;
//! - offer/answer codec and direction rules (RFC 3264), with the 488 mapping for "no common codec";
//! - anchoring of a leg in the RTP relay: addresses and ports rewritten to the relay, ICE removed,
//!   the origin version bumped (RFC 3264 §8), and a check that no private address leaks onto an
//!   external leg.
//!
//! RFCs: 8866 (SDP, obsoletes 4566), 3264 (offer/answer), 3551 (static payload types), 3605
//! (`a=rtcp`), 5761 (`a=rtcp-mux`), 4568 (`a=crypto`), 4733 (telephone-event), 7587 (Opus),
//! 8839 (ICE SDP attributes), 5118 (IPv6 in SDP), 1918 / 6598 / 4193 (private address ranges).

pub mod b2bua;
pub mod payload_security;
pub mod sdp;
pub mod sips;

//! Anchoring a leg in the RTP relay: what the relay expects from the device, and the SDP the
//! other side gets instead of the device's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::connection::Connection;
use super::ice::is_ice_attribute;
use super::line::Line;
use super::rtcp::Rtcp;
use super::Sdp;

/// Where a device said it receives the call's audio: the relay's "expected peer" before
/// latching onto the address packets really come from (symmetric RTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaEndpoint {
    /// The stream's connection address (media-level `c=`, else session-level). `0.0.0.0` (or
    /// `::`) on an RFC 2543 hold: the relay keeps its latched peer then.
    pub addr: IpAddr,
    /// The `m=` port.
    pub rtp_port: u16,
    /// The `a=rtcp` port (RFC 3605), else the RTP port + 1 (RFC 3550 §11). Its address, if
    /// `a=rtcp` names another one, is not kept: the relay latches RTCP like RTP.
    pub rtcp_port: u16,
    /// Whether the SDP carries `a=rtcp-mux` (RFC 5761): in an offer only a willingness, in an
    /// answer the agreement to send RTCP on the RTP port.
    pub rtcp_mux: bool,
}

/// The endpoint of the first enabled audio stream; `None` when there is none, or its address
/// is a domain name (never resolved here: the core does no I/O).
pub fn media_endpoint(sdp: &Sdp) -> Option<MediaEndpoint> {
    let audio = sdp.audio()?;
    let addr = sdp.connection_of(audio)?.ip()?;
    let rtp_port = audio.port();
    Some(MediaEndpoint {
        addr,
        rtp_port,
        rtcp_port: audio.rtcp().map_or(rtp_port.saturating_add(1), |r| r.port),
        rtcp_mux: audio.rtcp_mux(),
    })
}

/// The SDP to send on the other side of the relay: a copy of `sdp` with
///
/// - the `o=` address replaced by `public_ip` and the session version bumped (RFC 3264 §8), so
///   the device's address does not leak through the origin either;
/// - every `c=` line, session and media level, set to `public_ip` (`IN IP4` or `IN IP6` as its
///   family says); an unspecified address (`0.0.0.0`, RFC 2543 hold) stays unspecified, in the
///   family of `public_ip`, so a hold still reads as one;
/// - the first enabled audio stream's `m=` port set to `rtp_port`, and its `a=rtcp` (if any)
///   set to the relay's RTCP port, `rtp_port + 1`, or `rtp_port` itself when `rtcp_mux` and
///   the original `a=rtcp` pointed at the RTP port (muxed), with its address set to `public_ip`
///   (a malformed `a=rtcp` is removed: it cannot be rewritten and might name the device);
/// - `a=rtcp-mux` and `a=rtcp-mux-only` removed when `rtcp_mux` is false (the relay keeps RTP
///   and RTCP apart on this leg); never added when it is true (an answer may not add it);
/// - every other enabled stream disabled (port 0, RFC 3264 §8.2): the relay has one port pair per
///   leg, and a stream it does not carry must not point at the device; `a=rtcp` removed from
///   those streams;
/// - every ICE attribute removed (see [`super::ICE_ATTRIBUTES`]): the relay is the only path.
///
/// Every other line is byte-identical, in order, with its line ending. Relay ports are even
/// (RFC 3550 §11), so `rtp_port + 1` does not overflow.
pub fn anchor(sdp: &Sdp, public_ip: IpAddr, rtp_port: u16, rtcp_mux: bool) -> Sdp {
    let mut out = sdp.clone();
    let mut origin = out.origin().clone();
    origin.set_ip(public_ip);
    origin.bump_version();
    out.set_origin(origin);

    // `a=rtcp` is a media-level attribute (RFC 3605 §2.1): at session level it is not
    // rewritten, so it does not pass.
    out.remove_session_lines(|l| is_ice_line(l) || l.is_attribute("rtcp"));
    out.session_lines_mut()
        .iter_mut()
        .for_each(|l| rewrite_connection(l, public_ip));

    let anchored = out.audio_index();
    for (i, section) in out.media_mut().iter_mut().enumerate() {
        let original_rtp = section.port();
        let is_anchored = Some(i) == anchored;
        section.remove_lines(|l| {
            is_ice_line(l)
                || (!rtcp_mux && (l.is_attribute("rtcp-mux") || l.is_attribute("rtcp-mux-only")))
                || (l.is_attribute("rtcp") && (!is_anchored || !is_valid_rtcp(l)))
        });
        for line in section.lines_mut() {
            rewrite_connection(line, public_ip);
            if is_anchored {
                rewrite_rtcp(line, public_ip, original_rtp, rtp_port, rtcp_mux);
            }
        }
        if is_anchored {
            section.set_port(rtp_port);
        } else if section.is_active() {
            section.set_port(0);
        }
        section.remove_lines(names_private_address);
    }
    out.remove_session_lines(names_private_address);
    out
}

/// A line other than the ones rewritten above that names a private address, like a WebRTC or
/// baresip `a=ssrc:… cname:user@192.168.1.20`, or an `i=`/`u=` line quoting one: it would tell
/// the other side the device's LAN address, and nothing the relay carries depends on it, so it
/// is dropped. A value that is not UTF-8 is read leniently: it is no excuse to pass an address.
fn names_private_address(line: &Line) -> bool {
    match line.kind() {
        // Rewritten by anchor(), or carry no address.
        Some(b'v' | b'o' | b'c' | b'm' | b't' | b'r' | b'z') => return false,
        Some(b'a') if line.is_attribute("rtcp") => return false,
        _ => {}
    }
    let raw = line.value();
    // An attribute's name is no address: look at its value only (after the first colon).
    let raw = match line.kind() {
        Some(b'a') => raw
            .iter()
            .position(|&b| b == b':')
            .map_or(&raw[raw.len()..], |i| &raw[i + 1..]),
        _ => raw,
    };
    let value = String::from_utf8_lossy(raw);
    let named = value
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        // `ip:port`, `name:ip` and IPv6 literals all occur: try the token and both sides of its
        // last colon.
        .flat_map(|token| {
            let (before, after) = token.rsplit_once(':').unwrap_or((token, token));
            [token, before, after]
        })
        .filter_map(|t| t.trim_matches(':').parse::<IpAddr>().ok())
        .any(super::is_private);
    named
}

fn is_ice_line(line: &Line) -> bool {
    line.attribute().is_some_and(|a| is_ice_attribute(a.name))
}

/// A well-formed `a=rtcp` line; a malformed one is dropped rather than passed on unrewritten.
fn is_valid_rtcp(line: &Line) -> bool {
    line.attribute()
        .and_then(|a| a.value)
        .and_then(Rtcp::parse)
        .is_some()
}

fn rewrite_connection(line: &mut Line, public_ip: IpAddr) {
    if line.kind() != Some(b'c') {
        return;
    }
    let held = line
        .value_str()
        .and_then(Connection::parse)
        .is_some_and(|c| c.is_unspecified());
    let ip = if held {
        unspecified_like(public_ip)
    } else {
        public_ip
    };
    line.set_value(&Connection::from_ip(ip).to_string());
}

fn rewrite_rtcp(line: &mut Line, public_ip: IpAddr, original_rtp: u16, rtp_port: u16, mux: bool) {
    let Some(attribute) = line.attribute().filter(|a| a.name == "rtcp") else {
        return;
    };
    let Some(mut rtcp) = attribute.value.and_then(Rtcp::parse) else {
        return;
    };
    // RFC 5761 §5.1.3: an `a=rtcp` equal to the RTP port says "muxed"; any other is the port
    // RTCP uses when not muxed, the second port of the relay's pair.
    rtcp.port = if mux && rtcp.port == original_rtp {
        rtp_port
    } else {
        rtp_port.saturating_add(1)
    };
    if rtcp.connection.is_some() {
        rtcp.connection = Some(Connection::from_ip(public_ip));
    }
    line.set_value(&format!("rtcp:{rtcp}"));
}

fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

//! ICE attributes (RFC 8839; RFC 5245 §15 before it).
//!
//! homeline's relay does not speak ICE: a leg anchored in it has exactly one transport address,
//! the relay's. Anchoring therefore removes every ICE attribute, so that a peer neither runs
//! connectivity checks against candidates that bypass the relay nor learns the device's private
//! and reflexive addresses. Outside anchoring they are kept verbatim (internal calls keep direct
//! media and may use ICE end to end). The browser leg's ICE is str0m's job, not this module's.

use std::net::IpAddr;

/// Attribute names removed when a leg is anchored.
pub const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

/// Whether `name` is an ICE attribute (see [`ICE_ATTRIBUTES`]).
pub fn is_ice_attribute(name: &str) -> bool {
    ICE_ATTRIBUTES.contains(&name)
}

/// The IP addresses an ICE attribute reveals: a candidate's connection address and its `raddr`
/// (RFC 8839 §5.1), or each address of `a=remote-candidates` (§5.2). Names (mDNS) are skipped.
pub(crate) fn addresses(name: &str, value: &str) -> Vec<IpAddr> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let mut found: Vec<IpAddr> = Vec::new();
    match name {
        // foundation component transport priority address port typ type [raddr a] [rport p] ...
        "candidate" => {
            found.extend(fields.get(4).and_then(|a| a.parse::<IpAddr>().ok()));
            let raddr = fields.windows(2).find(|w| w[0] == "raddr");
            found.extend(raddr.and_then(|w| w[1].parse::<IpAddr>().ok()));
        }
        // (component address port)+
        "remote-candidates" => {
            found.extend(
                fields
                    .chunks(3)
                    .filter_map(|c| c.get(1)?.parse::<IpAddr>().ok()),
            );
        }
        _ => {}
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8839_5_1_candidate_addresses() {
        let host = "1 1 UDP 2130706431 10.0.0.20 4000 typ host";
        assert_eq!(
            addresses("candidate", host),
            ["10.0.0.20".parse::<IpAddr>().unwrap()]
        );
        let srflx = "2 1 UDP 1694498815 198.51.100.20 61000 typ srflx raddr 10.0.0.20 rport 4000";
        assert_eq!(
            addresses("candidate", srflx),
            [
                "198.51.100.20".parse::<IpAddr>().unwrap(),
                "10.0.0.20".parse().unwrap()
            ]
        );
        let mdns = "1 1 udp 2122262783 4e0b9a4c-2f0e.local 54321 typ host";
        assert!(addresses("candidate", mdns).is_empty());
    }

    #[test]
    fn rfc8839_5_2_remote_candidates() {
        let v = "1 192.168.1.30 5000 2 192.168.1.30 5001";
        assert_eq!(addresses("remote-candidates", v).len(), 2);
        assert!(is_ice_attribute("ice-ufrag") && !is_ice_attribute("rtcp"));
    }
}

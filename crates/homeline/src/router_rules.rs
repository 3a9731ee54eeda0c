//! `homeline router-rules`: the office router's port-forwarding table for the configured ports
//! (the brief's "Zones" table), as text and as ready-to-run iptables or nftables rules.
//! Configuring the office router is where most installations fail, so the rules are printed
//! from the same configuration the server runs with.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Result};
use clap::ValueEnum;
use net::NetConfig;

/// Output forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The forwarding table, for any router's web interface.
    Text,
    /// A shell script of iptables commands (Linux routers).
    Iptables,
    /// An nftables ruleset (`nft -f`).
    Nftables,
}

/// What the router forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    /// What it is for.
    pub(crate) service: &'static str,
    /// "udp" or "tcp".
    pub(crate) protocol: &'static str,
    /// Public port (or first port of a range).
    pub(crate) public: u16,
    /// Last public port of a range (= `public` for one port).
    pub(crate) public_end: u16,
    /// homeline's port (first of a range, which maps 1:1).
    pub(crate) to_port: u16,
}

/// The options of the command.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// homeline's address on the office LAN (the forwards' destination).
    pub(crate) lan_ip: Option<IpAddr>,
    /// The router's Internet-facing interface.
    pub(crate) wan_interface: String,
    /// The public SIP port phones at home use (the brief: 5060, like the office phones).
    pub(crate) public_sip_port: u16,
    /// homeline's external-zone TLS port (`tls.external_port`), `None` without TLS: forwarded
    /// from the public SIP port + 1 (the brief: 5061 → 5063).
    pub(crate) tls_port: Option<u16>,
    /// The form to print.
    pub(crate) format: Format,
}

/// The forwards for the configured external listeners and relay range.
pub(crate) fn forwards(
    config: &NetConfig,
    public_sip_port: u16,
    tls_port: Option<u16>,
) -> Vec<Forward> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for addr in config.external.iter().filter(|a| a.is_ipv4()) {
        if seen.contains(&addr.port()) {
            continue;
        }
        seen.push(addr.port());
        for protocol in ["udp", "tcp"] {
            out.push(Forward {
                service: "SIP (Device@Home)",
                protocol,
                public: public_sip_port,
                public_end: public_sip_port,
                to_port: addr.port(),
            });
        }
    }
    if let Some(port) = tls_port.filter(|p| *p != 0 && !config.external.is_empty()) {
        let public = public_sip_port.saturating_add(1);
        out.push(Forward {
            service: "SIP over TLS (Device@Home)",
            protocol: "tcp",
            public,
            public_end: public,
            to_port: port,
        });
    }
    let ports = &config.media.relay.ports;
    out.push(Forward {
        service: "RTP relay (media)",
        protocol: "udp",
        public: *ports.start(),
        public_end: *ports.end(),
        to_port: *ports.start(),
    });
    out
}

/// homeline's LAN address: given, else the external listener's or the relay's configured one.
fn lan_ip(config: &NetConfig, given: Option<IpAddr>) -> Result<IpAddr> {
    if let Some(ip) = given {
        return Ok(ip);
    }
    let specific = |a: &SocketAddr| Some(a.ip()).filter(|ip| ip.is_ipv4() && !ip.is_unspecified());
    config
        .external
        .iter()
        .find_map(specific)
        .or(config.media.internal_ip.filter(|ip| ip.is_ipv4()))
        .map_or_else(
            || {
                bail!(
                    "--lan-ip: homeline's address on the office LAN is needed (the external \
                     listener is bound to every address and media.internal_ip is not set)"
                )
            },
            Ok,
        )
}

/// The text the command prints.
pub(crate) fn render(config: &NetConfig, opts: &Options) -> Result<String> {
    let lan = lan_ip(config, opts.lan_ip)?;
    if !lan.is_ipv4() {
        bail!("--lan-ip: {lan} is not an IPv4 address (office routers forward IPv4)");
    }
    if opts.wan_interface.is_empty()
        || !opts
            .wan_interface
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        bail!(
            "--wan-interface: {:?} is not an interface name",
            opts.wan_interface
        );
    }
    let fwd = forwards(config, opts.public_sip_port, opts.tls_port);
    Ok(match opts.format {
        Format::Text => text(&fwd, lan),
        Format::Iptables => iptables(&fwd, lan, &opts.wan_interface),
        Format::Nftables => nftables(&fwd, lan, &opts.wan_interface),
    })
}

fn range(a: u16, b: u16, sep: char) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}{sep}{b}")
    }
}

fn text(fwd: &[Forward], lan: IpAddr) -> String {
    let mut s = String::from(
        "Office router port forwarding for homeline (public → homeline):\n\n\
         service              protocol  public port(s)   →  homeline\n",
    );
    for f in fwd {
        let to = if f.public == f.public_end {
            format!("{lan}:{}", f.to_port)
        } else {
            format!(
                "{lan}:{} (1:1)",
                range(f.to_port, f.to_port + (f.public_end - f.public), '-')
            )
        };
        let _ = writeln!(
            s,
            "{:<20} {:<9} {:<16} →  {to}",
            f.service,
            f.protocol.to_uppercase(),
            range(f.public, f.public_end, '-')
        );
    }
    s.push_str(
        "\nNothing else needs forwarding: the admin portal is never exposed. The home routers of\n\
         remote phones need no configuration. Print rules with --format iptables or nftables.\n",
    );
    s
}

fn iptables(fwd: &[Forward], lan: IpAddr, wan: &str) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# homeline: office router port forwarding (run as root on the router).\nset -e\n",
    );
    for f in fwd {
        let dport = range(f.public, f.public_end, ':');
        // A range keeps its destination port (1:1); DNAT to a port range would pick ports.
        let to = if f.public == f.public_end {
            format!("{lan}:{}", f.to_port)
        } else {
            lan.to_string()
        };
        let fport = range(f.to_port, f.to_port + (f.public_end - f.public), ':');
        let _ = writeln!(s, "# {}", f.service);
        let _ = writeln!(
            s,
            "iptables -t nat -A PREROUTING -i {wan} -p {} --dport {dport} -j DNAT --to-destination {to}",
            f.protocol
        );
        let _ = writeln!(
            s,
            "iptables -A FORWARD -i {wan} -p {} -d {lan} --dport {fport} -j ACCEPT",
            f.protocol
        );
    }
    s
}

fn nftables(fwd: &[Forward], lan: IpAddr, wan: &str) -> String {
    let mut pre = String::new();
    let mut accept = String::new();
    for f in fwd {
        let dport = range(f.public, f.public_end, '-');
        let to = if f.public == f.public_end {
            format!("{lan}:{}", f.to_port)
        } else {
            lan.to_string()
        };
        let fport = range(f.to_port, f.to_port + (f.public_end - f.public), '-');
        let _ = writeln!(
            pre,
            "        iifname \"{wan}\" {} dport {dport} dnat to {to}",
            f.protocol
        );
        let _ = writeln!(
            accept,
            "        iifname \"{wan}\" ip daddr {lan} {} dport {fport} accept",
            f.protocol
        );
    }
    format!(
        "#!/usr/sbin/nft -f\n# homeline: office router port forwarding (nft -f FILE on the router).\n\
         table ip homeline {{\n    chain prerouting {{\n        type nat hook prerouting priority dstnat; policy accept;\n{pre}    }}\n\
         \x20   chain forward {{\n        type filter hook forward priority filter; policy accept;\n{accept}    }}\n}}\n"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> NetConfig {
        NetConfig {
            external: vec![
                "192.168.1.10:5062".parse().unwrap(),
                "[::]:5062".parse().unwrap(),
            ],
            ..NetConfig::default()
        }
    }

    fn opts(format: Format) -> Options {
        Options {
            lan_ip: None,
            wan_interface: "wan0".into(),
            public_sip_port: 5060,
            tls_port: Some(5063),
            format,
        }
    }

    #[test]
    fn brief_table_sip_5060_to_5062_and_relay_range_one_to_one() {
        let f = forwards(&config(), 5060, Some(5063));
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f
            .iter()
            .any(|f| f.protocol == "tcp" && f.public == 5061 && f.to_port == 5063));
        assert_eq!(forwards(&config(), 5060, None).len(), 3);
        assert!(f
            .iter()
            .any(|f| f.protocol == "udp" && f.public == 5060 && f.to_port == 5062));
        assert!(f
            .iter()
            .any(|f| f.protocol == "tcp" && f.public == 5060 && f.to_port == 5062));
        assert!(f
            .iter()
            .any(|f| f.public == 30000 && f.public_end == 30999 && f.to_port == 30000));
        let t = render(&config(), &opts(Format::Text)).unwrap();
        assert!(
            t.contains("30000-30999") && t.contains("192.168.1.10:5062"),
            "{t}"
        );
    }

    #[test]
    fn iptables_and_nftables_rules_name_the_lan_address_and_ports() {
        let ipt = render(&config(), &opts(Format::Iptables)).unwrap();
        assert!(ipt.contains(
            "iptables -t nat -A PREROUTING -i wan0 -p udp --dport 5060 -j DNAT --to-destination 192.168.1.10:5062"
        ));
        assert!(ipt.contains("--dport 30000:30999 -j DNAT --to-destination 192.168.1.10\n"));
        let nft = render(&config(), &opts(Format::Nftables)).unwrap();
        assert!(nft.contains("iifname \"wan0\" udp dport 30000-30999 dnat to 192.168.1.10"));
        assert!(nft.contains("tcp dport 5060 dnat to 192.168.1.10:5062"));
    }

    #[test]
    fn wildcard_listener_needs_lan_ip_and_bad_values_name_the_option() {
        let c = NetConfig::default();
        let e = render(&c, &opts(Format::Text)).unwrap_err().to_string();
        assert!(e.contains("--lan-ip"), "{e}");
        let mut o = opts(Format::Text);
        o.lan_ip = Some("192.168.1.10".parse().unwrap());
        assert!(render(&c, &o).is_ok());
        o.wan_interface = "eth0; rm -rf /".into();
        let e = render(&c, &o).unwrap_err().to_string();
        assert!(e.contains("--wan-interface"), "{e}");
        o.wan_interface = "eth0".into();
        o.lan_ip = Some("::1".parse().unwrap());
        assert!(render(&c, &o).unwrap_err().to_string().contains("--lan-ip"));
    }
}

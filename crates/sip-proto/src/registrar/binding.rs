//! Registrar bindings: one contact of an address-of-record (RFC 3261 §10.3).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use policy::Zone;
use sip::header::NameAddr;
use sip::Uri;

use crate::path::{FlowId, Path, Transport};

/// An address-of-record: the station number a binding belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor(pub String);

/// One registered contact, with where it was actually seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The station.
    pub aor: Aor,
    /// The Contact URI as registered (URI parameters and escaped headers kept, RFC 4475 §3.3.13–14).
    pub contact: String,
    /// `+sip.instance` (RFC 5626), unquoted.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER that created or refreshed it.
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
    /// When it expires.
    pub expires_at: Instant,
    /// Zone of the listener it came in on.
    pub zone: Zone,
    /// Transport it came over.
    pub transport: Transport,
    /// Address the REGISTER actually came from (the NAT's public side for a home phone).
    pub source: SocketAddr,
    /// Listener it came in on.
    pub local: SocketAddr,
    /// Connection for TCP/TLS/WS: requests to this contact go over it.
    pub flow: Option<FlowId>,
    /// `q` value, if given.
    pub q: Option<f32>,
    /// User-Agent of the device.
    pub user_agent: Option<String>,
    /// The Contact's address differs from the source seen: a NAT (or a SIP ALG) is in between.
    pub nat: NatHint,
    /// The expiry last handed to the store (see [`Binding::is_quiet_refresh_of`]).
    pub persisted_until: Instant,
}

/// What the registrar could tell about the path from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatHint {
    /// Contact and Via name the address the request came from.
    None,
    /// Contact names another address (typically private): the device is behind a NAT.
    Nat,
    /// Contact already names the public source but Via does not: a SIP ALG rewrote the Contact.
    Alg,
}

impl NatHint {
    /// Short name for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            NatHint::None => "none",
            NatHint::Nat => "nat",
            NatHint::Alg => "alg",
        }
    }
}

impl Binding {
    /// The key identifying this binding within its AOR: the instance and reg-id when the device
    /// sent them (RFC 5626 §6), else the contact URI.
    pub fn key(&self) -> String {
        match (&self.instance, self.reg_id) {
            (Some(i), Some(r)) => format!("{i};reg-id={r}"),
            (Some(i), None) => i.clone(),
            _ => self.contact.clone(),
        }
    }

    /// True when `self` refreshes `old` without changing anything but its expiry, Call-ID and CSeq
    /// (those only guard against reordered REGISTERs, harmless if stale after a crash), and
    /// extends the stored expiry by less than a tenth of `granted`: such a refresh need not be
    /// written, since after a crash the binding would come back at most 10 % short.
    pub fn is_quiet_refresh_of(&self, old: &Binding, granted: std::time::Duration) -> bool {
        self.contact == old.contact
            && self.source == old.source
            && self.local == old.local
            && self.flow == old.flow
            && self.zone == old.zone
            && self.transport == old.transport
            && self.instance == old.instance
            && self.reg_id == old.reg_id
            && self.q == old.q
            && self.user_agent == old.user_agent
            && self.nat == old.nat
            && self
                .expires_at
                .saturating_duration_since(old.persisted_until)
                < granted / 10
    }

    /// Where a request for this device goes (RFC 5626 §5.3, RFC 3261 §19.1.4): over its flow when
    /// it has one; on the external zone always to the address the device was seen at (its home
    /// NAT), never to the Contact it wrote, which names its private address; on the internal
    /// zone to the Contact's IP and port (the source when the Contact names a host name, which
    /// this sans-IO core does not resolve). The Request-URI is the registered Contact.
    pub fn path(&self) -> Path {
        let remote = match self.zone {
            policy::Zone::External => self.source,
            policy::Zone::Internal if self.flow.is_some() => self.source,
            policy::Zone::Internal => contact_addr(&self.contact).unwrap_or(self.source),
        };
        Path {
            local: self.local,
            remote,
            transport: self.transport,
            zone: self.zone,
            flow: self.flow,
        }
    }

    /// The Contact value for a 200 OK, with the seconds left.
    pub fn contact_value(&self, now: Instant) -> String {
        let left = self.expires_at.saturating_duration_since(now).as_secs();
        let mut v = format!("<{}>;expires={left}", self.contact);
        if let Some(i) = &self.instance {
            v.push_str(&format!(";+sip.instance=\"{i}\""));
        }
        if let Some(r) = self.reg_id {
            v.push_str(&format!(";reg-id={r}"));
        }
        v
    }
}

/// Compares the Contact and top-Via addresses with the source actually seen.
pub(crate) fn nat_hint(
    contact: &NameAddr,
    via_host: Option<IpAddr>,
    source: SocketAddr,
) -> NatHint {
    let contact_ip = match &contact.uri {
        Uri::Sip(u) => u.host.ip(),
        _ => None,
    };
    let contact_port = match &contact.uri {
        Uri::Sip(u) => u.port.unwrap_or(5060),
        _ => 5060,
    };
    let contact_is_source = contact_ip == Some(source.ip()) && contact_port == source.port();
    let via_is_source = via_host == Some(source.ip());
    match (contact_is_source, via_is_source) {
        (true, false) if via_host.is_some() => NatHint::Alg,
        (true, _) => NatHint::None,
        (false, _) => NatHint::Nat,
    }
}

/// The IP and port a Contact URI names, when its host is an IP literal (port 5060 by default).
fn contact_addr(contact: &str) -> Option<SocketAddr> {
    let Ok(Uri::Sip(u)) = Uri::parse(contact) else {
        return None;
    };
    let ip = u.host.ip()?;
    Some(SocketAddr::new(
        ip,
        u.port.unwrap_or(if u.secure { 5061 } else { 5060 }),
    ))
}

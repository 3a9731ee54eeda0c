//! Binding rows for the store, to and from the registrar's in-memory bindings.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip_proto::path::{FlowId, Transport};
use sip_proto::registrar::{Aor, Binding, NatHint};
use store::BindingRow;

/// Seconds since the Unix epoch for `at`, given the current pair of clocks.
fn unix_at(at: Instant, now: Instant, wall: SystemTime) -> i64 {
    let wall = wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    wall + at.saturating_duration_since(now).as_secs() as i64
}

/// The store row for a binding.
pub(crate) fn to_row(b: &Binding, now: Instant, wall: SystemTime) -> BindingRow {
    BindingRow {
        aor: b.aor.0.clone(),
        contact: b.contact.clone(),
        instance: b.instance.clone(),
        reg_id: b.reg_id,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        expires_at_unix: unix_at(b.expires_at, now, wall),
        zone: b.zone,
        transport: b.transport.as_str().to_string(),
        source: b.source,
        local: b.local,
        flow: b.flow.map(|f| f.0),
        q: b.q,
        user_agent: b.user_agent.clone(),
        contact_mismatch: b.nat != NatHint::None,
    }
}

/// A binding from a stored row; `None` when expired or unreadable. A stream binding comes back
/// without its flow: the connection died with the old process, and the device reconnects.
pub(crate) fn from_row(r: BindingRow, now: Instant, wall: SystemTime) -> Option<Binding> {
    let wall_now = wall
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let left = r.expires_at_unix - wall_now;
    if left <= 0 {
        return None;
    }
    let transport = Transport::parse(&r.transport)?;
    let expires_at = now + Duration::from_secs(left as u64);
    Some(Binding {
        aor: Aor(r.aor),
        contact: r.contact,
        instance: r.instance,
        reg_id: r.reg_id,
        call_id: r.call_id,
        cseq: r.cseq,
        expires_at,
        zone: r.zone,
        transport,
        source: r.source,
        local: r.local,
        flow: None::<FlowId>,
        q: r.q,
        user_agent: r.user_agent,
        nat: if r.contact_mismatch {
            NatHint::Nat
        } else {
            NatHint::None
        },
        persisted_until: expires_at,
    })
}

//! What the client and the probe share: datagrams out, the RFC 8489 retransmission schedule,
//! Binding requests and the parts of a Binding response they read.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;
use stun_types::attribute::{ErrorCode, XorMappedAddress};
use stun_types::message::{
    Message, MessageClass, MessageType, MessageWrite, MessageWriteExt, MessageWriteVec,
    TransactionId, BINDING,
};

use crate::attr::{ChangeRequest, MappedAddress, OtherAddress, ResponseOrigin};

/// One datagram for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local socket to send from.
    pub from: SocketAddr,
    /// Where to send it.
    pub to: SocketAddr,
    /// The STUN message.
    pub bytes: Vec<u8>,
}

/// Retransmission over UDP (RFC 8489 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Initial retransmission timeout; doubled after each send.
    pub rto: Duration,
    /// Rc: requests sent in all, the first included.
    pub rc: u32,
    /// Rm: after the last request, wait Rm × RTO for an answer before giving up.
    pub rm: u32,
}

impl Default for RetransmitConfig {
    /// The RFC's values: 500 ms, Rc = 7, Rm = 16 (sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s,
    /// gives up at 39.5 s).
    fn default() -> Self {
        Self {
            rto: Duration::from_millis(500),
            rc: 7,
            rm: 16,
        }
    }
}

/// Where one transaction is in its schedule.
#[derive(Debug, Clone)]
pub(crate) struct Retransmit {
    config: RetransmitConfig,
    /// Requests sent so far.
    sent: u32,
    /// When to resend (or give up).
    pub(crate) next: Instant,
}

/// What a timer expiry means for a transaction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RetransmitStep {
    /// Nothing due yet.
    Wait,
    /// Send the request again.
    Resend,
    /// Rc requests went unanswered for Rm × RTO after the last: the transaction failed.
    GiveUp,
}

impl Retransmit {
    /// The first request is being sent at `now`.
    pub(crate) fn start(now: Instant, config: RetransmitConfig) -> Self {
        let mut r = Self {
            config,
            sent: 1,
            next: now,
        };
        r.next = now + r.wait_after_send();
        r
    }

    /// After send k (1-based) the wait is RTO × 2^(k-1); after the last one it is Rm × RTO.
    fn wait_after_send(&self) -> Duration {
        if self.sent >= self.config.rc.max(1) {
            self.config.rto.saturating_mul(self.config.rm.max(1))
        } else {
            // Capped shift: a configuration with a huge Rc must not overflow.
            self.config
                .rto
                .saturating_mul(1u32 << (self.sent - 1).min(20))
        }
    }

    pub(crate) fn on_timeout(&mut self, now: Instant) -> RetransmitStep {
        if now < self.next {
            return RetransmitStep::Wait;
        }
        if self.sent >= self.config.rc.max(1) {
            return RetransmitStep::GiveUp;
        }
        self.sent += 1;
        self.next = now + self.wait_after_send();
        RetransmitStep::Resend
    }
}

/// A fresh 96-bit transaction id from the injected RNG (RFC 8489 §6: uniformly random).
pub(crate) fn new_transaction_id(rng: &mut impl RngCore) -> TransactionId {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id[4..]);
    TransactionId::from(u128::from_be_bytes(id))
}

/// A Binding request, with CHANGE-REQUEST when asked, and FINGERPRINT so a server sharing its
/// port with other protocols can tell it apart (RFC 8489 §7).
pub(crate) fn binding_request(tid: TransactionId, change: Option<ChangeRequest>) -> Vec<u8> {
    let mut w = Message::builder(
        MessageType::from_class_method(MessageClass::Request, BINDING),
        tid,
        MessageWriteVec::with_capacity(36),
    );
    if let Some(change) = change {
        w.add_attribute(&change)
            .expect("a Vec writer has no size limit and no integrity attribute yet");
    }
    w.add_fingerprint()
        .expect("a Vec writer has no size limit and FINGERPRINT is added once");
    w.finish()
}

/// The parts of a Binding response the client and the probe use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindingResponse {
    pub(crate) tid: TransactionId,
    /// `None` for a success response, the code for an error response.
    pub(crate) error: Option<u16>,
    /// XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS (servers that predate RFC 5389).
    pub(crate) mapped: Option<SocketAddr>,
    /// Both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS present and different: something on the
    /// path rewrote the plain one (an application-level gateway; XOR-MAPPED-ADDRESS exists
    /// because such boxes rewrite every copy of the address they find, RFC 8489 §14.2).
    pub(crate) rewritten: Option<bool>,
    pub(crate) other: Option<SocketAddr>,
    pub(crate) origin: Option<SocketAddr>,
}

/// Reads a Binding success or error response; anything else is `None`.
pub(crate) fn parse_binding_response(bytes: &[u8]) -> Option<BindingResponse> {
    let msg = Message::from_bytes(bytes).ok()?;
    if !msg.has_method(BINDING) || !msg.is_response() {
        return None;
    }
    let tid = msg.transaction_id();
    let error = match msg.class() {
        MessageClass::Error => Some(msg.attribute::<ErrorCode>().map(|e| e.code()).unwrap_or(0)),
        _ => None,
    };
    let xor = msg
        .attribute::<XorMappedAddress>()
        .map(|a| a.addr(tid))
        .ok();
    let plain = msg.attribute::<MappedAddress>().map(|a| a.addr()).ok();
    Some(BindingResponse {
        tid,
        error,
        mapped: xor.or(plain),
        rewritten: xor.zip(plain).map(|(x, p)| x != p),
        other: msg.attribute::<OtherAddress>().map(|a| a.addr()).ok(),
        origin: msg.attribute::<ResponseOrigin>().map(|a| a.addr()).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8489_6_2_1_schedule_is_0_500_1500_3500_7500_15500_31500_then_fail_at_39500() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(t0, RetransmitConfig::default());
        let mut sends = vec![0u128];
        let now = loop {
            let now = r.next;
            match r.on_timeout(now) {
                RetransmitStep::Resend => sends.push((now - t0).as_millis()),
                RetransmitStep::GiveUp => break now,
                RetransmitStep::Wait => unreachable!("woken at its own deadline"),
            }
        };
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!((now - t0).as_millis(), 39500);
    }

    #[test]
    fn early_wake_up_changes_nothing() {
        let t0 = Instant::now();
        let mut r = Retransmit::start(t0, RetransmitConfig::default());
        assert_eq!(
            r.on_timeout(t0 + Duration::from_millis(499)),
            RetransmitStep::Wait
        );
        assert_eq!(r.next, t0 + Duration::from_millis(500));
    }
}

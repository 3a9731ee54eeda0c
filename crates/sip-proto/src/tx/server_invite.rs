//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as amended by RFC 6026 §7.1).

use std::time::Duration;

use bytes::Bytes;
use sip::{HeaderName, Request, Response, StatusCode};

use super::ctx::Ctx;
use super::key::AckParts;
use super::timers::Timer;
use super::TxEvent;

/// State of an INVITE server transaction.
pub(crate) enum ServerInvite {
    /// Waiting for the TU. `last` is the latest provisional sent (re-sent on a retransmitted
    /// INVITE); `trying` is the 100 to send when the Trying timer fires first.
    Proceeding {
        last: Option<Bytes>,
        trying: Option<Bytes>,
    },
    /// A 3xx–6xx was sent: Timer G re-sends it over UDP, Timer H gives up waiting for the ACK.
    Completed { response: Bytes, interval: Duration },
    /// The ACK came: Timer I absorbs its retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026): INVITE retransmissions are absorbed until Timer L.
    Accepted(Box<Accepted>),
    /// Done; the layer drops the transaction.
    Terminated,
}

/// What the *Accepted* state keeps: the 2xx, and how to recognise its ACK.
pub(crate) struct Accepted {
    /// The 2xx as sent, for retransmission (§13.3.1.4, done here for the TU).
    response: Bytes,
    /// Current retransmission interval.
    interval: Duration,
    /// Call-ID, CSeq number and tags the ACK must carry.
    pub(crate) ack: AckParts,
    /// True once the ACK was passed to the TU.
    acked: bool,
}

impl ServerInvite {
    /// A new transaction for `request` (top Via already stamped): arms the 100 Trying timer.
    pub(crate) fn start(ctx: &mut Ctx<'_>, request: &Request) -> ServerInvite {
        ctx.arm(Timer::Trying);
        ServerInvite::Proceeding {
            last: None,
            trying: Some(trying(request)),
        }
    }

    /// A retransmission of the INVITE arrived: re-send the last response (§17.2.1); absorbed in
    /// Confirmed, and in Accepted once the ACK came (RFC 6026 §7.1).
    pub(crate) fn on_retransmission(self, ctx: &mut Ctx<'_>) -> ServerInvite {
        match &self {
            ServerInvite::Proceeding { last: Some(b), .. } => ctx.send(b),
            ServerInvite::Completed { response, .. } => ctx.send(response),
            ServerInvite::Accepted(a) if !a.acked => ctx.send(&a.response),
            _ => {}
        }
        self
    }

    /// An ACK matched; the flag says whether the TU must see it (the first ACK for a 2xx).
    pub(crate) fn on_ack(self, ctx: &mut Ctx<'_>) -> (ServerInvite, bool) {
        match self {
            ServerInvite::Completed { .. } => {
                ctx.cancel_all();
                if ctx.wait(Timer::I) {
                    (ServerInvite::Confirmed, false)
                } else {
                    (ServerInvite::Terminated, false)
                }
            }
            ServerInvite::Accepted(mut a) if !a.acked => {
                a.acked = true;
                ctx.cancel(Timer::Retransmit2xx);
                (ServerInvite::Accepted(a), true)
            }
            // Proceeding: an ACK before any final response means nothing (§17.2.1).
            other => (other, false),
        }
    }

    /// The TU sends `response`.
    pub(crate) fn respond(self, ctx: &mut Ctx<'_>, response: Response) -> ServerInvite {
        let status = response.status;
        match self {
            ServerInvite::Proceeding { .. } if status.is_provisional() => {
                ctx.cancel(Timer::Trying);
                let b = Bytes::from(response.to_bytes());
                ctx.send(&b);
                ServerInvite::Proceeding {
                    last: Some(b),
                    trying: None,
                }
            }
            ServerInvite::Proceeding { .. } if status.is_success() => {
                ctx.cancel_all();
                let b = Bytes::from(response.to_bytes());
                ctx.send(&b);
                ctx.arm(Timer::L);
                ctx.arm(Timer::Retransmit2xx);
                ServerInvite::Accepted(Box::new(Accepted {
                    response: b,
                    interval: ctx.initial(Timer::Retransmit2xx),
                    ack: AckParts::of(&response),
                    acked: false,
                }))
            }
            ServerInvite::Proceeding { .. } => {
                ctx.cancel_all();
                let b = Bytes::from(response.to_bytes());
                ctx.send(&b);
                ctx.arm(Timer::G);
                ctx.arm(Timer::H);
                ServerInvite::Completed {
                    response: b,
                    interval: ctx.initial(Timer::G),
                }
            }
            // RFC 6026 §7.1: a 2xx from the TU in Accepted goes to the transport.
            ServerInvite::Accepted(a) if status.is_success() => {
                ctx.send(&Bytes::from(response.to_bytes()));
                ServerInvite::Accepted(a)
            }
            other => {
                tracing::debug!(target: "sip::tx", tx = %ctx.id, %status, "response after the final one ignored");
                other
            }
        }
    }

    /// `timer` fired.
    pub(crate) fn on_timer(self, ctx: &mut Ctx<'_>, timer: Timer) -> ServerInvite {
        match (self, timer) {
            (
                ServerInvite::Proceeding {
                    last: None,
                    trying: Some(t),
                },
                Timer::Trying,
            ) => {
                ctx.send(&t);
                ServerInvite::Proceeding {
                    last: Some(t),
                    trying: None,
                }
            }
            (ServerInvite::Completed { response, interval }, Timer::G) => {
                ctx.send(&response);
                let interval = Timer::G.backoff(interval, ctx.cfg);
                ctx.arm_after(Timer::G, interval);
                ServerInvite::Completed { response, interval }
            }
            (ServerInvite::Completed { .. }, Timer::H) => {
                ctx.emit(TxEvent::TimedOut { tx: ctx.id });
                ServerInvite::Terminated
            }
            (ServerInvite::Confirmed, Timer::I) => ServerInvite::Terminated,
            (ServerInvite::Accepted(mut a), Timer::Retransmit2xx) if !a.acked => {
                ctx.send(&a.response);
                a.interval = Timer::Retransmit2xx.backoff(a.interval, ctx.cfg);
                ctx.arm_after(Timer::Retransmit2xx, a.interval);
                ServerInvite::Accepted(a)
            }
            (ServerInvite::Accepted(a), Timer::L) => {
                if !a.acked {
                    ctx.emit(TxEvent::AckTimedOut { tx: ctx.id });
                }
                ServerInvite::Terminated
            }
            (state, _) => state,
        }
    }

    /// The ACK identity of the 2xx, while in Accepted.
    pub(crate) fn ack_parts(&self) -> Option<&AckParts> {
        match self {
            ServerInvite::Accepted(a) => Some(&a.ack),
            _ => None,
        }
    }
}

/// The 100 Trying for `request`: §8.2.6.1 copies Timestamp; no To tag (§8.2.6.2).
fn trying(request: &Request) -> Bytes {
    let mut r = Response::for_request(request, StatusCode::TRYING, None);
    if let Some(ts) = request.headers.get(&HeaderName::Timestamp) {
        r.headers.push(HeaderName::Timestamp, ts);
    }
    Bytes::from(r.to_bytes())
}

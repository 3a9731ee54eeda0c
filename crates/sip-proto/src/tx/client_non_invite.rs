//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

use std::time::Duration;

use bytes::Bytes;
use sip::Response;

use super::ctx::Ctx;
use super::timers::Timer;
use super::TxEvent;

/// State of a non-INVITE client transaction.
pub(crate) enum ClientNonInvite {
    /// Sent; Timer E re-sends over UDP with a doubling interval, Timer F gives up.
    Trying { request: Bytes, interval: Duration },
    /// A provisional came; Timer E now re-sends every T2 (§17.1.2.2).
    Proceeding { request: Bytes },
    /// A final response came; Timer K absorbs its retransmissions.
    Completed,
    /// Done; the layer drops the transaction.
    Terminated,
}

impl ClientNonInvite {
    /// Sends the request and arms Timers E and F.
    pub(crate) fn start(ctx: &mut Ctx<'_>, request: Bytes) -> ClientNonInvite {
        ctx.send(&request);
        ctx.arm(Timer::E);
        ctx.arm(Timer::F);
        ClientNonInvite::Trying {
            request,
            interval: ctx.initial(Timer::E),
        }
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(self, ctx: &mut Ctx<'_>, response: Response) -> ClientNonInvite {
        match self {
            ClientNonInvite::Trying { request, .. } | ClientNonInvite::Proceeding { request } => {
                let provisional = response.status.is_provisional();
                ctx.emit(TxEvent::Response {
                    tx: ctx.id,
                    response,
                });
                if provisional {
                    return ClientNonInvite::Proceeding { request };
                }
                ctx.cancel_all();
                if ctx.wait(Timer::K) {
                    ClientNonInvite::Completed
                } else {
                    ClientNonInvite::Terminated
                }
            }
            // Completed: retransmitted finals are absorbed.
            other => other,
        }
    }

    /// `timer` fired.
    pub(crate) fn on_timer(self, ctx: &mut Ctx<'_>, timer: Timer) -> ClientNonInvite {
        match (self, timer) {
            (ClientNonInvite::Trying { request, interval }, Timer::E) => {
                ctx.send(&request);
                let interval = Timer::E.backoff(interval, ctx.cfg);
                ctx.arm_after(Timer::E, interval);
                ClientNonInvite::Trying { request, interval }
            }
            (ClientNonInvite::Proceeding { request }, Timer::E) => {
                ctx.send(&request);
                ctx.arm_after(Timer::E, ctx.cfg.t2);
                ClientNonInvite::Proceeding { request }
            }
            (ClientNonInvite::Trying { .. } | ClientNonInvite::Proceeding { .. }, Timer::F) => {
                ctx.emit(TxEvent::TimedOut { tx: ctx.id });
                ClientNonInvite::Terminated
            }
            (ClientNonInvite::Completed, Timer::K) => ClientNonInvite::Terminated,
            (state, _) => state,
        }
    }
}

//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

use bytes::Bytes;
use sip::Response;

use super::ctx::Ctx;
use super::timers::Timer;

/// State of a non-INVITE server transaction.
pub(crate) enum ServerNonInvite {
    /// No response yet: retransmissions are absorbed silently.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding { last: Bytes },
    /// A final response was sent; retransmissions get it again until Timer J.
    Completed { response: Bytes },
    /// Done; the layer drops the transaction.
    Terminated,
}

impl ServerNonInvite {
    /// A retransmission of the request arrived.
    pub(crate) fn on_retransmission(self, ctx: &mut Ctx<'_>) -> ServerNonInvite {
        match &self {
            ServerNonInvite::Proceeding { last } => ctx.send(last),
            ServerNonInvite::Completed { response } => ctx.send(response),
            ServerNonInvite::Trying | ServerNonInvite::Terminated => {}
        }
        self
    }

    /// The TU sends `response`.
    pub(crate) fn respond(self, ctx: &mut Ctx<'_>, response: Response) -> ServerNonInvite {
        match self {
            ServerNonInvite::Trying | ServerNonInvite::Proceeding { .. } => {
                let b = Bytes::from(response.to_bytes());
                ctx.send(&b);
                if response.status.is_provisional() {
                    ServerNonInvite::Proceeding { last: b }
                } else if ctx.wait(Timer::J) {
                    ServerNonInvite::Completed { response: b }
                } else {
                    ServerNonInvite::Terminated
                }
            }
            other => {
                tracing::debug!(target: "sip::tx", tx = %ctx.id, "response after the final one ignored");
                other
            }
        }
    }

    /// `timer` fired.
    pub(crate) fn on_timer(self, timer: Timer) -> ServerNonInvite {
        match (self, timer) {
            (ServerNonInvite::Completed { .. }, Timer::J) => ServerNonInvite::Terminated,
            (state, _) => state,
        }
    }
}

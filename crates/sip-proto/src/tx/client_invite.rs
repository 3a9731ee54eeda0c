//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as amended by RFC 6026 §7.2).

use std::time::Duration;

use bytes::Bytes;
use sip::{HeaderAccess, HeaderName, Headers, Method, Request, Response, SIP_2_0};

use super::ctx::Ctx;
use super::timers::Timer;
use super::TxEvent;

/// State of an INVITE client transaction. The request is kept until a final response, to
/// build the ACK for a 3xx–6xx (§17.1.1.3).
pub(crate) enum ClientInvite {
    /// Sent; Timer A re-sends over UDP with a doubling interval, Timer B gives up.
    Calling {
        request: Box<Request>,
        bytes: Bytes,
        interval: Duration,
    },
    /// A provisional came; the TU decides how long to wait (no timer).
    Proceeding { request: Box<Request> },
    /// A 3xx–6xx came and was ACKed; Timer D re-sends the ACK for its retransmissions.
    Completed { ack: Bytes },
    /// A 2xx came (RFC 6026): further 2xx go to the TU until Timer M.
    Accepted,
    /// Done; the layer drops the transaction.
    Terminated,
}

impl ClientInvite {
    /// Sends the INVITE and arms Timers A and B.
    pub(crate) fn start(ctx: &mut Ctx<'_>, request: Request, bytes: Bytes) -> ClientInvite {
        ctx.send(&bytes);
        ctx.arm(Timer::A);
        ctx.arm(Timer::B);
        ClientInvite::Calling {
            request: Box::new(request),
            bytes,
            interval: ctx.initial(Timer::A),
        }
    }

    /// A response matched this transaction.
    pub(crate) fn on_response(self, ctx: &mut Ctx<'_>, response: Response) -> ClientInvite {
        let status = response.status;
        match self {
            ClientInvite::Calling { request, .. } | ClientInvite::Proceeding { request } => {
                ctx.cancel_all();
                if status.is_provisional() {
                    ctx.emit(TxEvent::Response {
                        tx: ctx.id,
                        response,
                    });
                    return ClientInvite::Proceeding { request };
                }
                if status.is_success() {
                    ctx.emit(TxEvent::Response {
                        tx: ctx.id,
                        response,
                    });
                    ctx.arm(Timer::M);
                    return ClientInvite::Accepted;
                }
                let ack = Bytes::from(ack_for(&request, &response).to_bytes());
                ctx.send(&ack);
                ctx.emit(TxEvent::Response {
                    tx: ctx.id,
                    response,
                });
                if ctx.wait(Timer::D) {
                    ClientInvite::Completed { ack }
                } else {
                    ClientInvite::Terminated
                }
            }
            ClientInvite::Completed { ack } => {
                // A retransmitted final: ACK again, tell nobody.
                if status.as_u16() >= 300 {
                    ctx.send(&ack);
                }
                ClientInvite::Completed { ack }
            }
            ClientInvite::Accepted => {
                // RFC 6026 §7.2: every 2xx goes to the TU, which ACKs it.
                if status.is_success() {
                    ctx.emit(TxEvent::Response {
                        tx: ctx.id,
                        response,
                    });
                }
                ClientInvite::Accepted
            }
            ClientInvite::Terminated => ClientInvite::Terminated,
        }
    }

    /// `timer` fired.
    pub(crate) fn on_timer(self, ctx: &mut Ctx<'_>, timer: Timer) -> ClientInvite {
        match (self, timer) {
            (
                ClientInvite::Calling {
                    request,
                    bytes,
                    interval,
                },
                Timer::A,
            ) => {
                ctx.send(&bytes);
                let interval = Timer::A.backoff(interval, ctx.cfg);
                ctx.arm_after(Timer::A, interval);
                ClientInvite::Calling {
                    request,
                    bytes,
                    interval,
                }
            }
            (ClientInvite::Calling { .. }, Timer::B) => {
                ctx.emit(TxEvent::TimedOut { tx: ctx.id });
                ClientInvite::Terminated
            }
            (ClientInvite::Completed { .. }, Timer::D) | (ClientInvite::Accepted, Timer::M) => {
                ClientInvite::Terminated
            }
            (state, _) => state,
        }
    }
}

/// The ACK for a 3xx–6xx (§17.1.1.3): Request-URI, Call-ID, From, CSeq number and Route of the
/// INVITE, only its top Via, the To of the response (with its tag).
pub(crate) fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut h = Headers::new();
    if let Some(via) = invite.headers.values(&HeaderName::Via).next() {
        h.push(HeaderName::Via, via);
    }
    for route in invite.headers.get_all(&HeaderName::Route) {
        h.push(HeaderName::Route, route);
    }
    h.push(HeaderName::MaxForwards, "70");
    if let Some(from) = invite.headers.get(&HeaderName::From) {
        h.push(HeaderName::From, from);
    }
    if let Some(to) = response.headers.get(&HeaderName::To) {
        h.push(HeaderName::To, to);
    }
    if let Some(call_id) = invite.call_id() {
        h.push(HeaderName::CallId, call_id);
    }
    let seq = invite.cseq().map_or(0, |c| c.seq);
    h.push(HeaderName::CSeq, format!("{seq} ACK"));
    h.push(HeaderName::ContentLength, "0");
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: SIP_2_0.to_string(),
        headers: h,
        body: Bytes::new(),
    }
}

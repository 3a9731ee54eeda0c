//! The two sides of a call and the requests a B2BUA builds for them (RFC 3261 §12, §13, §15).

use std::net::SocketAddr;

use bytes::Bytes;
use sip::header::NameAddr;
use sip::{HeaderAccess, HeaderName, Headers, Method, Request, Response, StatusCode, Uri, SIP_2_0};
use sip_proto::path::Path;
use sip_proto::tx::TxId;

/// Where the B2BUA may send the callee leg: a registered contact and the path that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Request-URI: the registered Contact.
    pub uri: Uri,
    /// Listener, peer address, transport, zone and flow that reach the device.
    pub path: Path,
    /// The station requires payload security: it is offered `RTP/SAVP` with SDES keys
    /// (the driver only gives TLS contacts of such a station).
    pub payload_security: bool,
    /// The device registered a `sips:` Contact (RFC 5630 §5.1.1.1): it takes a `sips:`
    /// Contact from homeline in a SIPS dialog. Devices that register a `sip:` Contact even
    /// with a `sips:` AOR (baresip 1.0, whose stack cannot send to a `sips:` URI) are given
    /// a `sip:` Contact with `transport=tls`, which keeps every hop on TLS all the same.
    pub registered_sips: bool,
}

impl Target {
    /// True when the contact is reached over TLS: the only contacts a payload-security
    /// station or a call with a `sips:` Request-URI may ring.
    pub fn reached_over_tls(&self) -> bool {
        sip_proto::sips::is_secure(self.path.transport)
    }
}

/// The dialog state one side of the B2BUA keeps (RFC 3261 §12.1).
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) remote_tag: Option<String>,
    /// Our From/To URI on this side.
    pub(crate) local_uri: String,
    /// The peer's From/To URI on this side.
    pub(crate) remote_uri: String,
    /// Where in-dialog requests go: the peer's Contact (its remote target).
    pub(crate) remote_target: Option<Uri>,
    pub(crate) local_cseq: u32,
    pub(crate) path: Path,
    /// The address we put in Via and Contact on this side: on the external zone the office's
    /// public SIP address, never the listener's LAN address (RFC 5853 §3.1 topology hiding).
    pub(crate) advertised: SocketAddr,
    /// A SIPS dialog (RFC 3261 §12.1.1): our Contact on this side is a `sips:` URI.
    pub(crate) sips: bool,
}

impl Dialog {
    /// Our Contact on this side.
    pub(crate) fn contact(&self) -> String {
        contact(&self.path, self.advertised, self.sips)
    }

    /// A request inside this dialog, with a fresh Via branch, over the dialog's path.
    pub(crate) fn request(
        &mut self,
        method: Method,
        branch: &str,
        body: Option<(&str, Bytes)>,
    ) -> Request {
        if method != Method::Ack {
            self.local_cseq += 1;
        }
        let uri = self.remote_target.clone().unwrap_or_else(|| {
            Uri::parse(&self.remote_uri).unwrap_or(Uri::Other {
                scheme: "sip".into(),
                raw: self.remote_uri.clone(),
            })
        });
        let mut h = Headers::new();
        h.push(HeaderName::Via, via(&self.path, self.advertised, branch));
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            format!("<{}>;tag={}", self.local_uri, self.local_tag),
        );
        let to_tag = self
            .remote_tag
            .as_deref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        h.push(HeaderName::To, format!("<{}>{to_tag}", self.remote_uri));
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{} {}", self.local_cseq, method));
        h.push(HeaderName::Contact, self.contact());
        let body = match body {
            Some((ct, b)) => {
                h.push(HeaderName::ContentType, ct);
                b
            }
            None => Bytes::new(),
        };
        h.push(HeaderName::ContentLength, body.len().to_string());
        Request {
            method,
            uri,
            version: SIP_2_0.into(),
            headers: h,
            body,
        }
    }
}

/// The caller's side: our server transaction for its INVITE and the dialog we answer with.
#[derive(Debug, Clone)]
pub(crate) struct CallerLeg {
    pub(crate) invite_tx: TxId,
    pub(crate) invite: Request,
    pub(crate) dialog: Dialog,
    /// A final response has been sent on the INVITE transaction.
    pub(crate) answered: bool,
}

impl CallerLeg {
    /// A response to the caller's INVITE with our tag and Contact, carrying `body` if any.
    pub(crate) fn response(&self, status: StatusCode, body: Option<(&str, Bytes)>) -> Response {
        let mut r = Response::for_request(&self.invite, status, Some(&self.dialog.local_tag));
        if status.as_u16() > 100 && status.as_u16() < 300 {
            r.headers.push(HeaderName::Contact, self.dialog.contact());
        }
        match body {
            Some((ct, b)) => r.with_body(ct, b),
            None => r,
        }
    }
}

/// One fork of the callee's side: a client INVITE transaction to one contact.
#[derive(Debug, Clone)]
pub(crate) struct CalleeBranch {
    pub(crate) invite_tx: TxId,
    /// The INVITE as sent (CANCEL copies its Request-URI, Via and CSeq number, §9.1).
    pub(crate) invite: Request,
    pub(crate) dialog: Dialog,
    pub(crate) state: BranchState,
}

/// Where one fork stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BranchState {
    /// Sent, nothing heard yet.
    Calling,
    /// A provisional response came: it may be cancelled.
    Proceeding,
    /// Answered with 2xx.
    Answered,
    /// Failed, cancelled or timed out.
    Done,
}

impl CalleeBranch {
    /// The CANCEL for this fork (RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number
    /// and top Via as the INVITE).
    pub(crate) fn cancel(&self) -> Request {
        let mut h = Headers::new();
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
        ] {
            if let Some(v) = self.invite.headers.get(&name) {
                h.push(name, v);
            }
        }
        h.push(HeaderName::MaxForwards, "70");
        let seq = self.invite.cseq().map(|c| c.seq).unwrap_or(1);
        h.push(HeaderName::CSeq, format!("{seq} CANCEL"));
        h.push(HeaderName::ContentLength, "0");
        Request {
            method: Method::Cancel,
            uri: self.invite.uri.clone(),
            version: SIP_2_0.into(),
            headers: h,
            body: Bytes::new(),
        }
    }
}

/// Our Via for a request leaving over `path`, naming `addr` (see [`Dialog::advertised`]).
pub(crate) fn via(path: &Path, addr: SocketAddr, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {addr};branch={branch};rport",
        path.transport.via_name()
    )
}

/// Our Contact at `addr` for the transport of `path` (the device sends in-dialog requests
/// there). In a SIPS dialog it is a `sips:` URI (RFC 3261 §12.1.1, RFC 5630 §5.1.2), without
/// the deprecated `transport=tls` (RFC 5630 §3.1.4): the scheme already says TLS.
pub(crate) fn contact(path: &Path, addr: SocketAddr, sips: bool) -> String {
    match path.transport {
        _ if sips => format!("<sips:homeline@{addr}>"),
        sip_proto::path::Transport::Udp => format!("<sip:homeline@{addr}>"),
        t => format!("<sip:homeline@{addr};transport={}>", t.as_str()),
    }
}

/// The body of a message with its Content-Type, if it has one.
pub(crate) fn body_of(headers: &Headers, body: &Bytes) -> Option<(String, Bytes)> {
    if body.is_empty() {
        return None;
    }
    let ct = headers
        .get(&HeaderName::ContentType)
        .unwrap_or("application/sdp")
        .to_string();
    Some((ct, body.clone()))
}

/// The remote target (Contact URI) of a request or response, if it names one.
pub(crate) fn remote_target(headers: &Headers) -> Option<Uri> {
    let v = headers.values(&HeaderName::Contact).next()?;
    NameAddr::parse(v).ok().map(|n| n.uri)
}

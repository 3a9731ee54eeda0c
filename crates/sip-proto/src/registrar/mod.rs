//! The registrar core (RFC 3261 §10.3, RFC 7616/8760 digest), sans-IO.
//!
//! Fed with already-validated REGISTER requests, the station's credentials and the [`Path`] the
//! request came over; answers with the response to send and emits [`RegistrarEvent`]s that the
//! I/O layer persists. Bindings expire through [`Registrar::handle_timeout`].
//!
//! Zones: on the external zone every REGISTER is challenged, and an unknown number, a station
//! without the "Internet registration via SBC" flag and a wrong password are indistinguishable on
//! the wire: the same 401 challenge, then the same 403 (no user enumeration).

mod binding;
mod nonce;

pub use binding::{Aor, Binding, NatHint};
pub use nonce::NonceCheck;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use policy::{Admission, AfterChallenge, DenyReason, StationAuth, Zone};
use sip::digest::{self, Algorithm};
use sip::header::{AuthParams, Challenge, Contact, Credentials, NameAddr};
use sip::{HeaderAccess, HeaderName, Request, Response, StatusCode, Uri};

use crate::path::{Path, Transport};
use binding::nat_hint;
use nonce::NonceKeeper;

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// Digest realm. Default "homeline".
    pub realm: String,
    /// Shortest registration accepted, seconds (§10.3 step 7, 423 below it). Default 60.
    pub min_expires: u32,
    /// Longest registration granted, seconds. Default 3600.
    pub max_expires: u32,
    /// Granted when the request names no expiry, seconds. Default 3600.
    pub default_expires: u32,
    /// Cap on the external zone over UDP, so home NAT bindings stay open. Default 120 s.
    pub external_udp_expires: u32,
    /// Cap on the external zone over TCP/TLS. Default 600 s.
    pub external_stream_expires: u32,
    /// How long a nonce stays fresh before `stale=true`. Default 300 s.
    pub nonce_lifetime: Duration,
    /// Contacts kept per station; the oldest is dropped beyond it. Default 10.
    pub max_contacts: usize,
    /// Digest algorithms offered, one challenge each, in this order. Default MD5 only: SIPp
    /// answers only the first challenge, and baresip 1.0 (libre) fails the whole registration
    /// when any challenge names an algorithm it lacks, so a second SHA-256 challenge locks such
    /// phones out. Sites whose phones all do RFC 8760 add SHA-256 (`sip.digest_algorithms`);
    /// stations keep an HA1 for both, so switching needs no password reset.
    pub algorithms: Vec<Algorithm>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "homeline".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            external_udp_expires: 120,
            external_stream_expires: 600,
            nonce_lifetime: Duration::from_secs(300),
            max_contacts: 10,
            algorithms: vec![Algorithm::Md5],
        }
    }
}

/// What the registrar needs to know of a station.
#[derive(Debug, Clone)]
pub struct StationCredentials {
    /// Authentication and SBC flags.
    pub auth: StationAuth,
    /// HA1 for the configured realm with MD5, lowercase hex.
    pub ha1_md5: Option<String>,
    /// HA1 for the configured realm with SHA-256, lowercase hex.
    pub ha1_sha256: Option<String>,
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveReason {
    /// The device unregistered (Expires 0 or `*`).
    Unregistered,
    /// It was not refreshed in time.
    Expired,
    /// Pushed out by a newer contact beyond the per-station limit.
    Evicted,
    /// The same device instance registered a new contact URI (RFC 5626 §6).
    Replaced,
    /// Its connection closed and nothing else can reach the device through its NAT.
    FlowFailed,
    /// Keepalive probes went unanswered: the phone (or its NAT mapping) is gone.
    Unreachable,
}

/// Why a REGISTER failed authentication (logs and ban scoring; never on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Admission said no (unknown station, no SBC flag, ...).
    Denied(DenyReason),
    /// Credentials did not verify.
    WrongCredentials,
    /// The credentials' username is not the To AOR.
    UsernameMismatch,
}

/// What the registrar reports to the I/O layer.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrarEvent {
    /// A binding was created or refreshed: persist it.
    Upserted(Binding),
    /// A binding went away: delete it.
    Removed {
        /// The binding as it was.
        binding: Binding,
        /// Why.
        reason: RemoveReason,
    },
    /// A credentialed REGISTER was refused with 403.
    AuthFailed {
        /// The AOR in To.
        aor: Aor,
        /// The zone it came in on.
        zone: Zone,
        /// Where it came from.
        source: std::net::SocketAddr,
        /// Why (for the log only).
        reason: AuthFailure,
    },
}

/// The registrar: bindings per AOR, nonces, expiry.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    nonces: NonceKeeper,
    bindings: HashMap<Aor, Vec<Binding>>,
    count: usize,
    events: VecDeque<RegistrarEvent>,
    next_sweep: Option<Instant>,
    tag_counter: u64,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Registrar {
    /// A registrar whose nonces are keyed with `secret` (random per start).
    pub fn new(config: RegistrarConfig, now: Instant, secret: [u8; 32]) -> Registrar {
        let nonces = NonceKeeper::new(secret, now, config.nonce_lifetime);
        Registrar {
            config,
            nonces,
            bindings: HashMap::new(),
            count: 0,
            events: VecDeque::new(),
            next_sweep: None,
            tag_counter: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// The AOR (station number) a REGISTER is for: the user part of its To URI, unescaped.
    pub fn aor_of(req: &Request) -> Option<Aor> {
        let to = req.to()?;
        let user = to.uri.as_sip()?.user_unescaped()?;
        String::from_utf8(user).ok().map(Aor)
    }

    /// Authenticates a request other than REGISTER (an INVITE) from `user` with 407 and
    /// Proxy-Authorization (RFC 3261 §22.3), under the same zone rules as registration: on the
    /// external zone only SBC stations, and every refusal looks the same.
    pub fn authorize_request(
        &mut self,
        now: Instant,
        req: &Request,
        path: &Path,
        user: &Aor,
        station: Option<&StationCredentials>,
        to_tag: &str,
    ) -> RequestAuth {
        let refuse = |status| Response::for_request(req, status, Some(to_tag));
        match self.authenticate(now, req, path, user, station, AuthKind::Proxy) {
            AuthOutcome::Accepted => RequestAuth::Accepted,
            AuthOutcome::Challenge { stale } => {
                let mut resp = refuse(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
                self.add_challenges(&mut resp, now, stale, AuthKind::Proxy);
                RequestAuth::Refused(resp)
            }
            AuthOutcome::Forbidden => RequestAuth::Refused(refuse(StatusCode::FORBIDDEN)),
        }
    }

    /// Handles one REGISTER. `station` is the station named by [`Registrar::aor_of`], if any.
    pub fn handle_register(
        &mut self,
        now: Instant,
        req: &Request,
        path: &Path,
        station: Option<&StationCredentials>,
    ) -> Response {
        self.handle_register_checked(now, req, path, station, |_| None)
    }

    /// [`Registrar::handle_register`] with a policy of the caller's applied once the station
    /// has proved who it is and before any binding changes: `after_auth` gets the refusal's
    /// To tag and returns the refusal, if any. Refusing only after authentication keeps the
    /// policy from telling an unauthenticated prober which numbers exist.
    pub fn handle_register_checked(
        &mut self,
        now: Instant,
        req: &Request,
        path: &Path,
        station: Option<&StationCredentials>,
        after_auth: impl FnOnce(&str) -> Option<Response>,
    ) -> Response {
        self.tag_counter += 1;
        let tag = format!("{:x}", self.tag_counter);
        let reply = |status| Response::for_request(req, status, Some(&tag));
        if !matches!(req.uri, Uri::Sip(_)) {
            return reply(StatusCode::UNSUPPORTED_URI_SCHEME);
        }
        // §10.3 step 5: the To header must hold a SIP AOR (RFC 4475 §3.3.4).
        let Some(aor) = Self::aor_of(req) else {
            return bad_request(
                reply(StatusCode::BAD_REQUEST),
                "To must be a sip: or sips: AOR with a user part",
            );
        };
        match self.authenticate(now, req, path, &aor, station, AuthKind::Registrar) {
            AuthOutcome::Accepted => {}
            AuthOutcome::Challenge { stale } => {
                let mut resp = reply(StatusCode::UNAUTHORIZED);
                self.add_challenges(&mut resp, now, stale, AuthKind::Registrar);
                return resp;
            }
            AuthOutcome::Forbidden => return reply(StatusCode::FORBIDDEN),
        }
        if let Some(refusal) = after_auth(&tag) {
            return refusal;
        }
        match self.update_bindings(now, req, path, &aor) {
            Ok(()) => {
                let mut resp = reply(StatusCode::OK);
                for b in self.bindings.get(&aor).into_iter().flatten() {
                    resp.headers.push(HeaderName::Contact, b.contact_value(now));
                }
                resp
            }
            Err(BindingError::TooBrief) => {
                let mut resp = reply(StatusCode::INTERVAL_TOO_BRIEF);
                resp.headers
                    .push(HeaderName::MinExpires, self.config.min_expires.to_string());
                resp
            }
            Err(BindingError::Malformed(why)) => bad_request(reply(StatusCode::BAD_REQUEST), why),
            Err(BindingError::OutOfOrder) => reply(StatusCode::SERVER_INTERNAL_ERROR),
        }
    }
}

/// Which digest exchange: the registrar's (401, RFC 3261 §22.2) or a call server's (407, §22.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthKind {
    Registrar,
    Proxy,
}

impl AuthKind {
    fn credentials_header(self) -> HeaderName {
        match self {
            AuthKind::Registrar => HeaderName::Authorization,
            AuthKind::Proxy => HeaderName::ProxyAuthorization,
        }
    }

    fn challenge_header(self) -> HeaderName {
        match self {
            AuthKind::Registrar => HeaderName::WwwAuthenticate,
            AuthKind::Proxy => HeaderName::ProxyAuthenticate,
        }
    }
}

/// What to do with a request that needs the caller's credentials (an INVITE).
#[derive(Debug, Clone, PartialEq)]
pub enum RequestAuth {
    /// Authenticated, or no authentication needed (internal station with it off).
    Accepted,
    /// Answer with this response: 407 with challenges, or 403 (same for every refusal).
    Refused(Response),
}

/// Result of the authentication step.
enum AuthOutcome {
    Accepted,
    Challenge { stale: bool },
    Forbidden,
}

/// Why the contact list could not be applied.
enum BindingError {
    TooBrief,
    OutOfOrder,
    Malformed(&'static str),
}

/// HA1 used for denied or unknown stations so that refusing costs as much time as verifying.
const DUMMY_HA1: &str = "00000000000000000000000000000000000000000000000000000000000000";

fn bad_request(mut resp: Response, why: &str) -> Response {
    resp.headers
        .push(HeaderName::Warning, format!("399 homeline \"{why}\""));
    resp
}

impl Registrar {
    fn authenticate(
        &mut self,
        now: Instant,
        req: &Request,
        path: &Path,
        aor: &Aor,
        station: Option<&StationCredentials>,
        kind: AuthKind,
    ) -> AuthOutcome {
        let admission = policy::admit_register(path.zone, station.map(|s| &s.auth));
        let then = match admission {
            Admission::NoAuthNeeded => return AuthOutcome::Accepted,
            Admission::Challenge { then } => then,
        };
        let Some(creds) = self.our_credentials(req, kind) else {
            return AuthOutcome::Challenge { stale: false };
        };
        let nonce = self.nonces.check(now, &creds.nonce);
        if nonce == NonceCheck::Invalid {
            return AuthOutcome::Challenge { stale: false };
        }
        let alg = match creds.algorithm.as_deref() {
            None if self.config.algorithms.contains(&Algorithm::Md5) => Algorithm::Md5,
            None => return AuthOutcome::Challenge { stale: false },
            Some(a) => match a.parse::<Algorithm>() {
                Ok(a) if self.config.algorithms.contains(&a) => a,
                _ => return AuthOutcome::Challenge { stale: false },
            },
        };
        let ha1 = match (then, station) {
            (AfterChallenge::Verify, Some(st)) => match alg {
                Algorithm::Md5 => st.ha1_md5.as_deref(),
                Algorithm::Sha256 => st.ha1_sha256.as_deref(),
            },
            _ => None,
        };
        let expected = digest::response(
            alg,
            ha1.unwrap_or(DUMMY_HA1),
            &creds.nonce,
            creds.nc.as_deref(),
            creds.cnonce.as_deref(),
            creds.qop.as_deref(),
            req.method.as_str(),
            &creds.uri,
        );
        let verified = digest::verify(&expected, &creds.response) && ha1.is_some();
        let failure = match then {
            AfterChallenge::Deny(reason) => Some(AuthFailure::Denied(reason)),
            AfterChallenge::Verify if creds.username != aor.0 => {
                Some(AuthFailure::UsernameMismatch)
            }
            AfterChallenge::Verify if !verified => Some(AuthFailure::WrongCredentials),
            AfterChallenge::Verify => None,
        };
        match failure {
            None if nonce == NonceCheck::Stale => AuthOutcome::Challenge { stale: true },
            None => AuthOutcome::Accepted,
            Some(reason) => {
                self.events.push_back(RegistrarEvent::AuthFailed {
                    aor: aor.clone(),
                    zone: path.zone,
                    source: path.remote,
                    reason,
                });
                AuthOutcome::Forbidden
            }
        }
    }

    /// The Digest credentials for our realm, if the request carries them (RFC 3261 §22.4).
    fn our_credentials(&self, req: &Request, kind: AuthKind) -> Option<Credentials> {
        req.headers
            .get_all(&kind.credentials_header())
            .filter_map(AuthParams::parse)
            .filter_map(|p| Credentials::from_params(&p))
            .find(|c| c.realm == self.config.realm)
    }

    fn add_challenges(&self, resp: &mut Response, now: Instant, stale: bool, kind: AuthKind) {
        let nonce = self.nonces.issue(now);
        for &alg in &self.config.algorithms {
            let ch = Challenge {
                realm: self.config.realm.clone(),
                nonce: nonce.clone(),
                opaque: None,
                algorithm: alg.as_str(),
                stale,
            };
            resp.headers.push(kind.challenge_header(), ch.to_string());
        }
    }

    fn update_bindings(
        &mut self,
        now: Instant,
        req: &Request,
        path: &Path,
        aor: &Aor,
    ) -> Result<(), BindingError> {
        let contacts: Vec<Contact> = req
            .headers
            .values(&HeaderName::Contact)
            .map(Contact::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| BindingError::Malformed("malformed Contact"))?;
        if contacts.is_empty() {
            return Ok(()); // a query: §10.3 step 6
        }
        let header_expires = req.expires();
        let call_id = req.call_id().unwrap_or_default().to_string();
        let cseq = req.cseq().map(|c| c.seq).unwrap_or_default();
        if contacts.contains(&Contact::Star) {
            // §10.3 step 6: `*` only alone and with Expires: 0.
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(BindingError::Malformed(
                    "Contact: * needs Expires: 0 and no other contact",
                ));
            }
            let removed = self.bindings.remove(aor).unwrap_or_default();
            self.count -= removed.len();
            for b in removed {
                self.events.push_back(RegistrarEvent::Removed {
                    binding: b,
                    reason: RemoveReason::Unregistered,
                });
            }
            return Ok(());
        }
        let via_host = req.top_via().and_then(|v| v.host.ip());
        let user_agent = req.headers.get(&HeaderName::UserAgent).map(str::to_string);
        let mut updates = Vec::with_capacity(contacts.len());
        for c in &contacts {
            let Contact::Addr(na) = c else { continue };
            if !matches!(na.uri, Uri::Sip(_)) {
                return Err(BindingError::Malformed(
                    "Contact must be a sip: or sips: URI",
                ));
            }
            let requested = na
                .expires()
                .or(header_expires)
                .unwrap_or(self.config.default_expires);
            if requested != 0 && requested < self.config.min_expires {
                return Err(BindingError::TooBrief);
            }
            let granted = self.grant(requested, path);
            updates.push((
                contact_binding(
                    na,
                    aor,
                    path,
                    &call_id,
                    cseq,
                    now,
                    granted,
                    via_host,
                    &user_agent,
                ),
                granted,
            ));
        }
        let list = self.bindings.entry(aor.clone()).or_default();
        // §10.3 step 7: an older CSeq from the same Call-ID must not overwrite a binding.
        for (b, _) in &updates {
            let key = b.key();
            if list
                .iter()
                .any(|e| e.key() == key && e.call_id == b.call_id && e.cseq > b.cseq)
            {
                return Err(BindingError::OutOfOrder);
            }
        }
        for (b, granted) in updates {
            let key = b.key();
            let existing = list.iter().position(|e| e.key() == key);
            if granted == 0 {
                if let Some(i) = existing {
                    let old = list.remove(i);
                    self.count -= 1;
                    self.events.push_back(RegistrarEvent::Removed {
                        binding: old,
                        reason: RemoveReason::Unregistered,
                    });
                }
                continue;
            }
            match existing {
                Some(i) => {
                    let old = std::mem::replace(&mut list[i], b.clone());
                    if old.contact != b.contact {
                        self.events.push_back(RegistrarEvent::Removed {
                            binding: old,
                            reason: RemoveReason::Replaced,
                        });
                    } else if b.is_quiet_refresh_of(&old, Duration::from_secs(u64::from(granted))) {
                        list[i].persisted_until = old.persisted_until;
                        continue;
                    }
                }
                None => {
                    list.push(b.clone());
                    self.count += 1;
                }
            }
            self.events.push_back(RegistrarEvent::Upserted(b));
        }
        while list.len() > self.config.max_contacts {
            let oldest = list
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.expires_at)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let old = list.remove(oldest);
            self.count -= 1;
            self.events.push_back(RegistrarEvent::Removed {
                binding: old,
                reason: RemoveReason::Evicted,
            });
        }
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        self.schedule_sweep(now);
        Ok(())
    }

    /// Seconds granted for `requested` on this path (0 stays 0: an unregister).
    fn grant(&self, requested: u32, path: &Path) -> u32 {
        if requested == 0 {
            return 0;
        }
        let cap = match (path.zone, path.transport) {
            (Zone::External, Transport::Udp) => self.config.external_udp_expires,
            (Zone::External, _) => self.config.external_stream_expires,
            (Zone::Internal, _) => self.config.max_expires,
        };
        requested
            .min(cap)
            .min(self.config.max_expires)
            .max(self.config.min_expires.min(cap))
    }

    fn schedule_sweep(&mut self, now: Instant) {
        if self.next_sweep.is_none() && self.count > 0 {
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
    }

    /// Puts back a binding loaded from the store at start-up.
    pub fn restore(&mut self, now: Instant, binding: Binding) {
        let list = self.bindings.entry(binding.aor.clone()).or_default();
        let key = binding.key();
        match list.iter().position(|e| e.key() == key) {
            Some(i) => list[i] = binding,
            None => {
                list.push(binding);
                self.count += 1;
            }
        }
        self.schedule_sweep(now);
    }

    /// A stream connection closed. External-zone bindings that came over it are removed: behind
    /// a home NAT nothing but that flow reaches the device, which re-registers over a new one
    /// (RFC 5626 §4.4). Internal-zone bindings stay, reached again at their Contact.
    pub fn handle_flow_closed(&mut self, flow: crate::path::FlowId) {
        self.remove_where(RemoveReason::FlowFailed, |b| {
            if b.flow != Some(flow) {
                return true;
            }
            if b.zone == Zone::External {
                return false;
            }
            b.flow = None;
            true
        });
    }

    /// Drops one binding, by AOR and [`Binding::key`] (a keepalive found the phone gone).
    /// Returns whether it was there.
    pub fn remove_binding(&mut self, aor: &Aor, key: &str, reason: RemoveReason) -> bool {
        let Some(list) = self.bindings.get_mut(aor) else {
            return false;
        };
        let Some(i) = list.iter().position(|b| b.key() == key) else {
            return false;
        };
        let binding = list.remove(i);
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        self.count -= 1;
        self.events
            .push_back(RegistrarEvent::Removed { binding, reason });
        true
    }

    /// Drops every binding for which `keep` says false (it may also edit the ones it keeps) and
    /// reports them, in AOR then contact order whatever the map's iteration order.
    fn remove_where(&mut self, reason: RemoveReason, mut keep: impl FnMut(&mut Binding) -> bool) {
        let mut gone = Vec::new();
        self.bindings.retain(|_, list| {
            list.retain_mut(|b| {
                let kept = keep(b);
                if !kept {
                    gone.push(b.clone());
                }
                kept
            });
            !list.is_empty()
        });
        gone.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
        self.count -= gone.len();
        for binding in gone {
            self.events
                .push_back(RegistrarEvent::Removed { binding, reason });
        }
    }

    /// Removes the bindings that have expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.next_sweep else { return };
        if now < at {
            return;
        }
        self.remove_where(RemoveReason::Expired, |b| b.expires_at > now);
        self.next_sweep = (self.count > 0).then_some(now + SWEEP_EVERY);
    }

    /// When [`Registrar::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// The next event for the I/O layer.
    pub fn poll_event(&mut self) -> Option<RegistrarEvent> {
        self.events.pop_front()
    }

    /// The bindings of one station.
    pub fn bindings(&self, aor: &Aor) -> &[Binding] {
        self.bindings.get(aor).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of bindings in all.
    pub fn binding_count(&self) -> usize {
        self.count
    }

    /// Every binding, sorted by AOR then contact (for status output).
    pub fn all_bindings(&self) -> Vec<&Binding> {
        let mut v: Vec<&Binding> = self.bindings.values().flatten().collect();
        v.sort_by(|a, b| (&a.aor, &a.contact).cmp(&(&b.aor, &b.contact)));
        v
    }
}

#[allow(clippy::too_many_arguments)] // one binding's worth of facts, gathered in one place
fn contact_binding(
    na: &NameAddr,
    aor: &Aor,
    path: &Path,
    call_id: &str,
    cseq: u32,
    now: Instant,
    granted: u32,
    via_host: Option<std::net::IpAddr>,
    user_agent: &Option<String>,
) -> Binding {
    let expires_at = now + Duration::from_secs(u64::from(granted));
    Binding {
        aor: aor.clone(),
        contact: na.uri.to_string(),
        instance: na.params.value("+sip.instance"),
        reg_id: na.params.value("reg-id").and_then(|r| r.parse().ok()),
        call_id: call_id.to_string(),
        cseq,
        expires_at,
        zone: path.zone,
        transport: path.transport,
        source: path.remote,
        local: path.local,
        flow: path.flow,
        q: na.params.value("q").and_then(|q| q.parse().ok()),
        user_agent: user_agent.clone(),
        nat: nat_hint(na, via_host, path.remote),
        persisted_until: expires_at,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests;

//! Binding server (RFC 8489 §6.3, RFC 5780 §6–7, RFC 3489 clients).
//!
//! With only a primary address it is a plain binding server on one socket. With an alternate
//! address (another IP *and* another port) it listens on the four combinations and serves
//! RFC 5780: CHANGE-REQUEST picks the socket the answer leaves from, OTHER-ADDRESS names the
//! combination differing in both, RESPONSE-ORIGIN says where the answer came from.

use std::collections::VecDeque;
use std::net::SocketAddr;

use stun_types::attribute::{
    Attribute, AttributeType, ErrorCode, MappedSocketAddr, Software, UnknownAttributes,
    XorMappedAddress,
};
use stun_types::message::{
    Message, MessageClass, MessageHeader, MessageType, MessageWrite, MessageWriteExt,
    MessageWriteVec, StunParseError, TransactionId, BINDING, MAGIC_COOKIE,
};

use crate::attr::{
    response_port, ChangeRequest, MappedAddress, OtherAddress, ResponseOrigin, CHANGED_ADDRESS,
    CHANGE_REQUEST, MAPPED_ADDRESS, PADDING, RESPONSE_PORT, SOURCE_ADDRESS,
};
use crate::wire::Transmit;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The primary address (IP and port).
    pub primary: SocketAddr,
    /// The alternate address: another IP and another port of this host (RFC 5780 §6).
    pub alternate: Option<SocketAddr>,
    /// SOFTWARE in every answer (at most 763 bytes, RFC 8489 §14.14).
    pub software: String,
}

impl ServerConfig {
    /// A server on `primary`, optionally with an alternate address, naming itself "homeline".
    pub fn new(primary: SocketAddr, alternate: Option<SocketAddr>) -> Self {
        Self {
            primary,
            alternate,
            software: concat!("homeline ", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The server configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerConfigError {
    /// RFC 5780 needs the alternate to differ from the primary in the IP address.
    #[error("the alternate address {alternate} must have another IP address than {primary}")]
    AlternateSameIp {
        /// Primary.
        primary: SocketAddr,
        /// Alternate.
        alternate: SocketAddr,
    },
    /// RFC 5780 needs the alternate to differ from the primary in the port.
    #[error("the alternate address {alternate} must have another port than {primary}")]
    AlternateSamePort {
        /// Primary.
        primary: SocketAddr,
        /// Alternate.
        alternate: SocketAddr,
    },
    /// Both must be IPv4 or both IPv6.
    #[error("the primary {primary} and alternate {alternate} addresses must be of one family")]
    FamilyMismatch {
        /// Primary.
        primary: SocketAddr,
        /// Alternate.
        alternate: SocketAddr,
    },
    /// A wildcard address or port cannot be named in OTHER-ADDRESS.
    #[error("with an alternate address, {0} must be a specific IP address and port")]
    Wildcard(SocketAddr),
    /// The SOFTWARE text is too long.
    #[error("SOFTWARE must be at most 763 bytes")]
    SoftwareTooLong,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Binding success responses (RFC 8489 and RFC 3489 clients).
    pub answered: u64,
    /// Of those, to RFC 3489 clients (no magic cookie).
    pub rfc3489: u64,
    /// Error responses (400, 420).
    pub errors: u64,
    /// Datagrams dropped without an answer.
    pub dropped: u64,
}

/// Comprehension-required attributes this server understands in a request.
const UNDERSTOOD: [AttributeType; 3] = [CHANGE_REQUEST, PADDING, RESPONSE_PORT];

/// The binding server.
#[derive(Debug)]
pub struct StunServer {
    config: ServerConfig,
    /// [`Self::sockets`], computed once: it is checked for every datagram.
    sockets: Vec<SocketAddr>,
    transmits: VecDeque<Transmit>,
    stats: ServerStats,
}

impl StunServer {
    /// Checks the configuration.
    pub fn new(config: ServerConfig) -> Result<Self, ServerConfigError> {
        if let Some(alternate) = config.alternate {
            let primary = config.primary;
            if primary.is_ipv4() != alternate.is_ipv4() {
                return Err(ServerConfigError::FamilyMismatch { primary, alternate });
            }
            if primary.ip() == alternate.ip() {
                return Err(ServerConfigError::AlternateSameIp { primary, alternate });
            }
            if primary.port() == alternate.port() {
                return Err(ServerConfigError::AlternateSamePort { primary, alternate });
            }
            for a in [primary, alternate] {
                if a.ip().is_unspecified() || a.port() == 0 {
                    return Err(ServerConfigError::Wildcard(a));
                }
            }
        }
        if Software::new(&config.software).is_err() {
            return Err(ServerConfigError::SoftwareTooLong);
        }
        let sockets = match config.alternate {
            None => vec![config.primary],
            Some(a) => {
                let p = config.primary;
                vec![
                    p,
                    SocketAddr::new(p.ip(), a.port()),
                    SocketAddr::new(a.ip(), p.port()),
                    a,
                ]
            }
        };
        Ok(Self {
            config,
            sockets,
            transmits: VecDeque::new(),
            stats: ServerStats::default(),
        })
    }

    /// The sockets to listen on: the primary alone, or the four IP × port combinations
    /// (primary first, then primary IP/alternate port, alternate IP/primary port, alternate).
    pub fn sockets(&self) -> &[SocketAddr] {
        &self.sockets
    }

    /// Counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// The next datagram to send (from the socket named in `from`).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// A datagram arrived on socket `local` from `from`. Returns whether an answer was queued.
    /// Never panics on any input.
    pub fn handle_input(&mut self, local: SocketAddr, from: SocketAddr, bytes: &[u8]) -> bool {
        let answer = if !self.sockets.contains(&local) {
            None
        } else if bytes.len() < MessageHeader::LENGTH || bytes[0] & 0xc0 != 0 {
            // The top two bits are zero in every STUN message (RFC 8489 §5); anything else is
            // another protocol sharing the port.
            None
        } else if usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) + MessageHeader::LENGTH
            != bytes.len()
        {
            // One datagram carries one message (RFC 8489 §6.2.1): a length that disagrees
            // with the datagram is not STUN, or not all of it.
            None
        } else if bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
            self.rfc3489(local, from, bytes)
        } else {
            match Message::from_bytes(bytes) {
                Ok(msg) => self.rfc8489(local, from, &msg),
                // A wrong FINGERPRINT means "not STUN" (RFC 8489 §7.3): silence, not 400.
                Err(StunParseError::FingerprintMismatch) => None,
                Err(_) => self.bad_request(local, from, bytes),
            }
        };
        match answer {
            Some(t) => {
                self.transmits.push_back(t);
                true
            }
            None => {
                self.stats.dropped += 1;
                false
            }
        }
    }

    /// The socket an answer to a request received on `local` leaves from.
    fn reply_socket(&self, local: SocketAddr, change: ChangeRequest) -> SocketAddr {
        let Some(alternate) = self.config.alternate else {
            return local;
        };
        let primary = self.config.primary;
        let flip_ip = |ip| {
            if ip == primary.ip() {
                alternate.ip()
            } else {
                primary.ip()
            }
        };
        let flip_port = |port| {
            if port == primary.port() {
                alternate.port()
            } else {
                primary.port()
            }
        };
        SocketAddr::new(
            if change.change_ip {
                flip_ip(local.ip())
            } else {
                local.ip()
            },
            if change.change_port {
                flip_port(local.port())
            } else {
                local.port()
            },
        )
    }

    /// OTHER-ADDRESS for a request received on `local`: the combination differing in both.
    fn other_address(&self, local: SocketAddr) -> Option<SocketAddr> {
        self.config.alternate?;
        Some(self.reply_socket(
            local,
            ChangeRequest {
                change_ip: true,
                change_port: true,
            },
        ))
    }

    fn rfc8489(&mut self, local: SocketAddr, from: SocketAddr, msg: &Message) -> Option<Transmit> {
        // Responses and indications get no answer (RFC 8489 §6.3.2, §6.3.3: a Binding
        // indication is a keepalive).
        if !msg.has_class(MessageClass::Request) {
            return None;
        }
        let tid = msg.transaction_id();
        if !msg.has_method(BINDING) {
            return self.error(local, from, msg.method(), tid, 400, None);
        }
        let unknown: Vec<AttributeType> = msg
            .iter_attributes()
            .map(|(_, a)| a.get_type())
            .filter(|t| t.comprehension_required() && !UNDERSTOOD.contains(t))
            .collect();
        if !unknown.is_empty() {
            return self.error(local, from, BINDING, tid, 420, Some(&unknown));
        }
        let change = match msg.raw_attribute(CHANGE_REQUEST) {
            None => ChangeRequest::default(),
            Some(raw) => match ChangeRequest::from_value(&raw.value) {
                Some(c) => c,
                None => return self.error(local, from, BINDING, tid, 400, None),
            },
        };
        if change.changes_anything() && self.config.alternate.is_none() {
            // RFC 5780 §7.2: without an alternate address the server cannot honour it.
            return self.error(local, from, BINDING, tid, 420, Some(&[CHANGE_REQUEST]));
        }
        // RFC 5780 §7.5: only the port can be redirected, never the IP, so this cannot aim
        // answers at a third party.
        let reply_to = match msg.raw_attribute(RESPONSE_PORT) {
            None => from,
            Some(raw) => match response_port(&raw.value) {
                Some(port) => SocketAddr::new(from.ip(), port),
                None => return self.error(local, from, BINDING, tid, 400, None),
            },
        };
        let reply_from = self.reply_socket(local, change);
        let mut w = Message::builder_success(msg, MessageWriteVec::with_capacity(96));
        let attrs_ok = w.add_attribute(&XorMappedAddress::new(from, tid)).is_ok()
            // MAPPED-ADDRESS too: clients written before RFC 5389 read only that.
            && w.add_attribute(&MappedAddress::new(from)).is_ok()
            && self.rfc5780_attributes(&mut w, local, reply_from)
            && self.software(&mut w)
            && w.add_fingerprint().is_ok();
        if !attrs_ok {
            return None;
        }
        self.stats.answered += 1;
        Some(Transmit {
            from: reply_from,
            to: reply_to,
            bytes: w.finish(),
        })
    }

    fn rfc5780_attributes(
        &self,
        w: &mut MessageWriteVec,
        local: SocketAddr,
        reply_from: SocketAddr,
    ) -> bool {
        // Only an RFC 5780 server names its addresses: a single-address server behind a port
        // forward would otherwise leak its private listening address.
        let Some(other) = self.other_address(local) else {
            return true;
        };
        w.add_attribute(&ResponseOrigin::new(reply_from)).is_ok()
            && w.add_attribute(&OtherAddress::new(other)).is_ok()
    }

    fn software(&self, w: &mut MessageWriteVec) -> bool {
        if self.config.software.is_empty() {
            return true;
        }
        match Software::new(&self.config.software) {
            Ok(s) => w.add_attribute(&s).is_ok(),
            Err(_) => true,
        }
    }

    /// 400 for a request whose header is sound but whose attributes are not (RFC 8489 §6.3.1);
    /// anything that is not recognisably a request gets nothing.
    fn bad_request(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<Transmit> {
        let header = MessageHeader::from_bytes(bytes).ok()?;
        let length = usize::from(header.data_length());
        if !header.get_type().has_class(MessageClass::Request)
            || length % 4 != 0
            || MessageHeader::LENGTH + length != bytes.len()
        {
            return None;
        }
        let method = header.get_type().method();
        self.error(local, from, method, header.transaction_id(), 400, None)
    }

    fn error(
        &mut self,
        local: SocketAddr,
        from: SocketAddr,
        method: stun_types::message::Method,
        tid: TransactionId,
        code: u16,
        unknown: Option<&[AttributeType]>,
    ) -> Option<Transmit> {
        let mut w = Message::builder(
            MessageType::from_class_method(MessageClass::Error, method),
            tid,
            MessageWriteVec::with_capacity(64),
        );
        let reason = ErrorCode::default_reason_for_code(code);
        let mut ok = ErrorCode::new(code, reason)
            .ok()
            .is_some_and(|e| w.add_attribute(&e).is_ok());
        if let Some(unknown) = unknown {
            ok = ok && w.add_attribute(&UnknownAttributes::new(unknown)).is_ok();
        }
        ok = ok && self.software(&mut w) && w.add_fingerprint().is_ok();
        if !ok {
            return None;
        }
        self.stats.errors += 1;
        Some(Transmit {
            from: local,
            to: from,
            bytes: w.finish(),
        })
    }

    /// An RFC 3489 Binding request (no magic cookie): answered with MAPPED-ADDRESS,
    /// SOURCE-ADDRESS and, with an alternate, CHANGED-ADDRESS, encoded by hand because
    /// `stun-types` only writes messages with the magic cookie.
    fn rfc3489(&mut self, local: SocketAddr, from: SocketAddr, bytes: &[u8]) -> Option<Transmit> {
        const BINDING_REQUEST: [u8; 2] = [0x00, 0x01];
        const BINDING_RESPONSE: [u8; 2] = [0x01, 0x01];
        if bytes[0..2] != BINDING_REQUEST {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if length % 4 != 0 || MessageHeader::LENGTH + length != bytes.len() {
            return None;
        }
        let mut change = ChangeRequest::default();
        let mut rest = &bytes[MessageHeader::LENGTH..];
        while !rest.is_empty() {
            let [t0, t1, l0, l1, ..] = *rest else {
                return None;
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            let value = rest.get(4..4 + len)?;
            if [t0, t1] == CHANGE_REQUEST.value().to_be_bytes() {
                change = ChangeRequest::from_value(value)?;
            }
            // RESPONSE-ADDRESS (0x0002) is deliberately not honoured: answering to an address
            // the request names would make this server a reflector.
            rest = rest.get(4 + len.next_multiple_of(4)..).unwrap_or(&[]);
        }
        if change.changes_anything() && self.config.alternate.is_none() {
            // RFC 3489 has no way to say "cannot change": silence is what a client expects
            // from a server that could not answer from elsewhere.
            return None;
        }
        let reply_from = self.reply_socket(local, change);
        let mut attrs = MappedSocketAddr::new(from)
            .to_raw(MAPPED_ADDRESS)
            .to_bytes();
        attrs.extend(
            MappedSocketAddr::new(reply_from)
                .to_raw(SOURCE_ADDRESS)
                .to_bytes(),
        );
        if let Some(other) = self.other_address(local) {
            attrs.extend(
                MappedSocketAddr::new(other)
                    .to_raw(CHANGED_ADDRESS)
                    .to_bytes(),
            );
        }
        let mut out = Vec::with_capacity(MessageHeader::LENGTH + attrs.len());
        out.extend(BINDING_RESPONSE);
        out.extend(u16::try_from(attrs.len()).ok()?.to_be_bytes());
        out.extend(&bytes[4..20]);
        out.extend(attrs);
        self.stats.answered += 1;
        self.stats.rfc3489 += 1;
        Some(Transmit {
            from: reply_from,
            to: from,
            bytes: out,
        })
    }
}

//! Binding client: learns and keeps watching the public address of one local socket.
//!
//! It asks the configured servers in order (RFC 8489 §6.2.1 retransmissions per server), falls
//! back to the next on failure, and after a success asks the same server again every
//! `refresh` to notice a changed mapping (the router restarted, the line got a new address).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngCore;
use stun_types::message::TransactionId;

use crate::wire::{
    binding_request, new_transaction_id, parse_binding_response, Retransmit, RetransmitConfig,
    RetransmitStep, Transmit,
};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// STUN servers, asked in this order; the next one is tried when one fails.
    pub servers: Vec<SocketAddr>,
    /// Retransmission schedule per request.
    pub retransmit: RetransmitConfig,
    /// How long after a success to ask again.
    pub refresh: Duration,
    /// How long to wait after every server failed before starting over with the first.
    pub retry: Duration,
}

impl ClientConfig {
    /// RFC 8489 retransmissions, a refresh every 5 minutes and a retry a minute after every
    /// server failed.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            retransmit: RetransmitConfig::default(),
            refresh: Duration::from_secs(300),
            retry: Duration::from_secs(60),
        }
    }
}

/// The configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No STUN server to ask.
    #[error("no STUN server configured")]
    NoServer,
}

/// Why one server gave no mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// No answer after Rc requests and the final Rm × RTO wait.
    Timeout,
    /// The server answered with an error response (code 0 when it had no ERROR-CODE).
    ErrorResponse {
        /// The ERROR-CODE number.
        code: u16,
    },
    /// A success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS.
    NoMappedAddress,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer"),
            Self::ErrorResponse { code } => write!(f, "error response {code}"),
            Self::NoMappedAddress => f.write_str("success response without a mapped address"),
        }
    }
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A server answered: `local` is seen from outside as `mapped`. Reported on every
    /// successful binding, the refreshes included.
    Mapped {
        /// The server that answered.
        server: SocketAddr,
        /// The local socket asked about.
        local: SocketAddr,
        /// The public address and port.
        mapped: SocketAddr,
    },
    /// One server gave no mapping; the client moves on to the next.
    Failed {
        /// The server.
        server: SocketAddr,
        /// Why.
        why: FailReason,
    },
    /// A refresh found a different public address or port than before.
    MappedAddressChanged {
        /// The previous mapping.
        old: SocketAddr,
        /// The new one.
        new: SocketAddr,
    },
}

#[derive(Debug)]
enum State {
    /// Next request to `servers[server]` at `at`.
    Waiting { at: Instant, server: usize },
    /// A transaction is in flight.
    Querying {
        server: usize,
        tid: TransactionId,
        request: Vec<u8>,
        rtx: Retransmit,
    },
}

/// The binding client for one local socket.
#[derive(Debug)]
pub struct BindingClient<R> {
    config: ClientConfig,
    local: SocketAddr,
    rng: R,
    state: State,
    mapped: Option<SocketAddr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl<R: RngCore> BindingClient<R> {
    /// A client for `local`; its first request is due at `now`.
    pub fn new(
        config: ClientConfig,
        local: SocketAddr,
        rng: R,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        if config.servers.is_empty() {
            return Err(ConfigError::NoServer);
        }
        Ok(Self {
            config,
            local,
            rng,
            state: State::Waiting { at: now, server: 0 },
            mapped: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The last known public address of the local socket.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// A datagram arrived on the local socket. Returns whether it was the answer this client
    /// waited for, so a driver sharing the socket can pass anything else on.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        let State::Querying { server, tid, .. } = &self.state else {
            return false;
        };
        let (server, tid) = (*server, *tid);
        let server_addr = self.config.servers[server];
        // Only the asked server's answer counts: anyone else could be forging a mapping.
        if from != server_addr {
            return false;
        }
        let Some(resp) = parse_binding_response(bytes) else {
            return false;
        };
        if resp.tid != tid {
            return false;
        }
        match (resp.error, resp.mapped) {
            (Some(code), _) => self.fail(now, server, FailReason::ErrorResponse { code }),
            (None, None) => self.fail(now, server, FailReason::NoMappedAddress),
            (None, Some(mapped)) => {
                self.events.push_back(ClientEvent::Mapped {
                    server: server_addr,
                    local: self.local,
                    mapped,
                });
                if let Some(old) = self.mapped.filter(|old| *old != mapped) {
                    self.events
                        .push_back(ClientEvent::MappedAddressChanged { old, new: mapped });
                }
                self.mapped = Some(mapped);
                self.state = State::Waiting {
                    at: now + self.config.refresh,
                    server,
                };
            }
        }
        true
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match &self.state {
            State::Waiting { at, .. } => *at,
            State::Querying { rtx, .. } => rtx.next,
        })
    }

    /// Time passed: send, resend or give up as due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Waiting { at, server } => {
                if now >= *at {
                    let server = *server;
                    self.start(now, server);
                }
            }
            State::Querying {
                server,
                request,
                rtx,
                ..
            } => match rtx.on_timeout(now) {
                RetransmitStep::Wait => {}
                RetransmitStep::Resend => self.transmits.push_back(Transmit {
                    from: self.local,
                    to: self.config.servers[*server],
                    bytes: request.clone(),
                }),
                RetransmitStep::GiveUp => {
                    let server = *server;
                    self.fail(now, server, FailReason::Timeout);
                }
            },
        }
    }

    fn start(&mut self, now: Instant, server: usize) {
        let tid = new_transaction_id(&mut self.rng);
        let request = binding_request(tid, None);
        self.transmits.push_back(Transmit {
            from: self.local,
            to: self.config.servers[server],
            bytes: request.clone(),
        });
        self.state = State::Querying {
            server,
            tid,
            request,
            rtx: Retransmit::start(now, self.config.retransmit),
        };
    }

    /// Reports the failure and asks the next server now, or, after the last, the first one
    /// again after `retry`.
    fn fail(&mut self, now: Instant, server: usize, why: FailReason) {
        self.events.push_back(ClientEvent::Failed {
            server: self.config.servers[server],
            why,
        });
        let next = server + 1;
        if next < self.config.servers.len() {
            self.start(now, next);
        } else {
            self.state = State::Waiting {
                at: now + self.config.retry,
                server: 0,
            };
        }
    }
}

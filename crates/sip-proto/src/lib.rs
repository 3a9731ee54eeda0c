//! Sans-IO SIP protocol cores of homeline: transactions (RFC 3261 §17, RFC 6026), request
//! prechecks (§8.2) and the registrar (§10.3, RFC 7616/8760 digest).
//!
//! Every core is a plain struct: time comes in as `now`, bytes and events come out through
//! `poll_*`; no socket, task or clock lives here (see the `net` crate for the drivers).

pub mod keepalive;
pub mod path;
pub mod registrar;
pub mod sips;
pub mod tx;
pub mod uas;

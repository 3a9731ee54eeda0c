//! Pure decisions of homeline: no I/O, no clock, no randomness of its own.
//!
//! - [`password`]: the strong-password policy that guards the "Internet registration via SBC"
//!   flag, and a generator of passwords that pass it.
//! - [`zone`]: which listener a request came in on, and whether a REGISTER must be challenged,
//!   may pass without authentication, or must be refused after a challenge (no user
//!   enumeration on the wire).
//! - [`sbc`]: when the SBC flag may be set on a station.
//! - [`dialplan`]: the numbering plan: what a dialled number means (internal, local,
//!   national, international, emergency).
//! - [`cos`]: class of service: what a station may dial, forward to and transfer to.
//! - [`cos_classes`]: the classes known by name (built-in and configured), one per zone and
//!   station.
//! - [`capacity`]: simultaneous Internet calls from the upstream bandwidth, with a printable
//!   derivation (the relay enforces the figure).
//!
//! Callers (registrar, store, CLI, admin API) pass in what they know and act on the verdict.

pub mod capacity;
pub mod cos;
pub mod cos_classes;
pub mod dialplan;
pub mod password;
pub mod sbc;
pub mod zone;

pub use capacity::{
    simultaneous_internet_calls, CapacityError, Codec, Derivation, Kbit, Overhead, ReportTable,
    UpstreamReport,
};
pub use cos::{
    check_call, check_forward_target, check_transfer_target, CosClass, CosRefusal, CosRule,
};
pub use cos_classes::{ClassError, CosClasses, StationClasses, UnknownClass};
pub use dialplan::{classify, Destination, DestinationClass, NotDialable, NumberingPlan};
pub use password::{all_rules, check_password, generate_password, PasswordRejected, PasswordRule};
pub use sbc::{check_sbc_flag, PasswordState, SbcFlagRefused, SbcRefusal};
pub use zone::{
    admit_register, Admission, AfterChallenge, DenyReason, StationAuth, Zone, ZoneParseError,
};

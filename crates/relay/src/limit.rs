//! The relay's own limits: the channel pool and the simultaneous-Internet-calls figure the
//! call layer hands it (derived from the upstream bandwidth by `policy::capacity`).

/// Why a channel was refused: the call must be refused before it rings (503 with a Warning
/// naming the limit), never dropped midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitHit {
    /// Every channel of the relay's port range is in use.
    #[error("all {capacity} relay channels are in use")]
    PoolExhausted {
        /// Channels in the pool.
        capacity: u32,
    },
    /// The simultaneous-Internet-calls limit (from the upstream bandwidth) is reached.
    #[error(
        "the limit of {limit} simultaneous Internet calls (from the upstream bandwidth) is reached"
    )]
    InternetCalls {
        /// The limit.
        limit: u32,
    },
}

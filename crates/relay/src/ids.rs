//! Identifiers: ports, channels, and the call layer's references.

use std::fmt;

/// A UDP port of the relay range (an RTP port, even, or an RTCP port, odd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelayPort(u16);

impl RelayPort {
    /// Wraps a port number.
    pub const fn new(port: u16) -> Self {
        Self(port)
    }

    /// The port number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for RelayPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One allocated channel. Carries a generation, so an id kept after [`crate::Relay::release`]
/// never addresses the next channel that reuses the same ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ch{}.{}", self.index, self.generation)
    }
}

/// The call layer's reference to a call; the relay groups channels by it for the media
/// timeout and reports it in events. Opaque to the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallRef(pub u64);

/// The call layer's reference to one leg of a call; reported back in events. Opaque to the
/// relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LegRef(pub u64);

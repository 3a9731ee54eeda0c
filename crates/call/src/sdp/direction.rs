//! Media direction attributes (RFC 8866 §6.7) and their offer/answer rules (RFC 3264 §6.1).

use std::fmt;

/// The direction of a media stream, from the point of view of the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv`, also the default when no direction attribute is present.
    SendRecv,
    /// `a=sendonly`: the author sends and does not receive (puts the peer on hold).
    SendOnly,
    /// `a=recvonly`: the author receives and does not send.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The direction named by an attribute name, `None` for any other attribute.
    pub fn from_attribute(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the author sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the author receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The mirror answer to this offered direction (RFC 3264 §6.1): `sendonly` → `recvonly`,
    /// `recvonly` → `sendonly`, `inactive` → `inactive`, `sendrecv` → `sendrecv`.
    pub fn answer(self) -> Direction {
        self.answer_with(Direction::SendRecv)
    }

    /// The answer to this offered direction when the answerer itself wants `wish`: the answerer
    /// sends only if the offerer receives and it wants to send, and the other way round.
    pub fn answer_with(self, wish: Direction) -> Direction {
        Direction::from_flags(
            self.receives() && wish.sends(),
            self.sends() && wish.receives(),
        )
    }

    fn from_flags(sends: bool, receives: bool) -> Direction {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;
    use super::*;

    #[test]
    fn rfc3264_6_1_mirror_answers() {
        assert_eq!(SendOnly.answer(), RecvOnly);
        assert_eq!(RecvOnly.answer(), SendOnly);
        assert_eq!(Inactive.answer(), Inactive);
        assert_eq!(SendRecv.answer(), SendRecv);
    }

    #[test]
    fn rfc3264_6_1_answerer_may_narrow() {
        assert_eq!(SendRecv.answer_with(SendOnly), SendOnly);
        assert_eq!(SendRecv.answer_with(Inactive), Inactive);
        assert_eq!(
            SendOnly.answer_with(SendOnly),
            Inactive,
            "nobody would receive"
        );
        assert_eq!(Inactive.answer_with(SendRecv), Inactive);
    }

    #[test]
    fn names_round_trip() {
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
        }
        assert_eq!(Direction::from_attribute("rtcp-mux"), None);
    }
}

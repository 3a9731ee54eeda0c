//! Class of service: what a station may dial and where it may forward calls.
//!
//! For now only a number; the dialling rules attached to each class come with call routing.

use std::fmt;

/// A class of service, identified by its number (the reference product numbers its COS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClassOfService(pub u32);

impl ClassOfService {
    /// The class number.
    pub fn number(self) -> u32 {
        self.0
    }
}

impl From<u32> for ClassOfService {
    fn from(n: u32) -> Self {
        Self(n)
    }
}

impl fmt::Display for ClassOfService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "COS {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_converts() {
        let c = ClassOfService::from(3);
        assert_eq!(c.number(), 3);
        assert_eq!(c.to_string(), "COS 3");
        assert_eq!(ClassOfService::default(), ClassOfService(0));
    }
}

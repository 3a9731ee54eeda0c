//! Stateless digest nonces: a timestamp and a keyed hash, so any nonce we issued can be checked
//! without remembering it, and an old one is answered with `stale=true` (RFC 7616 §3.3).

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a nonce presented by a client turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by us and still within its lifetime.
    Fresh,
    /// Issued by us but expired: challenge again with `stale=true`.
    Stale,
    /// Not ours (forged, from before a restart, or garbage).
    Invalid,
}

/// Issues and checks nonces.
#[derive(Debug)]
pub(crate) struct NonceKeeper {
    secret: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
}

impl NonceKeeper {
    pub(crate) fn new(secret: [u8; 32], epoch: Instant, lifetime: Duration) -> NonceKeeper {
        NonceKeeper {
            secret,
            epoch,
            lifetime,
        }
    }

    /// A nonce for `now`: 8 hex digits of seconds since start, then 32 of MAC.
    pub(crate) fn issue(&self, now: Instant) -> String {
        let ts = now.saturating_duration_since(self.epoch).as_secs() as u32;
        let mut out = format!("{ts:08x}");
        out.push_str(&hex::encode(self.mac(ts)));
        out
    }

    pub(crate) fn check(&self, now: Instant, nonce: &str) -> NonceCheck {
        if nonce.len() != 40 || !nonce.is_ascii() {
            return NonceCheck::Invalid;
        }
        let (Ok(ts), Ok(mac)) = (
            u32::from_str_radix(&nonce[..8], 16),
            hex::decode(&nonce[8..]),
        ) else {
            return NonceCheck::Invalid;
        };
        if !bool::from(self.mac(ts).as_slice().ct_eq(&mac)) {
            return NonceCheck::Invalid;
        }
        let issued = self.epoch + Duration::from_secs(u64::from(ts));
        if now.saturating_duration_since(issued) > self.lifetime {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }

    fn mac(&self, ts: u32) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(ts.to_be_bytes());
        let d = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary origin for virtual time
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_invalid() {
        let t0 = Instant::now();
        let k = NonceKeeper::new([7; 32], t0, Duration::from_secs(300));
        let n = k.issue(t0 + Duration::from_secs(5));
        assert_eq!(
            k.check(t0 + Duration::from_secs(100), &n),
            NonceCheck::Fresh
        );
        assert_eq!(
            k.check(t0 + Duration::from_secs(400), &n),
            NonceCheck::Stale
        );
        let mut forged = n.clone();
        forged.replace_range(39..40, if n.ends_with('0') { "1" } else { "0" });
        assert_eq!(k.check(t0, &forged), NonceCheck::Invalid);
        let other = NonceKeeper::new([8; 32], t0, Duration::from_secs(300));
        assert_eq!(other.check(t0, &n), NonceCheck::Invalid);
        assert_eq!(k.check(t0, "zz"), NonceCheck::Invalid);
    }
}

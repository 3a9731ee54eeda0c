//! How messages find their transaction: the keys of RFC 3261 §17.1.3 / §17.2.3 (and the
//! RFC 2543 fallback), the dialog identity of an ACK for a 2xx, and the hash index.
//!
//! The index maps a 64-bit keyed hash of the key to the transactions holding it; every
//! candidate is then compared with its stored key, so a hash collision costs a comparison,
//! never a wrong match. Lookups hash borrowed parts of the message: the index allocates
//! nothing per transaction beyond what it stores (one `TxId` in a map slot).

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sip::header::Via;
use sip::{HeaderAccess, Host, Method, Request};

use super::TxId;

/// Hashes keys with a secret taken from the layer's RNG (no hash flooding, deterministic
/// for a given seed).
pub(crate) struct KeyHasher {
    secret: u64,
}

impl KeyHasher {
    /// A hasher keyed with `secret`.
    pub(crate) fn new(secret: u64) -> KeyHasher {
        KeyHasher { secret }
    }

    fn hash(&self, domain: u8, value: &impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        self.secret.hash(&mut h);
        domain.hash(&mut h);
        value.hash(&mut h);
        h.finish()
    }

    /// Server key with an RFC 3261 branch.
    pub(crate) fn branch(
        &self,
        branch: &str,
        host: &Host,
        port: Option<u16>,
        method: &Method,
    ) -> u64 {
        self.hash(0, &(branch, host, port, method))
    }

    /// Server key of an RFC 2543 request.
    pub(crate) fn legacy(&self, k: &LegacyKey) -> u64 {
        self.hash(
            1,
            &(&k.uri, &k.from_tag, &k.call_id, k.cseq, &k.method, &k.via),
        )
    }

    /// Client key.
    pub(crate) fn client(&self, branch: &str, method: &Method) -> u64 {
        self.hash(2, &(branch, method))
    }

    /// Dialog identity of a 2xx and its ACK.
    pub(crate) fn ack(&self, a: &AckParts) -> u64 {
        self.hash(3, a)
    }
}

static INVITE: Method = Method::Invite;

/// The method a request matches transactions by: an ACK belongs to its INVITE (§17.2.3).
pub(crate) fn method_class(method: &Method) -> &Method {
    if *method == Method::Ack {
        &INVITE
    } else {
        method
    }
}

/// The INVITE method, for looking up the INVITE a CANCEL or ACK targets.
pub(crate) fn invite() -> &'static Method {
    &INVITE
}

/// Identity of a server transaction.
pub(crate) enum ServerKey {
    /// §17.2.3 with the magic cookie: branch, sent-by, method.
    Branch {
        branch: String,
        host: Host,
        port: Option<u16>,
        method: Method,
    },
    /// The RFC 2543 fallback (rare: boxed to keep transactions small).
    Legacy(Box<LegacyKey>),
}

/// How a request's To tag must compare under the RFC 2543 rules (§17.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToTagRule {
    /// A retransmission: same To tag as the request that created the transaction.
    Request,
    /// An ACK: the To tag of the final response sent.
    FinalResponse,
    /// The INVITE a CANCEL targets: any To tag (§9.2).
    Ignore,
}

impl ServerKey {
    /// True when this key is the RFC 3261 key (`branch`, sent-by, `method`).
    pub(crate) fn is_branch(&self, branch: &str, via: &Via, method: &Method) -> bool {
        matches!(self, ServerKey::Branch { branch: b, host, port, method: m }
            if b == branch && *host == via.host && *port == via.port && m == method)
    }

    /// True when this RFC 2543 key matches `probe` under `rule`.
    pub(crate) fn is_legacy(&self, probe: &LegacyKey, rule: ToTagRule) -> bool {
        let ServerKey::Legacy(k) = self else {
            return false;
        };
        k.same_request(probe)
            && match rule {
                ToTagRule::Request => k.to_tag == probe.to_tag,
                ToTagRule::FinalResponse => k.response_to_tag.as_ref() == Some(&probe.to_tag),
                ToTagRule::Ignore => true,
            }
    }
}

/// What RFC 2543 matching compares (§17.2.3, last paragraphs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyKey {
    uri: String,
    from_tag: Option<String>,
    call_id: String,
    cseq: u32,
    method: Method,
    /// The top Via as received (before `received`/`rport` were added).
    via: String,
    /// To tag of the request.
    to_tag: Option<String>,
    /// To tag of the final response, once one was sent.
    pub(crate) response_to_tag: Option<Option<String>>,
}

impl LegacyKey {
    /// The key of `req` with top Via `via`, matching transactions of method `class`.
    pub(crate) fn of(req: &Request, via: &Via, class: &Method) -> Option<LegacyKey> {
        Some(LegacyKey {
            uri: req.uri.to_string(),
            from_tag: req.from().and_then(|n| n.tag()),
            call_id: req.call_id()?.to_string(),
            cseq: req.cseq()?.seq,
            method: class.clone(),
            via: via.to_string(),
            to_tag: req.to().and_then(|n| n.tag()),
            response_to_tag: None,
        })
    }

    fn same_request(&self, o: &LegacyKey) -> bool {
        self.uri == o.uri
            && self.from_tag == o.from_tag
            && self.call_id == o.call_id
            && self.cseq == o.cseq
            && self.method == o.method
            && self.via == o.via
    }
}

/// Identity of a client transaction (§17.1.3): branch and CSeq method.
pub(crate) struct ClientKey {
    pub(crate) branch: String,
    pub(crate) method: Method,
}

/// What ties an ACK to the 2xx it acknowledges (§13.2.2.4, §12.2.1.1): Call-ID, CSeq number,
/// From tag and To tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckParts {
    call_id: Option<String>,
    cseq: Option<u32>,
    from_tag: Option<String>,
    to_tag: Option<String>,
}

impl AckParts {
    /// The parts of a 2xx or an ACK.
    pub(crate) fn of(m: &impl HeaderAccess) -> AckParts {
        AckParts {
            call_id: m.call_id().map(str::to_string),
            cseq: m.cseq().map(|c| c.seq),
            from_tag: m.from().and_then(|n| n.tag()),
            to_tag: m.to().and_then(|n| n.tag()),
        }
    }
}

/// Transactions by key hash.
#[derive(Default)]
pub(crate) struct Index(HashMap<u64, Bucket, BuildHasherDefault<PreHashed>>);

/// Almost always one transaction per hash; several only on a collision (or a duplicated key).
enum Bucket {
    One(TxId),
    Many(Vec<TxId>),
}

impl Index {
    /// Files `id` under `hash`.
    pub(crate) fn insert(&mut self, hash: u64, id: TxId) {
        match self.0.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(Bucket::One(id));
            }
            Entry::Occupied(mut e) => {
                let b = e.get_mut();
                match b {
                    Bucket::One(first) => *b = Bucket::Many(vec![*first, id]),
                    Bucket::Many(ids) => ids.push(id),
                }
            }
        }
    }

    /// Removes `id` from `hash`.
    pub(crate) fn remove(&mut self, hash: u64, id: TxId) {
        let Entry::Occupied(mut e) = self.0.entry(hash) else {
            return;
        };
        match e.get_mut() {
            Bucket::One(x) if *x == id => {
                e.remove();
            }
            Bucket::One(_) => {}
            Bucket::Many(ids) => {
                ids.retain(|x| *x != id);
                match ids.as_slice() {
                    [] => {
                        e.remove();
                    }
                    [only] => {
                        let only = *only;
                        e.insert(Bucket::One(only));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Transactions filed under `hash`, to be checked against their stored key.
    pub(crate) fn candidates(&self, hash: u64) -> &[TxId] {
        match self.0.get(&hash) {
            Some(Bucket::One(id)) => std::slice::from_ref(id),
            Some(Bucket::Many(ids)) => ids,
            None => &[],
        }
    }

    /// Number of hashes filed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The keys are already keyed hashes: the map uses them as they are.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

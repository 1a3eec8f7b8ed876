//! A short digest that names some bytes without holding them: what a copy must share with
//! the first one (an event's type and data, a request's signature), kept in a shared store
//! where the bytes themselves (a signature) should not be readable.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    /// The digest of `parts`, each followed by a zero byte so that no two splits of the same
    /// bytes agree.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update(part);
            hash.update([0]);
        }
        let mut print = [0; 16];
        print.copy_from_slice(&hash.finalize()[..16]);
        Self(print)
    }

    /// An event's `type` and `data`: what a copy under the same id must carry. serde_json's
    /// map is ordered by key, so the same data gives the same text.
    pub fn of_event(kind: &str, data: &serde_json::Map<String, serde_json::Value>) -> Self {
        Self::of(&[kind.as_bytes(), &serde_json::to_vec(data).unwrap_or_default()])
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

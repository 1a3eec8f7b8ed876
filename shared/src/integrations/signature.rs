//! What the webhook signature checks share: the keyed HMAC, constant-time comparison over the
//! exact raw body bytes, and [`Verified`], the proof they hand to the parsers. The checks
//! themselves are `github/signature.rs` and `slack/signature.rs`, each with the matching
//! `sign_*` function for tests and tools.

use crate::model::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(in crate::integrations) type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No secret is configured: every request is refused (fail closed).
    #[error("no secret is configured")]
    NoSecret,
    #[error("the signature header is missing")]
    Missing,
    #[error("only the legacy sha1 X-Hub-Signature was sent; X-Hub-Signature-256 is required")]
    LegacyOnly,
    #[error("the signature is not in the expected format")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the request timestamp is missing or malformed")]
    BadTimestamp,
    #[error("the request timestamp is outside the allowed window")]
    Stale,
}

/// A request body whose signature checked out. Only [`HmacVerifier`] makes one, so a parser
/// that takes it ([`crate::integrations::source::WebhookSource::parse`]) cannot be handed
/// bytes that were not verified.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    body: &'a [u8],
}

impl<'a> Verified<'a> {
    /// For unit tests of the parsers, which are about parsing, not signatures.
    #[cfg(test)]
    pub(crate) fn for_test(body: &'a [u8]) -> Self {
        Self { body }
    }

    /// Made by a verifier in `integrations` once a signature checks out.
    pub(in crate::integrations) fn new(body: &'a [u8]) -> Self {
        Self { body }
    }

    /// The exact bytes the signature covers.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// HMAC-SHA256 keyed with each accepted secret (the current one and, during a rotation, the
/// previous one). Keys are absorbed once at start; each request clones the keyed state.
#[derive(Clone)]
pub struct HmacVerifier {
    keyed: Vec<HmacSha256>,
}

impl std::fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacVerifier({} keys)", self.keyed.len())
    }
}

impl HmacVerifier {
    /// `None` when no secret is given: the caller must fail closed.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Option<Self> {
        let keyed: Vec<HmacSha256> = secrets
            .into_iter()
            .map(|s| HmacSha256::new_from_slice(s.expose().as_bytes()).expect("HMAC accepts keys of any length"))
            .collect();
        (!keyed.is_empty()).then_some(Self { keyed })
    }

    /// Whether `expected` is the HMAC of the concatenated `parts` under any accepted key.
    /// Every key is tried, so the time taken does not depend on which one matches.
    pub(in crate::integrations) fn verify_parts(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
        let mut ok = false;
        for key in &self.keyed {
            let mut mac = key.clone();
            for p in parts {
                mac.update(p);
            }
            ok |= mac.verify_slice(expected).is_ok();
        }
        ok
    }
}

/// 64 lower-case hex digits, as GitHub and Slack send them. Upper case is refused so a
/// signature has exactly one accepted spelling: a flipped case bit is a changed signature.
pub(in crate::integrations) fn decode_hex32(hex_part: &[u8]) -> Option<[u8; 32]> {
    if hex_part.len() != 64 || !hex_part.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// For the checks' unit tests.
#[cfg(test)]
pub(in crate::integrations) mod testing {
    use super::*;

    pub(in crate::integrations) fn verifier(secrets: &[&str]) -> HmacVerifier {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        HmacVerifier::new(&secrets).expect("secrets")
    }
}

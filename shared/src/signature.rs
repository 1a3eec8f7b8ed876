//! Webhook signature verification over the exact raw body bytes, constant-time, with the
//! matching `sign` functions for tests and tools.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
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
    fn verify_parts(&self, parts: &[&[u8]], expected: &[u8]) -> bool {
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

    /// GitHub: `X-Hub-Signature-256: sha256=<64 hex>` over the raw body.
    pub fn verify_github(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_part = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        let expected = decode_hex32(hex_part).ok_or(SignatureError::Malformed)?;
        if self.verify_parts(&[body], &expected) { Ok(()) } else { Err(SignatureError::Mismatch) }
    }
}

fn decode_hex32(hex_part: &[u8]) -> Option<[u8; 32]> {
    if hex_part.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).ok()?;
    Some(out)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body`.
pub fn sign_github(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secrets: &[&str]) -> HmacVerifier {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        HmacVerifier::new(&secrets).expect("secrets")
    }

    #[test]
    fn githubs_documented_test_vector() {
        // From GitHub's "Validating webhook deliveries".
        let secret = "It's a Secret to Everybody";
        let want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_github(secret, b"Hello, World!"), want);
        assert_eq!(verifier(&[secret]).verify_github(Some(want.as_bytes()), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn non_ascii_bodies_are_verified_byte_for_byte() {
        let body = "{\"title\":\"Fix 🚀 déjà vu – ünïcode\"}".as_bytes();
        let sig = sign_github("s3cret", body);
        let v = verifier(&["s3cret"]);
        assert_eq!(v.verify_github(Some(sig.as_bytes()), body), Ok(()));
        let mut flipped = body.to_vec();
        flipped[12] ^= 0x01;
        assert_eq!(v.verify_github(Some(sig.as_bytes()), &flipped), Err(SignatureError::Mismatch));
    }

    #[test]
    fn bad_headers_are_classified() {
        let v = verifier(&["s3cret"]);
        let body = b"{}";
        let good = sign_github("s3cret", body);
        assert_eq!(v.verify_github(None, body), Err(SignatureError::Missing));
        assert_eq!(v.verify_github(Some(b"sha1=abc"), body), Err(SignatureError::Malformed));
        assert_eq!(v.verify_github(Some(&good.as_bytes()[..good.len() - 2]), body), Err(SignatureError::Malformed));
        assert_eq!(v.verify_github(Some(good.to_uppercase().as_bytes()), body), Err(SignatureError::Malformed));
        let not_hex = format!("sha256={}", "z".repeat(64));
        assert_eq!(v.verify_github(Some(not_hex.as_bytes()), body), Err(SignatureError::Malformed));
        assert_eq!(v.verify_github(Some(sign_github("other", body).as_bytes()), body), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation() {
        let v = verifier(&["new", "old"]);
        for s in ["new", "old"] {
            assert_eq!(v.verify_github(Some(sign_github(s, b"x").as_bytes()), b"x"), Ok(()));
        }
        assert_eq!(v.verify_github(Some(sign_github("older", b"x").as_bytes()), b"x"), Err(SignatureError::Mismatch));
        assert!(HmacVerifier::new(&[]).is_none());
    }
}

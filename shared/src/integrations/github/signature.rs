//! The GitHub signature check: `X-Hub-Signature-256` over the exact raw body.

use crate::integrations::signature::{HmacSha256, HmacVerifier, SignatureError, Verified, decode_hex32};
use hmac::Mac;

impl HmacVerifier {
    /// GitHub: `X-Hub-Signature-256: sha256=<64 hex>` over the raw body.
    pub fn verify_github<'a>(&self, header: Option<&[u8]>, body: &'a [u8]) -> Result<Verified<'a>, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_part = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        let expected = decode_hex32(hex_part).ok_or(SignatureError::Malformed)?;
        if self.verify_parts(&[body], &expected) { Ok(Verified::new(body)) } else { Err(SignatureError::Mismatch) }
    }
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
    use crate::integrations::signature::testing::verifier;

    #[test]
    fn githubs_documented_test_vector() {
        // From GitHub's "Validating webhook deliveries".
        let secret = "It's a Secret to Everybody";
        let want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign_github(secret, b"Hello, World!"), want);
        assert_eq!(verifier(&[secret]).verify_github(Some(want.as_bytes()), b"Hello, World!").map(drop), Ok(()));
    }

    #[test]
    fn non_ascii_bodies_are_verified_byte_for_byte() {
        let body = "{\"title\":\"Fix 🚀 déjà vu – ünïcode\"}".as_bytes();
        let sig = sign_github("s3cret", body);
        let v = verifier(&["s3cret"]);
        assert_eq!(v.verify_github(Some(sig.as_bytes()), body).map(drop), Ok(()));
        let mut flipped = body.to_vec();
        flipped[12] ^= 0x01;
        assert_eq!(v.verify_github(Some(sig.as_bytes()), &flipped).map(drop), Err(SignatureError::Mismatch));
    }

    #[test]
    fn bad_headers_are_classified() {
        let v = verifier(&["s3cret"]);
        let body = b"{}";
        let good = sign_github("s3cret", body);
        assert_eq!(v.verify_github(None, body).map(drop), Err(SignatureError::Missing));
        assert_eq!(v.verify_github(Some(b"sha1=abc"), body).map(drop), Err(SignatureError::Malformed));
        assert_eq!(
            v.verify_github(Some(&good.as_bytes()[..good.len() - 2]), body).map(drop),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v.verify_github(Some(good.to_uppercase().as_bytes()), body).map(drop),
            Err(SignatureError::Malformed)
        );
        let upper_hex = format!("sha256={}", good[7..].to_uppercase());
        assert_eq!(v.verify_github(Some(upper_hex.as_bytes()), body).map(drop), Err(SignatureError::Malformed));
        let not_hex = format!("sha256={}", "z".repeat(64));
        assert_eq!(v.verify_github(Some(not_hex.as_bytes()), body).map(drop), Err(SignatureError::Malformed));
        assert_eq!(
            v.verify_github(Some(sign_github("other", body).as_bytes()), body).map(drop),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_during_rotation() {
        let v = verifier(&["new", "old"]);
        for s in ["new", "old"] {
            assert_eq!(v.verify_github(Some(sign_github(s, b"x").as_bytes()), b"x").map(drop), Ok(()));
        }
        assert_eq!(
            v.verify_github(Some(sign_github("older", b"x").as_bytes()), b"x").map(drop),
            Err(SignatureError::Mismatch)
        );
        assert!(HmacVerifier::new(&[]).is_none());
    }
}

//! Webhook signature verification over the exact raw body bytes, constant-time, with the
//! matching `sign` functions for tests and tools.

use crate::model::secret::Secret;
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

/// A request body whose signature checked out. Only [`HmacVerifier`] makes one, so a parser
/// that takes it (`github::webhook::normalize`, `slack::request::parse`) cannot be handed
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
    pub fn verify_github<'a>(&self, header: Option<&[u8]>, body: &'a [u8]) -> Result<Verified<'a>, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_part = header.strip_prefix(b"sha256=").ok_or(SignatureError::Malformed)?;
        let expected = decode_hex32(hex_part).ok_or(SignatureError::Malformed)?;
        if self.verify_parts(&[body], &expected) { Ok(Verified { body }) } else { Err(SignatureError::Mismatch) }
    }
}

/// Slack's replay window: a request more than this far from now, either way, is refused.
pub const SLACK_WINDOW_SECS: i64 = 300;

impl HmacVerifier {
    /// Slack: `X-Slack-Signature: v0=<64 hex>` of `v0:{X-Slack-Request-Timestamp}:{raw body}`,
    /// with the timestamp within five minutes of `now_unix` in either direction.
    pub fn verify_slack<'a>(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &'a [u8],
        now_unix: i64,
    ) -> Result<Verified<'a>, SignatureError> {
        let ts = timestamp.ok_or(SignatureError::BadTimestamp)?;
        if ts.is_empty() || ts.len() > 12 || !ts.iter().all(u8::is_ascii_digit) {
            return Err(SignatureError::BadTimestamp);
        }
        let when: i64 =
            std::str::from_utf8(ts).ok().and_then(|t| t.parse().ok()).ok_or(SignatureError::BadTimestamp)?;
        if (now_unix - when).abs() > SLACK_WINDOW_SECS {
            return Err(SignatureError::Stale);
        }
        let sig = signature.ok_or(SignatureError::Missing)?;
        let hex_part = sig.strip_prefix(b"v0=").ok_or(SignatureError::Malformed)?;
        let expected = decode_hex32(hex_part).ok_or(SignatureError::Malformed)?;
        if self.verify_parts(&[b"v0:", ts, b":", body], &expected) {
            Ok(Verified { body })
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`.
pub fn sign_slack(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// 64 lower-case hex digits, as GitHub and Slack send them. Upper case is refused so a
/// signature has exactly one accepted spelling: a flipped case bit is a changed signature.
fn decode_hex32(hex_part: &[u8]) -> Option<[u8; 32]> {
    if hex_part.len() != 64 || !hex_part.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
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

    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    #[test]
    fn slacks_documented_example_is_accepted_only_inside_the_window() {
        // From Slack's "Verifying requests from Slack".
        let v = verifier(&["8f742231b10e8888abcd99yyyzzz85a5"]);
        let sig = b"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let ts = b"1531420618";
        assert_eq!(sign_slack("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, SLACK_BODY.as_bytes()).as_bytes(), sig);
        assert_eq!(v.verify_slack(Some(ts), Some(sig), SLACK_BODY.as_bytes(), 1531420618 + 10).map(drop), Ok(()));
        // The real clock is years past that timestamp: refused as stale.
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            v.verify_slack(Some(ts), Some(sig), SLACK_BODY.as_bytes(), now).map(drop),
            Err(SignatureError::Stale)
        );
        // Both directions, at the edge.
        assert_eq!(v.verify_slack(Some(ts), Some(sig), SLACK_BODY.as_bytes(), 1531420618 + 300).map(drop), Ok(()));
        assert_eq!(
            v.verify_slack(Some(ts), Some(sig), SLACK_BODY.as_bytes(), 1531420618 - 301).map(drop),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            v.verify_slack(Some(ts), Some(sig), SLACK_BODY.as_bytes(), 1531420618 + 301).map(drop),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn slack_bad_inputs_are_classified() {
        let v = verifier(&["s"]);
        let now = 1_700_000_000;
        let good = sign_slack("s", now, b"a=b");
        let ts = now.to_string();
        assert_eq!(
            v.verify_slack(None, Some(good.as_bytes()), b"a=b", now).map(drop),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            v.verify_slack(Some(b"12a"), Some(good.as_bytes()), b"a=b", now).map(drop),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            v.verify_slack(Some(b"-5"), Some(good.as_bytes()), b"a=b", now).map(drop),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(v.verify_slack(Some(ts.as_bytes()), None, b"a=b", now).map(drop), Err(SignatureError::Missing));
        assert_eq!(
            v.verify_slack(Some(ts.as_bytes()), Some(&good.as_bytes()[3..]), b"a=b", now).map(drop),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v.verify_slack(Some(ts.as_bytes()), Some(good.as_bytes()), b"a=c", now).map(drop),
            Err(SignatureError::Mismatch)
        );
        let other_ts = (now + 1).to_string();
        assert_eq!(
            v.verify_slack(Some(other_ts.as_bytes()), Some(good.as_bytes()), b"a=b", now).map(drop),
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

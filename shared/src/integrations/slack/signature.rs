//! The Slack signature check: `X-Slack-Signature` over `v0:{timestamp}:{raw body}`, with
//! the timestamp inside the replay window.

use crate::integrations::signature::{HmacSha256, HmacVerifier, SignatureError, Verified, decode_hex32};
use hmac::Mac;

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
            Ok(Verified::new(body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::signature::testing::verifier;

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
}

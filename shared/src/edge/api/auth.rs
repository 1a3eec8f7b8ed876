//! Bearer-token authentication of the internal routes, compared in constant time.

use super::ApiError;
use crate::engine::app::InternalAuth;
use crate::model::secret::Secret;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A caller that Lambda authenticated with IAM (function URL AuthType AWS_IAM), by ARN.
/// Only the Lambda adapter sets it, from the envelope's `requestContext.authorizer.iam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCaller(pub String);

/// The internal routes' check: a caller Lambda authenticated with IAM, or
/// `Authorization: Bearer <AETHERIUM_API_TOKEN>`. Neither configured nor IAM fails closed.
///
/// The IAM identity counts only when `iam_url` says this function's URL is AWS_IAM. Lambda
/// fills `authorizer.iam` itself behind such a URL, but the envelope is whatever the invoker
/// passes: anyone allowed `lambda:InvokeFunction` on a function with a public URL (or a
/// test, or a misconfigured stack) can write it.
pub fn internal(auth: InternalAuth<'_>, req: &super::Request) -> Result<(), ApiError> {
    if let Some(IamCaller(arn)) = req.extensions().get::<IamCaller>() {
        if auth.iam_url {
            tracing::debug!(caller = %arn, "authenticated by IAM");
            return Ok(());
        }
        tracing::warn!(
            "ignoring an IAM identity in the envelope: this function's URL is not AWS_IAM (AETHERIUM_FUNCTION_URL_AUTH)"
        );
    }
    bearer(auth.token, req.headers())
}

/// Accept only `Authorization: Bearer <token>` with the configured token. No token
/// configured fails closed.
pub fn bearer(expected: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = expected.ok_or(ApiError::Misconfigured { setting: "AETHERIUM_API_TOKEN (api.token)" })?;
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or(ApiError::Unauthorized("an Authorization: Bearer <token> header is required"))?;
    // Compare digests so neither the length nor a common prefix leaks through timing.
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected.expose().as_bytes());
    if bool::from(a.ct_eq(&b)) { Ok(()) } else { Err(ApiError::Unauthorized("the bearer token is not valid")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(http::header::AUTHORIZATION, v.parse().expect("header"));
        }
        h
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = Secret::new("t0ken");
        assert!(bearer(Some(&token), &headers(Some("Bearer t0ken"))).is_ok());
        for bad in [
            None,
            Some("Bearer t0ke"),
            Some("Bearer t0ken "),
            Some("bearer t0ken"),
            Some("Basic dDBrZW4="),
            Some("t0ken"),
        ] {
            let err = bearer(Some(&token), &headers(bad)).expect_err("rejected");
            assert_eq!(err.status(), 401, "{bad:?}");
        }
        let err = bearer(None, &headers(Some("Bearer anything"))).expect_err("fail closed");
        assert_eq!(err.status(), 500);
    }
}

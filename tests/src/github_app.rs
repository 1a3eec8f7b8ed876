//! A GitHub App as GitHub sees it: a key generated per test, a matcher that checks the App's
//! JWT the way GitHub does, and the installation-token endpoint.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The App id the tests configure (`GITHUB_APP_ID`).
pub const APP_ID: &str = "12345";

#[derive(Debug)]
pub struct AppKey {
    /// PKCS#8 PEM, as `GITHUB_APP_PRIVATE_KEY`.
    pub pem: String,
    pub public: Vec<u8>,
}

pub fn generate_app_key() -> AppKey {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("generate");
    let der = key.as_der().expect("pkcs8");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    AppKey { pem, public: key.public_key().as_ref().to_vec() }
}

/// Matches a request whose bearer token is an RS256 JWT signed by `public`, issued by the
/// App, and valid now for at most ten minutes: what GitHub checks.
#[derive(Debug)]
pub struct ValidJwt {
    pub public: Vec<u8>,
    pub app_id: &'static str,
}

impl ValidJwt {
    /// The JWT of App [`APP_ID`] signed with `key`.
    pub fn of(key: &AppKey) -> Self {
        Self { public: key.public.clone(), app_id: APP_ID }
    }
}

impl wiremock::Match for ValidJwt {
    fn matches(&self, req: &wiremock::Request) -> bool {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Some(jwt) =
            req.headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return false;
        }
        let (Ok(header), Ok(claims), Ok(sig)) = (b64.decode(parts[0]), b64.decode(parts[1]), b64.decode(parts[2]))
        else {
            return false;
        };
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.public,
        );
        if key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).is_err() {
            return false;
        }
        let header: Value = serde_json::from_slice(&header).unwrap_or_default();
        let claims: Value = serde_json::from_slice(&claims).unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
        header["alg"] == "RS256" && claims["iss"] == self.app_id && iat <= now && exp > now && exp - iat <= 600
    }
}

/// GitHub's token endpoint for installation 77, answering `token` exactly once, and only to
/// a JWT signed with the App's key.
pub async fn mount_mint(server: &MockServer, key: &AppKey, token: &str) {
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    Mock::given(method("POST"))
        .and(path("/app/installations/77/access_tokens"))
        .and(header("accept", "application/vnd.github+json"))
        .and(ValidJwt::of(key))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"token": token, "expires_at": expires})))
        .up_to_n_times(1)
        .expect(1)
        .mount(server)
        .await;
}

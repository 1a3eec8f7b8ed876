//! GitHub App authentication: an RS256 JWT signed with the App's private key, exchanged for an
//! installation access token.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

pub struct AppAuth {
    pub app_id: u64,
    pub installation_id: Option<u64>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth").field("app_id", &self.app_id).field("installation_id", &self.installation_id).finish()
    }
}

impl AppAuth {
    /// Parse the PEM private key (PKCS#1 as GitHub issues it, or PKCS#8). Errors say what is
    /// wrong without echoing the key.
    pub fn new(app_id: u64, pem: &str, installation_id: Option<u64>) -> Result<Self, String> {
        let pem = pem.replace("\\n", "\n");
        let (label, der) = decode_pem(&pem)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => return Err(format!("the PEM block is `{other}`, not an RSA private key")),
        }
        .map_err(|e| format!("the RSA private key cannot be read: {e}"))?;
        Ok(Self { app_id, installation_id, key })
    }

    /// A JWT valid from a minute ago (clock drift) for nine minutes (GitHub allows ten).
    pub fn jwt(&self, now_unix: i64) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({ "iat": now_unix - 60, "exp": now_unix + 540, "iss": self.app_id.to_string() });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|_| "signing the GitHub App JWT failed".to_owned())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), String> {
    let begin = pem.find("-----BEGIN ").ok_or("no `-----BEGIN` line: is this a PEM private key?")?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----").ok_or("malformed PEM header")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker).ok_or("no matching `-----END` line")?;
    let b64: String = rest[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| "the PEM body is not valid base64".to_owned())?;
    Ok((label, der))
}

//! The installation tokens the functions share through the store, sealed: the Redis the
//! platform is told to share (the bus) holds them only encrypted, under a key derived from
//! the App's private key, which only the functions hold. AES-256-GCM from aws-lc-rs (already
//! linked for the App's RS256 signature), the key by HKDF-SHA256; the store key is the
//! associated data, so a sealed token cannot be moved to another installation's key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "v1:";

pub struct TokenSeal(LessSafeKey);

impl std::fmt::Debug for TokenSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSeal")
    }
}

impl TokenSeal {
    /// The seal whose key is derived from `secret` (the App's private key, as configured).
    pub fn from_secret(secret: &[u8]) -> Option<Self> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"aetherium github installation token cache").extract(secret);
        let okm = prk.expand(&[b"aes-256-gcm v1"], &AES_256_GCM).ok()?;
        Some(Self(LessSafeKey::new(UnboundKey::from(okm))))
    }

    /// `plain` sealed for the store under `key`: `v1:` and the nonce and ciphertext in base64.
    pub fn seal(&self, key: &str, plain: &str) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let mut sealed = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(key.as_bytes()), &mut sealed)
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// What was sealed under `key`; `None` for anything else (a token cached in plaintext by
    /// an older version, another key's, a tampered value): the caller mints a new one.
    pub fn open(&self, key: &str, stored: &str) -> Option<String> {
        let raw = STANDARD.decode(stored.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(key.as_bytes()), &mut buf).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_under_its_key_and_store_key() {
        let seal = TokenSeal::from_secret(b"-----BEGIN PRIVATE KEY-----a").expect("seal");
        let sealed = seal.seal("github:token:77", r#"{"token":"ghs_secret"}"#).expect("sealed");
        assert!(!sealed.contains("ghs_secret"), "{sealed}");
        assert_eq!(seal.open("github:token:77", &sealed).as_deref(), Some(r#"{"token":"ghs_secret"}"#));
        assert_eq!(seal.open("github:token:78", &sealed), None, "moved to another installation");
        let other = TokenSeal::from_secret(b"another key").expect("seal");
        assert_eq!(other.open("github:token:77", &sealed), None, "another App's key");
        assert_eq!(seal.open("github:token:77", r#"{"token":"ghs_secret"}"#), None, "plaintext from before");
        let mut tampered = sealed.clone();
        tampered.insert(10, 'A');
        assert_eq!(seal.open("github:token:77", &tampered), None);
    }
}

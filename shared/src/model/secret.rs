//! Secrets that cannot leak through `Debug`, `Display` or serialisation.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret value. Its `Debug` prints only that it is redacted, never its length or bytes,
/// and it has no `Display` or `Serialize`: the only way to the value is [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// `None` for an empty value: an empty secret is the same as no secret.
    pub fn non_empty(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (!value.trim().is_empty()).then_some(Self(value))
    }

    /// A fresh random secret: 32 bytes from the OS, hex encoded.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // The OS RNG failing is unrecoverable and never expected on Linux.
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Self(hex::encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-canary");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(s.expose(), "hunter2-canary");
    }

    #[test]
    fn empty_is_none_and_generated_is_random() {
        assert!(Secret::non_empty("  ").is_none());
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
    }
}

//! Secret value wrapper.
//!
//! `SecretString` is how plaintext secret values (API keys, OAuth JSON) move through amika:
//! zeroized on drop, masked `Debug`, deliberately no `Serialize`/`Display`, and read only via
//! [`SecretString::expose_secret`] so every plaintext use is greppable.

use std::fmt;

use zeroize::Zeroizing;

/// A UTF-8 secret value, zeroized when dropped.
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wrap a value; the `String`'s buffer is zeroized when this is dropped.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The plaintext. Every caller is a place where the secret leaves the type; keep them few.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretString([REDACTED; {} bytes])", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::from("hunter2-very-secret");
        for out in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", Some(s.clone())),
        ] {
            assert!(!out.contains("hunter2"), "{out}");
            assert!(out.contains("REDACTED"), "{out}");
            assert!(out.contains("19 bytes"), "{out}");
        }
    }

    #[test]
    fn accessors() {
        let s = SecretString::new("abc".to_owned());
        assert_eq!(s.expose_secret(), "abc");
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert!(SecretString::from(String::new()).is_empty());
    }
}

//! The vault's typed error. Messages name paths, env vars and key ids, never key or value bytes.

use std::path::PathBuf;

/// Everything that can go wrong loading keys or sealing/opening values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No master key was configured and creating one was not allowed.
    #[error("{0}")]
    MissingKey(String),
    /// The configured master key could not be parsed (bad base64, wrong length).
    #[error("{0}")]
    InvalidKey(String),
    /// The key file exists but its permissions let other users read it.
    #[error("{0}")]
    InsecureKeyFile(String),
    /// The sealed value records a different KEK id than the loaded master key.
    #[error(
        "this value was sealed under master key {expected}, but the loaded master key is \
         {found}; start with the master key that wrote the data"
    )]
    WrongKey {
        /// KEK id recorded on the sealed value: the key needed to open it.
        expected: String,
        /// KEK id of the master key this vault holds.
        found: String,
    },
    /// AEAD authentication failed on the wrapped data key or the value ciphertext.
    #[error(
        "ciphertext failed authentication: tampered, moved to another row, or sealed under \
         another key"
    )]
    Decrypt,
    /// Encryption failed; only possible for absurdly large values.
    #[error("encryption failed: value too large")]
    Encrypt,
    /// Reading or writing a key file (or its directory) failed.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },
}

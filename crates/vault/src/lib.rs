//! amika's vault: everything that touches secret values as plaintext or key material.
//!
//! This crate owns three things and nothing else (no database, no HTTP):
//!
//! - **Secret types** ([`SecretString`], [`MasterKey`]): zeroized on drop, a masked `Debug`,
//!   no `Serialize`, one loudly named accessor (`expose_secret`).
//! - **Key sources** ([`load_master_key`], [`write_key_file`]): the master key (KEK) comes from
//!   `AMIKA_MASTER_KEY` or a `0600` key file in the data directory, created on first start.
//! - **Envelope encryption** ([`Vault`]): each sealed value gets a fresh 256-bit data key; the
//!   value is encrypted with XChaCha20-Poly1305 under that data key, and the data key is wrapped
//!   under the master key. Both ciphertexts are bound to their row by [`Aad`]
//!   (org, owner, object id, version, field), so a ciphertext copied to another row fails to
//!   open. Rotation ([`Vault::rewrap`]) re-wraps data keys without touching value ciphertexts.
//!
//! Error messages never contain key or value bytes; they name key *ids*, paths and env vars.

mod envelope;
mod error;
mod key;
mod secret;
mod stream;

pub use envelope::{Aad, Sealed, Vault};
pub use error::VaultError;
pub use key::{
    key_file_path, load_master_key, load_master_key_from, write_key_file, KeySource, MasterKey,
    KEY_FILE_NAME, MASTER_KEY_ENV,
};
pub use secret::SecretString;
pub use stream::{OpeningReader, SealingWriter, StreamKey, CHUNK_LEN};

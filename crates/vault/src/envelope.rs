//! Envelope encryption of secret values, bound to their storage row.
//!
//! `seal` draws a fresh 256-bit data key, encrypts the value under it with XChaCha20-Poly1305,
//! and wraps the data key under a wrapping key derived (HKDF-SHA256) from the master key. Both
//! AEAD calls authenticate the encoded [`Aad`] plus a domain label (and, for the wrapped key,
//! the KEK id), so swapping either blob between rows, versions, fields or keys fails to open.
//! Nonces are random (24 bytes, safe for random generation) and prepended to each blob.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::{MasterKey, SecretString, VaultError};

const NONCE_LEN: usize = 24;
const DATA_KEY_LEN: usize = 32;

/// Identifies the row a ciphertext belongs to; must be identical at seal and open time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    /// Organisation that owns the secret.
    pub org_id: &'a str,
    /// Owner within the org (user or org scope), as stored on the row.
    pub owner: &'a str,
    /// Id of the secret (or credential) object.
    pub object_id: &'a str,
    /// Version number of the object.
    pub version: i64,
    /// Which field of the object this value is (e.g. "value", "oauth").
    pub field: &'a str,
}

impl Aad<'_> {
    /// Unambiguous encoding: every string is length-prefixed, so no two distinct `Aad`s (or
    /// domains, or KEK ids) encode to the same bytes.
    pub(crate) fn encode(&self, domain: &str, kek_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"amika-v1");
        for part in [self.org_id, self.owner, self.object_id] {
            push_prefixed(&mut out, part);
        }
        out.extend_from_slice(&self.version.to_be_bytes());
        push_prefixed(&mut out, self.field);
        push_prefixed(&mut out, domain);
        push_prefixed(&mut out, kek_id);
        out
    }
}

fn push_prefixed(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A sealed value as stored on a row. Not secret: safe to store, log sizes of, or compare.
///
/// This is the one `Sealed` type of amika: the store keeps it on its rows as it is (the store
/// depends on this crate for the type alone), so nothing converts or copies it between the two.
/// `Default` is an empty placeholder for a row whose value is sealed right after the row is
/// built (its AAD needs the row); it never opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key that wrapped `wrapped_key`.
    pub kek_id: String,
    /// Nonce (24 bytes) ‖ data key encrypted under the master key's wrapping key.
    pub wrapped_key: Vec<u8>,
    /// Nonce (24 bytes) ‖ value encrypted under the data key.
    pub ciphertext: Vec<u8>,
}

/// Seals and opens values under one master key.
pub struct Vault {
    key: MasterKey,
    wrap_key: Zeroizing<[u8; 32]>,
    audit_hmac_key: Zeroizing<[u8; 32]>,
}

impl Vault {
    /// A vault using `key` as the KEK. Subkeys for wrapping and audit HMACs are derived with
    /// HKDF so the master key itself is never used directly by two algorithms.
    pub fn new(key: MasterKey) -> Vault {
        let hk = Hkdf::<Sha256>::new(None, key.bytes());
        let mut wrap_key = Zeroizing::new([0u8; 32]);
        let mut audit_hmac_key = Zeroizing::new([0u8; 32]);
        hk.expand(b"amika kek wrap", wrap_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hk.expand(b"amika audit hmac", audit_hmac_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Vault {
            key,
            wrap_key,
            audit_hmac_key,
        }
    }

    /// Id of this vault's master key; recorded on every row it seals.
    pub fn kek_id(&self) -> &str {
        self.key.id()
    }

    /// Encrypt `value` for the row described by `aad` under a fresh data key.
    pub fn seal(&self, value: &SecretString, aad: &Aad) -> Result<Sealed, VaultError> {
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        OsRng.fill_bytes(data_key.as_mut());
        let ciphertext = encrypt(
            &data_key,
            value.expose_secret().as_bytes(),
            &aad.encode("value", ""),
        )?;
        let wrapped_key = self.wrap(&data_key, aad)?;
        Ok(Sealed {
            kek_id: self.kek_id().to_owned(),
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypt a value sealed for the row described by `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &Aad) -> Result<SecretString, VaultError> {
        let data_key = self.unwrap(sealed, aad)?;
        let plaintext = decrypt(&data_key, &sealed.ciphertext, &aad.encode("value", ""))?;
        // Only `seal` produces authentic ciphertexts and it only takes UTF-8, so this cannot
        // fail unless the encryption itself is broken; treat it as an authentication failure.
        String::from_utf8(plaintext)
            .map(SecretString::new)
            .map_err(|e| {
                e.into_bytes().zeroize();
                VaultError::Decrypt
            })
    }

    /// Re-wrap the data key of `sealed` under `new`'s master key (key rotation). The value
    /// ciphertext is carried over byte for byte; the value itself is never decrypted.
    pub fn rewrap(&self, new: &Vault, sealed: &Sealed, aad: &Aad) -> Result<Sealed, VaultError> {
        let data_key = self.unwrap(sealed, aad)?;
        Ok(Sealed {
            kek_id: new.kek_id().to_owned(),
            wrapped_key: new.wrap(&data_key, aad)?,
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    /// Hex HMAC-SHA256 of (`context`, `value`) under a key derived from the master key: lets
    /// audit entries show "same value as before" for one `context` (an object's id) without
    /// revealing it, and tells nothing across contexts. Changes when the master key rotates.
    pub fn hmac(&self, context: &[u8], value: &SecretString) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.audit_hmac_key.as_ref())
            .expect("HMAC accepts keys of any length");
        // Length-prefixed: no (context, value) pair can pose as another.
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context);
        mac.update(value.expose_secret().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub(crate) fn wrap(
        &self,
        data_key: &[u8; DATA_KEY_LEN],
        aad: &Aad,
    ) -> Result<Vec<u8>, VaultError> {
        encrypt(&self.wrap_key, data_key, &aad.encode("dek", self.kek_id()))
    }

    pub(crate) fn unwrap(
        &self,
        sealed: &Sealed,
        aad: &Aad,
    ) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, VaultError> {
        if sealed.kek_id != self.kek_id() {
            return Err(VaultError::WrongKey {
                expected: sealed.kek_id.clone(),
                found: self.kek_id().to_owned(),
            });
        }
        let plain = Zeroizing::new(decrypt(
            &self.wrap_key,
            &sealed.wrapped_key,
            &aad.encode("dek", self.kek_id()),
        )?);
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if plain.len() != DATA_KEY_LEN {
            return Err(VaultError::Decrypt);
        }
        data_key.copy_from_slice(&plain);
        Ok(data_key)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("kek_id", &self.kek_id())
            .finish_non_exhaustive()
    }
}

/// Returns nonce ‖ ciphertext.
fn encrypt(key: &[u8; 32], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| VaultError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn decrypt(key: &[u8; 32], blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    if blob.len() < NONCE_LEN {
        return Err(VaultError::Decrypt);
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| VaultError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AAD: Aad<'static> = Aad {
        org_id: "org_1",
        owner: "user_1",
        object_id: "sec_A",
        version: 3,
        field: "value",
    };

    fn vault() -> Vault {
        Vault::new(MasterKey::generate())
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn assert_decrypt_err(result: Result<SecretString, VaultError>) {
        match result {
            Err(VaultError::Decrypt) => {}
            Err(other) => panic!("expected Decrypt, got {other:?}"),
            Ok(v) => panic!("expected Decrypt, opened to {} bytes", v.len()),
        }
    }

    #[test]
    fn round_trip() {
        let v = vault();
        for value in [
            "sk-ant-1234567890abcd",
            "",
            "{\"refresh_token\":\"r\"}",
            "日本語",
        ] {
            let sealed = v.seal(&secret(value), &AAD).unwrap();
            assert_eq!(sealed.kek_id, v.kek_id());
            assert_eq!(v.open(&sealed, &AAD).unwrap().expose_secret(), value);
        }
    }

    #[test]
    fn ciphertexts_do_not_contain_the_plaintext() {
        let v = vault();
        let value = "plaintext-marker-plaintext-marker";
        let sealed = v.seal(&secret(value), &AAD).unwrap();
        assert!(!sealed
            .ciphertext
            .windows(value.len())
            .any(|w| w == value.as_bytes()));
        // nonce + 16-byte tag + value / data key
        assert_eq!(sealed.ciphertext.len(), 24 + value.len() + 16);
        assert_eq!(sealed.wrapped_key.len(), 24 + 32 + 16);
    }

    #[test]
    fn tampered_bytes_fail_to_decrypt() {
        let v = vault();
        let sealed = v.seal(&secret("top secret"), &AAD).unwrap();
        // Flip a byte in the nonce, the body and the tag of each blob.
        for i in [0, 30, sealed.wrapped_key.len() - 1] {
            let mut s = sealed.clone();
            s.wrapped_key[i] ^= 0x01;
            assert_decrypt_err(v.open(&s, &AAD));
        }
        for i in [0, 26, sealed.ciphertext.len() - 1] {
            let mut s = sealed.clone();
            s.ciphertext[i] ^= 0x80;
            assert_decrypt_err(v.open(&s, &AAD));
        }
        let mut truncated = sealed.clone();
        truncated.ciphertext.truncate(10);
        assert_decrypt_err(v.open(&truncated, &AAD));
        let mut empty = sealed.clone();
        empty.wrapped_key.clear();
        assert_decrypt_err(v.open(&empty, &AAD));
    }

    #[test]
    fn ciphertext_moved_to_another_row_fails() {
        let v = vault();
        let sealed = v.seal(&secret("top secret"), &AAD).unwrap();
        let others = [
            Aad {
                object_id: "sec_B",
                ..AAD
            },
            Aad { version: 4, ..AAD },
            Aad {
                field: "oauth",
                ..AAD
            },
            Aad {
                org_id: "org_2",
                ..AAD
            },
            Aad {
                owner: "user_2",
                ..AAD
            },
        ];
        for other in others {
            assert_decrypt_err(v.open(&sealed, &other));
        }
        assert_eq!(v.open(&sealed, &AAD).unwrap().expose_secret(), "top secret");
    }

    #[test]
    fn swapping_blobs_between_rows_fails() {
        // The value ciphertext of row B under row A's (valid) data key, and vice versa.
        let v = vault();
        let b_aad = Aad {
            object_id: "sec_B",
            ..AAD
        };
        let a = v.seal(&secret("value A"), &AAD).unwrap();
        let b = v.seal(&secret("value B"), &b_aad).unwrap();
        let mixed = Sealed {
            ciphertext: b.ciphertext.clone(),
            ..a.clone()
        };
        assert_decrypt_err(v.open(&mixed, &AAD));
        assert_decrypt_err(v.open(&mixed, &b_aad));
        let swapped_keys = Sealed {
            wrapped_key: a.wrapped_key.clone(),
            ..b
        };
        assert_decrypt_err(v.open(&swapped_keys, &b_aad));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // Naive concatenation would make these two AADs identical.
        let v = vault();
        let a = Aad {
            org_id: "ab",
            owner: "c",
            ..AAD
        };
        let b = Aad {
            org_id: "a",
            owner: "bc",
            ..AAD
        };
        let sealed = v.seal(&secret("x"), &a).unwrap();
        assert_decrypt_err(v.open(&sealed, &b));
        assert_ne!(a.encode("value", ""), b.encode("value", ""));
        // Domains separate the two uses even for identical row data.
        assert_ne!(AAD.encode("value", ""), AAD.encode("dek", ""));
    }

    #[test]
    fn wrong_key_is_reported_with_both_ids() {
        let a = vault();
        let b = vault();
        let sealed = a.seal(&secret("top secret"), &AAD).unwrap();
        match b.open(&sealed, &AAD) {
            Err(VaultError::WrongKey { expected, found }) => {
                assert_eq!(expected, a.kek_id());
                assert_eq!(found, b.kek_id());
            }
            other => panic!("expected WrongKey, got {other:?}"),
        }
        let msg = b.open(&sealed, &AAD).unwrap_err().to_string();
        assert!(
            msg.contains(a.kek_id()) && msg.contains(b.kek_id()),
            "{msg}"
        );
    }

    #[test]
    fn forged_kek_id_with_a_different_key_fails_to_decrypt() {
        let a = vault();
        let b = vault();
        let mut sealed = b.seal(&secret("top secret"), &AAD).unwrap();
        sealed.kek_id = a.kek_id().to_owned();
        assert_decrypt_err(a.open(&sealed, &AAD));
    }

    #[test]
    fn same_value_seals_to_different_ciphertexts() {
        let v = vault();
        let one = v.seal(&secret("same"), &AAD).unwrap();
        let two = v.seal(&secret("same"), &AAD).unwrap();
        assert_ne!(one.ciphertext, two.ciphertext);
        assert_ne!(one.wrapped_key, two.wrapped_key);
        assert_ne!(one.ciphertext[..24], two.ciphertext[..24]);
    }

    #[test]
    fn rotation_rewraps_without_touching_values() {
        let old = vault();
        let new = vault();
        fn aad_for(id: &str) -> Aad<'_> {
            Aad {
                object_id: id,
                ..AAD
            }
        }
        let rows: Vec<(String, String)> = (0..20)
            .map(|i| (format!("sec_{i}"), format!("value number {i} ✓")))
            .collect();
        let sealed: Vec<Sealed> = rows
            .iter()
            .map(|(id, v)| old.seal(&secret(v), &aad_for(id)).unwrap())
            .collect();
        for ((id, value), before) in rows.iter().zip(&sealed) {
            let aad = aad_for(id);
            let after = old.rewrap(&new, before, &aad).unwrap();
            assert_eq!(after.ciphertext, before.ciphertext, "value bytes unchanged");
            assert_ne!(after.wrapped_key, before.wrapped_key);
            assert_eq!(after.kek_id, new.kek_id());
            assert_eq!(new.open(&after, &aad).unwrap().expose_secret(), value);
            assert!(matches!(
                old.open(&after, &aad),
                Err(VaultError::WrongKey { .. })
            ));
            // Even with the id forged back to the old key, the old key cannot open it.
            let forged = Sealed {
                kek_id: old.kek_id().to_owned(),
                ..after.clone()
            };
            assert_decrypt_err(old.open(&forged, &aad));
        }
    }

    #[test]
    fn rewrap_checks_key_and_row() {
        let old = vault();
        let new = vault();
        let sealed = old.seal(&secret("v"), &AAD).unwrap();
        assert!(matches!(
            new.rewrap(&old, &sealed, &AAD),
            Err(VaultError::WrongKey { .. })
        ));
        let moved = Aad { version: 9, ..AAD };
        assert!(matches!(
            old.rewrap(&new, &sealed, &moved),
            Err(VaultError::Decrypt)
        ));
    }

    #[test]
    fn hmac_is_stable_per_key_and_hides_the_value() {
        let key = MasterKey::generate();
        let v1 = Vault::new(key.clone());
        let v2 = Vault::new(key);
        let other = vault();
        let h = v1.hmac(b"sec_1", &secret("sk-live-abc"));
        assert_eq!(h, v2.hmac(b"sec_1", &secret("sk-live-abc")));
        assert_ne!(h, v1.hmac(b"sec_1", &secret("sk-live-abd")));
        assert_ne!(h, other.hmac(b"sec_1", &secret("sk-live-abc")));
        // Another object's hash of the same value is unrelated.
        assert_ne!(h, v1.hmac(b"sec_2", &secret("sk-live-abc")));
        assert_ne!(
            v1.hmac(b"sec_1", &secret("x")),
            v1.hmac(b"sec_1x", &secret(""))
        );
        assert_eq!(h.len(), 64);
        assert!(!h.contains("sk-live"));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = MasterKey::generate();
        let b64 = key.to_base64().to_string();
        let hex_key = hex::encode(key.bytes());
        let v = Vault::new(key);
        let hex_wrap = hex::encode(v.wrap_key.as_ref());
        for out in [format!("{v:?}"), format!("{v:#?}")] {
            assert!(!out.contains(&b64), "{out}");
            assert!(!out.contains(&hex_key), "{out}");
            assert!(!out.contains(&hex_wrap), "{out}");
            assert!(out.contains(v.kek_id()), "{out}");
        }
    }

    fn arb_aad() -> impl Strategy<Value = (String, String, String, i64, String)> {
        (".{0,20}", ".{0,20}", ".{0,20}", any::<i64>(), ".{0,10}")
    }

    fn as_aad(f: &(String, String, String, i64, String)) -> Aad<'_> {
        Aad {
            org_id: &f.0,
            owner: &f.1,
            object_id: &f.2,
            version: f.3,
            field: &f.4,
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(value in ".{0,200}", fields in arb_aad()) {
            let v = vault();
            let aad = as_aad(&fields);
            let sealed = v.seal(&SecretString::new(value.clone()), &aad).unwrap();
            let opened = v.open(&sealed, &aad).unwrap();
            prop_assert_eq!(opened.expose_secret(), value.as_str());
        }

        #[test]
        fn prop_changing_any_aad_field_fails(
            value in ".{0,50}",
            fields in arb_aad(),
            which in 0usize..5,
            suffix in ".{1,5}",
            delta in 1i64..=i64::MAX,
        ) {
            let v = vault();
            let sealed = v.seal(&SecretString::new(value), &as_aad(&fields)).unwrap();
            let mut changed = fields.clone();
            match which {
                0 => changed.0.push_str(&suffix),
                1 => changed.1.push_str(&suffix),
                2 => changed.2.push_str(&suffix),
                3 => changed.3 = changed.3.wrapping_add(delta),
                _ => changed.4.push_str(&suffix),
            }
            prop_assert!(matches!(v.open(&sealed, &as_aad(&changed)), Err(VaultError::Decrypt)));
        }
    }
}

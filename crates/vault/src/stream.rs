//! Envelope encryption of large blobs (snapshot archives), as a stream: a fresh 256-bit data key
//! per blob, wrapped under the master key exactly as a secret's is (so key rotation re-wraps it
//! the same way), and the blob cut into chunks of [`CHUNK_LEN`] bytes, each sealed with
//! XChaCha20-Poly1305 under that key.
//!
//! Each chunk's nonce is a random 19-byte prefix (one per blob), the chunk's index and a byte
//! that marks the last chunk (the STREAM construction): chunks cannot be reordered, dropped,
//! duplicated, or the blob cut short at a chunk boundary without failing to open. Every chunk
//! authenticates the blob's [`Aad`] (org, owner, object id), so an archive moved to another
//! snapshot or owner does not open either.
//!
//! Layout: `MAGIC` ‖ prefix ‖ (u32 BE ciphertext length ‖ ciphertext)*, the last chunk flagged.

use std::fmt;
use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{Aad, Sealed, Vault, VaultError};

/// Plaintext bytes per chunk.
pub const CHUNK_LEN: usize = 1 << 20;
const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 19;
const MAGIC: &[u8; 8] = b"AMKSTRM1";
/// Domain of the chunks' AAD (distinct from a secret value's `value`).
const DOMAIN: &str = "stream.chunk";

/// The data key of one blob: zeroized on drop, masked `Debug`.
pub struct StreamKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey([REDACTED])")
    }
}

impl Vault {
    /// A fresh data key for a blob of the object `aad` names, and its wrapped form to store
    /// (a [`Sealed`] whose `ciphertext` is empty: the blob lives elsewhere).
    pub fn new_stream_key(&self, aad: &Aad) -> Result<(StreamKey, Sealed), VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        let sealed = Sealed {
            kek_id: self.kek_id().to_owned(),
            wrapped_key: self.wrap(&key, aad)?,
            ciphertext: Vec::new(),
        };
        Ok((StreamKey(key), sealed))
    }

    /// The data key [`Vault::new_stream_key`] made for `aad`.
    pub fn open_stream_key(&self, sealed: &Sealed, aad: &Aad) -> Result<StreamKey, VaultError> {
        Ok(StreamKey(self.unwrap(sealed, aad)?))
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], index: u32, last: bool) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    n
}

/// Encrypts what is written to it into `inner`; [`SealingWriter::finish`] writes the last chunk
/// (without it the blob does not open).
pub struct SealingWriter<W: Write> {
    inner: W,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    index: u32,
    aad: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> fmt::Debug for SealingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingWriter")
            .field("chunks", &self.index)
            .finish_non_exhaustive()
    }
}

impl<W: Write> SealingWriter<W> {
    pub fn new(key: &StreamKey, aad: &Aad, mut inner: W) -> io::Result<Self> {
        let mut prefix = [0u8; PREFIX_LEN];
        OsRng.fill_bytes(&mut prefix);
        inner.write_all(MAGIC)?;
        inner.write_all(&prefix)?;
        Ok(SealingWriter {
            inner,
            cipher: XChaCha20Poly1305::new(Key::from_slice(key.0.as_ref())),
            prefix,
            index: 0,
            aad: aad.encode(DOMAIN, ""),
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_LEN)),
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.index, last);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&n),
                Payload {
                    msg: &self.buf,
                    aad: &self.aad,
                },
            )
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.inner.write_all(&(ct.len() as u32).to_be_bytes())?;
        self.inner.write_all(&ct)?;
        self.buf.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("blob too large"))?;
        Ok(())
    }

    /// Seal the last chunk and hand back the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(CHUNK_LEN - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK_LEN {
            self.seal_chunk(false)?;
        }
        Ok(take)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts a blob [`SealingWriter`] wrote. A blob that was tampered with, cut short, or made
/// for another object fails with `InvalidData` (never yields unauthenticated bytes).
pub struct OpeningReader<R: Read> {
    inner: R,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    index: u32,
    aad: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    done: bool,
}

impl<R: Read> fmt::Debug for OpeningReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpeningReader")
            .field("chunks", &self.index)
            .finish_non_exhaustive()
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

impl<R: Read> OpeningReader<R> {
    pub fn new(key: &StreamKey, aad: &Aad, mut inner: R) -> io::Result<Self> {
        let mut head = [0u8; 8 + PREFIX_LEN];
        inner
            .read_exact(&mut head)
            .map_err(|_| bad("not an encrypted archive (too short)"))?;
        if &head[..8] != MAGIC {
            return Err(bad("not an encrypted archive (bad magic)"));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&head[8..]);
        Ok(OpeningReader {
            inner,
            cipher: XChaCha20Poly1305::new(Key::from_slice(key.0.as_ref())),
            prefix,
            index: 0,
            aad: aad.encode(DOMAIN, ""),
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut len = [0u8; 4];
        self.inner
            .read_exact(&mut len)
            .map_err(|_| bad("encrypted archive cut short"))?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG_LEN..=CHUNK_LEN + TAG_LEN).contains(&len) {
            return Err(bad("encrypted archive has a bad chunk length"));
        }
        let mut ct = vec![0u8; len];
        self.inner
            .read_exact(&mut ct)
            .map_err(|_| bad("encrypted archive cut short"))?;
        // A chunk shorter than a full one can only be the last; try that first.
        let tries: &[bool] = if len < CHUNK_LEN + TAG_LEN {
            &[true]
        } else {
            &[false, true]
        };
        for &last in tries {
            let n = nonce(&self.prefix, self.index, last);
            let payload = Payload {
                msg: &ct,
                aad: &self.aad,
            };
            if let Ok(plain) = self.cipher.decrypt(XNonce::from_slice(&n), payload) {
                self.plain = Zeroizing::new(plain);
                self.pos = 0;
                self.index = self.index.wrapping_add(1);
                if last {
                    self.done = true;
                    let mut extra = [0u8; 1];
                    if self.inner.read(&mut extra)? != 0 {
                        return Err(bad("encrypted archive has data after its last chunk"));
                    }
                }
                return Ok(());
            }
        }
        Err(bad(
            "encrypted archive failed authentication: tampered, or made for another snapshot or owner",
        ))
    }
}

impl<R: Read> Read for OpeningReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    const AAD: Aad<'static> = Aad {
        org_id: "org_1",
        owner: "user_1",
        object_id: "snap_1",
        version: 0,
        field: "snapshot.archive",
    };

    fn seal(v: &Vault, data: &[u8]) -> (Sealed, Vec<u8>) {
        let (key, sealed) = v.new_stream_key(&AAD).unwrap();
        let mut w = SealingWriter::new(&key, &AAD, Vec::new()).unwrap();
        w.write_all(data).unwrap();
        (sealed, w.finish().unwrap())
    }

    fn open(v: &Vault, sealed: &Sealed, aad: &Aad, blob: &[u8]) -> io::Result<Vec<u8>> {
        let key = v.open_stream_key(sealed, aad).map_err(io::Error::other)?;
        let mut out = Vec::new();
        OpeningReader::new(&key, aad, blob)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_any_length() {
        let v = Vault::new(MasterKey::generate());
        for len in [
            0,
            1,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            2 * CHUNK_LEN + 5,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (sealed, blob) = seal(&v, &data);
            assert_eq!(open(&v, &sealed, &AAD, &blob).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn tampering_truncation_and_another_owner_fail() {
        let v = Vault::new(MasterKey::generate());
        let data = vec![42u8; 2 * CHUNK_LEN + 10];
        let (sealed, blob) = seal(&v, &data);
        let other = Aad {
            owner: "user_2",
            ..AAD
        };
        assert!(open(&v, &sealed, &other, &blob).is_err(), "another owner");
        let mut flipped = blob.clone();
        flipped[100] ^= 1;
        assert!(open(&v, &sealed, &AAD, &flipped).is_err(), "a flipped bit");
        // Cut after the first two full chunks: no last chunk.
        let cut = 8 + PREFIX_LEN + 2 * (4 + CHUNK_LEN + TAG_LEN);
        assert!(open(&v, &sealed, &AAD, &blob[..cut]).is_err(), "cut short");
        let mut longer = blob.clone();
        longer.push(0);
        assert!(open(&v, &sealed, &AAD, &longer).is_err(), "trailing data");
        let another = Vault::new(MasterKey::generate());
        assert!(open(&another, &sealed, &AAD, &blob).is_err(), "another key");
    }
}

//! The master key (KEK) and where it comes from.
//!
//! Sources, in order: the `AMIKA_MASTER_KEY` env var (base64 of 32 bytes), else
//! `<data_dir>/master.key` (same format). On first start the file is generated and written
//! atomically with mode `0600` inside a `0700` directory; an existing file other users can read
//! is refused rather than silently used. Key files are Unix-only by design (amika runs sandboxes
//! on Linux), hence the direct use of `std::os::unix`.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::VaultError;

/// Env var holding the base64 master key; when set (non-empty) it wins over the key file.
pub const MASTER_KEY_ENV: &str = "AMIKA_MASTER_KEY";
/// Name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "master.key";

const KEY_LEN: usize = 32;
const MAX_KEY_FILE_LEN: usize = 256;

/// A 256-bit master key (KEK), zeroized on drop, with a public, non-secret id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl MasterKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_bytes(bytes)
    }

    /// Parse base64 (standard alphabet, padded) of exactly 32 bytes; surrounding whitespace
    /// (such as a trailing newline in a file) is ignored.
    pub fn from_base64(s: &str) -> Result<MasterKey, VaultError> {
        parse_key(s, "the master key")
    }

    /// The key as base64, for writing a key file or showing once to an operator.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.bytes.as_ref()))
    }

    /// KEK id: `kek_` + first 16 hex chars of HMAC-SHA256(key, "amika kek id").
    /// Stable for a key, recorded on every sealed row, reveals nothing about the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(b"amika kek id");
        let tag = mac.finalize().into_bytes();
        let id = format!("kek_{}", &hex::encode(tag)[..16]);
        MasterKey { bytes, id }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .field("bytes", &"[REDACTED]")
            .finish()
    }
}

/// `what` names the source in the error (env var, file path); the input itself never appears,
/// and neither does the base64 decoder's error, which can quote an offending byte.
fn parse_key(s: &str, what: &str) -> Result<MasterKey, VaultError> {
    let decoded = Zeroizing::new(
        STANDARD
            .decode(s.trim())
            .map_err(|_| invalid_key(what, "not base64"))?,
    );
    if decoded.len() != KEY_LEN {
        let detail = format!("decodes to {} bytes", decoded.len());
        return Err(invalid_key(what, &detail));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(&decoded);
    Ok(MasterKey::from_bytes(bytes))
}

/// `what` (env var, key file) does not hold a key; `detail` says why, never quoting the input.
fn invalid_key(what: &str, detail: &str) -> VaultError {
    VaultError::InvalidKey(format!(
        "{what} is not valid base64 of 32 bytes ({detail}); generate one with \
         `openssl rand -base64 32`"
    ))
}

/// Where the loaded master key came from, for messages and for `rotate-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The `AMIKA_MASTER_KEY` env var.
    Env,
    /// A key file (read, or created on first start).
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => f.write_str(MASTER_KEY_ENV),
            KeySource::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

/// `<data_dir>/master.key`.
pub fn key_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE_NAME)
}

/// Load the master key from `AMIKA_MASTER_KEY` or `<data_dir>/master.key`, generating the file
/// when it is missing and `create_if_missing` is set. See [`load_master_key_from`].
pub fn load_master_key(
    data_dir: &Path,
    create_if_missing: bool,
) -> Result<(MasterKey, KeySource), VaultError> {
    let env = match std::env::var(MASTER_KEY_ENV) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(invalid_key(MASTER_KEY_ENV, "not UTF-8"))
        }
    };
    load_master_key_from(env, data_dir, create_if_missing)
}

/// [`load_master_key`] with the env var's value passed in, so tests (here and in the server)
/// never race on the process environment. `env` is the value of `AMIKA_MASTER_KEY`; `None` or
/// an empty string means unset.
pub fn load_master_key_from(
    env: Option<String>,
    data_dir: &Path,
    create_if_missing: bool,
) -> Result<(MasterKey, KeySource), VaultError> {
    let env = env.map(Zeroizing::new);
    if let Some(value) = env.as_deref().filter(|v| !v.is_empty()) {
        return Ok((parse_key(value, MASTER_KEY_ENV)?, KeySource::Env));
    }
    let path = key_file_path(data_dir);
    if let Some(key) = read_key_file(&path)? {
        return Ok((key, KeySource::File(path)));
    }
    if !create_if_missing {
        return Err(VaultError::MissingKey(format!(
            "no master key: {} does not exist and {MASTER_KEY_ENV} is not set; set \
             {MASTER_KEY_ENV} to the base64 key that encrypted this data, or restore the key file",
            path.display()
        )));
    }
    create_key_file(data_dir, &path).map(|key| (key, KeySource::File(path)))
}

/// Write `key` to `path` atomically with mode `0600`, replacing any existing file
/// (used by `rotate-key`). The parent directory must exist.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    write_atomically(path, &key_file_contents(key), true).map_err(|source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn key_file_contents(key: &MasterKey) -> Zeroizing<Vec<u8>> {
    let b64 = key.to_base64();
    // Sized up front: a reallocation would free an unzeroized copy of the key.
    let mut contents = Zeroizing::new(Vec::with_capacity(b64.len() + 1));
    contents.extend_from_slice(b64.as_bytes());
    contents.push(b'\n');
    contents
}

/// `Ok(None)` when the file does not exist; every other failure is an error.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, VaultError> {
    let io_err = |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    // Check the opened file, not the path, so the check and the read see the same inode.
    let mode = file.metadata().map_err(io_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(VaultError::InsecureKeyFile(format!(
            "key file {path} has mode {mode:03o}, readable by other users; run `chmod 600 {path}`",
            path = path.display(),
            mode = mode & 0o777,
        )));
    }
    // A valid file is 44 base64 chars plus whitespace. Reading into a fixed-capacity buffer
    // means no reallocation leaves unzeroized copies; one byte over the limit means too long.
    let what = format!("key file {}", path.display());
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN + 1));
    file.take(MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    if buf.len() > MAX_KEY_FILE_LEN {
        return Err(invalid_key(&what, "file too long"));
    }
    let text = std::str::from_utf8(&buf).map_err(|_| invalid_key(&what, "not UTF-8"))?;
    parse_key(text, &what).map(Some)
}

fn create_key_file(data_dir: &Path, path: &Path) -> Result<MasterKey, VaultError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| VaultError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let key = MasterKey::generate();
    match write_atomically(path, &key_file_contents(&key), false) {
        Ok(()) => Ok(key),
        // Another process created the file first: use its key, never overwrite a master key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_key_file(path)? {
            Some(existing) => Ok(existing),
            None => Err(VaultError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        },
        Err(source) => Err(VaultError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write to a `0600` temp file in the same directory, fsync, then move it into place: `rename`
/// when replacing, `hard_link` (fails if `path` exists) when not. Readers never see a partial
/// key, and a first-start race can never replace a key that may already encrypt data.
fn write_atomically(path: &Path, contents: &[u8], replace: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "key file path has no file name",
        )
    })?;
    let mut suffix = [0u8; 8];
    OsRng.fill_bytes(&mut suffix);
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        hex::encode(suffix)
    ));

    let placed = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        if replace {
            fs::rename(&tmp, path)
        } else {
            fs::hard_link(&tmp, path)
        }
    })();
    // After a rename the temp name is gone; after a link or a failure it must be removed.
    let _ = fs::remove_file(&tmp);
    placed?;
    // Make the new directory entry durable too.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn id_is_stable_and_distinct_per_key() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.id(), MasterKey::from_base64(&a.to_base64()).unwrap().id());
        assert_ne!(a.id(), b.id());
        assert!(a.id().starts_with("kek_"));
        assert_eq!(a.id().len(), 4 + 16);
        assert!(a.id()[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn id_matches_the_documented_derivation() {
        // All-zero key: kek_ + first 16 hex of HMAC-SHA256(0^32, "amika kek id").
        let key = MasterKey::from_base64(&STANDARD.encode([0u8; 32])).unwrap();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap();
        mac.update(b"amika kek id");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(key.id(), format!("kek_{}", &expected[..16]));
    }

    #[test]
    fn from_base64_trims_whitespace_and_round_trips() {
        let key = MasterKey::generate();
        let padded = format!("  {}\n", key.to_base64().as_str());
        let parsed = MasterKey::from_base64(&padded).unwrap();
        assert_eq!(parsed.bytes(), key.bytes());
    }

    #[test]
    fn from_base64_rejects_bad_input_without_echoing_it() {
        let short = STANDARD.encode([7u8; 31]);
        let long = STANDARD.encode([7u8; 33]);
        for bad in ["", "not base64 at all!", short.as_str(), long.as_str()] {
            let err = MasterKey::from_base64(bad).unwrap_err();
            assert!(matches!(err, VaultError::InvalidKey(_)), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains("base64 of 32 bytes"), "{msg}");
            if !bad.is_empty() {
                assert!(!msg.contains(bad), "{msg}");
            }
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        let hex_key = hex::encode(key.bytes());
        for out in [format!("{key:?}"), format!("{key:#?}")] {
            assert!(!out.contains(b64.as_str()), "{out}");
            assert!(!out.contains(&hex_key), "{out}");
            assert!(out.contains("REDACTED"), "{out}");
            assert!(out.contains(key.id()), "{out}");
        }
    }

    #[test]
    fn creates_a_0600_key_file_in_a_0700_dir_and_reloads_it() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("nested").join("data");
        let (key, source) = load_master_key_from(None, &data_dir, true).unwrap();
        let path = data_dir.join("master.key");
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&data_dir), 0o700);
        // Only the key file is left behind, no temp files.
        assert_eq!(fs::read_dir(&data_dir).unwrap().count(), 1);

        let (again, source2) = load_master_key_from(None, &data_dir, false).unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(source2, source);
        let (third, _) = load_master_key_from(Some(String::new()), &data_dir, true).unwrap();
        assert_eq!(third.id(), key.id(), "an empty env var counts as unset");
    }

    #[test]
    fn env_var_overrides_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (file_key, _) = load_master_key_from(None, tmp.path(), true).unwrap();
        let env_key = MasterKey::generate();
        let (key, source) =
            load_master_key_from(Some(env_key.to_base64().to_string()), tmp.path(), true).unwrap();
        assert_eq!(source, KeySource::Env);
        assert_eq!(key.id(), env_key.id());
        assert_ne!(key.id(), file_key.id());
    }

    #[test]
    fn env_var_does_not_create_a_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let env_key = MasterKey::generate();
        load_master_key_from(Some(env_key.to_base64().to_string()), tmp.path(), true).unwrap();
        assert!(!tmp.path().join("master.key").exists());
    }

    #[test]
    fn bad_env_var_errors_name_the_env_var() {
        let tmp = tempfile::tempdir().unwrap();
        let wrong_len = STANDARD.encode([1u8; 16]);
        for bad in ["%%%not-base64%%%".to_owned(), wrong_len.clone()] {
            let err = load_master_key_from(Some(bad.clone()), tmp.path(), true).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, VaultError::InvalidKey(_)), "{err:?}");
            assert!(msg.contains("AMIKA_MASTER_KEY"), "{msg}");
            assert!(!msg.contains(&bad), "{msg}");
        }
        // A bad env var must not fall back to (or create) the key file.
        assert!(!tmp.path().join("master.key").exists());
    }

    #[test]
    fn missing_file_without_create_names_file_and_env_var() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load_master_key_from(None, tmp.path(), false).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, VaultError::MissingKey(_)), "{err:?}");
        assert!(msg.contains("AMIKA_MASTER_KEY"), "{msg}");
        assert!(
            msg.contains(&tmp.path().join("master.key").display().to_string()),
            "{msg}"
        );
        assert!(!tmp.path().join("master.key").exists());
    }

    #[test]
    fn world_readable_key_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, _) = load_master_key_from(None, tmp.path(), true).unwrap();
        let path = tmp.path().join("master.key");
        for mode in [0o644, 0o640, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = load_master_key_from(None, tmp.path(), true).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, VaultError::InsecureKeyFile(_)), "{err:?}");
            assert!(msg.contains("chmod 600"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
    }

    #[test]
    fn corrupt_key_file_names_the_file_and_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("master.key");
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        f.write_all(b"garbage\n").unwrap();
        let err = load_master_key_from(None, tmp.path(), true).unwrap_err();
        assert!(matches!(err, VaultError::InvalidKey(_)), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"garbage\n");
    }

    #[test]
    fn oversized_key_file_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("master.key");
        let valid = MasterKey::generate().to_base64().to_string();
        let padded = format!("{valid}{}x", " ".repeat(MAX_KEY_FILE_LEN));
        for contents in [padded, valid.repeat(10), format!("{valid}\n\u{e9}")] {
            let _ = fs::remove_file(&path);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap();
            f.write_all(contents.as_bytes()).unwrap();
            let err = load_master_key_from(None, tmp.path(), true).unwrap_err();
            assert!(matches!(err, VaultError::InvalidKey(_)), "{err:?}");
        }
    }

    #[test]
    fn write_key_file_replaces_atomically_with_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, _) = load_master_key_from(None, tmp.path(), true).unwrap();
        let path = key_file_path(tmp.path());
        let new = MasterKey::generate();
        write_key_file(&path, &new).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        let (loaded, _) = load_master_key_from(None, tmp.path(), false).unwrap();
        assert_eq!(loaded.id(), new.id());
        assert_ne!(loaded.id(), old.id());
    }

    #[test]
    fn create_never_overwrites_an_existing_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = key_file_path(tmp.path());
        let first = MasterKey::generate();
        write_key_file(&path, &first).unwrap();
        // Simulates losing the first-start race: the file appeared after our existence check.
        let key = create_key_file(tmp.path(), &path).unwrap();
        assert_eq!(key.id(), first.id());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_key_file_into_missing_dir_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("missing").join("master.key");
        let err = write_key_file(&path, &MasterKey::generate()).unwrap_err();
        assert!(matches!(err, VaultError::Io { .. }), "{err:?}");
    }
}

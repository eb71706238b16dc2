//! The SSH endpoint's host key: one Ed25519 key in the data dir (OpenSSH format, mode 0600),
//! created at the first start with the endpoint on, the same for every later start, so that
//! clients' `known_hosts` entries stay valid.

use std::io;
use std::path::Path;

use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use zeroize::Zeroizing;

/// The key's file name in the data dir.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// The host key of the data dir `data_dir`, created if missing.
pub fn load_or_create_host_key(data_dir: &Path) -> io::Result<PrivateKey> {
    let path = data_dir.join(HOST_KEY_FILE);
    match std::fs::read(&path) {
        Ok(pem) => {
            let pem = Zeroizing::new(pem);
            PrivateKey::from_openssh(&*pem).map_err(|e| {
                io::Error::other(format!(
                    "{} is not an OpenSSH private key ({e}): remove it to make a new host key",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(&mut *seed);
            let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
            let pem = key.to_openssh(LineEnding::LF).map_err(io::Error::other)?;
            crate::write_private_file(&path, pem.as_bytes()).map_err(io::Error::other)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_host_key(dir.path()).unwrap();
        let again = load_or_create_host_key(dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.path().join(HOST_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(HOST_KEY_FILE), "garbage").unwrap();
        let err = load_or_create_host_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("remove it"), "{err}");
    }
}

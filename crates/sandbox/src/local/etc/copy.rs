//! Building one version of the curated `/etc`: copying the allow-listed entries (readable by
//! everyone, without special bits, symlinks recreated, never followed), hard-linking the other
//! network variants to the first, and writing amika's own files. See the parent module for the
//! rules and why.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use amika_types::NetworkMode;

use super::snapshot::Snapshot;
use super::{context, variant_name, EGRESS_RESOLV_CONF, GROUP, HOSTS, HOST_FILES, PASSWD};

/// Build every variant of `snapshot` in `tmp`: `none` is copied from the source, the others are
/// hard links to its files (all are read-only in every sandbox, so they can share inodes; creating
/// an inode costs far more than a link on some filesystems), then each gets amika's own files.
pub(super) fn build(source: &Path, snapshot: &Snapshot, tmp: &Path) -> io::Result<()> {
    make_dir(tmp)?;
    let none = tmp.join(variant_name(NetworkMode::None));
    make_dir(&none)?;
    for name in &snapshot.entries {
        let mut parent = none.clone();
        if let Some((dirs, _)) = name.rsplit_once('/') {
            for component in dirs.split('/') {
                parent.push(component);
                if !parent.is_dir() {
                    make_dir(&parent)?;
                }
            }
        }
        copy_entry(&source.join(name), &none.join(name))?;
    }
    for network in [NetworkMode::Egress, NetworkMode::Host] {
        link_tree(&none, &tmp.join(variant_name(network)))?;
    }
    for network in [NetworkMode::None, NetworkMode::Egress, NetworkMode::Host] {
        let dst = tmp.join(variant_name(network));
        write_file(&dst.join("passwd"), PASSWD.as_bytes())?;
        write_file(&dst.join("group"), GROUP.as_bytes())?;
        match network {
            NetworkMode::None => write_file(&dst.join("hosts"), HOSTS.as_bytes())?,
            NetworkMode::Egress => {
                write_file(&dst.join("hosts"), HOSTS.as_bytes())?;
                write_file(&dst.join("resolv.conf"), EGRESS_RESOLV_CONF.as_bytes())?;
            }
            // Host networking means the host's name resolution; a missing file stays missing.
            NetworkMode::Host => {
                for name in HOST_FILES {
                    match std::fs::read(source.join(name)) {
                        Ok(bytes) => write_file(&dst.join(name), &bytes)?,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(context(e, "cannot read", &source.join(name))),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Recreate the directories of our own tree `from` at `to`, hard-linking everything else
/// (`hard_link` does not follow a symlink on Linux: the link itself is linked).
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    make_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(|e| context(e, "cannot read", from))? {
        let entry = entry.map_err(|e| context(e, "cannot read", from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst).map_err(|e| context(e, "cannot link", &dst))?;
        }
    }
    Ok(())
}

/// Copy one source path (see the module docs for what is copied and how).
fn copy_entry(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(src) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, "cannot inspect", src)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(src).map_err(|e| context(e, "cannot read", src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(|e| context(e, "cannot create", dst))
    } else if kind.is_dir() {
        if meta.mode() & 0o005 != 0o005 {
            return Ok(());
        }
        make_dir(dst)?;
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(|e| context(e, "cannot read", src))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| context(e, "cannot read", src))?;
        names.sort();
        for name in names {
            copy_entry(&src.join(&name), &dst.join(&name))?;
        }
        Ok(())
    } else if kind.is_file() {
        copy_file(src, dst)
    } else {
        // Sockets, fifos, devices: nothing a program reads configuration from.
        Ok(())
    }
}

fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    // No following a symlink swapped in since the lstat, no blocking on a fifo.
    let mut from = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(src)
    {
        Ok(file) => file,
        // Not readable by the server: not for the sandbox either.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(context(e, "cannot open", src)),
    };
    let meta = from
        .metadata()
        .map_err(|e| context(e, "cannot inspect", src))?;
    if !meta.is_file() || meta.mode() & 0o004 == 0 {
        return Ok(());
    }
    let mode = meta.mode() & 0o777;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dst)
        .map_err(|e| context(e, "cannot create", dst))?;
    io::copy(&mut from, &mut to).map_err(|e| context(e, "cannot copy", src))?;
    // The umask may have narrowed the mode; the copy is meant to have the source's.
    to.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| context(e, "cannot chmod", dst))
}

fn make_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| context(e, "cannot create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| context(e, "cannot chmod", path))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| context(e, "cannot create", path))?;
    io::Write::write_all(&mut file, bytes).map_err(|e| context(e, "cannot write", path))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| context(e, "cannot chmod", path))
}

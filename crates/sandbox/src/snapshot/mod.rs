//! Snapshot archives: a sandbox's home (workspace included) as a zstd-compressed tar, and back.
//! The archive is written to whatever [`std::io::Write`] the caller gives (the server encrypts it
//! on its way to the data dir); this module knows nothing of keys or the database.
//!
//! A capture walks the home without following any symbolic link (the sandbox made them), keeps
//! directories, regular files with their modes and modification times, and symbolic links as
//! links; sockets, fifos and devices are left out. While it reads, it searches every byte it
//! archives — contents, names and link targets — for the values of a [`ScanSet`], so that the
//! proof that no injected value is in a snapshot is made on exactly what is written (see
//! `scan`), git objects decompressed too (see `git_objects`). A restore unpacks into a fresh directory beside the home and renames it into place,
//! so a home is either complete or absent.

mod git_objects;
mod scan;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

pub use scan::{ScanSet, MIN_SCANNED_LEN};

/// zstd level: fast enough to keep up with a disk, a good ratio on source trees.
const ZSTD_LEVEL: i32 = 3;
/// Bytes read from a file at a time while it is archived and searched.
const READ_LEN: usize = 256 * 1024;

/// A file (or link, or name) in which injected values were found, and under which labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanHit {
    /// Path relative to the home, e.g. `workspace/app/.env`.
    pub path: String,
    /// The secret and credential names found there, sorted.
    pub labels: Vec<String>,
}

/// What a capture archived and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CaptureReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Sockets, fifos and devices, which are not archived.
    pub skipped: u64,
    /// Bytes of file contents archived.
    pub bytes: u64,
    pub hits: Vec<ScanHit>,
}

/// Archive `home` into `out` (zstd tar), searching everything for `scan`'s values; paths in
/// `exclude` (relative to the home) are left out. Returns `out` (the compressed stream finished)
/// and what was archived and found. Blocking.
pub fn capture<W: Write>(
    home: &Path,
    scan: &ScanSet,
    exclude: &[String],
    out: W,
) -> io::Result<(W, CaptureReport)> {
    let encoder = zstd::Encoder::new(out, ZSTD_LEVEL)?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    let mut walk = Walk {
        scan,
        exclude,
        report: CaptureReport::default(),
        window: Vec::with_capacity(READ_LEN + scan.longest()),
    };
    walk.dir(&mut builder, home, Path::new(""))?;
    let encoder = builder.into_inner()?;
    let out = encoder.finish()?;
    Ok((out, walk.report))
}

struct Walk<'a> {
    scan: &'a ScanSet,
    exclude: &'a [String],
    report: CaptureReport,
    window: Vec<u8>,
}

impl Walk<'_> {
    fn dir<W: Write>(&mut self, b: &mut tar::Builder<W>, abs: &Path, rel: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(abs)?.collect::<Result<_, _>>()?;
        // A stable order: the same tree gives the same archive.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = rel.join(entry.file_name());
            let rel_text = rel.to_string_lossy();
            if self.exclude.iter().any(|x| *x == rel_text) {
                continue;
            }
            let abs = entry.path();
            let meta = fs::symlink_metadata(&abs)?;
            let mut found = Vec::new();
            self.scan
                .find(rel.as_os_str().as_encoded_bytes(), &mut found);
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            header.set_uid(0);
            header.set_gid(0);
            let kind = meta.file_type();
            if kind.is_dir() {
                header.set_size(0);
                b.append_data(&mut header, &rel, io::empty())?;
                self.report.dirs += 1;
                self.record(&rel, found);
                self.dir(b, &abs, &rel)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&abs)?;
                self.scan
                    .find(target.as_os_str().as_encoded_bytes(), &mut found);
                header.set_size(0);
                b.append_link(&mut header, &rel, &target)?;
                self.report.symlinks += 1;
                self.record(&rel, found);
            } else if kind.is_file() {
                let file = File::open(&abs)?;
                let size = meta.size();
                header.set_size(size);
                // Each file is searched on its own: nothing of the previous one is kept.
                self.window.clear();
                let mut reader = Scanning {
                    inner: file.take(size),
                    scan: self.scan,
                    window: std::mem::take(&mut self.window),
                    found: &mut found,
                };
                b.append_data(&mut header, &rel, &mut reader)?;
                self.window = std::mem::take(&mut reader.window);
                if !self.scan.is_empty() && git_objects::is_git_object(&rel) {
                    git_objects::scan(&abs, self.scan, &mut found)?;
                }
                self.report.files += 1;
                self.report.bytes += size;
                self.record(&rel, found);
            } else {
                self.report.skipped += 1;
            }
        }
        Ok(())
    }

    fn record(&mut self, rel: &Path, found: Vec<usize>) {
        if found.is_empty() {
            return;
        }
        let mut labels: Vec<String> = found
            .into_iter()
            .map(|i| self.scan.label(i).to_string())
            .collect();
        labels.sort();
        self.report.hits.push(ScanHit {
            path: rel.to_string_lossy().into_owned(),
            labels,
        });
    }
}

/// A file being archived: every byte read is searched, with the last `longest - 1` bytes of the
/// previous read kept in front so that a value split across two reads is found.
struct Scanning<'a, R> {
    inner: R,
    scan: &'a ScanSet,
    window: Vec<u8>,
    found: &'a mut Vec<usize>,
}

impl<R: Read> Read for Scanning<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 || self.scan.is_empty() {
            return Ok(n);
        }
        let keep = self.scan.longest().saturating_sub(1);
        self.window.extend_from_slice(&buf[..n]);
        self.scan.find(&self.window, self.found);
        let drop = self.window.len().saturating_sub(keep);
        self.window.drain(..drop);
        Ok(n)
    }
}

/// Unpack an archive made by [`capture`] as `home` (which must not exist yet): into a fresh
/// directory beside it, renamed into place once complete. Modes and modification times are
/// kept; files belong to the server's user (the sandbox's user inside). Blocking.
pub fn restore<R: Read>(archive: R, home: &Path) -> io::Result<()> {
    let parent = home
        .parent()
        .ok_or_else(|| io::Error::other("a home needs a parent directory"))?;
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(parent)?;
    let staging = restoring_dir(home);
    match fs::remove_dir_all(&staging) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::DirBuilder::new().mode(0o755).create(&staging)?;
    let unpacked = (|| {
        let mut tar = tar::Archive::new(zstd::Decoder::new(archive)?);
        tar.set_preserve_permissions(true);
        tar.set_preserve_mtime(true);
        tar.set_unpack_xattrs(false);
        tar.set_overwrite(false);
        tar.unpack(&staging)?;
        fs::rename(&staging, home)
    })();
    if unpacked.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    unpacked
}

/// Where [`restore`] unpacks before the rename (a leftover of a killed restore is removed with
/// its sandbox's directory).
fn restoring_dir(home: &Path) -> PathBuf {
    let mut name = home.file_name().unwrap_or_default().to_os_string();
    name.push(".restoring");
    home.with_file_name(name)
}

#[cfg(test)]
mod tests;

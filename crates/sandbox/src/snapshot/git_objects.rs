//! Git keeps what was committed zlib-compressed (`.git/objects/xx/...` loose objects, one zlib
//! stream each; `.git/objects/pack/*.pack`, one stream per object after a small header), so a
//! value the agent committed and then deleted from the working tree is not in the archive's
//! bytes as written. The scan therefore also searches every git object decompressed. (Deltas
//! are searched as stored: the bytes a delta inserts appear in it as they are.)

use std::io::{self, Read};
use std::path::Path;

use flate2::bufread::ZlibDecoder;

use super::ScanSet;

/// Largest decompressed object searched (a bigger one is searched up to this size).
const MAX_OBJECT: u64 = 512 * 1024 * 1024;

/// Whether `rel` (home-relative) is a git object file or pack.
pub(super) fn is_git_object(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let Some(at) = parts.windows(2).position(|w| w == [".git", "objects"]) else {
        return false;
    };
    match &parts[at + 2..] {
        [dir, file] if dir.len() == 2 && file.len() >= 38 => dir
            .bytes()
            .chain(file.bytes())
            .all(|b| b.is_ascii_hexdigit()),
        ["pack", file] => file.ends_with(".pack"),
        _ => false,
    }
}

/// Search the decompressed objects of the git object file at `abs` for `scan`'s values.
pub(super) fn scan(abs: &Path, scan: &ScanSet, found: &mut Vec<usize>) -> io::Result<()> {
    let data = std::fs::read(abs)?;
    let mut out = Vec::new();
    if data.starts_with(b"PACK") {
        scan_pack(&data, scan, found, &mut out);
    } else {
        inflate(&data, &mut out);
        scan.find(&out, found);
    }
    Ok(())
}

/// Decompress one zlib stream at the start of `data` into `out`; how many bytes it took.
fn inflate(data: &[u8], out: &mut Vec<u8>) -> u64 {
    out.clear();
    let mut decoder = ZlibDecoder::new(data);
    // A broken stream is searched as far as it decompressed.
    let _ = (&mut decoder).take(MAX_OBJECT).read_to_end(out);
    decoder.total_in()
}

fn scan_pack(data: &[u8], scan: &ScanSet, found: &mut Vec<usize>, out: &mut Vec<u8>) {
    if data.len() < 12 {
        return;
    }
    let count = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
    let mut pos = 12usize;
    for _ in 0..count {
        let Some(&first) = data.get(pos) else { return };
        pos += 1;
        let kind = (first >> 4) & 7;
        let mut byte = first;
        while byte & 0x80 != 0 {
            let Some(&b) = data.get(pos) else { return };
            byte = b;
            pos += 1;
        }
        match kind {
            // ofs-delta: a variable-length offset to its base.
            6 => loop {
                let Some(&b) = data.get(pos) else { return };
                pos += 1;
                if b & 0x80 == 0 {
                    break;
                }
            },
            // ref-delta: the base's 20-byte id.
            7 => pos += 20,
            _ => {}
        }
        let Some(rest) = data.get(pos..) else { return };
        let used = inflate(rest, out);
        scan.find(out, found);
        if used == 0 {
            return;
        }
        pos += used as usize;
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_value_committed_then_deleted_is_found_in_loose_objects_and_packs() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = home.join("workspace/app");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        std::fs::write(repo.join(".env"), "TOKEN=sk-live-COMMITTED-0123456789\n").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "oops"]);
        git(&repo, &["rm", "-q", ".env"]);
        git(&repo, &["commit", "-qm", "removed"]);
        let mut set = ScanSet::new();
        set.add("token", b"sk-live-COMMITTED-0123456789");
        let hits = |home: &Path| {
            let (_, report) = super::super::capture(home, &set, &[], Vec::new()).unwrap();
            report.hits
        };
        let loose = hits(&home);
        assert_eq!(loose.len(), 1, "{loose:?}");
        assert!(
            loose[0].path.starts_with("workspace/app/.git/objects/"),
            "{loose:?}"
        );
        git(&repo, &["gc", "-q", "--prune=now"]);
        let packed = hits(&home);
        assert_eq!(packed.len(), 1, "{packed:?}");
        assert!(packed[0].path.ends_with(".pack"), "{packed:?}");
        assert_eq!(packed[0].labels, ["token"]);
    }

    #[test]
    fn git_object_paths() {
        for yes in [
            "workspace/a/.git/objects/ab/cdef0123456789abcdef0123456789abcdef01",
            "workspace/a/.git/objects/pack/pack-1.pack",
        ] {
            assert!(is_git_object(Path::new(yes)), "{yes}");
        }
        for no in [
            "workspace/a/.git/HEAD",
            "workspace/objects/ab/cd",
            "workspace/a/.git/objects/pack/pack-1.idx",
        ] {
            assert!(!is_git_object(Path::new(no)), "{no}");
        }
    }
}

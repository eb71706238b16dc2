//! How secret values get into a sandbox: as a shell script that the sandbox's own `/bin/sh`
//! reads from a pipe on its stdin (`. /dev/stdin`).
//!
//! Why not the environment of `bwrap` (what bubblewrap's docs suggest)? It runs on the host with
//! the server's full privileges, and it is dynamically linked: an injected
//! variable named `LD_PRELOAD`, `LD_LIBRARY_PATH`, `GCONV_PATH`, … would be honoured by the host's
//! dynamic loader *before* any namespace is entered — a sandbox escape for whoever may name a
//! secret. Here the host-side processes get a fixed environment of constants, and the values
//! only ever reach a shell that already runs inside the sandbox as `amika`, with no
//! capabilities (an exec gets them through `execve` only once it is inside: see `enter`). A pipe is also never on disk and never on a command line.
//!
//! Files are written by that same shell (`printf`, a builtin in every `/bin/sh`, so no process is
//! started whose arguments would show the contents) into a tmpfs that bubblewrap mounted over the
//! file's directory: memory only, owned by `amika`, mode 0600 through `umask 077`.

use std::path::Path;

use zeroize::Zeroizing;

use super::error::StartError;

/// The sandbox user's home inside the sandbox.
pub(crate) const HOME: &str = "/home/amika";

/// Variables a shell sets by itself; reading them back from the init's environment would pin
/// them to the init's values in every exec.
const SHELL_OWNED: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_"];

/// A name `sh` can `export`: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Append `bytes` to `out` as one single-quoted shell word. Inside single quotes every byte is
/// literal except `'` itself, written as `'\''`.
pub(crate) fn quote_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}

/// `export NAME='value'`. Values cannot contain NUL (no environment can).
pub(crate) fn push_export(out: &mut Zeroizing<Vec<u8>>, name: &str, value: &[u8]) {
    out.extend_from_slice(b"export ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    quote_into(out, value);
    out.push(b'\n');
}

/// `[ -d 'DIR' ] || mkdir -p 'DIR'; printf 'FORMAT' > 'PATH'` writing `contents` byte for byte to the absolute
/// `path`. In the format, `\` and `%` are escaped and NUL is written as `\000`, so any bytes
/// survive.
pub(crate) fn push_write_file(out: &mut Zeroizing<Vec<u8>>, path: &str, contents: &[u8]) {
    if let Some(dir) = Path::new(path).parent() {
        // `[` is a builtin; `mkdir` costs a process, so only when the directory is missing.
        let dir = dir.as_os_str().as_encoded_bytes();
        out.extend_from_slice(b"[ -d ");
        quote_into(out, dir);
        out.extend_from_slice(b" ] || mkdir -p ");
        quote_into(out, dir);
        out.push(b'\n');
    }
    let mut format = Zeroizing::new(Vec::with_capacity(contents.len() + 16));
    for &b in contents {
        match b {
            b'\\' => format.extend_from_slice(b"\\\\"),
            b'%' => format.extend_from_slice(b"%%"),
            0 => format.extend_from_slice(b"\\000"),
            _ => format.push(b),
        }
    }
    out.extend_from_slice(b"printf ");
    quote_into(out, &format);
    out.extend_from_slice(b" > ");
    quote_into(out, path.as_bytes());
    out.push(b'\n');
}

/// Check an injected file's path: relative to the home, normal components only, and inside a
/// directory (`.claude/.credentials.json`, not `.netrc`) — that directory becomes a tmpfs, and
/// the home itself cannot be one without hiding the persistent home.
pub(crate) fn check_file_path(relative_path: &str) -> Result<(), StartError> {
    // Checked on the string, not `Path::components`, which would quietly normalise `a//./b`.
    let segments: Vec<&str> = relative_path.split('/').collect();
    let normal = segments
        .iter()
        .all(|s| !s.is_empty() && *s != "." && *s != ".." && !s.contains('\0'));
    if !normal {
        return Err(StartError::FilePathNotNormal(relative_path.to_owned()));
    }
    if segments.len() < 2 {
        return Err(StartError::FilePathNotInDirectory(relative_path.to_owned()));
    }
    Ok(())
}

/// The directories to mount a tmpfs on for these injected files: each file's parent, minus those
/// inside another one (created in the outer tmpfs by the script instead). Paths are relative to
/// the home, sorted.
pub(crate) fn tmpfs_dirs<'a>(files: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut parents: Vec<String> = files
        .into_iter()
        .filter_map(|f| Path::new(f).parent())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parents.sort();
    parents.dedup();
    let outer: Vec<String> = parents
        .iter()
        .filter(|p| {
            !parents
                .iter()
                .any(|q| q != *p && Path::new(p.as_str()).starts_with(q))
        })
        .cloned()
        .collect();
    outer
}

/// Parse `/proc/<pid>/environ` into (name, value) pairs that can be exported again, skipping the
/// variables a shell owns.
pub(crate) fn parse_environ(data: &[u8]) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    data.split(|&b| b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            let name = std::str::from_utf8(&entry[..eq]).ok()?;
            if !is_valid_env_name(name) || SHELL_OWNED.contains(&name) {
                return None;
            }
            Some((name.to_owned(), Zeroizing::new(entry[eq + 1..].to_vec())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Run a script through the real `/bin/sh` the way the sandbox does (`. /dev/stdin`).
    fn run_sourced(script: &[u8], then: &str) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(". /dev/stdin; {then}"))
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn env_names() {
        assert!(is_valid_env_name("ANTHROPIC_API_KEY"));
        assert!(is_valid_env_name("_x1"));
        for bad in ["", "1X", "A-B", "A B", "A=B", "Ä"] {
            assert!(!is_valid_env_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn exported_values_survive_any_bytes() {
        let value = b"it's \"q\" $HOME `x` \\n\n\ttab \xff\xfe end'".to_vec();
        let mut script = Zeroizing::new(Vec::new());
        push_export(&mut script, "V", &value);
        let out = run_sourced(&script, "printf %s \"$V\"");
        assert_eq!(out, value);
    }

    #[test]
    fn written_files_survive_any_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<u8> = (0..=255u8)
            .chain(b"%s %% \\ \\000 '".iter().copied())
            .collect();
        let path = dir.path().join("sub/f.bin");
        let mut script = Zeroizing::new(Vec::new());
        push_write_file(&mut script, path.to_str().unwrap(), &contents);
        run_sourced(&script, "true");
        assert_eq!(std::fs::read(&path).unwrap(), contents);
    }

    #[test]
    fn file_paths() {
        check_file_path(".claude/.credentials.json").unwrap();
        check_file_path(".config/gh/hosts.yml").unwrap();
        for bad in [
            "", ".netrc", "/etc/x", "../x/y", "a/../b", "./a/b", "a/b/", "a//b/./c",
        ] {
            assert!(check_file_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tmpfs_dirs_are_outermost_parents() {
        let dirs = tmpfs_dirs([
            ".claude/.credentials.json",
            ".codex/auth.json",
            ".claude/sub/x",
            ".claudette/y",
        ]);
        assert_eq!(dirs, vec![".claude", ".claudette", ".codex"]);
    }

    #[test]
    fn environ_round_trip() {
        let data = b"HOME=/home/amika\0PWD=/x\0K=a=b\0bad-name=1\0EMPTY=\0";
        let parsed: Vec<(String, Vec<u8>)> = parse_environ(data)
            .into_iter()
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        assert_eq!(
            parsed,
            vec![
                ("HOME".into(), b"/home/amika".to_vec()),
                ("K".into(), b"a=b".to_vec()),
                ("EMPTY".into(), Vec::new()),
            ]
        );
    }
}

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
use super::launch::INIT_COMMIT;
use super::secret_buf;
use crate::Injection;

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

/// Where script text goes. The script is written twice: into a [`Count`], to learn its exact
/// size, then into a `Zeroizing<Vec<u8>>` of that capacity, which therefore never reallocates
/// (a reallocation would free an unzeroized copy of the values written so far).
pub(crate) trait Out {
    fn put(&mut self, bytes: &[u8]);
}

/// Counts what would be written.
#[derive(Debug, Default)]
pub(crate) struct Count(pub usize);

impl Out for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

impl Out for Zeroizing<Vec<u8>> {
    /// Sized right, this only appends; sized wrong, it still grows without leaving a copy (see
    /// `secret_buf`).
    fn put(&mut self, bytes: &[u8]) {
        secret_buf::reserve(self, bytes.len());
        self.extend_from_slice(bytes);
    }
}

/// Append `bytes` to `out` as one single-quoted shell word. Inside single quotes every byte is
/// literal except `'` itself, written as `'\''`.
pub(crate) fn quote_into(out: &mut impl Out, bytes: &[u8]) {
    out.put(b"'");
    for chunk in bytes.split_inclusive(|&b| b == b'\'') {
        match chunk.strip_suffix(b"'") {
            Some(head) => {
                out.put(head);
                out.put(b"'\\''");
            }
            None => out.put(chunk),
        }
    }
    out.put(b"'");
}

/// `export NAME='value'`. Values cannot contain NUL (no environment can).
pub(crate) fn push_export(out: &mut impl Out, name: &str, value: &[u8]) {
    out.put(b"export ");
    out.put(name.as_bytes());
    out.put(b"=");
    quote_into(out, value);
    out.put(b"\n");
}

/// `[ -d 'DIR' ] || mkdir -p 'DIR'; printf 'FORMAT' > 'PATH'` writing `contents` byte for byte to the absolute
/// `path`. In the format, `\` and `%` are escaped and NUL is written as `\000`, so any bytes
/// survive. The format is escaped and quoted in one pass, straight into `out`: no intermediate
/// buffer holds the contents.
pub(crate) fn push_write_file(out: &mut impl Out, path: &str, contents: &[u8]) {
    if let Some(dir) = Path::new(path).parent() {
        // `[` is a builtin; `mkdir` costs a process, so only when the directory is missing.
        let dir = dir.as_os_str().as_encoded_bytes();
        out.put(b"[ -d ");
        quote_into(out, dir);
        out.put(b" ] || mkdir -p ");
        quote_into(out, dir);
        out.put(b"\n");
    }
    out.put(b"printf '");
    let special = |b: &u8| matches!(b, b'\\' | b'%' | 0 | b'\'');
    for chunk in contents.split_inclusive(special) {
        let (last, head) = chunk
            .split_last()
            .expect("split_inclusive yields no empty chunk");
        if !special(last) {
            out.put(chunk);
            continue;
        }
        let escaped: &[u8] = match last {
            b'\\' => b"\\\\",
            b'%' => b"%%",
            0 => b"\\000",
            // The quote of the single-quoted word the format is.
            _ => b"'\\''",
        };
        out.put(head);
        out.put(escaped);
    }
    out.put(b"' > ");
    quote_into(out, path.as_bytes());
    out.put(b"\n");
}

/// Everything injected, as the script the init sources: exports, files, then the commit line
/// ([`INIT_COMMIT`]). Sized exactly before it is written, so its one allocation is the only
/// place the values are, zeroized when dropped.
pub(crate) fn injection_script(injection: &Injection) -> Zeroizing<Vec<u8>> {
    let mut size = Count::default();
    write_script(&mut size, injection);
    let mut script = Zeroizing::new(Vec::with_capacity(size.0));
    write_script(&mut script, injection);
    debug_assert_eq!(script.len(), size.0);
    script
}

fn write_script(out: &mut impl Out, injection: &Injection) {
    for env in &injection.env {
        push_export(out, &env.name, env.value.expose_secret());
    }
    for file in &injection.files {
        let path = format!("{HOME}/{}", file.relative_path);
        push_write_file(out, &path, file.contents.expose_secret());
    }
    out.put(INIT_COMMIT);
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

    /// The script was grown from empty: every reallocation freed an unzeroized copy of the
    /// values written so far.
    #[test]
    fn the_injection_script_is_sized_once_and_never_reallocates() {
        use crate::{InjectedEnv, InjectedFile, SecretBytes};
        let tricky = b"it's 100% \\ \0 '' end".to_vec();
        let injection = Injection {
            env: (0..50)
                .map(|i| InjectedEnv {
                    name: format!("V{i}"),
                    value: SecretBytes::new(tricky.repeat(i)),
                    label: "l".into(),
                })
                .collect(),
            files: vec![InjectedFile {
                relative_path: ".claude/.credentials.json".into(),
                contents: SecretBytes::new((0..=255u8).cycle().take(70_000).collect()),
                label: "f".into(),
            }],
        };
        let mut size = Count::default();
        write_script(&mut size, &injection);
        let mut script = Zeroizing::new(Vec::with_capacity(size.0));
        let (capacity, at) = (script.capacity(), script.as_ptr());
        write_script(&mut script, &injection);
        assert_eq!(script.len(), size.0);
        assert_eq!((script.capacity(), script.as_ptr()), (capacity, at));
        assert_eq!(injection_script(&injection), script);
        // The same text as the pieces pushed one at a time into a growing buffer (the order of
        // exports, file and commit line; this compares the same escaping functions).
        let mut grown = Zeroizing::new(Vec::new());
        for env in &injection.env {
            push_export(&mut grown, &env.name, env.value.expose_secret());
        }
        let file = &injection.files[0];
        let path = format!("{HOME}/{}", file.relative_path);
        push_write_file(&mut grown, &path, file.contents.expose_secret());
        grown.extend_from_slice(INIT_COMMIT);
        assert_eq!(grown, script);
        // And the same text as an independent reference that escapes byte at a time, as
        // `quote_into` did before it wrote whole chunks (so did the `printf` format).
        assert_eq!(reference_script(&injection), *script);
    }

    /// The injection script escaped byte at a time: the reference for the chunked escaping.
    fn reference_script(injection: &Injection) -> Vec<u8> {
        let quote = |bytes: &[u8]| {
            let mut q = b"'".to_vec();
            for &b in bytes {
                match b {
                    b'\'' => q.extend_from_slice(b"'\\''"),
                    _ => q.push(b),
                }
            }
            q.push(b'\'');
            q
        };
        let mut out = Vec::new();
        for env in &injection.env {
            out.extend_from_slice(format!("export {}=", env.name).as_bytes());
            out.extend(quote(env.value.expose_secret()));
            out.push(b'\n');
        }
        for file in &injection.files {
            let path = format!("{HOME}/{}", file.relative_path);
            let dir = quote(
                Path::new(&path)
                    .parent()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .as_bytes(),
            );
            out.extend_from_slice(b"[ -d ");
            out.extend_from_slice(&dir);
            out.extend_from_slice(b" ] || mkdir -p ");
            out.extend_from_slice(&dir);
            out.extend_from_slice(b"\nprintf '");
            for &b in file.contents.expose_secret() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'%' => out.extend_from_slice(b"%%"),
                    0 => out.extend_from_slice(b"\\000"),
                    b'\'' => out.extend_from_slice(b"'\\''"),
                    _ => out.push(b),
                }
            }
            out.extend_from_slice(b"' > ");
            out.extend(quote(path.as_bytes()));
            out.push(b'\n');
        }
        out.extend_from_slice(INIT_COMMIT);
        out
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

//! Records which commit the benchmarks were built from (`git rev-parse --short HEAD`, plus
//! `-dirty` when tracked files differ from it), so that a run names the code it measured even
//! when HEAD has moved on since the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if s.is_empty() => head,
            _ => format!("{head}-dirty"),
        },
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=AMIKA_BENCH_BUILT_FROM={commit}");
    // Rebuild the record when HEAD moves or the index changes (a commit, a checkout, an add).
    for path in ["../.git/HEAD", "../.git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // Sources of the workspace change without touching the index; any of them may be measured.
    println!("cargo:rerun-if-changed=../crates");
    println!("cargo:rerun-if-changed=src");
}

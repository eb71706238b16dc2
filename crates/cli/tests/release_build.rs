//! The `amika` binary is built without amika-server's `bench` feature, so the benchmark-only
//! `/bench/*` routes are not compiled into it — neither by `-p amika-cli` nor by a build
//! without `-p` (`cargo build --release --bin amika`, as scripts/up.sh runs), where the
//! workspace's default members leave out the bench crate that enables the feature.
//!
//! Asked of cargo's feature resolution rather than of the binary under test: `cargo test
//! --workspace` builds that binary together with the bench crate, which unifies the feature in.

use std::path::Path;
use std::process::Command;

/// `cargo tree` of what enables features of amika-server (normal dependencies only).
fn features_of_amika_server(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal,features",
            "-i",
            "amika-server",
        ])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_amika_binary_is_built_without_the_bench_routes() {
    let cli = features_of_amika_server(&["-p", "amika-cli"]);
    assert!(cli.contains("amika-cli"), "{cli}");
    assert!(!cli.contains("feature \"bench\""), "{cli}");

    let default_members = features_of_amika_server(&[]);
    assert!(default_members.contains("amika-cli"), "{default_members}");
    assert!(
        !default_members.contains("feature \"bench\""),
        "{default_members}"
    );

    // The check can see the feature: the bench crate does enable it.
    let bench = features_of_amika_server(&["-p", "amika-bench"]);
    assert!(bench.contains("feature \"bench\""), "{bench}");
}

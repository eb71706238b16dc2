//! A preset layer (`SandboxSpec::preset`): a host directory mounted read-only at
//! `/opt/amika/preset`, its `bin` on `PATH`; a missing layer is a start error that says so.
//! (The real `coder` layer is tested by the server's `tests/preset_coder.rs`.)

use std::os::unix::fs::PermissionsExt;

use super::*;

/// A layer with `bin/hello`, as the server lays one out.
fn layer(dir: &Path) -> PathBuf {
    let layer = dir.join("presets/demo/0123456789ab");
    std::fs::create_dir_all(layer.join("bin")).unwrap();
    let hello = layer.join("bin/hello");
    std::fs::write(&hello, "#!/bin/sh\necho hello from the layer\n").unwrap();
    std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
    layer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_layer_is_mounted_read_only_with_its_bin_on_path() {
    let g = Guard::new();
    let p = g.provider();
    let scratch = tempfile::tempdir().unwrap();
    let layer = layer(scratch.path());
    let mut with = spec("with-layer");
    with.preset = Some(layer.clone());
    p.start(&with, Injection::default()).await.unwrap();
    assert_eq!(
        sh(&p, "with-layer", "hello; command -v hello").await,
        "hello from the layer\n/opt/amika/preset/bin/hello\n"
    );
    let out = run(
        &p,
        "with-layer",
        &["sh", "-c", "touch /opt/amika/preset/bin/x"],
    )
    .await;
    assert_ne!(out.code, Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!layer.join("bin/x").exists());

    // Without a layer: nothing at /opt/amika/preset, and PATH does not name it.
    p.start(&spec("without-layer"), Injection::default())
        .await
        .unwrap();
    assert_eq!(
        sh(
            &p,
            "without-layer",
            "test -e /opt/amika/preset && echo mounted; echo \"$PATH\""
        )
        .await,
        "/home/amika/.local/bin:/usr/local/bin:/usr/bin:/bin\n"
    );

    // A layer that is gone (removed by hand) is a start error naming it.
    let mut gone = spec("gone-layer");
    gone.preset = Some(scratch.path().join("presets/demo/ffffffffffff"));
    let err = p.start(&gone, Injection::default()).await.unwrap_err();
    assert!(
        err.to_string().contains("its preset layer")
            && err
                .to_string()
                .contains("ffffffffffff is missing: install the preset again"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_sandbox_never_serves_a_layer_installed_again_at_its_path() {
    let g = Guard::new();
    let p = g.provider();
    let scratch = tempfile::tempdir().unwrap();
    let old = layer(scratch.path());
    let mut first = spec("layer-first");
    first.preset = Some(old.clone());
    p.start(&first, Injection::default()).await.unwrap();
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 1).await;

    // The layer is removed and installed again at the same path, with other contents.
    std::fs::remove_dir_all(&old).unwrap();
    let again = layer(scratch.path());
    std::fs::write(again.join("bin/hello"), "#!/bin/sh\necho the new layer\n").unwrap();
    let mut second = spec("layer-second");
    second.preset = Some(again);
    p.start(&second, Injection::default()).await.unwrap();
    assert_eq!(sh(&p, "layer-second", "hello").await, "the new layer\n");
    // The same layer again: the warm sandbox of that start serves it.
    eventually("a warm sandbox is parked", || p.warm_sandboxes() == 2).await;
    let mut third = spec("layer-third");
    third.preset = second.preset.clone();
    p.start(&third, Injection::default()).await.unwrap();
    assert_eq!(
        p.warm_sandboxes(),
        1,
        "the warm sandbox of the new layer was not claimed"
    );
    assert_eq!(sh(&p, "layer-third", "hello").await, "the new layer\n");
}

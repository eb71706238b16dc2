use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;

fn tree(root: &Path) {
    fs::create_dir_all(root.join("workspace/app/bin")).unwrap();
    fs::write(root.join("workspace/app/README"), "hello\n").unwrap();
    fs::write(root.join("workspace/app/bin/run"), "#!/bin/sh\necho run\n").unwrap();
    fs::set_permissions(
        root.join("workspace/app/bin/run"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    fs::write(root.join(".profile"), "export A=1\n").unwrap();
    symlink("app/README", root.join("workspace/readme-link")).unwrap();
    symlink("/etc/passwd", root.join("workspace/abs-link")).unwrap();
}

#[test]
fn capture_and_restore_round_trip_modes_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("src/home");
    tree(&home);
    let (archive, report) = capture(&home, &ScanSet::new(), &[], Vec::new()).unwrap();
    assert_eq!((report.files, report.symlinks), (3, 2), "{report:?}");
    assert!(report.hits.is_empty());
    let restored = tmp.path().join("dst/home");
    restore(&archive[..], &restored).unwrap();
    assert_eq!(
        fs::read_to_string(restored.join("workspace/app/README")).unwrap(),
        "hello\n"
    );
    let mode = fs::metadata(restored.join("workspace/app/bin/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
    assert_eq!(
        fs::read_link(restored.join("workspace/abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_to_string(restored.join("workspace/readme-link")).unwrap(),
        "hello\n"
    );
    assert!(!tmp.path().join("dst/home.restoring").exists());
}

#[test]
fn values_in_contents_names_and_links_are_found_across_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    tree(&home);
    let secret = "sk-live-0123456789abcdef";
    // Split across two reads of the scanner.
    let mut big = vec![b'x'; READ_LEN - 5];
    big.extend_from_slice(secret.as_bytes());
    big.extend_from_slice(&[b'y'; 100]);
    fs::write(home.join("workspace/big.bin"), big).unwrap();
    fs::write(home.join(format!("workspace/{secret}.txt")), "x").unwrap();
    symlink(format!("/tmp/{secret}"), home.join("workspace/link")).unwrap();
    fs::write(home.join("workspace/skipme"), secret).unwrap();
    // A file right after one that ends with half the value: files are searched on their own.
    fs::write(home.join("workspace/zz-half"), &secret[..10]).unwrap();
    fs::write(home.join("workspace/zz-rest"), &secret[10..]).unwrap();
    let mut scan = ScanSet::new();
    scan.add("stripe", secret.as_bytes());
    let (_, report) = capture(&home, &scan, &["workspace/skipme".into()], Vec::new()).unwrap();
    let paths: Vec<&str> = report.hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "workspace/big.bin",
            "workspace/link",
            "workspace/sk-live-0123456789abcdef.txt"
        ]
    );
    assert!(report.hits.iter().all(|h| h.labels == ["stripe"]));
}

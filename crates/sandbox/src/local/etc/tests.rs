//! Tests of the curated `/etc`: built from fake sources, rebuilt on change, old versions kept
//! while in use, and the real `/etc` curated for a real sandbox.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::SystemTime;

/// A fake `/etc`. Timestamps are set to the past so that a change made by a test always
/// gets a different one (a coarse clock could otherwise give it the same tick).
fn fake_etc() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    let file = |rel: &str, body: &str, mode: u32| {
        let path = p.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    file("ld.so.cache", "cache bytes", 0o644);
    file("nsswitch.conf", "passwd: files\n", 0o644);
    file("shadow", "root:$6$secret", 0o600);
    file("gshadow", "root:*::", 0o600);
    file("ssl/certs/ca.pem", "CERT 1", 0o644);
    file("ssl/private/key.pem", "PRIVATE KEY", 0o600);
    file("ssl/openssl.cnf", "[openssl]\n", 0o644);
    file("perl/Deep/Er/mod.pm", "1;\n", 0o644);
    file("python3.11/sitecustomize.py", "# site\n", 0o644);
    file("java-17-openjdk/security/java.policy", "grant {};\n", 0o644);
    file("fonts/fonts.conf", "<fontconfig/>\n", 0o644);
    // In a listed directory but not for everyone: not copied.
    file("fonts/local.conf", "owner only\n", 0o640);
    file("profile.d/run.sh", "echo hi\n", 0o755);
    // Special bits are not copied.
    file("profile.d/suid.sh", "echo root\n", 0o4755);
    // A directory only its owner may enter: not copied, whatever is inside.
    file("perl/private/open.pm", "1;\n", 0o644);
    fs::set_permissions(p.join("perl/private"), fs::Permissions::from_mode(0o700)).unwrap();
    file("real-resolv", "nameserver 192.0.2.53\n", 0o644);
    file("hosts", "192.0.2.1\thost-only\n", 0o644);
    symlink("ca.pem", p.join("ssl/certs/link.pem")).unwrap();
    symlink("/usr/share/zoneinfo/Etc/UTC", p.join("localtime")).unwrap();
    fs::create_dir(p.join("alternatives")).unwrap();
    symlink("/usr/bin/vim.basic", p.join("alternatives/editor")).unwrap();
    symlink("real-resolv", p.join("resolv.conf")).unwrap();
    let fifo = std::ffi::CString::new(p.join("fonts/fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    #[allow(unsafe_code)]
    let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
    assert_eq!(made, 0);
    age(p);
    src
}

/// Set every file's and directory's times below `dir` (and its own) an hour back.
fn age(dir: &Path) {
    let past = SystemTime::now() - Duration::from_secs(3600);
    let times = fs::FileTimes::new().set_modified(past).set_accessed(past);
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            age(&entry.path());
        } else if kind.is_file() {
            fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap()
                .set_times(times)
                .unwrap();
        }
    }
    fs::File::open(dir).unwrap().set_times(times).unwrap();
}

/// Replace a file the way package managers do: write a new one, rename it over.
fn replace(path: &Path, body: &str) {
    let tmp = path.with_extension("new");
    fs::write(&tmp, body).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn versions(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join(".etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn version_of(variant: &Path) -> String {
    let version = variant.parent().unwrap().file_name().unwrap();
    version.to_str().unwrap().to_owned()
}

#[test]
fn builds_the_allow_list_from_a_source_dir() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    let curated = Curated::with_source(root.path(), src.path());
    let none = curated.dir(NetworkMode::None).unwrap();
    let egress = curated.dir(NetworkMode::Egress).unwrap();
    let host = curated.dir(NetworkMode::Host).unwrap();
    assert_eq!(none.parent(), egress.parent());
    assert_eq!(
        none.parent().unwrap().parent().unwrap(),
        root.path().join(".etc")
    );
    assert!(is_version_name(&version_of(&none)));

    for dir in [&none, &egress, &host] {
        for rel in [
            "ld.so.cache",
            "nsswitch.conf",
            "ssl/certs/ca.pem",
            "ssl/openssl.cnf",
            "perl/Deep/Er/mod.pm",
            "python3.11/sitecustomize.py",
            "java-17-openjdk/security/java.policy",
            "fonts/fonts.conf",
            "profile.d/run.sh",
        ] {
            assert_eq!(
                fs::read(dir.join(rel)).unwrap(),
                fs::read(src.path().join(rel)).unwrap(),
                "{rel} in {}",
                dir.display()
            );
        }
        let mode = |rel: &str| fs::metadata(dir.join(rel)).unwrap().mode() & 0o7777;
        assert_eq!(mode("profile.d/run.sh"), 0o755);
        assert_eq!(mode("profile.d/suid.sh"), 0o755);
        assert_eq!(mode("ld.so.cache"), 0o644);
        assert_eq!(mode("perl/Deep"), 0o755);
        for (link, target) in [
            ("ssl/certs/link.pem", "ca.pem"),
            ("localtime", "/usr/share/zoneinfo/Etc/UTC"),
            ("alternatives/editor", "/usr/bin/vim.basic"),
        ] {
            let meta = fs::symlink_metadata(dir.join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{link} must stay a symlink");
            assert_eq!(fs::read_link(dir.join(link)).unwrap(), Path::new(target));
        }
        // Not listed, not for everyone, not a file, or not there at all.
        for absent in [
            "shadow",
            "gshadow",
            "ssl/private",
            "fonts/local.conf",
            "fonts/fifo",
            "perl/private",
            "real-resolv",
            "vim",
            "terminfo",
        ] {
            assert!(
                fs::symlink_metadata(dir.join(absent)).is_err(),
                "{absent} must not be in {}",
                dir.display()
            );
        }
        let passwd = fs::read_to_string(dir.join("passwd")).unwrap();
        assert!(passwd.contains("amika:x:1000:1000:"), "{passwd}");
        assert_eq!(fs::read_to_string(dir.join("group")).unwrap(), GROUP);
    }
    assert_eq!(fs::read_to_string(none.join("hosts")).unwrap(), HOSTS);
    assert!(!none.join("resolv.conf").exists());
    assert_eq!(fs::read_to_string(egress.join("hosts")).unwrap(), HOSTS);
    assert_eq!(
        fs::read_to_string(egress.join("resolv.conf")).unwrap(),
        "nameserver 10.0.2.3\n"
    );
    // Host mode: the host's files, symlink followed.
    assert_eq!(
        fs::read_to_string(host.join("hosts")).unwrap(),
        "192.0.2.1\thost-only\n"
    );
    let resolv = fs::symlink_metadata(host.join("resolv.conf")).unwrap();
    assert!(resolv.is_file());
    assert_eq!(
        fs::read_to_string(host.join("resolv.conf")).unwrap(),
        "nameserver 192.0.2.53\n"
    );
    // Nothing left behind by the build.
    assert_eq!(versions(root.path()), vec![version_of(&none)]);
}

#[test]
fn an_unchanged_source_is_only_stat_ed() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    let curated = Curated::with_source(root.path(), src.path());
    let first = curated.dir(NetworkMode::Egress).unwrap();
    let ino = fs::metadata(first.parent().unwrap()).unwrap().ino();
    assert_eq!(
        curated.counters(),
        (2, 1),
        "one build, checked by a second walk"
    );
    for _ in 0..3 {
        assert_eq!(curated.dir(NetworkMode::Egress).unwrap(), first);
    }
    assert_eq!(curated.counters(), (2, 1), "no walk, no build");
    assert_eq!(fs::metadata(first.parent().unwrap()).unwrap().ino(), ino);

    // A new instance (a restarted server) walks once and reuses the directory.
    let again = Curated::with_source(root.path(), src.path());
    assert_eq!(again.dir(NetworkMode::Egress).unwrap(), first);
    assert_eq!(again.counters(), (1, 0));

    // A version dir removed behind the cache's back is rebuilt, not handed out missing.
    fs::remove_dir_all(first.parent().unwrap()).unwrap();
    assert_eq!(curated.dir(NetworkMode::Egress).unwrap(), first);
    assert!(first.join("passwd").is_file());
    assert_eq!(curated.counters(), (4, 2));
}

#[test]
fn a_changed_source_makes_a_new_version_and_the_old_one_goes() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    let mut curated = Curated::with_source(root.path(), src.path());
    curated.grace = Duration::ZERO;
    let v1 = curated.dir(NetworkMode::None).unwrap();

    // Inside a listed directory, replaced by rename: seen through the directory's mtime.
    replace(&src.path().join("ssl/certs/ca.pem"), "CERT 2");
    let v2 = curated.dir(NetworkMode::None).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        fs::read_to_string(v2.join("ssl/certs/ca.pem")).unwrap(),
        "CERT 2"
    );
    assert_eq!(versions(root.path()), vec![version_of(&v2)], "v1 removed");

    // A top-level file rewritten in place.
    fs::write(src.path().join("nsswitch.conf"), "passwd: files systemd\n").unwrap();
    let v3 = curated.dir(NetworkMode::None).unwrap();
    assert_ne!(v2, v3);
    assert_eq!(
        fs::read_to_string(v3.join("nsswitch.conf")).unwrap(),
        "passwd: files systemd\n"
    );

    // A listed entry that appears, and a new versioned one.
    fs::create_dir(src.path().join("vim")).unwrap();
    fs::write(src.path().join("vim/vimrc"), "set nocp\n").unwrap();
    fs::create_dir(src.path().join("python3.12")).unwrap();
    let v4 = curated.dir(NetworkMode::None).unwrap();
    assert_ne!(v3, v4);
    assert!(v4.join("vim/vimrc").is_file());
    assert!(v4.join("python3.12").is_dir());

    // The host's resolv.conf changes where its symlink points.
    fs::write(src.path().join("real-resolv"), "nameserver 192.0.2.54\n").unwrap();
    let v5 = curated.dir(NetworkMode::Host).unwrap();
    assert_ne!(version_of(&v4), version_of(&v5));
    assert_eq!(
        fs::read_to_string(v5.join("resolv.conf")).unwrap(),
        "nameserver 192.0.2.54\n"
    );

    // A change outside the allow-list (the source dir's own mtime moves) is no new version.
    replace(&src.path().join("shadow"), "root:$6$other");
    assert_eq!(curated.dir(NetworkMode::Host).unwrap(), v5);
    assert_eq!(versions(root.path()), vec![version_of(&v5)]);
}

#[test]
fn a_version_handed_out_recently_is_kept() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    let curated = Curated::with_source(root.path(), src.path());
    let v1 = curated.dir(NetworkMode::None).unwrap();
    replace(&src.path().join("ld.so.cache"), "new cache");
    let v2 = curated.dir(NetworkMode::None).unwrap();
    assert_ne!(v1, v2);
    // A start may have v1 and not have spawned its bwrap yet.
    assert!(v1.join("passwd").is_file());
    assert_eq!(versions(root.path()).len(), 2);
}

/// bwrap with `etc` bound on `/etc`, running `script` as uid 1000.
fn bwrap(etc: &Path, script: &str) -> Command {
    let mut cmd = Command::new("bwrap");
    cmd.args([
        "--unshare-all",
        "--die-with-parent",
        "--uid",
        "1000",
        "--gid",
        "1000",
    ])
    .args(["--ro-bind", "/usr", "/usr"])
    .args([
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
    ])
    .args(["--symlink", "usr/lib64", "/lib64"])
    .arg("--ro-bind")
    .arg(etc)
    .arg("/etc")
    .args([
        "--proc", "/proc", "--dev", "/dev", "--", "/bin/sh", "-c", script,
    ]);
    cmd
}

#[test]
fn a_version_a_running_bwrap_binds_is_kept() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    let mut curated = Curated::with_source(root.path(), src.path());
    curated.grace = Duration::ZERO;
    let v1 = curated.dir(NetworkMode::None).unwrap();
    let mut sandbox = bwrap(&v1, "test -f /etc/passwd && echo up; exec sleep 30")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bwrap (apt-get install -y bubblewrap)");
    // Running with v1 on /etc (and past bwrap's setup, which a kill could otherwise
    // interrupt before the inner bwrap has asked to die with its parent).
    let mut up = String::new();
    io::BufRead::read_line(
        &mut io::BufReader::new(sandbox.stdout.take().unwrap()),
        &mut up,
    )
    .unwrap();
    assert_eq!(up, "up\n");
    replace(&src.path().join("ld.so.cache"), "cache 2");
    let v2 = curated.dir(NetworkMode::None).unwrap();
    let kept = v1.join("passwd").is_file();
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    assert!(kept, "v1 is bound by a running bwrap");
    assert_ne!(v1, v2);
    // bwrap's own pid 1 inside (same command line) dies of its parent's death shortly after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while curated.referenced_versions().contains(&version_of(&v1)) {
        assert!(Instant::now() < deadline, "bwrap did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Once that sandbox is gone, the next build removes it.
    replace(&src.path().join("ld.so.cache"), "cache 3");
    let v3 = curated.dir(NetworkMode::None).unwrap();
    assert_eq!(versions(root.path()), vec![version_of(&v3)]);
}

#[test]
fn the_real_etc_is_curated() {
    let root = tempfile::tempdir().unwrap();
    let curated = Curated::new(root.path());
    let dir = curated.dir(NetworkMode::Egress).unwrap();
    assert!(dir.join("ld.so.cache").is_file());
    assert!(dir.join("ssl/certs").is_dir());
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert_eq!(
            fs::read(dir.join("ssl/certs/ca-certificates.crt")).unwrap(),
            fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap()
        );
    }
    // Whatever the host has, none of this may reach a sandbox.
    for secret in [
        "shadow",
        "gshadow",
        "ssl/private",
        "ssh",
        "sudoers",
        "sudoers.d",
        "npmrc",
        "pip.conf",
        "machine-id",
    ] {
        assert!(
            fs::symlink_metadata(dir.join(secret)).is_err(),
            "{secret} must not be copied"
        );
    }
    assert!(ETC_ENTRIES.iter().all(|e| !e.starts_with("ssl/private")));
    let passwd = fs::read_to_string(dir.join("passwd")).unwrap();
    assert_eq!(passwd, PASSWD);
}

#[test]
fn a_sandbox_runs_on_the_curated_etc() {
    let root = tempfile::tempdir().unwrap();
    let curated = Curated::new(root.path());
    let script = "id -un; cat /etc/resolv.conf; \
        test -r /etc/ssl/certs/ca-certificates.crt && echo certs; \
        test -e /etc/shadow || echo no-shadow; \
        touch /etc/x 2>/dev/null || echo read-only";
    let out = bwrap(&curated.dir(NetworkMode::Egress).unwrap(), script)
        .output()
        .expect("bwrap (apt-get install -y bubblewrap)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = String::from("amika\nnameserver 10.0.2.3\n");
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        expected.push_str("certs\n");
    }
    expected.push_str("no-shadow\nread-only\n");
    assert_eq!(stdout, expected);
}

#[test]
fn concurrent_first_calls_agree() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    // Two instances stand for two processes on one root; a shared one for two threads.
    let shared = Arc::new(Curated::with_source(root.path(), src.path()));
    let callers = [
        Arc::new(Curated::with_source(root.path(), src.path())),
        Arc::new(Curated::with_source(root.path(), src.path())),
        shared.clone(),
        shared,
    ];
    let barrier = Arc::new(Barrier::new(callers.len()));
    let threads: Vec<_> = callers
        .into_iter()
        .map(|curated| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                curated.dir(NetworkMode::Egress).unwrap()
            })
        })
        .collect();
    let dirs: Vec<PathBuf> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(dirs.iter().all(|d| d == &dirs[0]), "{dirs:?}");
    assert_eq!(
        fs::read_to_string(dirs[0].join("ssl/certs/ca.pem")).unwrap(),
        "CERT 1"
    );
    assert_eq!(
        fs::read_to_string(dirs[0].join("resolv.conf")).unwrap(),
        EGRESS_RESOLV_CONF
    );
    assert_eq!(
        versions(root.path()),
        vec![version_of(&dirs[0])],
        "no temp dirs left"
    );
}

#[test]
fn a_missing_source_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-etc");
    let curated = Curated::with_source(root.path(), &missing);
    let err = curated.dir(NetworkMode::None).unwrap_err().to_string();
    assert!(
        err.contains("cannot read") && err.contains("no-such-etc"),
        "{err}"
    );
}

#[test]
fn dead_builders_temp_dirs_are_removed() {
    let src = fake_etc();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join(".etc/tmp-999999999-0/none")).unwrap();
    let live = format!("tmp-{}-77", std::process::id());
    fs::create_dir_all(root.path().join(".etc").join(&live)).unwrap();
    let curated = Curated::with_source(root.path(), src.path());
    let dir = curated.dir(NetworkMode::None).unwrap();
    let mut expected = vec![version_of(&dir), live];
    expected.sort();
    assert_eq!(versions(root.path()), expected);
}

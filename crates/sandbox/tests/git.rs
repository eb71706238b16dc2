//! Cloning with real git: a local bare repository over `file://`, and a private repository served
//! by `git http-backend` behind a tiny HTTP server on 127.0.0.1 that requires a token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::local::git::{self, CloneSpec, GitError};
use amika_sandbox::SecretBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "ghp_T0kenThatMustNeverLeak9f8e7d6c5b4a";

fn sh(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `origin.git` under `root` with `main` (default, 2 commits) and `dev`.
fn bare_repo(root: &Path) -> (PathBuf, String, String) {
    let work = root.join("work");
    std::fs::create_dir(&work).unwrap();
    sh(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    sh(&work, &["add", "."]);
    sh(&work, &["commit", "-q", "-m", "one"]);
    std::fs::write(work.join("README.md"), "hello again\n").unwrap();
    sh(&work, &["commit", "-q", "-am", "two"]);
    let main = sh(&work, &["rev-parse", "HEAD"]);
    sh(&work, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(work.join("dev.txt"), "dev\n").unwrap();
    sh(&work, &["add", "."]);
    sh(&work, &["commit", "-q", "-m", "dev"]);
    let dev = sh(&work, &["rev-parse", "HEAD"]);
    let bare = root.join("origin.git");
    sh(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    sh(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    (bare, main, dev)
}

fn spec<'a>(url: &'a str, dest: &'a Path, scratch: &'a Path) -> CloneSpec<'a> {
    CloneSpec {
        url,
        bundle: None,
        branch: None,
        new_branch: None,
        token: None,
        dest,
        scratch,
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn a_local_bare_repository_clones_on_the_default_a_named_or_a_new_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let (bare, main, dev) = bare_repo(tmp.path());
    let url = format!("file://{}", bare.display());

    let dest = tmp.path().join("a");
    let cloned = git::clone(&spec(&url, &dest, tmp.path())).await.unwrap();
    assert_eq!(cloned.branch.as_deref(), Some("main"));
    assert_eq!(cloned.commit.as_deref(), Some(main.as_str()));
    assert_eq!(
        std::fs::read_to_string(dest.join("README.md")).unwrap(),
        "hello again\n"
    );

    let dest = tmp.path().join("b");
    let mut s = spec(&url, &dest, tmp.path());
    s.branch = Some("dev");
    let cloned = git::clone(&s).await.unwrap();
    assert_eq!(cloned.branch.as_deref(), Some("dev"));
    assert_eq!(cloned.commit.as_deref(), Some(dev.as_str()));

    let dest = tmp.path().join("c");
    let mut s = spec(&url, &dest, tmp.path());
    s.branch = Some("dev");
    s.new_branch = Some("agent/work-1");
    let cloned = git::clone(&s).await.unwrap();
    assert_eq!(cloned.branch.as_deref(), Some("agent/work-1"));
    assert_eq!(cloned.commit.as_deref(), Some(dev.as_str()));

    // Scratch directories (HOME, askpass) are gone after each clone.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("git-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_missing_branch_fails_with_gits_words_and_leaves_no_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let (bare, ..) = bare_repo(tmp.path());
    let url = format!("file://{}", bare.display());
    let dest = tmp.path().join("x");
    let mut s = spec(&url, &dest, tmp.path());
    s.branch = Some("nope");
    let e = git::clone(&s).await.unwrap_err().to_string();
    assert!(
        e.starts_with("git clone failed:") && e.contains("nope"),
        "{e}"
    );
    assert!(!dest.exists());
}

#[test]
fn urls_and_branches_that_git_could_misuse_are_refused() {
    for url in [
        "",
        "ext::sh -c touch% /tmp/pwned",
        "-uhttps://x/y",
        "https://user:secret@host/repo.git",
        "/abs/path",
        "ftp://host/x",
        "https://host/a b",
    ] {
        let e = git::check_url(url).unwrap_err();
        assert!(matches!(e, GitError::InvalidUrl { .. }), "{url}: {e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
    for url in [
        "https://github.com/org/repo.git",
        "http://127.0.0.1:8080/r.git",
        "ssh://git@host/org/repo.git",
        "git@github.com:org/repo.git",
        "file:///srv/repo.git",
    ] {
        git::check_url(url).unwrap();
    }
    for b in ["", "-f", "a..b", "a b", "x.lock", "a:b", "/x", "a//b"] {
        assert!(git::check_branch(b).is_err(), "{b}");
    }
    for b in ["main", "feature/x-1", "v1.2"] {
        git::check_branch(b).unwrap();
    }
}

/// GitHub accepts a token as the user name of an HTTPS URL; `check_url` let it through when it
/// had no ':' after it, so the token went into git's argv, `.git/config` and git's messages.
#[test]
fn a_token_as_the_user_name_of_an_http_url_is_refused() {
    for url in [
        format!("https://{TOKEN}@github.com/o/r"),
        format!("http://{TOKEN}@127.0.0.1:8080/r.git"),
        format!("git://{TOKEN}@host/r.git"),
        "https://token-user@host/repo.git".to_string(),
    ] {
        let e = git::check_url(&url).unwrap_err();
        assert!(matches!(e, GitError::InvalidUrl { .. }), "{url}: {e}");
        assert!(!e.to_string().contains(TOKEN), "{e}");
    }
    // SSH has a use for a user name; a path with '@' is not a user name.
    for url in [
        "ssh://git@host/org/repo.git",
        "git@github.com:org/repo.git",
        "https://host/org/repo@v1.git",
    ] {
        git::check_url(url).unwrap();
    }
}

/// A private repository: `git http-backend` behind HTTP basic auth with [`TOKEN`] as the
/// password. Each authenticated request is held for `delay`, so a test can look at the host's
/// processes while the clone runs. Counts requests that carried the right token.
async fn serve_private(root: PathBuf, delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let authorized = Arc::new(AtomicUsize::new(0));
    let count = authorized.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let root = root.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let request = lines.next().unwrap().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect();
                let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
                let mut body = buf[head_end..].to_vec();
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while body.len() < len {
                    let n = conn.read(&mut chunk).await.unwrap();
                    body.extend_from_slice(&chunk[..n]);
                }
                let expected = format!("Basic {}", base64(&format!("x-access-token:{TOKEN}")));
                if header("authorization").as_deref() != Some(expected.as_str()) {
                    let _ = conn
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let mut parts = request.split(' ');
                let method = parts.next().unwrap().to_string();
                let target = parts.next().unwrap().to_string();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let mut cgi = tokio::process::Command::new("git");
                cgi.arg("http-backend")
                    .env_clear()
                    .env("GIT_PROJECT_ROOT", &root)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("REQUEST_METHOD", &method)
                    .env("PATH_INFO", path)
                    .env("QUERY_STRING", query)
                    .env("REMOTE_USER", "x-access-token")
                    .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
                    .env("CONTENT_LENGTH", body.len().to_string())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped());
                if let Some(enc) = header("content-encoding") {
                    cgi.env("HTTP_CONTENT_ENCODING", enc);
                }
                let mut child = cgi.spawn().unwrap();
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(&body).await.unwrap();
                drop(stdin);
                let out = child.wait_with_output().await.unwrap().stdout;
                let split = out
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| (i, 4))
                    .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
                    .unwrap();
                let cgi_head = String::from_utf8_lossy(&out[..split.0]).to_string();
                let cgi_body = &out[split.0 + split.1..];
                let mut status = "200 OK".to_string();
                let mut resp = String::new();
                for l in cgi_head.lines() {
                    match l.split_once(": ") {
                        Some(("Status", s)) => status = s.to_string(),
                        Some(_) => resp.push_str(&format!("{l}\r\n")),
                        None => {}
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status}\r\n{resp}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    cgi_body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(cgi_body).await;
            });
        }
    });
    (format!("http://{addr}/origin.git"), authorized)
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every process's command line and environment, as the host sees them.
fn host_processes_mention(needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for what in ["cmdline", "environ"] {
            if let Ok(data) = std::fs::read(entry.path().join(what)) {
                if data.windows(needle.len()).any(|w| w == needle) {
                    hits.push(format!("{name}/{what}"));
                }
            }
        }
    }
    hits
}

fn files_under_mention(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap();
                if data.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_clones_with_the_token_which_is_nowhere_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, main, _) = bare_repo(tmp.path());
    let (url, authorized) =
        serve_private(tmp.path().to_path_buf(), Duration::from_millis(300)).await;
    let token = SecretBytes::new(TOKEN.as_bytes().to_vec());
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();

    // Without the token: refused, and the error says why in git's words.
    let dest = tmp.path().join("denied");
    let e = git::clone(&spec(&url, &dest, &scratch))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("git clone failed"), "{e}");
    assert!(!dest.exists());

    // With it: look at every host process while the clone is under way.
    let dest = tmp.path().join("ok");
    let mut s = spec(&url, &dest, &scratch);
    s.token = Some(&token);
    let scan = tokio::task::spawn_blocking(|| {
        let mut hits = std::collections::BTreeSet::new();
        let mut scans = 0;
        let until = std::time::Instant::now() + Duration::from_millis(900);
        while std::time::Instant::now() < until {
            hits.extend(host_processes_mention(TOKEN.as_bytes()));
            scans += 1;
        }
        (hits, scans)
    });
    let cloned = git::clone(&s).await.unwrap();
    let (hits, scans) = scan.await.unwrap();
    assert!(scans > 3, "the scan ran only {scans} times");
    assert!(hits.is_empty(), "the token was visible in {hits:?}");
    assert!(
        authorized.load(Ordering::SeqCst) >= 2,
        "the server saw the token"
    );
    assert_eq!(cloned.commit.as_deref(), Some(main.as_str()));

    // Not in the clone (.git/config, the remote URL), not in the scratch dir, not anywhere here.
    let remote = sh(&dest, &["remote", "get-url", "origin"]);
    assert_eq!(remote, url);
    assert!(files_under_mention(tmp.path(), TOKEN.as_bytes()).is_empty());

    // A wrong token: refused, and the wrong token is not in the message either.
    let wrong = SecretBytes::new(b"ghp_wrong-token-value-123456".to_vec());
    let dest = tmp.path().join("wrong");
    let mut s = spec(&url, &dest, &scratch);
    s.token = Some(&wrong);
    let e = git::clone(&s).await.unwrap_err().to_string();
    assert!(
        e.contains("git clone failed") && !e.contains("wrong-token"),
        "{e}"
    );
}

#[tokio::test]
async fn a_clone_that_hangs_is_killed_at_its_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        loop {
            let (c, _) = listener.accept().await.unwrap();
            conns.push(c);
        }
    });
    let url = format!("http://{addr}/slow.git");
    let dest = tmp.path().join("slow");
    let mut s = spec(&url, &dest, tmp.path());
    s.timeout = Duration::from_millis(700);
    let e = git::clone(&s).await.unwrap_err();
    assert!(matches!(e, GitError::TimedOut(_)), "{e}");
    held.abort();
    // No git process of this clone is left.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let needle = format!("{addr}/slow.git");
    let left: Vec<String> = host_processes_mention(needle.as_bytes())
        .into_iter()
        .filter(|p| p.ends_with("cmdline"))
        .collect();
    assert!(left.is_empty(), "git still runs: {left:?}");
}

/// git's output was cut to its last 64 KiB before it was redacted, so a token straddling the cut
/// kept its tail in the error message. Here a server answers with a long text/plain 404 (git
/// prints it as "remote: ...") made of the token over and over, padded so that the cut falls in
/// the middle of one.
#[tokio::test]
async fn a_token_straddling_the_cut_of_long_git_output_is_still_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/big.git", listener.local_addr().unwrap());
    // What git prints after the body, and so how far before the end of the body the cut falls.
    let after = format!("\nfatal: repository '{url}/' not found\n").len();
    let from_cut = 64 * 1024 - after;
    let pad = (from_cut as isize - 19).rem_euclid(TOKEN.len() as isize) as usize;
    let body = format!(
        "{}{}\n",
        TOKEN.repeat(from_cut / TOKEN.len() + 10),
        "y".repeat(pad)
    );
    let served = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&chunk[..n]);
            }
            let resp = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        }
    });
    let token = SecretBytes::new(TOKEN.as_bytes().to_vec());
    let dest = tmp.path().join("big");
    let mut s = spec(&url, &dest, tmp.path());
    s.token = Some(&token);
    let e = git::clone(&s).await.unwrap_err().to_string();
    served.abort();
    assert!(
        e.contains("[REDACTED:git-credential]"),
        "git did not print the body: {e:.300}"
    );
    let tail = &TOKEN[TOKEN.len() - 12..];
    assert!(
        !e.contains(tail),
        "a token's tail leaked: {:.300}",
        &e[e.find(tail).unwrap().saturating_sub(100)..]
    );
}

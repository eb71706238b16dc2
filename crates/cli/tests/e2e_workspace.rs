//! `amika sandbox create` with repositories, env vars and setup scripts (issue 13), through the
//! real `amika` binary, a real server, real bubblewrap sandboxes and real git: a checkout found
//! from a subdirectory and sent as a bundle, `--with-changes`, `--new-branch`, a `file://` URL,
//! a private repository over HTTP that needs a stored `github` token, `--no-git`, `--env`, setup
//! scripts followed live and kept, and flags refused before any request.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use common::{exec_sh, fails, files_containing, ok, ok_json, Server};
use serde_json::Value;

const WS: &str = "/home/amika/workspace";

/// `git -C dir ARGS` with a fixed identity and no user config; asserts success, returns stdout
/// trimmed.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
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

/// A checkout `parent/name` on `main` with `a.txt`, a `.gitignore` of `target/` and an empty
/// `sub/` directory (untracked, so never in a bundle).
fn checkout(parent: &Path, name: &str) -> PathBuf {
    let root = parent.join(name);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("a.txt"), "committed\n").unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    git(&root, &["add", "a.txt", ".gitignore"]);
    git(&root, &["commit", "-q", "-m", "first"]);
    root
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn get_json(server: &Server, name: &str) -> Value {
    ok_json(server.amika().args(["sandbox", "get", name, "-o", "json"]))
}

/// `git -C ~/workspace/REPO ARGS` inside the sandbox, through `amika sandbox exec`.
fn sandbox_git(server: &Server, sandbox: &str, repo: &str, args: &[&str]) -> String {
    let dir = format!("{WS}/{repo}");
    let mut argv = vec!["sandbox", "exec", sandbox, "--", "git", "-C", &dir];
    argv.extend_from_slice(args);
    ok(server.amika().args(&argv)).trim().to_string()
}

#[test]
fn create_inside_a_checkout_sends_it_on_its_branch_with_its_repo_config() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    std::fs::create_dir_all(proj.join(".amika")).unwrap();
    std::fs::create_dir_all(proj.join("scripts")).unwrap();
    std::fs::write(
        proj.join(".amika/config.toml"),
        "[env]\nNODE_ENV = \"development\"\n\n[lifecycle]\nsetup_script = \"scripts/setup.sh\"\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("scripts/setup.sh"),
        "echo \"repo-setup-ran-$NODE_ENV in $(pwd)\"\n",
    )
    .unwrap();
    git(&proj, &["add", "."]);
    git(&proj, &["commit", "-q", "-m", "config"]);
    git(&proj, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(proj.join("feature.txt"), "on feature\n").unwrap();
    git(&proj, &["add", "feature.txt"]);
    git(&proj, &["commit", "-q", "-m", "feature"]);
    // An origin with credentials in it: shown on the sandbox without them.
    let token = "tok-origin-7f3e1c";
    git(
        &proj,
        &[
            "remote",
            "add",
            "origin",
            &format!("https://builder:{token}@example.invalid/org/proj.git"),
        ],
    );
    let head = git(&proj, &["rev-parse", "HEAD"]);

    let (success, stdout, stderr) = run(server
        .amika()
        .current_dir(proj.join("sub"))
        .args(["sandbox", "create", "--name", "repo-box"]));
    assert!(success, "{stderr}");
    assert!(
        stdout.contains("repo-setup-ran-development in /home/amika/workspace/proj\n"),
        "the setup script's output is in create's output: {stdout}"
    );
    assert!(
        stdout.contains("Repository proj at /home/amika/workspace/proj, branch feature"),
        "{stdout}"
    );
    assert!(stderr.contains("Using repository proj ("), "{stderr}");
    assert!(!stdout.contains(token) && !stderr.contains(token));

    assert_eq!(
        sandbox_git(
            &server,
            "repo-box",
            "proj",
            &["rev-parse", "--abbrev-ref", "HEAD"]
        ),
        "feature"
    );
    assert_eq!(
        sandbox_git(&server, "repo-box", "proj", &["rev-parse", "HEAD"]),
        head
    );
    assert_eq!(
        exec_sh(
            &server,
            "repo-box",
            "cat ~/workspace/proj/a.txt ~/workspace/proj/feature.txt; stat -c %U ~/workspace/proj/a.txt; printenv NODE_ENV"
        ),
        "committed\non feature\namika\ndevelopment\n"
    );

    let sb = get_json(&server, "repo-box");
    assert_eq!(sb["repo_name"], "proj");
    assert_eq!(sb["branch"], "feature");
    assert_eq!(sb["commit_hash"], head.as_str());
    assert_eq!(sb["repo_url"], "https://example.invalid/org/proj.git");
    assert_eq!(
        sb["repo_config"]["env_vars"],
        serde_json::json!(["NODE_ENV"])
    );
    assert_eq!(sb["repo_config"]["setup_script"], "scripts/setup.sh");
    assert_eq!(sb["setup"]["state"], "succeeded");
    assert_eq!(sb["setup"]["source"], "repo_config");

    let shown = ok(server.amika().args(["sandbox", "get", "repo-box"]));
    for line in [
        "Repo:      proj (/home/amika/workspace/proj)",
        "Repo URL:  https://example.invalid/org/proj.git",
        "Branch:    feature",
        &format!("Commit:    {head}"),
        "Repo config (.amika/config.toml):",
        "  env vars:        NODE_ENV",
        "  setup script:    scripts/setup.sh",
        "Setup:     succeeded (exit 0), scripts/setup.sh from .amika/config.toml",
        "Env vars:  NODE_ENV=development",
    ] {
        assert!(shown.contains(line), "{line:?} missing from:\n{shown}");
    }
    let listed = ok(server.amika().args(["sandbox", "list"]));
    let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATE",
            "REPO",
            "BRANCH",
            "CREDENTIALS",
            "SECRETS",
            "CREATED"
        ]
    );
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["repo-box", "running", "proj", "feature"]);
    let listed = ok_json(server.amika().args(["sandbox", "list", "-o", "json"]));
    assert_eq!(listed[0]["branch"], "feature");

    let log = ok(server
        .amika()
        .args(["sandbox", "logs", "repo-box", "--setup"]));
    assert_eq!(
        log,
        "repo-setup-ran-development in /home/amika/workspace/proj\n"
    );

    // The origin's credentials went nowhere.
    assert!(files_containing(&server.data_dir, token.as_bytes()).is_empty());
    assert!(!server.log_text().contains(token));
}

#[test]
fn with_changes_carries_the_working_tree_but_not_ignored_files_and_leaves_the_checkout_alone() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    std::fs::write(proj.join("a.txt"), "staged\n").unwrap();
    git(&proj, &["add", "a.txt"]);
    std::fs::write(proj.join("a.txt"), "modified after staging\n").unwrap();
    std::fs::write(proj.join("new.txt"), "untracked\n").unwrap();
    std::fs::create_dir_all(proj.join("target")).unwrap();
    std::fs::write(proj.join("target/ignored.bin"), "ignored\n").unwrap();
    let before = (
        git(&proj, &["status", "--porcelain"]),
        git(&proj, &["for-each-ref"]),
        git(&proj, &["ls-files", "--stage"]),
        git(&proj, &["diff", "--cached"]),
    );

    let (success, _, stderr) = run(server.amika().current_dir(&proj).args([
        "sandbox",
        "create",
        "--name",
        "changes-box",
        "--with-changes",
    ]));
    assert!(success, "{stderr}");
    assert_eq!(
        exec_sh(
            &server,
            "changes-box",
            "cd ~/workspace/proj && cat a.txt new.txt && ls -A && git rev-parse --abbrev-ref HEAD"
        ),
        "modified after staging\nuntracked\n.git\n.gitignore\na.txt\nnew.txt\nmain\n",
        "the working tree as it was, without target/"
    );
    let after = (
        git(&proj, &["status", "--porcelain"]),
        git(&proj, &["for-each-ref"]),
        git(&proj, &["ls-files", "--stage"]),
        git(&proj, &["diff", "--cached"]),
    );
    assert_eq!(
        before, after,
        "the user's index, refs and tree are untouched"
    );
    assert!(!after.1.contains("refs/amika"), "{}", after.1);

    // Without --with-changes only the committed history goes.
    ok(server
        .amika()
        .current_dir(&proj)
        .args(["sandbox", "create", "--name", "clean-box"]));
    assert_eq!(
        exec_sh(
            &server,
            "clean-box",
            "cd ~/workspace/proj && cat a.txt && ls -A"
        ),
        "committed\n.git\n.gitignore\na.txt\n"
    );
}

#[test]
fn new_branch_is_made_from_the_checkouts_branch() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    let head = git(&proj, &["rev-parse", "HEAD"]);
    let created = ok_json(server.amika().current_dir(&proj).args([
        "sandbox",
        "create",
        "--name",
        "topic-box",
        "--new-branch",
        "topic/x",
        "-o",
        "json",
    ]));
    assert_eq!(created["name"], "topic-box");
    assert_eq!(created["branch"], "topic/x");
    assert_eq!(
        sandbox_git(
            &server,
            "topic-box",
            "proj",
            &["rev-parse", "--abbrev-ref", "HEAD"]
        ),
        "topic/x"
    );
    assert_eq!(
        sandbox_git(&server, "topic-box", "proj", &["rev-parse", "HEAD"]),
        head
    );
    assert_eq!(git(&proj, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
}

/// `amika ARGS` in `cwd` with a terminal for stdin, stdout and stderr (util-linux `script`),
/// logged in to `server`; what the terminal showed.
fn on_a_terminal(server: &Server, cwd: &Path, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let amika = assert_cmd::cargo::cargo_bin("amika");
    let mut line = format!(
        "cd {} && exec {}",
        quote(cwd.to_str().unwrap()),
        quote(amika.to_str().unwrap())
    );
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("AMIKA_API_URL", &server.url)
        .env("AMIKA_API_KEY", &server.admin_key)
        .env("AMIKA_CONFIG", server.dir.path().join("cli-config.json"))
        .env("HOME", server.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    shown
}

#[test]
fn the_upload_shows_its_progress_on_a_terminal_only() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    let shown = on_a_terminal(&server, &proj, &["sandbox", "create", "--name", "tty-box"]);
    assert!(shown.contains("Uploading proj: "), "{shown}");
    assert!(shown.contains(" (100%)"), "{shown}");
    let shown = on_a_terminal(
        &server,
        &proj,
        &["sandbox", "create", "--name", "tty-json", "-o", "json"],
    );
    assert!(
        !shown.contains("Uploading"),
        "no progress with -o json: {shown}"
    );
    // Not a terminal: no progress either.
    let (success, _, stderr) = run(server
        .amika()
        .current_dir(&proj)
        .args(["sandbox", "create", "--name", "piped"]));
    assert!(success, "{stderr}");
    assert!(
        !stderr.contains("Uploading") && !stderr.contains('\r'),
        "{stderr}"
    );
    assert!(stderr.contains("Sent proj ("), "{stderr}");
}

#[test]
fn a_file_url_is_cloned_by_the_server_and_no_name_gets_a_generated_one() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    git(&proj, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(proj.join("dev.txt"), "dev only\n").unwrap();
    git(&proj, &["add", "dev.txt"]);
    git(&proj, &["commit", "-q", "-m", "dev"]);
    git(&proj, &["checkout", "-q", "main"]);
    let bare = server.dir.path().join("shared.git");
    git(
        server.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            proj.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let url = format!("file://{}", bare.display());

    // From outside any checkout, without --name.
    let created = ok_json(server.amika().args([
        "sandbox", "create", "--git", &url, "--branch", "dev", "-o", "json",
    ]));
    let name = created["name"].as_str().unwrap().to_string();
    assert!(!name.is_empty());
    assert_eq!(created["repo_name"], "shared");
    assert_eq!(created["repo_url"], url.as_str());
    assert_eq!(
        sandbox_git(
            &server,
            &name,
            "shared",
            &["rev-parse", "--abbrev-ref", "HEAD"]
        ),
        "dev"
    );
    assert_eq!(
        exec_sh(&server, &name, "cat ~/workspace/shared/dev.txt"),
        "dev only\n"
    );
    // The default branch is the remote's.
    let created = ok_json(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "default-branch",
        "--git",
        &url,
        "-o",
        "json",
    ]));
    assert_eq!(created["branch"], "main");
}

#[test]
fn no_git_gives_an_empty_workspace_and_env_preset_size_and_idle_flags_reach_the_sandbox() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    let out = server
        .amika()
        .current_dir(&proj)
        .args([
            "sandbox",
            "create",
            "--name",
            "plain-box",
            "--no-git",
            "--env",
            "GREETING=hello world",
            "--env",
            "EQUATION=a=b",
            "--preset",
            "coder",
            "--size",
            "s",
            "--auto-stop",
            "30",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: preset coder is not installed on this server"),
        "the create's warnings are shown: {stderr}"
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["repo_name"], Value::Null);
    assert_eq!(created["env_vars"]["GREETING"], "hello world");
    assert_eq!(created["size"], "s");
    assert_eq!(created["memory_mib"], 1024);
    assert_eq!(created["auto_stop_interval"], 30.0);
    assert_eq!(
        exec_sh(
            &server,
            "plain-box",
            "ls -A ~/workspace | wc -l; printenv GREETING; printenv EQUATION"
        ),
        "0\nhello world\na=b\n"
    );
    let shown = ok(server.amika().args(["sandbox", "get", "plain-box"]));
    assert!(shown.contains("Repo:      - (empty workspace)"), "{shown}");
    assert!(shown.contains("Size:      s"), "{shown}");
    assert!(
        shown.contains("Idle:      stop after 30 min, delete after -"),
        "{shown}"
    );
    let err = fails(
        server
            .amika()
            .args(["sandbox", "logs", "plain-box", "--setup"]),
    );
    assert!(err.contains("plain-box ran no setup script"), "{err}");
}

/// Reads the child's stdout line by line on a thread, sending each line.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn a_setup_script_streams_live_into_create_and_is_kept_for_logs() {
    let server = Server::start();
    let script = server.dir.path().join("setup.sh");
    // Longer than the create waits before answering (10 s): the output must arrive while
    // the script still runs.
    std::fs::write(
        &script,
        "echo first-line\necho err-line >&2\nsleep 11\necho second-line\n",
    )
    .unwrap();
    let mut child = server
        .amika()
        .args(["sandbox", "create", "--name", "slow-setup", "--no-git"])
        .arg("--setup-script")
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let first = lines.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(first, "first-line");
    let during = get_json(&server, "slow-setup");
    assert_eq!(during["state"], "initializing", "{during}");
    assert_eq!(during["setup"]["state"], "running", "{during}");
    let rest: Vec<String> = lines.iter().collect();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert_eq!(rest[0], "second-line");
    assert!(
        rest[1].starts_with("Sandbox \"slow-setup\" is running"),
        "{rest:?}"
    );
    assert!(stderr.contains("err-line\n"), "{stderr}");
    assert!(
        stderr.contains("The setup script exited with 0"),
        "{stderr}"
    );

    let out = server
        .amika()
        .args(["sandbox", "logs", "slow-setup", "--setup"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first-line\nsecond-line\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("err-line"));
    let log =
        ok_json(
            server
                .amika()
                .args(["sandbox", "logs", "slow-setup", "--setup", "-o", "json"]),
        );
    assert_eq!(log["stdout"], "first-line\nsecond-line\n");
    assert_eq!(log["stderr"], "err-line\n");
    assert_eq!(log["exit_code"], 0);

    // With -o json, stdout stays one JSON document: the script's output goes to stderr.
    std::fs::write(&script, "echo quick-output\n").unwrap();
    let out = server
        .amika()
        .args([
            "sandbox",
            "create",
            "--name",
            "json-setup",
            "--no-git",
            "-o",
            "json",
        ])
        .arg("--setup-script")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success());
    let created: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    // The create's answer once said `pending` here: it carried the row as it was before the
    // script ran.
    assert_eq!(created["setup"]["state"], "succeeded");
    assert_eq!(created["setup"]["exit_code"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("quick-output"));
}

#[test]
fn a_failing_setup_script_fails_the_create_with_its_exit_code() {
    let server = Server::start();
    let script = server.dir.path().join("fail.sh");
    std::fs::write(&script, "echo about-to-fail\nexit 3\n").unwrap();
    let out = server
        .amika()
        .args(["sandbox", "create", "--name", "bad-setup", "--no-git"])
        .arg("--setup-script")
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("about-to-fail"));
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: sandbox \"bad-setup\" failed: setup script exited with 3")
            && last.contains("about-to-fail"),
        "{stderr}"
    );
    let sb = get_json(&server, "bad-setup");
    assert_eq!(sb["state"], "failed");
    assert_eq!(sb["setup"]["state"], "failed");
    assert_eq!(sb["setup"]["exit_code"], 3);
    // --no-setup skips it.
    let sb = ok_json(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "skipped",
        "--no-git",
        "--no-setup",
        "-o",
        "json",
    ]));
    assert_eq!(sb["state"], "running");
}

/// A free port of 127.0.0.1 where nothing listens: any request would fail to connect.
fn unreachable_amika(dir: &Path, cwd: &Path) -> Command {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut cmd = Command::cargo_bin("amika").unwrap();
    cmd.current_dir(cwd)
        .env("AMIKA_API_URL", format!("http://127.0.0.1:{port}"))
        .env("AMIKA_API_KEY", "amk_not_used")
        .env("AMIKA_CONFIG", dir.join("cli-config.json"))
        .env("HOME", dir)
        .stdin(Stdio::null());
    cmd
}

#[test]
fn malformed_flags_are_refused_before_any_request_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = checkout(tmp.path(), "proj");
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let missing = tmp.path().join("missing.sh");
    let missing = missing.to_str().unwrap();
    let cases: &[(&Path, &[&str], &[&str])] = &[
        (&plain, &["--env", "NOPE"], &["invalid --env \"NOPE\"", "expected KEY=VALUE"]),
        (&plain, &["--env", "1X=y"], &["--env 1X", "[A-Za-z_][A-Za-z0-9_]*"]),
        (&plain, &["--env", "=y"], &["--env", "expected KEY=VALUE"]),
        (
            &plain,
            &["--env", "DB=plain", "--secret", "env:DB=db-url"],
            &["--env DB", "--secret \"env:DB=db-url\"", "both set DB"],
        ),
        (&proj, &["--no-git", "--git", "."], &["--no-git", "--git", "cannot be used with"]),
        (&proj, &["--no-git", "--branch", "b"], &["--no-git", "--branch"]),
        (&proj, &["--no-git", "--with-changes"], &["--no-git", "--with-changes"]),
        (
            &plain,
            &["--with-changes", "--git", "https://example.invalid/o/r.git"],
            &["--with-changes", "expected --git PATH"],
        ),
        (&proj, &["--git-credential", "gh"], &["--git-credential gh", "--git URL only"]),
        (&plain, &["--setup-script", missing], &["--setup-script", missing, "cannot read"]),
        (&plain, &["--size", "huge"], &["--size", "expected xs, s, m, l or xl"]),
        (&plain, &["--auto-stop", "-5"], &["--auto-stop", "minutes from 0 to 10080"]),
        (&plain, &["--auto-delete", "99999"], &["--auto-delete", "minutes from 0 to 10080"]),
        (&plain, &["--setup-timeout", "0"], &["--setup-timeout", "1..=86400"]),
        (&plain, &["--branch", "b"], &["--branch needs a repository", "--git PATH|URL"]),
        (&plain, &["--git", "no/such/dir"], &["--git \"no/such/dir\"", "no such directory, and not a URL"]),
        (
            &plain,
            &["--agent-credential", "github=gh"],
            &["--agent-credential \"github=gh\"", "github is not an agent", "--git-credential"],
        ),
        (
            &plain,
            &["--no-agent-credential", "codex", "--agent-credential-type", "codex=api-key"],
            &["--no-agent-credential codex and --agent-credential-type codex=api-key are mutually exclusive (for codex)"],
        ),
    ];
    for (cwd, flags, needles) in cases {
        for json in [false, true] {
            let mut cmd = unreachable_amika(tmp.path(), cwd);
            cmd.args(["sandbox", "create"]).args(*flags);
            if json {
                cmd.args(["-o", "json"]);
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{flags:?} was accepted");
            assert!(
                out.stdout.is_empty(),
                "{flags:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                !stderr.contains("cannot reach the amika server"),
                "{flags:?} made a request: {stderr}"
            );
            for needle in *needles {
                assert!(
                    stderr.contains(needle),
                    "{flags:?}: {needle:?} not in {stderr}"
                );
            }
        }
    }
}

/// Runs `cmd` with `input` on stdin.
fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const GH_TOKEN: &str = "ghp_E2EPRIVATE0c7e1d9a";

/// A private repository: `git http-backend` serving `root` on 127.0.0.1, answering 401 to any
/// request without basic auth whose password is [`GH_TOKEN`]. Returns the repository's URL.
fn serve_private(root: PathBuf) -> String {
    amika_testkit::git_http::serve_private_blocking(root, GH_TOKEN)
}

#[test]
fn a_github_credential_is_pushed_like_an_agents_and_clones_a_private_repository() {
    let server = Server::start();
    let proj = checkout(server.dir.path(), "proj");
    let served = server.dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    git(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            proj.to_str().unwrap(),
            "private.git",
        ],
    );
    let url = serve_private(served);

    // A github credential is a token.
    let err = fails(server.amika().args([
        "secret", "github", "push", "--name", "gh", "--type", "oauth", "--value", "{}", "--yes",
    ]));
    assert!(
        err.contains("a github credential is a token: expected --type api_key"),
        "{err}"
    );
    let out = with_stdin(
        server.amika().args([
            "secret", "github", "push", "--name", "gh", "--type", "api_key", "--value", "-",
            "--yes",
        ]),
        &format!("{GH_TOKEN}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ok_json(
        server
            .amika()
            .args(["secret", "github", "list", "-o", "json"]),
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "gh");
    assert_eq!(listed[0]["type"], "api_key");
    assert!(ok(server.amika().args(["secret", "github", "list"])).contains("gh"));
    assert_eq!(
        ok_json(
            server
                .amika()
                .args(["secret", "claude", "list", "-o", "json"])
        ),
        serde_json::json!([])
    );

    // The named token clones the private repository; without it the clone is refused.
    let err = fails(
        server
            .amika()
            .args(["sandbox", "create", "--name", "no-token", "--git", &url]),
    );
    assert!(err.contains("could not be cloned"), "{err}");
    let created = ok_json(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "private-box",
        "--git",
        &url,
        "--git-credential",
        "gh",
        "-o",
        "json",
    ]));
    assert_eq!(created["repo_name"], "private");
    assert_eq!(
        exec_sh(
            &server,
            "private-box",
            "cat ~/workspace/private/a.txt; grep -c ghp_ ~/workspace/private/.git/config || true; printenv | grep -c ghp_ || true"
        ),
        "committed\n0\n0\n",
        "the token is neither in .git/config nor in the environment"
    );
    let err = fails(server.amika().args([
        "sandbox",
        "create",
        "--name",
        "x",
        "--git",
        &url,
        "--git-credential",
        "missing",
    ]));
    assert!(err.contains("git_credential \"missing\""), "{err}");
    assert!(files_containing(&server.data_dir, GH_TOKEN.as_bytes()).is_empty());

    ok(server
        .amika()
        .args(["secret", "github", "delete", "gh", "--yes"]));
    assert_eq!(
        ok_json(
            server
                .amika()
                .args(["secret", "github", "list", "-o", "json"])
        ),
        serde_json::json!([])
    );
}

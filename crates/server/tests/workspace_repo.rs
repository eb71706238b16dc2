//! Repositories in sandbox create (issue 13), through the HTTP API of a real server with real
//! bubblewrap sandboxes and real git: a bare repository over `file://` on its default, a named
//! or a new branch; who may clone `file://`; a private repository over `git http-backend` whose
//! token is nowhere it must not be; uploaded bundles (with uncommitted changes); failed clones
//! that leave nothing.

mod workspace_support;

use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::json;
use workspace_support::{git, git_env, repo, server, WORKSPACE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_repository_is_cloned_on_the_default_a_named_or_a_new_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[("src/lib.txt", "committed\n")]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();

    let cases = [
        ("on-default", json!({}), "main", &r.main),
        ("on-dev", json!({"branch": "dev"}), "dev", &r.dev),
        (
            "on-new",
            json!({"branch": "dev", "new_branch_name": "agent/work-1"}),
            "agent/work-1",
            &r.dev,
        ),
    ];
    for (name, extra, branch, commit) in cases {
        let mut body = json!({"name": name, "repo_url": r.url});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let created = srv.create(&admin, body).await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
        let v = &created.json;
        assert_eq!(v["repo_name"], "proj", "{v}");
        assert_eq!(v["repo_url"], r.url.as_str(), "{v}");
        assert_eq!(v["branch"], branch, "{v}");
        assert_eq!(v["commit_hash"], commit.as_str(), "{v}");
        let v = srv.wait_settled(&admin, name).await;
        assert_eq!(v["state"], "running", "{v}");

        let dir = format!("{WORKSPACE}/proj");
        let head = srv
            .sh(
                &admin,
                name,
                &format!("git -C {dir} rev-parse --abbrev-ref HEAD"),
            )
            .await;
        assert_eq!(head, branch);
        let at = srv
            .sh(&admin, name, &format!("git -C {dir} rev-parse HEAD"))
            .await;
        assert_eq!(&at, commit);
        // Owned by the sandbox user (and the files it holds), as seen by that user.
        let owners = srv
            .sh(
                &admin,
                name,
                &format!("id -u; stat -c %u {dir} {dir}/.git {dir}/src/lib.txt"),
            )
            .await;
        assert_eq!(owners, "1000\n1000\n1000\n1000", "{owners}");
        let file = srv
            .sh(&admin, name, &format!("cat {dir}/src/lib.txt"))
            .await;
        assert_eq!(file, "committed");
        let dev_file = srv
            .exec(&admin, name, &["test", "-f", &format!("{dir}/dev.txt")])
            .await;
        assert_eq!(dev_file.2 == 0, branch != "main", "dev.txt on {branch}");
        // The agent can work there: commit as the sandbox user.
        srv.sh(
            &admin,
            name,
            &format!("cd {dir} && echo x > new.txt && git add new.txt && git -c user.name=a -c user.email=a@b commit -qm x"),
        )
        .await;
    }
    // The bare repository was only read.
    assert_eq!(git(&r.bare, &["rev-parse", "main"]), r.main);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_urls_are_for_admins_and_never_into_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    let bob = srv.user("bob", false).await;

    let a = srv
        .create(&bob, json!({"name": "b", "repo_url": r.url}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(a.error().1.contains("only an admin"), "{}", a.text);
    srv.assert_nothing_left(&bob).await;

    // A repository inside the data dir (another user's workspace could be there).
    let inside = srv.data_dir().join("hidden.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            r.bare.to_str().unwrap(),
            inside.to_str().unwrap(),
        ],
    );
    let admin = srv.admin().to_string();
    for url in [
        format!("file://{}", inside.display()),
        // The same place by a path that leaves and re-enters it.
        format!(
            "file://{}/../{}/hidden.git",
            srv.data_dir().display(),
            srv.data_dir().file_name().unwrap().to_string_lossy()
        ),
    ] {
        let a = srv
            .create(&admin, json!({"name": "a", "repo_url": url}))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{url}: {}", a.text);
        let (code, message, field) = a.error();
        assert_eq!((code, field), ("invalid_request", "repo_url"), "{}", a.text);
        assert!(message.contains("data dir"), "{message}");
        srv.assert_nothing_left(&admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_fails_the_create_with_gits_reason_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "proj", &[]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let a = srv
        .create(
            &admin,
            json!({"name": "x", "repo_url": r.url, "branch": "no-such-branch"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let (code, message, field) = a.error();
    assert_eq!((code, field), ("repository_unavailable", "repo_url"));
    // git's own words.
    assert!(
        message.contains("Remote branch no-such-branch not found"),
        "{message}"
    );
    // Nothing of the server's paths (the staging directory git was cloning into).
    assert_eq!(
        message,
        "the repository could not be cloned: git clone failed: fatal: Remote branch no-such-branch not found in upstream origin"
    );
    srv.assert_nothing_left(&admin).await;
    // The name is free again.
    let v = srv
        .create_ready(&admin, json!({"name": "x", "repo_url": r.url}))
        .await;
    assert_eq!(v["state"], "running", "{v}");
}

const ORIGIN: &str = "https://example.invalid/o/r.git";

/// `git bundle create` in `repo` of HEAD, every branch and tag, and `extra` refs; its bytes.
fn bundle(repo: &Path, extra: &[&str]) -> Vec<u8> {
    let path = repo.join("../f.bundle");
    let mut args = vec!["bundle", "create", "-q", path.to_str().unwrap()];
    args.extend(["HEAD", "--branches", "--tags"]);
    args.extend(extra);
    git(repo, &args);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

fn upload_query() -> String {
    format!("repo_name=r&origin_url={ORIGIN}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_bundle_becomes_the_workspace_once_for_its_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "local", &[("src/a.txt", "a\n")]);
    let srv = server(|c| c.max_upload_bytes = 64 * 1024).await;
    let admin = srv.admin().to_string();
    let bob = srv.user("bob", false).await;
    let bytes = bundle(&r.work, &[]);
    assert!(bytes.len() < 64 * 1024);

    let up = srv.upload(&bob, &upload_query(), bytes.clone()).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    assert_eq!(up.json["repo_name"], "r");
    assert_eq!(up.json["origin_url"], ORIGIN);
    assert_eq!(up.json["size_bytes"], bytes.len());
    let id = up.json["id"].as_str().unwrap().to_string();

    // Someone else's upload cannot be used (and is not used up by the attempt).
    let theirs = srv.upload(&admin, &upload_query(), bytes.clone()).await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.text);
    let theirs = theirs.json["id"].as_str().unwrap().to_string();
    let a = srv
        .create(&bob, json!({"name": "stolen", "workspace_upload": theirs}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.error().2, "workspace_upload", "{}", a.text);
    srv.assert_nothing_left(&bob).await;

    let v = srv
        .create_ready(
            &bob,
            json!({"name": "up", "workspace_upload": id, "branch": "dev"}),
        )
        .await;
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(
        (
            &v["repo_name"],
            &v["repo_url"],
            &v["branch"],
            &v["commit_hash"]
        ),
        (&json!("r"), &json!(ORIGIN), &json!("dev"), &json!(r.dev)),
        "{v}"
    );
    let dir = format!("{WORKSPACE}/r");
    let seen = srv
        .sh(
            &bob,
            "up",
            &format!(
                "cd {dir} && git remote get-url origin && git rev-parse --abbrev-ref HEAD && cat src/a.txt dev.txt && stat -c %u . .git src/a.txt"
            ),
        )
        .await;
    assert_eq!(seen, format!("{ORIGIN}\ndev\na\ndev\n1000\n1000\n1000"));

    // Used up: a second create with it fails, and leaves nothing.
    let a = srv
        .create(&bob, json!({"name": "again", "workspace_upload": id}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    let (code, message, field) = a.error();
    assert_eq!(
        (code, field),
        ("not_found", "workspace_upload"),
        "{}",
        a.text
    );
    assert!(message.contains(&id), "{message}");
    let names: Vec<_> = srv
        .ok(Method::GET, "/sandboxes", &bob, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["up"]);

    // Its owner still has the other one.
    let v = srv
        .create_ready(
            &admin,
            json!({"name": "theirs", "workspace_upload": theirs}),
        )
        .await;
    assert_eq!(v["branch"], "main", "{v}");
    let uploads: Vec<_> = std::fs::read_dir(srv.data_dir().join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(uploads.is_empty(), "uploads left: {uploads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_oversized_upload_is_refused_and_not_kept() {
    let srv = server(|c| c.max_upload_bytes = 4096).await;
    let admin = srv.admin().to_string();
    let a = srv.upload(&admin, &upload_query(), Vec::new()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.error().1.contains("empty"), "{}", a.text);
    let a = srv.upload(&admin, &upload_query(), vec![b'x'; 4097]).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert!(a.error().1.contains("4096 bytes"), "{}", a.text);
    let left: Vec<_> = std::fs::read_dir(srv.data_dir().join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // At the limit: accepted (a bundle or not is the create's business).
    let a = srv.upload(&admin, &upload_query(), vec![b'x'; 4096]).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    // Which then refuses what is no bundle, and leaves nothing.
    let id = a.json["id"].as_str().unwrap();
    let a = srv
        .create(&admin, json!({"name": "junk", "workspace_upload": id}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text);
    assert_eq!(a.error().0, "repository_unavailable", "{}", a.text);
    // git's reason, without the server's paths.
    let message = a.error().1;
    assert!(
        message.contains("'the bundle' does not look like a v2 or v3 bundle file"),
        "{message}"
    );
    assert!(
        !message.contains(&*srv.data_dir().to_string_lossy()),
        "{message}"
    );
    srv.assert_nothing_left(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_changes_in_a_bundle_are_laid_over_the_working_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path(), "local", &[("src/a.txt", "a\n")]);
    // A changed tracked file, a deleted one and an untracked one, as a commit on top of HEAD
    // under refs/amika/changes (made with its own index, as the CLI does).
    std::fs::write(r.work.join("README.md"), "hello, changed\n").unwrap();
    std::fs::remove_file(r.work.join("src/a.txt")).unwrap();
    std::fs::write(r.work.join("notes.txt"), "untracked\n").unwrap();
    let index = tmp.path().join("index");
    let with_index = |args: &[&str]| git_env(&r.work, args, &[("GIT_INDEX_FILE", &index)]);
    with_index(&["read-tree", "HEAD"]);
    with_index(&["add", "-A", "--", "."]);
    let tree = with_index(&["write-tree"]);
    let changes = git(
        &r.work,
        &["commit-tree", &tree, "-p", "HEAD", "-m", "changes"],
    );
    git(&r.work, &["update-ref", "refs/amika/changes", &changes]);
    let bytes = bundle(&r.work, &["refs/amika/changes"]);

    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let up = srv.upload(&admin, &upload_query(), bytes).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let v = srv
        .create_ready(
            &admin,
            json!({"name": "wip", "workspace_upload": up.json["id"]}),
        )
        .await;
    assert_eq!(v["state"], "running", "{v}");
    // HEAD is the committed history; the changes are in the working tree, uncommitted.
    assert_eq!(v["commit_hash"], r.main.as_str(), "{v}");
    let dir = format!("{WORKSPACE}/r");
    let seen = srv
        .sh(
            &admin,
            "wip",
            &format!("cd {dir} && git rev-parse HEAD && cat README.md notes.txt && git status --porcelain"),
        )
        .await;
    assert_eq!(
        seen,
        format!(
            "{}\nhello, changed\nuntracked\n M README.md\n D src/a.txt\n?? notes.txt",
            r.main
        )
    );
}

/// The preview unbundles an upload to read its `.amika/config.toml`, and leaves the upload for
/// the create it previews (it used to remove it, so that the create then failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_of_an_upload_reads_its_config_and_leaves_it_for_the_create() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "[env]\nNODE_ENV = \"development\"\n";
    let r = repo(tmp.path(), "local", &[(".amika/config.toml", config)]);
    let srv = server(|_| {}).await;
    let admin = srv.admin().to_string();
    let up = srv
        .upload(&admin, &upload_query(), bundle(&r.work, &[]))
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.text);
    let id = up.json["id"].clone();

    let p = srv
        .ok(
            Method::POST,
            "/sandboxes/resolve-preview",
            &admin,
            Some(json!({"workspace_upload": id})),
        )
        .await;
    assert_eq!(p["repo_config"]["env_vars"], json!(["NODE_ENV"]), "{p}");
    srv.assert_nothing_left(&admin).await;

    let v = srv
        .create_ready(&admin, json!({"name": "after", "workspace_upload": id}))
        .await;
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["env_vars"], json!({"NODE_ENV": "development"}), "{v}");
}

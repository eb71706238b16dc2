//! Registered SSH public keys (issue 15) with the real `ssh-keygen` and `ssh` against a real
//! `amika server --ssh-listen`: `amika secret ssh-key push|list|delete`, a login as
//! `SANDBOX_NAME@HOST` with the key (and `amika sandbox ssh NAME --key`), every refusal (an
//! unregistered key, another user's sandbox, a deleted key, a stopped sandbox), and the
//! malformed forms of a key, through the API and the CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::agents::{api, api_as, str_of};
use common::ssh::{client, run, sandbox, ssh_server, text, SECRET};
use common::{fails, ok, ok_json, Server};
use serde_json::{json, Value};

/// A new key pair `dir/name` (and `name.pub`), without a passphrase.
fn keygen(dir: &Path, name: &str, kind: &[&str], comment: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    path
}

/// `ssh -i KEY -p PORT USER@127.0.0.1 -- CMD`, offering only that key.
fn ssh_with_key(server: &Server, key: &Path, user: &str, command: &str) -> Command {
    let mut cmd = client(server, "ssh");
    cmd.arg("-i")
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes", "-p", &ssh_port(server)])
        .arg(format!("{user}@127.0.0.1"))
        .arg("--")
        .arg(command);
    cmd
}

fn ssh_port(server: &Server) -> String {
    let (status, endpoint) = api(server, "GET", "/ssh", None);
    assert_eq!(status, 200, "{endpoint}");
    assert_eq!(endpoint["host"], "127.0.0.1", "{endpoint}");
    endpoint["port"].as_u64().expect("a port").to_string()
}

fn fingerprint(public: &Path) -> String {
    let out = ok(Command::new("ssh-keygen").arg("-lf").arg(public));
    out.split_whitespace().nth(1).unwrap().to_string()
}

fn pub_of(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// A real `ssh-agent` holding one key, killed when dropped.
struct Agent {
    socket: PathBuf,
    pid: String,
}

impl Agent {
    fn start(socket: &Path, key: &Path) -> Agent {
        let out = ok(Command::new("ssh-agent").arg("-s").arg("-a").arg(socket));
        let pid = out
            .split(';')
            .find_map(|part| part.trim().strip_prefix("SSH_AGENT_PID="))
            .unwrap_or_else(|| panic!("no SSH_AGENT_PID in {out}"))
            .to_string();
        let agent = Agent {
            socket: socket.to_path_buf(),
            pid,
        };
        ok(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", socket)
            .arg("-q")
            .arg(key));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

#[test]
fn a_registered_key_logs_in_to_its_owners_sandbox_by_name() {
    let server = ssh_server();
    sandbox(&server, "kb");
    let keys = server.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mine = keygen(&keys, "mine", &["-t", "ed25519"], "dev@laptop");
    let other = keygen(&keys, "other", &["-t", "ecdsa"], "other");

    // Registered under a name from its comment; listed with the fingerprint ssh-keygen shows.
    let pushed = ok(server
        .amika()
        .args(["secret", "ssh-key", "push"])
        .arg(pub_of(&mine)));
    assert!(pushed.contains("\"dev-laptop\""), "{pushed}");
    let listed = ok_json(
        server
            .amika()
            .args(["secret", "ssh-key", "list", "-o", "json"]),
    );
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "dev-laptop");
    assert_eq!(listed[0]["key_type"], "ssh-ed25519");
    assert_eq!(listed[0]["fingerprint"], fingerprint(&pub_of(&mine)));
    let key_id = str_of(&listed[0], "id").to_string();

    // The key logs in as the sandbox's name, into the sandbox with its environment; output
    // without a terminal is redacted as exec's is.
    let out = run(&mut ssh_with_key(
        &server,
        &mine,
        "kb",
        "echo key-in; echo \"$SSH_SECRET\"",
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("key-in\n"), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");

    // Refused: an unregistered key, a sandbox the key's owner does not have, a token-shaped
    // user with a key.
    for (key, user) in [(&other, "kb"), (&mine, "nope"), (&mine, "root")] {
        let out = run(&mut ssh_with_key(&server, key, user, "true"));
        assert_eq!(
            out.status.code(),
            Some(255),
            "{user}: {}",
            text(&out.stdout)
        );
        assert!(text(&out.stderr).contains("Permission denied"), "{user}");
    }

    // Another user: cannot take the key, and their own key does not open this user's sandbox.
    let mallory = ok(server
        .amika()
        .args(["admin", "user", "create", "mallory", "--org", "default"]))
    .trim()
    .to_string();
    let register = |key: &str, name: &str, public: &Path| {
        let line = std::fs::read_to_string(public).unwrap();
        api_as(
            &server,
            key,
            "POST",
            "/secrets/ssh-public-keys",
            Some(json!({"name": name, "public_key": line})),
        )
    };
    let (status, body) = register(&mallory, "stolen", &pub_of(&mine));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["details"][0]["field"], "public_key", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already registered"),
        "{body}"
    );
    let (status, body) = register(&mallory, "mine", &pub_of(&other));
    assert_eq!(status, 201, "{body}");
    let out = run(&mut ssh_with_key(&server, &other, "kb", "true"));
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    let (status, _) = api_as(
        &server,
        &mallory,
        "DELETE",
        &format!("/secrets/ssh-public-keys/{key_id}"),
        None,
    );
    assert_eq!(status, 404, "another user's key is not found");

    // `amika sandbox ssh --key` uses the user's own key, here from an ssh-agent.
    let agent = Agent::start(&keys.join("agent.sock"), &mine);
    let printed = ok(server
        .amika()
        .args(["sandbox", "ssh", "kb", "--key", "--print"]));
    assert_eq!(
        printed.trim(),
        format!("-p {} kb@127.0.0.1", ssh_port(&server))
    );
    let via_cli = ok(server
        .amika()
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(["sandbox", "ssh", "kb", "--key", "--", "echo", "via-cli"]));
    assert_eq!(via_cli, "via-cli\n");

    // Audited with the key's id; never the key material's private half (it never left).
    let (_, events) = api(&server, "GET", "/audit-events?limit=100", None);
    let events = events.as_array().unwrap();
    // (The admin also sees mallory's key being created, in outline only.)
    let created = |name: &str| {
        events
            .iter()
            .filter(|e| e["action"] == "ssh_key.created" && e["object_name"] == name)
            .count()
    };
    assert_eq!(created("dev-laptop"), 1, "{events:?}");
    assert_eq!(created(""), 1, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "ssh.login" && e["detail"]["key_id"] == key_id.as_str()),
        "{events:?}"
    );

    // A stopped sandbox says why; a deleted key logs in no more.
    ok(server.amika().args(["sandbox", "stop", "kb"]));
    let out = run(&mut ssh_with_key(&server, &mine, "kb", "true"));
    assert!(
        text(&out.stderr).contains("amika sandbox start kb"),
        "{}",
        text(&out.stderr)
    );
    ok(server.amika().args(["sandbox", "start", "kb"]));
    ok(server
        .amika()
        .args(["secret", "ssh-key", "delete", "dev-laptop", "--yes"]));
    let out = run(&mut ssh_with_key(&server, &mine, "kb", "true"));
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    let listed = ok_json(
        server
            .amika()
            .args(["secret", "ssh-key", "list", "-o", "json"]),
    );
    assert_eq!(listed, json!([]));
    let err = fails(
        server
            .amika()
            .args(["secret", "ssh-key", "delete", "dev-laptop", "--yes"]),
    );
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn malformed_keys_and_names_are_refused_and_a_private_key_is_never_sent() {
    let server = ssh_server();
    let keys = server.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let good = keygen(&keys, "good", &["-t", "ed25519"], "");
    let weak = keygen(&keys, "weak", &["-t", "rsa", "-b", "1024"], "weak");
    let strong = keygen(&keys, "strong", &["-t", "rsa", "-b", "3072"], "strong");
    let line = |key: &Path| std::fs::read_to_string(pub_of(key)).unwrap();
    let private = std::fs::read_to_string(&good).unwrap();
    let post = |body: Value| api(&server, "POST", "/secrets/ssh-public-keys", Some(body));

    for (body, field, says) in [
        (
            json!({"name": "k", "public_key": ""}),
            "public_key",
            "empty",
        ),
        (
            json!({"name": "k", "public_key": "ssh-ed25519 AAAA"}),
            "public_key",
            "not a public key",
        ),
        (
            json!({"name": "k", "public_key": "hello"}),
            "public_key",
            "not a public key",
        ),
        (
            json!({"name": "k", "public_key": private}),
            "public_key",
            "private key",
        ),
        (
            json!({"name": "k", "public_key": line(&weak)}),
            "public_key",
            "at least 2048",
        ),
        (
            json!({"name": "bad name", "public_key": line(&good)}),
            "name",
            "invalid",
        ),
        (
            json!({"name": "", "public_key": line(&good)}),
            "name",
            "empty",
        ),
    ] {
        let (status, answer) = post(body.clone());
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
        // A pasted private key travels back nowhere: not in the answer, not in the log.
        assert!(!answer.to_string().contains(private.lines().nth(1).unwrap()));
    }
    for body in [
        json!({"public_key": line(&good)}),
        json!({"name": "k"}),
        json!({"name": "k", "public_key": line(&good), "scope": "org"}),
    ] {
        let (status, answer) = post(body.clone());
        assert_eq!(status, 400, "{body}: {answer}");
    }
    assert!(!server.log_text().contains(private.lines().nth(1).unwrap()));

    // RSA of 3072 bits is fine; a second key under a taken name is a conflict on the name.
    let (status, body) = post(json!({"name": "k", "public_key": line(&strong)}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["key_type"], "ssh-rsa");
    assert_eq!(
        body["public_key"],
        line(&strong).trim().trim_end_matches(" strong")
    );
    let (status, body) = post(json!({"name": "k", "public_key": line(&good)}));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["details"][0]["field"], "name", "{body}");

    // The CLI refuses a private key file before sending anything, and says what to give.
    let err = fails(
        server
            .amika()
            .args(["secret", "ssh-key", "push"])
            .arg(&good),
    );
    assert!(
        err.contains("holds a private key") && err.contains(".pub"),
        "{err}"
    );
    assert!(!err.contains(private.lines().nth(1).unwrap()), "{err}");
    let err = fails(server.amika().args(["secret", "ssh-key", "push", "-"]));
    assert!(err.contains("--name"), "{err}");
    let err = fails(server.amika().args(["secret", "ssh-key", "push"]));
    assert!(err.contains("no public key found"), "{err}");
    let (_, keys) = api(&server, "GET", "/secrets/ssh-public-keys", None);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
}

//! Crash recovery: kill -9 the server while sandboxes run and while creates are in flight,
//! restart it, and check that every listed sandbox is running and usable or marked failed or
//! stopped with a reason, that no sandbox process runs without a record, that no record points
//! at nothing, and that every secret still decrypts. Several rounds in a row.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{ok, ok_json, wait_until, Server};

/// Sandbox ids of processes whose command line points into this data dir.
fn running_sandbox_ids(data_dir: &std::path::Path) -> Vec<String> {
    let needle = format!("{}/sandboxes/", data_dir.display());
    let mut ids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).into_owned();
        let args: Vec<&str> = cmd.split('\0').collect();
        // bwrap's `--bind <data>/sandboxes/<id>/home /home/amika` names the sandbox.
        let Some(mut rest) = args.windows(2).find_map(|w| {
            (w[0] == "--bind")
                .then(|| w[1].strip_prefix(&needle))
                .flatten()
                .map(str::to_string)
        }) else {
            continue;
        };
        // A warm sandbox's processes name its slot under `.pool`: a claimed slot is a link
        // to its sandbox; an unclaimed one (a directory) is no sandbox and holds nothing.
        if let Some(slot) = rest.strip_prefix(".pool/") {
            let slot: String = slot.chars().take_while(|c| *c != '/').collect();
            let Ok(target) = std::fs::read_link(data_dir.join("sandboxes/.pool").join(slot)) else {
                continue;
            };
            rest = target.file_name().unwrap().to_string_lossy().into_owned();
        }
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !id.is_empty() && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.sort();
    ids
}

/// `ps`-like lines of the processes whose command line names sandbox `id` (for failures).
fn describe_processes(data_dir: &std::path::Path, id: &str) -> String {
    let needle = format!("{}/sandboxes/{id}", data_dir.display());
    let mut out = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let children = std::fs::read_dir(e.path().join("task"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                .collect::<String>();
            out.push_str(&format!("stat: {stat}children: {children}\n"));
        }
    }
    out
}

#[test]
fn kill_9_during_work_loses_and_orphans_nothing() {
    let mut server = Server::start();
    ok(server
        .amika()
        .args(["secret", "push", "TOKEN=recovery-secret-value-1", "--yes"]));
    let oauth = amika_testkit::ClaudeOauth::new("sk-ant-oat01-RECOVERY", "r").to_json();
    std::fs::write(server.dir.path().join("c.json"), oauth).unwrap();
    ok(server
        .amika()
        .args([
            "secret",
            "claude",
            "push",
            "--name",
            "c",
            "--type",
            "oauth",
            "--from-file",
        ])
        .arg(server.dir.path().join("c.json"))
        .arg("--yes"));

    for round in 0..3 {
        for i in 0..2 {
            ok(server.amika().args([
                "sandbox",
                "create",
                "--name",
                &format!("r{round}-run{i}"),
                "--secret",
                "env:TOKEN",
            ]));
        }
        // Creates in flight when the server dies.
        let inflight: Vec<_> = (0..3)
            .map(|i| {
                server
                    .amika()
                    .args([
                        "sandbox",
                        "create",
                        "--name",
                        &format!("r{round}-fly{i}"),
                        "--secret",
                        "env:TOKEN",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(15 * (round as u64 + 1)));
        let (dir, data_dir, db) = server.kill();
        for mut c in inflight {
            let _ = c.wait();
        }
        server = Server::start_in(dir, data_dir, db, &[]);

        let list = ok_json(server.amika().args(["sandbox", "list", "-o", "json"]));
        let list = list.as_array().unwrap();
        let mut recorded_running = Vec::new();
        for sb in list {
            let (name, state) = (sb["name"].as_str().unwrap(), sb["state"].as_str().unwrap());
            match state {
                "running" => {
                    // Usable: exec works and sees the injected secret.
                    let out = ok(server.amika().args([
                        "sandbox",
                        "exec",
                        name,
                        "--",
                        "sh",
                        "-c",
                        "echo ${TOKEN:+has-token}",
                    ]));
                    assert_eq!(out.trim(), "has-token", "round {round}: {name}");
                    recorded_running.push(sb["id"].as_str().unwrap().to_string());
                }
                "failed" | "stopped" => {
                    let reason = sb["error_message"].as_str().unwrap_or("");
                    assert!(
                        !reason.is_empty(),
                        "round {round}: {name} is {state} without a reason"
                    );
                }
                other => panic!("round {round}: {name} left in state {other}"),
            }
        }
        // The sandboxes that ran before the crash are still running and usable.
        for i in 0..2 {
            let name = format!("r{round}-run{i}");
            assert!(
                list.iter()
                    .any(|s| s["name"] == name.as_str() && s["state"] == "running"),
                "round {round}: {name} lost: {list:?}"
            );
        }
        // No sandbox process without a record; every running record has processes.
        let live = running_sandbox_ids(&server.data_dir);
        let known: Vec<String> = list
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        for id in &live {
            assert!(
                known.contains(id),
                "round {round}: sandbox process {id} has no record\n{}\nfiles: {:?}\nlog:\n{}",
                describe_processes(&server.data_dir, id),
                std::fs::read_dir(server.data_dir.join("sandboxes").join(id))
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
                server.log_text()
            );
        }
        for id in &recorded_running {
            assert!(
                live.contains(id),
                "round {round}: record {id} says running but nothing runs"
            );
        }
        // Secrets still decrypt.
        let v = ok_json(
            server
                .amika()
                .args(["secret", "reveal", "TOKEN", "-o", "json"]),
        );
        assert!(v.to_string().contains("recovery-secret-value-1"), "{v}");
        // Failed or stopped ones can be deleted cleanly.
        for sb in list.iter().filter(|s| s["state"] != "running") {
            ok(server
                .amika()
                .args(["sandbox", "delete", sb["name"].as_str().unwrap(), "--yes"]));
        }
    }
    for sb in ok_json(server.amika().args(["sandbox", "list", "-o", "json"]))
        .as_array()
        .unwrap()
    {
        ok(server
            .amika()
            .args(["sandbox", "delete", sb["name"].as_str().unwrap(), "--yes"]));
    }
    // A delete answers once nothing runs in the sandbox; the processes' exit and the files'
    // removal finish in the background, right after.
    wait_until(
        "every sandbox process to be gone after delete",
        Duration::from_secs(30),
        || running_sandbox_ids(&server.data_dir).is_empty(),
    );
}

#[test]
fn concurrent_creates_of_one_name_yield_one_sandbox_and_409s() {
    let server = Server::start();
    let body = r#"{"name":"same","agent_credentials":[]}"#;
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    common::http(
                        &server,
                        "POST",
                        "/api/v0beta1/sandboxes",
                        Some(&server.admin_key),
                        Some(body),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = statuses.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(created, 1, "{statuses:?}");
    for (s, b) in statuses.iter().filter(|(s, _)| *s != 202) {
        assert_eq!(*s, 409, "{b}");
        assert!(
            b.contains("sandbox_exists") && b.contains("already exists"),
            "{b}"
        );
    }
    let list = ok_json(server.amika().args(["sandbox", "list", "-o", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Delete is idempotent: concurrent `delete --force` all succeed, and a later one too,
    // saying there was nothing to delete. The API answers 404 for a sandbox that is gone.
    let deletes: Vec<_> = (0..3)
        .map(|_| {
            server
                .amika()
                .args(["sandbox", "delete", "same", "--force"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for d in deletes {
        let out = d.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent delete failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        ok(server.amika().args(["sandbox", "delete", "same", "--yes"])),
        "Sandbox same does not exist: nothing to delete\n"
    );
    let again = ok_json(
        server
            .amika()
            .args(["sandbox", "delete", "same", "--force", "-o", "json"]),
    );
    assert_eq!(again["already_gone"], true, "{again}");
    let (status, body) = common::http(
        &server,
        "DELETE",
        "/api/v0beta1/sandboxes/same",
        Some(&server.admin_key),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
    wait_until(
        "the deleted sandbox's files to go",
        Duration::from_secs(30),
        || common::sandbox_dirs(&server.data_dir).is_empty(),
    );
}

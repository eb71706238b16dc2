//! The SSH endpoint against a served server and a real sandbox, with an SSH client library
//! where OpenSSH's client cannot be made to misbehave: an expired token, a client that opens
//! hundreds of channels (refused past the limit, without harm to other connections or the
//! API), clients that stall before logging in or stop reading, the endpoint off unless
//! configured, and `ssh_listen` in the config file.

use std::sync::Arc;
use std::time::Duration;

use amika_server::ServerConfig;
use amika_store::SshTokenRow;
use amika_testkit::{RunningServer, ServerBuilder};
use russh::client;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const B: &str = "/api/v0beta1";

async fn serve(ssh: bool) -> RunningServer {
    serve_with(ssh, |_| {}).await
}

async fn serve_with(ssh: bool, tweak: impl FnOnce(&mut ServerConfig) + Send) -> RunningServer {
    ServerBuilder::new()
        .configure(move |c| {
            c.warm_sandboxes = 0;
            if ssh {
                c.ssh_listen = Some("127.0.0.1:0".parse().unwrap());
            }
            tweak(c);
        })
        .open()
        .await
        .unwrap()
        .serve()
        .await
        .unwrap()
}

async fn call(
    server: &RunningServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{B}{path}", server.url);
    let mut req = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(server.admin_key());
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A running sandbox `name`.
async fn sandbox(server: &RunningServer, name: &str) {
    let (status, body) = call(server, "POST", "/sandboxes", Some(json!({"name": name}))).await;
    assert!(status == 202 || status == 201, "{body}");
    for _ in 0..300 {
        let (_, body) = call(server, "GET", &format!("/sandboxes/{name}"), None).await;
        if body["state"] == "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sandbox {name} did not start");
}

struct TrustingClient;

impl client::Handler for TrustingClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

async fn connect(server: &RunningServer, token: &str) -> (client::Handle<TrustingClient>, bool) {
    let addr = server.service().ssh().endpoint().unwrap().addr;
    let config = Arc::new(client::Config::default());
    let mut handle = client::connect(config, addr, TrustingClient).await.unwrap();
    let auth = handle.authenticate_none(token).await.unwrap();
    (handle, matches!(auth, russh::client::AuthResult::Success))
}

/// `echo` over a session channel of `handle`: its output.
async fn echo(handle: &client::Handle<TrustingClient>, word: &str) -> String {
    let mut channel = handle.channel_open_session().await.unwrap();
    channel.exec(true, format!("echo {word}")).await.unwrap();
    let mut out = Vec::new();
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => out.extend_from_slice(&data),
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_channels_are_refused_past_the_limit_and_harm_nobody_else() {
    let server = serve(true).await;
    sandbox(&server, "sb").await;
    let (status, access) = call(&server, "POST", "/sandboxes/sb/ssh", None).await;
    assert_eq!(status, 200, "{access}");
    let token = access["token"].as_str().unwrap();

    let (flood, ok) = connect(&server, token).await;
    assert!(ok);
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        match flood.channel_open_session().await {
            Ok(channel) => open.push(channel),
            Err(_) => refused += 1,
        }
    }
    assert_eq!(open.len(), amika_server::ssh::MAX_CHANNELS_PER_CONNECTION);
    assert_eq!(refused, 300 - open.len());

    // Another connection, and the API, go on as before.
    let (other, ok) = connect(&server, token).await;
    assert!(ok);
    assert_eq!(echo(&other, "still-here").await, "still-here\n");
    let (status, _) = call(&server, "GET", "/me", None).await;
    assert_eq!(status, 200);
    // Closing channels gives their slots back.
    for channel in open {
        channel.close().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(echo(&flood, "again").await, "again\n");

    // An expired token (written as the store would, with its time past) is refused.
    let expired = format!("amkssh_{}", "e".repeat(48));
    let store = server.server.store().await;
    let (_, sb) = call(&server, "GET", "/sandboxes/sb", None).await;
    let (_, me) = call(&server, "GET", "/me", None).await;
    let now = chrono::Utc::now();
    store
        .insert_ssh_token(&SshTokenRow {
            id: "sst_expired".into(),
            hash: hex::encode(Sha256::digest(expired.as_bytes())),
            user_id: me["user_id"].as_str().unwrap().to_string(),
            sandbox_id: sb["id"].as_str().unwrap().to_string(),
            created_at: now - chrono::Duration::hours(2),
            expires_at: now - chrono::Duration::seconds(1),
            revoked_at: None,
        })
        .await
        .unwrap();
    let why = server.service().ssh_login(&expired).await.unwrap_err();
    assert!(why.to_string().contains("expired"), "{why}");
    let (_, ok) = connect(&server, &expired).await;
    assert!(!ok, "an expired token logs in");
    server.stop().await;
}

/// This process's resident memory, in MiB (the server runs in it).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// Clients that stall before logging in (silent, or a partial version line) are closed after
/// the login grace time, and a client that does not read a command's output makes the command
/// wait instead of the server buffering it; meanwhile other sessions and the API go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_slow_clients_are_bounded_and_harm_nobody_else() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = serve_with(true, |c| c.ssh_login_grace = Duration::from_secs(2)).await;
    sandbox(&server, "slow").await;
    let (status, access) = call(&server, "POST", "/sandboxes/slow/ssh", None).await;
    assert_eq!(status, 200, "{access}");
    let token = access["token"].as_str().unwrap();
    let addr = server.service().ssh().endpoint().unwrap().addr;

    let (session, ok) = connect(&server, token).await;
    assert!(ok);
    let mut stalled = Vec::new();
    for i in 0..100 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            socket.write_all(b"SSH-2.0-").await.unwrap();
        }
        stalled.push(socket);
    }
    assert_eq!(
        echo(&session, "during-the-stall").await,
        "during-the-stall\n"
    );
    let (status, _) = call(&server, "GET", "/sandboxes/slow", None).await;
    assert_eq!(status, 200);

    // After the grace time every stalled connection is closed by the server (its version line,
    // then the end); the logged-in session, older than the grace time, stays.
    for mut socket in stalled {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), socket.read_to_end(&mut rest));
        let ended = read
            .await
            .expect("a stalled connection is closed after the grace time");
        if ended.is_ok() {
            assert!(rest.starts_with(b"SSH-2.0-"), "{rest:?}");
        }
    }
    assert_eq!(echo(&session, "after-the-grace").await, "after-the-grace\n");

    // A reader that stops reading: 300 MB wait in the sandbox, not in the server's memory.
    let before = rss_mib();
    let mut channel = session.channel_open_session().await.unwrap();
    channel
        .exec(true, "head -c 300000000 /dev/zero; echo done >&2")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (other, ok) = connect(&server, token).await;
    assert!(ok);
    assert_eq!(
        echo(&other, "beside-the-slow-reader").await,
        "beside-the-slow-reader\n"
    );
    let grown = rss_mib().saturating_sub(before);
    assert!(
        grown < 64,
        "the server buffered {grown} MiB for a client that does not read"
    );
    // Reading it all gets everything, in order.
    let mut received = 0usize;
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } => {
                assert!(data.iter().all(|&b| b == 0));
                received += data.len();
            }
            russh::ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(received, 300_000_000);
    server.stop().await;
}

#[tokio::test]
async fn the_endpoint_is_off_unless_configured() {
    let server = serve(false).await;
    let (status, body) = call(&server, "POST", "/sandboxes/any/ssh", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("--ssh-listen"),
        "{body}"
    );
    let (status, body) = call(&server, "GET", "/ssh", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    server.stop().await;
}

#[test]
fn ssh_listen_in_the_config_file_is_an_address_or_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let apply = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
        config.apply_file(&path).map(|_| config.ssh_listen)
    };
    assert_eq!(
        apply(r#"{"ssh_listen": "127.0.0.1:2222"}"#).unwrap(),
        Some("127.0.0.1:2222".parse().unwrap())
    );
    assert_eq!(apply(r#"{"ssh_listen": ""}"#).unwrap(), None);
    for bad in [r#"{"ssh_listen": "2222"}"#, r#"{"ssh_listen": "host:22"}"#] {
        let err = apply(bad).unwrap_err().to_string();
        assert!(
            err.contains("ssh_listen") && err.contains("IP:PORT"),
            "{err}"
        );
    }
    assert!(apply(r#"{"ssh_listen": 22}"#).is_err());
}

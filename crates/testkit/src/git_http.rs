//! A private git repository over HTTP for tests: `git http-backend` behind HTTP basic auth on
//! 127.0.0.1 that wants a token as the password (the user name GitHub documents,
//! `x-access-token`, as amika's askpass sends it). Real git on both sides; nothing leaves the
//! machine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A private repository: `git http-backend` serving `root` behind HTTP basic auth with `token`
/// as the password. Each authenticated request is held for `delay`, so a test can look at the
/// host's processes while the clone runs. Counts requests that carried the right token.
/// The repository is `<root>/private.git`; the URL answered names it.
pub async fn serve_private(
    root: PathBuf,
    token: &str,
    delay: Duration,
) -> (String, Arc<AtomicUsize>) {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("x-access-token:{token}"))
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let authorized = Arc::new(AtomicUsize::new(0));
    let count = authorized.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (root, count, expected) = (root.clone(), count.clone(), expected.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut conn).await else {
                    return;
                };
                if request.header("authorization").as_deref() != Some(expected.as_str()) {
                    let _ = conn
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let answer = http_backend(&root, &request).await;
                let _ = conn.write_all(&answer).await;
            });
        }
    });
    (format!("http://{addr}/private.git"), authorized)
}

/// One HTTP request: its request line, headers (names lowercased) and body.
struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, v)| v.clone())
    }
}

/// Read one request (its body by `Content-Length`); `None` if the client went away first.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.unwrap();
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let line = lines.next().unwrap().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let mut request = Request {
        line,
        headers,
        body: buf[head_end..].to_vec(),
    };
    let len: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.body.len() < len {
        let n = conn.read(&mut chunk).await.unwrap();
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

/// Run `git http-backend` (CGI) for `request` on the repositories under `root`; the whole
/// HTTP answer.
async fn http_backend(root: &std::path::Path, request: &Request) -> Vec<u8> {
    let mut parts = request.line.split(' ');
    let method = parts.next().unwrap().to_string();
    let target = parts.next().unwrap().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_USER", "x-access-token")
        .env(
            "CONTENT_TYPE",
            request.header("content-type").unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    if let Some(enc) = request.header("content-encoding") {
        cgi.env("HTTP_CONTENT_ENCODING", enc);
    }
    let mut child = cgi.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&request.body).await.unwrap();
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
    let mut answer = format!(
        "HTTP/1.1 {status}\r\n{resp}Content-Length: {}\r\nConnection: close\r\n\r\n",
        cgi_body.len()
    )
    .into_bytes();
    answer.extend_from_slice(cgi_body);
    answer
}

/// [`serve_private`] for a test without a runtime of its own: served from a thread that runs
/// one for as long as the test process lives. Answers the repository's URL.
pub fn serve_private_blocking(root: PathBuf, token: &str) -> String {
    let token = token.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the git server");
        rt.block_on(async move {
            let (url, _) = serve_private(root, &token, Duration::ZERO).await;
            let _ = tx.send(url);
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("the git server's URL")
}

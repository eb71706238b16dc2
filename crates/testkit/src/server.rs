//! The in-process server: `amika_server::open` on a fresh temp dir — the code `amika server`
//! runs, without the CLI around it — with SQLite in the data dir or a database the caller
//! names (e.g. a [`FreshDatabase`](crate::FreshDatabase)), the config changed as a test needs,
//! and optionally the master key or the sandbox provider chosen by the test.
//!
//! [`TestServer`] has no socket: tests drive its router with `oneshot`. [`TestServer::serve`]
//! puts it on 127.0.0.1:0 for clients that speak HTTP (benchmarks, the typed client).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use amika_sandbox::Provider;
use amika_server::config::redact_url_password;
use amika_server::{ServerConfig, Service};
use amika_store::Store;
use amika_vault::MasterKey;
use anyhow::Context;

type Tweak<'a> = Box<dyn FnOnce(&mut ServerConfig) + Send + 'a>;
type MakeProvider<'a> = Box<dyn FnOnce(&Path) -> Arc<dyn Provider> + Send + 'a>;

/// How to start a server; [`ServerBuilder::open`] starts it.
pub struct ServerBuilder<'a> {
    database_url: Option<String>,
    tweaks: Vec<Tweak<'a>>,
    master_key: Option<MasterKey>,
    provider: Option<MakeProvider<'a>>,
    dir_prefix: String,
}

impl Default for ServerBuilder<'_> {
    fn default() -> Self {
        ServerBuilder {
            database_url: None,
            tweaks: Vec::new(),
            master_key: None,
            provider: None,
            dir_prefix: ".tmp".into(),
        }
    }
}

impl fmt::Debug for ServerBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url_password),
            )
            .field("tweaks", &self.tweaks.len())
            .field("master_key", &self.master_key.is_some())
            .field("provider", &self.provider.is_some())
            .finish()
    }
}

impl<'a> ServerBuilder<'a> {
    /// SQLite in a fresh temp dir, the default config, a generated master key, the local
    /// provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this database (`postgres://...`) instead of SQLite in the data dir; `None` keeps
    /// SQLite.
    pub fn database_url(mut self, url: Option<String>) -> Self {
        self.database_url = url;
        self
    }

    /// Change the config before the server opens (e.g. `|c| c.allow_reveal = false`).
    pub fn configure(mut self, tweak: impl FnOnce(&mut ServerConfig) + Send + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Start with this master key (written to `DATA_DIR/master.key` before the server opens)
    /// instead of a generated one.
    pub fn master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    /// Use the provider `make(data_dir)` builds instead of the local provider `open` builds.
    /// The service is then assembled by hand (`Service::new` and the first admin), without
    /// `open`'s key check and reconciliation.
    pub fn provider(mut self, make: impl FnOnce(&Path) -> Arc<dyn Provider> + Send + 'a) -> Self {
        self.provider = Some(Box::new(make));
        self
    }

    /// Name the temp dir `PREFIX...` (e.g. `amika-bench.`), to find it while a run lasts.
    pub fn dir_prefix(mut self, prefix: &str) -> Self {
        self.dir_prefix = prefix.to_string();
        self
    }

    /// Open the server: its store, vault and provider, and the first admin of a fresh database.
    pub async fn open(self) -> anyhow::Result<TestServer> {
        let dir = tempfile::Builder::new()
            .prefix(&self.dir_prefix)
            .tempdir()
            .context("create the server's temp dir")?;
        let data_dir = dir.path().join("data");
        let mut config = ServerConfig::new("127.0.0.1:0".parse()?, data_dir.clone());
        config.database_url = self.database_url;
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        if let Some(key) = &self.master_key {
            create_private_dir(&config.data_dir)?;
            amika_vault::write_key_file(&amika_vault::key_file_path(&config.data_dir), key)?;
        }
        let (service, admin_key) = match self.provider {
            None => {
                let opened = amika_server::open(config).await?;
                let key = opened
                    .first_admin_key
                    .context("a fresh database creates the first admin")?;
                (opened.service, key.to_string())
            }
            Some(make) => assemble(config, self.master_key, make).await?,
        };
        Ok(TestServer {
            admin_key,
            service,
            dir,
        })
    }
}

/// `Service::new` over a provider of the test's choosing, and the first admin.
async fn assemble(
    config: ServerConfig,
    key: Option<MasterKey>,
    make: MakeProvider<'_>,
) -> anyhow::Result<(Service, String)> {
    create_private_dir(&config.data_dir)?;
    let store = amika_store::connect(&config.effective_database_url()).await?;
    let vault = amika_vault::Vault::new(key.unwrap_or_else(MasterKey::generate));
    let provider = make(&config.data_dir);
    let service = Service::new(store, Arc::new(vault), provider, Arc::new(config));
    let key = service
        .bootstrap_first_admin()
        .await?
        .context("a fresh database creates the first admin")?;
    Ok((service, key.to_string()))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))
}

/// A second handle on the database `service` uses, for tests that reach under the service
/// (tampering with a sealed row, reading what was stored).
pub async fn open_store(service: &Service) -> Arc<dyn Store> {
    amika_store::connect(&service.config().effective_database_url())
        .await
        .expect("open a second handle on the server's database")
}

/// An open server without a socket. `Debug` masks the admin key.
pub struct TestServer {
    /// The first admin's API key.
    pub admin_key: String,
    pub service: Service,
    /// Holds the data dir (`dir/data`): removed when the server is dropped.
    pub dir: tempfile::TempDir,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("admin_key", &"[REDACTED]")
            .field("service", &self.service)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestServer {
    /// Every route of the server, for `oneshot` requests.
    pub fn router(&self) -> axum::Router {
        amika_server::http::router(self.service.clone())
    }

    pub fn config(&self) -> &ServerConfig {
        self.service.config()
    }

    pub fn data_dir(&self) -> &Path {
        &self.service.config().data_dir
    }

    /// See [`open_store`].
    pub async fn store(&self) -> Arc<dyn Store> {
        open_store(&self.service).await
    }

    /// Serve on 127.0.0.1:0 until [`RunningServer::stop`] (or until the handle is dropped).
    pub async fn serve(self) -> anyhow::Result<RunningServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let service = self.service.clone();
        let task = tokio::spawn(async move {
            // Ends on `stop` and when the sender is dropped with the handle.
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = amika_server::launch(service, listener, shutdown).await {
                eprintln!("server stopped: {e}");
            }
        });
        Ok(RunningServer {
            url,
            server: self,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A server listening on 127.0.0.1 (the socket is bound before this exists, so requests can
/// be sent at once).
#[derive(Debug)]
pub struct RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub server: TestServer,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn admin_key(&self) -> &str {
        &self.server.admin_key
    }

    pub fn service(&self) -> &Service {
        &self.server.service
    }

    /// Stop serving: a graceful shutdown, given up to 5 s.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Run `sh -c script` in sandbox `sandbox` through the service, as `caller`: (exit code,
/// stdout, stderr), redacted as any exec. Panics on an error frame or a missing exit.
pub async fn exec_sh(
    svc: &Service,
    caller: &amika_server::service::Caller,
    sandbox: &str,
    script: &str,
) -> (i32, String, String) {
    use amika_server::service::redaction::RedactedExec;
    use amika_types::{ExecFrame, ExecRequest};
    let req = ExecRequest {
        command: vec!["sh".into(), "-c".into(), script.into()],
        cwd: None,
        timeout_secs: Some(60),
    };
    let mut exec: RedactedExec = svc.exec_sandbox(caller, sandbox, req).await.unwrap();
    let (mut out, mut err, mut code) = (String::new(), String::new(), None);
    while let Some(frame) = exec.next().await {
        match frame {
            ExecFrame::Stdout { data } => out.push_str(&data),
            ExecFrame::Stderr { data } => err.push_str(&data),
            ExecFrame::Exit { code: c } => code = Some(c),
            ExecFrame::Error { message } => panic!("{message}"),
        }
    }
    (code.expect("an exit frame"), out, err)
}

//! The amika server: the service layer (vault use, resolution, sandboxes, audit; no axum) and
//! the HTTP API over it. Binaries call [`open`] then [`launch`]; tests can build the router
//! without a socket with [`http::router`].

pub mod config;
pub mod http;
pub mod service;
pub mod ssh;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use amika_sandbox::local::LocalProvider;
use zeroize::Zeroizing;

pub use config::ServerConfig;
pub use service::Service;

/// Why a server could not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] amika_store::StoreError),
    #[error("{0}")]
    Vault(#[from] service::sealing::VaultError),
    #[error("{0}")]
    KeyMismatch(String),
    #[error("{0}")]
    Service(#[from] service::ServiceError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The SSH endpoint cannot listen or has no usable host key.
    #[error("SSH endpoint on {addr}: {source}")]
    Ssh {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The configuration contradicts itself; the message names the settings.
    #[error("configuration: {0}")]
    Config(String),
    #[error(
        "another amika server{holder} is using the data dir {path}: stop it first, or give this \
         server its own --data-dir (servers sharing one PostgreSQL database each have their own)"
    )]
    DataDirInUse { path: String, holder: String },
}

/// The exclusive hold of a server on its data dir (`DATA_DIR/server.lock`, which names the
/// holder's pid), released when dropped or when the process ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Take the data dir for this process: a second server on the same data dir would reconcile
/// (stop) the first one's sandboxes and serve its port once the first closed its listener.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, StartError> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    create_private_dir(data_dir)?;
    let path = data_dir.join("server.lock");
    let err = |source| StartError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StartError::DataDirInUse {
                path: data_dir.display().to_string(),
                holder: match pid.parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    writeln!(file, "{}", std::process::id()).map_err(err)?;
    Ok(DataDirLock { _file: file })
}

/// A server ready to serve: its service, and the first admin's API key when this start
/// created it (shown once, also written to `DATA_DIR/admin-api-key`).
#[derive(Debug)]
pub struct Opened {
    pub service: Service,
    pub first_admin_key: Option<Zeroizing<String>>,
}

fn create_private_dir(dir: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StartError::DataDir {
            path: dir.display().to_string(),
            source,
        })
}

/// Write a small private file (mode 0600 from its creation).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| StartError::Write {
        path: path.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Open the database and the vault, check the key, create the first admin on a fresh
/// database, and reconcile sandboxes with what runs.
pub async fn open(config: ServerConfig) -> Result<Opened, StartError> {
    // Flags are applied after the config file: check the defaults against the ceilings again.
    config.check_ceilings().map_err(StartError::Config)?;
    create_private_dir(&config.data_dir)?;
    let store = amika_store::connect(&config.effective_database_url()).await?;
    let vault = service::sealing::open_vault(store.as_ref(), &config.data_dir).await?;

    let provider = Arc::new(
        LocalProvider::new(config.data_dir.join("sandboxes"))
            .with_warm_sandboxes(config.warm_sandboxes),
    );
    let service = Service::new(store, Arc::new(vault), provider, Arc::new(config));
    let first_admin_key = service.bootstrap_first_admin().await?;
    if let Some(key) = &first_admin_key {
        write_private_file(
            &service.config.data_dir.join("admin-api-key"),
            format!("{}\n", key.as_str()).as_bytes(),
        )?;
    }
    if let Err(e) = service.provider.check() {
        tracing::warn!("sandboxes cannot start on this machine: {e}");
    }
    for change in service.reconcile_sandboxes().await? {
        tracing::info!("reconcile: {change}");
    }
    for change in service.reconcile_snapshots().await? {
        tracing::info!("reconcile: {change}");
    }
    install_presets(&service).await?;
    tokio::spawn(service.clone().watch_idle_sandboxes());
    tokio::spawn(service.clone().watch_disk_usage());
    Ok(Opened {
        service,
        first_admin_key,
    })
}

/// Install the presets of `install_presets` (`amika server --install-preset`) before serving,
/// logging their progress; one already installed costs a directory lookup.
async fn install_presets(service: &Service) -> Result<(), StartError> {
    for name in &service.config.install_presets {
        let def = service::presets::find(name)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let log = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let event: amika_types::PresetInstallEvent = event;
                tracing::info!(preset = %def.name, step = event.step, steps = event.steps, "{}", event.message);
            }
        });
        let installed = service
            .install_preset_as_server(def, service::presets::InstallProgress::new(tx))
            .await;
        let _ = log.await;
        let preset = installed?;
        tracing::info!(preset = %preset.name, version = %preset.current, "preset installed");
    }
    Ok(())
}

/// How long after ending what runs (`Service::end_running`) the server still waits for its
/// connections to close before it returns anyway.
const SHUTDOWN_LAST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve the API on `listener` (and the SSH endpoint when the config has `ssh_listen`) until
/// `shutdown` completes, then shut down within a bound: the
/// listener closes at once; running requests (execs, agent sends, streams) have
/// `shutdown_grace` to finish; then what still runs is ended ([`Service::end_running`]), and
/// after a last few seconds this returns whatever still hangs.
pub async fn launch(
    service: Service,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    use axum::serve::ListenerExt;
    use std::future::IntoFuture;
    let (stop_ssh, ssh_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = service.config.ssh_listen {
        let err = |source| StartError::Ssh { addr, source };
        let ssh_listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
        let config = ssh::prepare_ssh(&service, &ssh_listener).map_err(err)?;
        let stopped = async move {
            let _ = ssh_stopped.await;
        };
        tokio::spawn(ssh::serve_ssh(
            service.clone(),
            ssh_listener,
            config,
            stopped,
        ));
    }
    let shutdown = async move {
        shutdown.await;
        let _ = stop_ssh.send(());
    };
    // No Nagle: a streamed answer (exec output, its exit frame) is written in small pieces, and
    // Nagle would hold each one back until the client's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    let (signalled, on_signal) = tokio::sync::oneshot::channel();
    let serving = axum::serve(listener, http::router(service.clone()))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signalled.send(());
        })
        .into_future();
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => return served.map_err(StartError::Serve),
        _ = on_signal => {}
    }
    let grace = service.config.shutdown_grace;
    if let Ok(served) = tokio::time::timeout(grace, &mut serving).await {
        return served.map_err(StartError::Serve);
    }
    tracing::info!(
        "requests still running {}s after the shutdown began: ending them",
        grace.as_secs()
    );
    service.end_running();
    match tokio::time::timeout(SHUTDOWN_LAST_WAIT, &mut serving).await {
        Ok(served) => served.map_err(StartError::Serve),
        Err(_) => {
            tracing::warn!("connections still open after the shutdown's deadline: leaving them");
            Ok(())
        }
    }
}

/// Re-wrap every data key under a new master key without touching values. Returns the new
/// key's id. The new key is written to `new_key_file` (or replaces the key file in force).
pub async fn rotate_key(
    config: &ServerConfig,
    new_key_file: Option<&Path>,
) -> Result<String, StartError> {
    let store = amika_store::connect(&config.effective_database_url()).await?;
    service::sealing::rotate_key(store.as_ref(), &config.data_dir, new_key_file).await
}

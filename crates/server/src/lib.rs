//! The amika server: the service layer (vault use, resolution, sandboxes, audit; no axum) and
//! the HTTP API over it. Binaries call [`open`] then [`launch`]; tests can build the router
//! without a socket with [`http::router`].

pub mod config;
pub mod http;
pub mod service;

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
    /// The configuration contradicts itself; the message names the settings.
    #[error("configuration: {0}")]
    Config(String),
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

/// Serve the API on `listener` until `shutdown` completes.
pub async fn launch(
    service: Service,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    use axum::serve::ListenerExt;
    // No Nagle: a streamed answer (exec output, its exit frame) is written in small pieces, and
    // Nagle would hold each one back until the client's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, http::router(service))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)
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

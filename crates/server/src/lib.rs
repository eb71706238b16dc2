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
use amika_store::Store;
use amika_vault::{KeySource, MasterKey, Vault};
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
    Vault(#[from] amika_vault::VaultError),
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
}

/// A server ready to serve: its service, and the first admin's API key when this start
/// created it (shown once, also written to `DATA_DIR/admin-api-key`).
#[derive(Debug)]
pub struct Opened {
    pub service: Service,
    pub first_admin_key: Option<Zeroizing<String>>,
}

const CANARY_AAD: amika_vault::Aad<'static> = amika_vault::Aad {
    org_id: "",
    owner: "",
    object_id: "canary",
    version: 0,
    field: "vault.canary",
};

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

/// Check that the master key can open what the database holds; on a fresh database, seal the
/// canary with it. A server never serves with a key that cannot decrypt its data.
async fn check_master_key(
    store: &dyn Store,
    vault: &Vault,
    source: &KeySource,
) -> Result<(), StartError> {
    let from = match source {
        KeySource::Env => "AMIKA_MASTER_KEY".to_string(),
        KeySource::File(p) => p.display().to_string(),
    };
    let foreign: Vec<String> = store
        .kek_ids_in_use()
        .await?
        .into_iter()
        .filter(|id| id != vault.kek_id())
        .collect();
    if !foreign.is_empty() {
        return Err(StartError::KeyMismatch(format!(
            "the master key from {from} ({}) is not the key that encrypted this database ({}): set AMIKA_MASTER_KEY to the right key or restore its key file",
            vault.kek_id(),
            foreign.join(", ")
        )));
    }
    match store.vault_canary().await? {
        Some(sealed) => {
            let s = service::secrets::to_vault_sealed(&sealed);
            vault.open(&s, &CANARY_AAD).map_err(|_| {
                StartError::KeyMismatch(format!("the master key from {from} cannot decrypt this database's data: set AMIKA_MASTER_KEY to the right key or restore its key file"))
            })?;
        }
        None => {
            let sealed =
                vault.seal(&amika_vault::SecretString::new("amika".into()), &CANARY_AAD)?;
            store
                .set_vault_canary(&service::secrets::to_store_sealed(sealed))
                .await?;
        }
    }
    Ok(())
}

/// Open the database and the vault, check the key, create the first admin on a fresh
/// database, and reconcile sandboxes with what runs.
pub async fn open(config: ServerConfig) -> Result<Opened, StartError> {
    create_private_dir(&config.data_dir)?;
    let store = amika_store::connect(&config.effective_database_url()).await?;
    // A key is created only for a database that holds nothing sealed yet.
    let fresh = store.vault_canary().await?.is_none();
    let (key, source) = amika_vault::load_master_key(&config.data_dir, fresh)?;
    let vault = Vault::new(key);
    check_master_key(store.as_ref(), &vault, &source).await?;

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
    Ok(Opened {
        service,
        first_admin_key,
    })
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
    let (old_key, source) = amika_vault::load_master_key(&config.data_dir, false)?;
    let old = Vault::new(old_key);
    check_master_key(store.as_ref(), &old, &source).await?;
    let new_key = MasterKey::generate();
    let target = match (new_key_file, &source) {
        (Some(p), _) => p.to_path_buf(),
        (None, KeySource::File(p)) => p.clone(),
        (None, KeySource::Env) => {
            return Err(StartError::KeyMismatch("the master key comes from AMIKA_MASTER_KEY: pass --new-key-file PATH to say where the new key goes".into()))
        }
    };
    // Write the new key beside the old first, swap the rows in one transaction, then move the
    // key into place: a crash leaves either the old key with old rows or both files.
    let staged = target.with_extension("new");
    amika_vault::write_key_file(&staged, &new_key)?;
    let new = Vault::new(new_key);
    let mut updates = Vec::new();
    for mut r in store.all_sealed().await? {
        let field = match (r.table, r.kind) {
            (amika_store::SealedTable::Canary, _) => CANARY_AAD.field,
            (amika_store::SealedTable::Secret, _) => service::secrets::SECRET_FIELD,
            (amika_store::SealedTable::Credential, Some(kind)) => service::credentials::field(kind),
            (amika_store::SealedTable::Credential, None) => {
                return Err(amika_store::StoreError::Corrupt(format!(
                    "credential {} has no kind",
                    r.id
                ))
                .into())
            }
        };
        let aad = amika_vault::Aad {
            org_id: &r.org_id,
            owner: &r.user_id,
            object_id: &r.id,
            version: r.version,
            field,
        };
        let sealed = old.rewrap(&new, &service::secrets::to_vault_sealed(&r.sealed), &aad)?;
        r.sealed = service::secrets::to_store_sealed(sealed);
        updates.push(r);
    }
    store.replace_sealed(&updates).await?;
    std::fs::rename(&staged, &target).map_err(|source| StartError::Write {
        path: target.display().to_string(),
        source,
    })?;
    Ok(new.kek_id().to_string())
}

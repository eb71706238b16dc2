//! The shared-state backend: PostgreSQL, for several amika servers working on one database. All
//! SQL lives in `sql/`; this module only opens and migrates the pool, binds the shared
//! [`crate::backend::Backend`] to it, and follows the other servers' sandbox writes.
//!
//! Following writes: migration 0019 makes every write to `sandboxes` notify channel
//! [`CHANNEL`] with the row's id, and a task per store LISTENs on its own connection and evicts
//! what it hears from the [`SandboxCache`]. While that connection is down the cache serves
//! nothing: it is emptied and bypassed until the listener is back (a write in between would
//! otherwise go unheard).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;

use crate::sandbox_cache::SandboxCache;
use crate::Result;

/// The channel every sandbox write notifies (see `migrations/postgres/0019_sandbox_notify.sql`).
const CHANNEL: &str = "amika_sandboxes";

/// [`crate::Store`] over PostgreSQL (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Serves only while the listener is connected.
    cache: Arc<SandboxCache>,
    /// Ends the listener when the last clone of the store goes.
    _listener: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PostgresStore {
    /// Connect to `url` and migrate. Migrations take an advisory lock, so servers starting
    /// together do not race.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let cache = Arc::new(SandboxCache::default());
        // The first LISTEN before the store is handed out, so that it serves from the start;
        // if it fails, the task tries again and the cache serves nothing until then.
        let first = match listen(url).await {
            Ok(listener) => {
                cache.resume();
                Some(listener)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for sandbox writes: sandboxes are read from the database until it can");
                None
            }
        };
        let task = tokio::spawn(follow_writes(url.to_string(), cache.clone(), first));
        Ok(PostgresStore {
            pool,
            cache,
            _listener: Arc::new(AbortOnDrop(task)),
        })
    }
}

/// A listener on [`CHANNEL`], on a connection of its own (not one of the pool's), that reports
/// a lost connection instead of reconnecting behind our back.
async fn listen(url: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Evict every sandbox another server (or this one) writes, for as long as the store lives;
/// suspend the cache whenever the listener is not connected, and resume it once it is again.
async fn follow_writes(url: String, cache: Arc<SandboxCache>, mut listener: Option<PgListener>) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    let mut retry = FIRST_RETRY;
    loop {
        let mut connected = match listener.take() {
            Some(l) => l,
            None => match listen(&url).await {
                Ok(l) => {
                    tracing::info!("listening for sandbox writes again: sandboxes cached again");
                    cache.resume();
                    retry = FIRST_RETRY;
                    l
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot LISTEN for sandbox writes yet");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let why = loop {
            match connected.try_recv().await {
                Ok(Some(n)) => cache.evict(n.payload()),
                Ok(None) => break "the connection was lost".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        // Writes from now on may go unheard: serve nothing until listening again.
        cache.suspend();
        tracing::warn!(error = %why, "stopped listening for sandbox writes: sandboxes are read from the database until it listens again");
    }
}

crate::backend::impl_backend!(PostgresStore, sqlx::Postgres);

//! The embedded default backend: one SQLite file next to the server, in WAL mode so readers
//! never wait for the writer. All SQL lives in `sql/`; this module only opens and migrates
//! the pool and binds the shared [`crate::backend::Backend`] to it.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::sandbox_cache::SandboxCache;
use crate::Result;

/// [`crate::Store`] over a SQLite database (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serves from the start: SQLite has one server, and its every write goes through here.
    cache: Arc<SandboxCache>,
}

impl SqliteStore {
    /// Open `url`, creating the file if it is missing (its directory must exist), and migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            // Concurrent writers queue for the lock instead of failing at once with SQLITE_BUSY.
            .busy_timeout(Duration::from_secs(5))
            // Rows come back from the connection's worker thread through a bounded channel; at
            // the default 50 a long list hands the CPU back and forth every few rows.
            .row_buffer_size(1024);
        let pool = if is_in_memory(url) {
            // An in-memory database lives only as long as a connection to it: keep exactly one,
            // forever (several would also each see their own empty database without
            // shared-cache locking).
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            // SQLite's own message for this is a bare "unable to open database file".
            let dir = options.get_filename().parent().unwrap_or(Path::new(""));
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                let message = format!("directory {} does not exist", dir.display());
                return Err(sqlx::Error::Configuration(message.into()).into());
            }
            // WAL with synchronous=NORMAL is durable across application crashes and only loses
            // the last transactions on power loss — the usual trade for a server database.
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new()
                .max_connections(8)
                // No ping before each use: a connection to a local file cannot go stale, and the
                // ping is a second round trip to the connection's worker thread on every query.
                .test_before_acquire(false)
                .connect_with(options)
                .await?
        };
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            cache: Arc::new(SandboxCache::serving()),
        })
    }
}

/// `sqlite::memory:` or `sqlite://...?mode=memory`, the two spellings sqlx opens in memory.
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.starts_with(":memory:") || rest.contains("mode=memory")
}

crate::backend::impl_backend!(SqliteStore, sqlx::Sqlite);

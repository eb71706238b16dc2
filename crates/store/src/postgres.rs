//! The shared-state backend: PostgreSQL, for several amika servers working on one database. All
//! SQL lives in `sql/`; this module only opens and migrates the pool and binds the shared
//! [`crate::backend::Backend`] to it.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::Result;

/// [`crate::Store`] over PostgreSQL (`postgres://...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
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
        Ok(PostgresStore { pool })
    }
}

crate::backend::impl_backend!(PostgresStore, sqlx::Postgres);

//! Fresh PostgreSQL databases on the throwaway cluster that `scripts/with-postgres.sh` starts and
//! names in `AMIKA_TEST_DATABASE_URL`: one database per test or benchmark run, so reruns and
//! parallel runs never see each other's rows. Also `pg_dump`, for tests that read what the
//! server wrote.
//!
//! The calls are blocking, so that synchronous end-to-end tests and async tests share them:
//! the SQL runs on a private runtime in a thread of its own, never on the caller's runtime.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use amika_server::config::redact_url_password;
use anyhow::Context;

/// Names the cluster to create databases on (`postgres://...:PORT/amika_test`).
pub const DATABASE_URL_ENV: &str = "AMIKA_TEST_DATABASE_URL";
/// `1` skips PostgreSQL on purpose, where a test would otherwise fail without a cluster.
pub const SKIP_ENV: &str = "AMIKA_SKIP_POSTGRES";

/// The cluster a test runs against: `Some(url)`; `None` when PostgreSQL is skipped on purpose
/// (`AMIKA_SKIP_POSTGRES=1`). Panics when neither is set, so that CI cannot skip it silently.
pub fn test_cluster_url() -> Option<String> {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) => Some(url),
        Err(_) if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") => None,
        Err(_) => panic!(
            "{DATABASE_URL_ENV} is not set: run the tests under scripts/with-postgres.sh \
             (e.g. `scripts/with-postgres.sh cargo test -p amika-store`), or set {SKIP_ENV}=1 \
             to skip PostgreSQL"
        ),
    }
}

/// A database of its own on the cluster, dropped when this handle is (or by
/// [`FreshDatabase::drop_database`], which reports a failure). `Debug` masks the URLs' password.
pub struct FreshDatabase {
    cluster_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl fmt::Debug for FreshDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshDatabase")
            .field("cluster_url", &redact_url_password(&self.cluster_url))
            .field("name", &self.name)
            .field("url", &redact_url_password(&self.url))
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl FreshDatabase {
    /// For a test: a fresh database named `PREFIX_<uuid>` on the test cluster, or `None` when
    /// PostgreSQL is skipped (see [`test_cluster_url`]). Panics when it cannot be created.
    pub fn for_test(prefix: &str) -> Option<FreshDatabase> {
        let cluster = test_cluster_url()?;
        Some(Self::create_on(&cluster, prefix).expect("create a fresh PostgreSQL database"))
    }

    /// A fresh database named `PREFIX_<uuid>` on the cluster at `cluster_url`.
    pub fn create_on(cluster_url: &str, prefix: &str) -> anyhow::Result<FreshDatabase> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        execute(cluster_url, format!("CREATE DATABASE {name}"))
            .with_context(|| format!("create database {name}"))?;
        Ok(FreshDatabase {
            url: with_database(cluster_url, &name),
            cluster_url: cluster_url.to_string(),
            name,
            dropped: false,
        })
    }

    /// The database's URL, for `ServerConfig::database_url` or `amika_store::connect`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop the database now (`WITH (FORCE)`: pools may still be closing their connections).
    pub fn drop_database(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        execute(
            &self.cluster_url,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .with_context(|| format!("drop database {}", self.name))
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if !self.dropped {
            let _ = execute(
                &self.cluster_url,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

/// Run one statement on `url`, on a runtime of its own (see the module doc).
pub fn execute(url: &str, sql: String) -> anyhow::Result<()> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .context("connect to PostgreSQL")?;
            sqlx::query(&sql).execute(&mut conn).await?;
            conn.close().await?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the PostgreSQL thread panicked"))?
}

/// `url` with its database name replaced, keeping any `?params`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((base, params)) => (base, format!("?{params}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{database}{params}")
}

/// A PostgreSQL client tool: from `AMIKA_TEST_PG_BIN` (set by `scripts/with-postgres.sh`), else
/// Debian's PostgreSQL 15.
pub fn pg_bin(tool: &str) -> PathBuf {
    let dir =
        std::env::var("AMIKA_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&dir).join(tool)
}

/// `pg_dump` of a database, as text.
pub fn pg_dump(url: &str) -> Vec<u8> {
    let out = Command::new(pg_bin("pg_dump"))
        .arg(url)
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_params_kept() {
        assert_eq!(
            with_database("postgres://u@h:1/amika_test", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/amika_test?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }

    /// The derived `Debug` printed both URLs with their password.
    #[test]
    fn debug_of_a_fresh_database_masks_the_password() {
        let db = FreshDatabase {
            cluster_url: "postgres://amika:pw-Secret-123@h:1/amika_test".into(),
            name: "t_1".into(),
            url: "postgres://amika:pw-Secret-123@h:1/t_1".into(),
            // Nothing to drop: the database was never created.
            dropped: true,
        };
        let shown = format!("{db:?}");
        assert!(!shown.contains("pw-Secret-123"), "{shown}");
        assert!(shown.contains("postgres://amika:***@h:1/t_1"), "{shown}");
    }
}

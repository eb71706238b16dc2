//! The narrow seam between the SQL both dialects share and the two sqlx drivers: a statement is
//! SQL text plus a list of [`Param`]s, and a [`Backend`] runs it and decodes the rows into a
//! [`Record`]. Everything above this seam (the SQL and the code that binds rows and checks
//! results, in `sql/`) is written once; below it, each backend is the few lines of
//! [`impl_backend!`].
//!
//! Why a seam of our own rather than functions generic over `sqlx::Database`: sqlx's generic
//! bounds (`Encode`/`Type` for every bound type, `Executor` higher-ranked over lifetimes) are not
//! implied by a trait, so every generic function would repeat them. Here the bounds are met once
//! per backend, on concrete types, and the shared code sees plain values.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// One bound parameter. Built with [`params!`] from the usual column types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Float(Option<f64>),
    Bool(bool),
    Bytes(&'a [u8]),
    /// Already truncated to microseconds (see [`ts`]).
    Time(Option<DateTime<Utc>>),
}

/// PostgreSQL keeps microseconds, SQLite whatever text it is given. Every timestamp is bound
/// through here (the `From` impls below) so a value reads back the same from either.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(Some(v))
    }
}
impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Param::Text(v.as_deref())
    }
}
impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::Text(v)
    }
}
impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl From<Option<i32>> for Param<'_> {
    fn from(v: Option<i32>) -> Self {
        Param::Int32(v)
    }
}
impl From<Option<f64>> for Param<'_> {
    fn from(v: Option<f64>) -> Self {
        Param::Float(v)
    }
}
impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Param<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Param::Bytes(v)
    }
}
impl From<DateTime<Utc>> for Param<'_> {
    fn from(v: DateTime<Utc>) -> Self {
        Param::Time(Some(ts(v)))
    }
}
impl From<Option<DateTime<Utc>>> for Param<'_> {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Param::Time(v.map(ts))
    }
}

/// `params![a, b, ...]`: the parameters `$1, $2, ...` of a statement, in order (an array).
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        [$($crate::backend::Param::from($p)),*]
    };
}
pub(crate) use params;

/// A row type both drivers can decode (every `#[derive(sqlx::FromRow)]` over plain columns).
pub(crate) trait Record:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Record for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin
{
}

/// One statement of [`Backend::execute_all`].
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    pub sql: std::borrow::Cow<'a, str>,
    pub params: Vec<Param<'a>>,
}

/// Runs shared SQL on one database (`$n` placeholders, which both dialects accept).
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Run one statement; how many rows it changed.
    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, sqlx::Error>;

    async fn fetch_all<R: Record>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<R>, sqlx::Error>;

    async fn fetch_optional<R: Record>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<R>, sqlx::Error>;

    /// Exactly one row (an aggregate); none is an error.
    async fn fetch_one<R: Record>(&self, sql: &str, params: &[Param<'_>])
        -> Result<R, sqlx::Error>;

    /// Run the statements in order, all or none: committed only if every one changed at least
    /// one row. `Ok(Err(i))`: statement `i` changed nothing, and everything was rolled back.
    async fn execute_all(
        &self,
        statements: &[Statement<'_>],
    ) -> Result<Result<(), usize>, sqlx::Error>;

    /// The sandbox rows this store shows from memory (see [`crate::sandbox_cache`]).
    fn sandbox_cache(&self) -> &crate::sandbox_cache::SandboxCache;
}

/// Implement [`Backend`] for `$store`, a struct whose `pool` is an `sqlx::Pool<$db>` and whose
/// `cache` is its `Arc<SandboxCache>`.
macro_rules! impl_backend {
    ($store:ty, $db:ty) => {
        impl $store {
            fn arguments<'q>(
                params: &[$crate::backend::Param<'q>],
            ) -> Result<<$db as sqlx::Database>::Arguments<'q>, sqlx::Error> {
                use sqlx::Arguments as _;
                use $crate::backend::Param;
                let mut args = <$db as sqlx::Database>::Arguments::default();
                for p in params {
                    match *p {
                        Param::Text(v) => args.add(v),
                        Param::Int(v) => args.add(v),
                        Param::Int32(v) => args.add(v),
                        Param::Float(v) => args.add(v),
                        Param::Bool(v) => args.add(v),
                        Param::Bytes(v) => args.add(v),
                        Param::Time(v) => args.add(v),
                    }
                    .map_err(sqlx::Error::Encode)?;
                }
                Ok(args)
            }
        }

        #[async_trait::async_trait]
        impl $crate::backend::Backend for $store {
            async fn execute(
                &self,
                sql: &str,
                params: &[$crate::backend::Param<'_>],
            ) -> Result<u64, sqlx::Error> {
                let args = Self::arguments(params)?;
                let done = sqlx::query_with(sql, args).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn fetch_all<R: $crate::backend::Record>(
                &self,
                sql: &str,
                params: &[$crate::backend::Param<'_>],
            ) -> Result<Vec<R>, sqlx::Error> {
                let args = Self::arguments(params)?;
                sqlx::query_as_with(sql, args).fetch_all(&self.pool).await
            }

            async fn fetch_optional<R: $crate::backend::Record>(
                &self,
                sql: &str,
                params: &[$crate::backend::Param<'_>],
            ) -> Result<Option<R>, sqlx::Error> {
                let args = Self::arguments(params)?;
                sqlx::query_as_with(sql, args)
                    .fetch_optional(&self.pool)
                    .await
            }

            async fn fetch_one<R: $crate::backend::Record>(
                &self,
                sql: &str,
                params: &[$crate::backend::Param<'_>],
            ) -> Result<R, sqlx::Error> {
                let args = Self::arguments(params)?;
                sqlx::query_as_with(sql, args).fetch_one(&self.pool).await
            }

            async fn execute_all(
                &self,
                statements: &[$crate::backend::Statement<'_>],
            ) -> Result<Result<(), usize>, sqlx::Error> {
                if let [one] = statements {
                    // One statement is all or none by itself: no transaction round trips.
                    let changed = self.execute(&one.sql, &one.params).await?;
                    return Ok(if changed == 0 { Err(0) } else { Ok(()) });
                }
                // Dropping the transaction on an early return rolls it back.
                let mut tx = self.pool.begin().await?;
                for (i, s) in statements.iter().enumerate() {
                    let args = Self::arguments(&s.params)?;
                    let done = sqlx::query_with(&s.sql, args).execute(&mut *tx).await?;
                    if done.rows_affected() == 0 {
                        return Ok(Err(i));
                    }
                }
                tx.commit().await?;
                Ok(Ok(()))
            }

            fn sandbox_cache(&self) -> &$crate::sandbox_cache::SandboxCache {
                &self.cache
            }
        }
    };
}
pub(crate) use impl_backend;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_microseconds_only() {
        let t = DateTime::parse_from_rfc3339("2024-05-06T07:08:09.123456789Z")
            .unwrap()
            .to_utc();
        assert_eq!(ts(t).to_rfc3339(), "2024-05-06T07:08:09.123456+00:00");
        // And every bound timestamp goes through it.
        assert_eq!(Param::from(t), Param::Time(Some(ts(t))));
        assert_eq!(Param::from(Some(t)), Param::Time(Some(ts(t))));
    }
}

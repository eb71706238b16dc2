//! What the SQLite and PostgreSQL backends share: the records sqlx decodes rows into where a
//! column needs converting (enums, JSON; rows without such columns decode straight into their
//! public type), and [`impl_store!`], which writes the one `Store` implementation (and with it
//! all SQL text) for a concrete pool type.
//!
//! Sharing works because the two schemas are kept column-for-column alike and both dialects
//! accept `$n` placeholders, partial unique indexes, `ON CONFLICT ... DO UPDATE` and `UNION`. A
//! macro rather than generic functions: sqlx's generic bounds (`Encode`/`Type`/`Executor` for
//! every bound type, higher-ranked over lifetimes) would outweigh the code they save, while
//! inside the macro each backend sees plain concrete types.

use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};

use crate::{ApiKeyRow, CredentialRow, SandboxRow, Sealed, SecretRow, StoreError, UserRow};

/// PostgreSQL keeps microseconds, SQLite whatever text it is given. Both backends bind
/// timestamps through here so a value reads back the same from either.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// JSON columns are TEXT in both schemas (nothing queries inside them), so they are bound as
/// their serialisation.
pub(crate) fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn parse_json(s: &str, column: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{column} is not JSON: {e}")))
}

pub(crate) fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

/// A unique-index violation becomes a `Conflict` that names the object; any other error stays a
/// database error.
pub(crate) fn conflict_or_db(err: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message()),
        _ => err.into(),
    }
}

/// `NotFound` when an UPDATE or DELETE matched no row.
pub(crate) fn expect_rows(rows_affected: u64, what: &'static str) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

pub(crate) fn secret_conflict(row: &SecretRow) -> String {
    format!(
        "a secret named {} already exists in {} scope",
        row.name, row.scope
    )
}

pub(crate) fn credential_conflict(row: &CredentialRow) -> String {
    format!(
        "a {} credential named {} already exists in {} scope",
        row.kind, row.name, row.scope
    )
}

pub(crate) fn sandbox_conflict(row: &SandboxRow) -> String {
    format!("a sandbox named {} already exists", row.name)
}

/// A secret's or credential's sealed value with its AAD inputs (key rotation).
#[derive(sqlx::FromRow)]
pub(crate) struct SealedRefRecord {
    pub kind: Option<String>,
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub version: i64,
    #[sqlx(flatten, try_from = "crate::models::SealedColumns")]
    pub sealed: Sealed,
}

/// An API key joined with its user (columns of the user prefixed `u_`).
#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyUserRecord {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    u_org_id: String,
    u_name: String,
    u_is_admin: bool,
    u_created_at: DateTime<Utc>,
}

impl From<ApiKeyUserRecord> for (ApiKeyRow, UserRow) {
    fn from(r: ApiKeyUserRecord) -> Self {
        let user = UserRow {
            id: r.key.user_id.clone(),
            org_id: r.u_org_id,
            name: r.u_name,
            is_admin: r.u_is_admin,
            created_at: r.u_created_at,
        };
        (r.key, user)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SecretRecord {
    id: String,
    org_id: String,
    user_id: String,
    name: String,
    description: Option<String>,
    scope: String,
    version: i64,
    #[sqlx(flatten, try_from = "crate::models::SealedColumns")]
    sealed: Sealed,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SecretRecord> for SecretRow {
    type Error = StoreError;
    fn try_from(r: SecretRecord) -> Result<Self, StoreError> {
        Ok(SecretRow {
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            description: r.description,
            scope: parse_enum(&r.scope)?,
            version: r.version,
            sealed: r.sealed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialRecord {
    id: String,
    org_id: String,
    user_id: String,
    kind: String,
    credential_type: String,
    name: String,
    scope: String,
    is_default: bool,
    version: i64,
    expires_at: Option<DateTime<Utc>>,
    #[sqlx(flatten, try_from = "crate::models::SealedColumns")]
    sealed: Sealed,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CredentialRecord> for CredentialRow {
    type Error = StoreError;
    fn try_from(r: CredentialRecord) -> Result<Self, StoreError> {
        Ok(CredentialRow {
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            kind: parse_enum(&r.kind)?,
            credential_type: parse_enum(&r.credential_type)?,
            name: r.name,
            scope: parse_enum(&r.scope)?,
            is_default: r.is_default,
            version: r.version,
            expires_at: r.expires_at,
            sealed: r.sealed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SandboxRecord {
    id: String,
    org_id: String,
    user_id: String,
    name: String,
    provider: String,
    state: String,
    error_message: Option<String>,
    secret_env_vars: String,
    agent_credentials: String,
    resolved_agent_credentials: String,
    secret_names: String,
    injection: String,
    options: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SandboxRecord> for SandboxRow {
    type Error = StoreError;
    fn try_from(r: SandboxRecord) -> Result<Self, StoreError> {
        Ok(SandboxRow {
            state: parse_enum(&r.state)?,
            secret_env_vars: parse_json(&r.secret_env_vars, "sandboxes.secret_env_vars")?,
            agent_credentials: parse_json(&r.agent_credentials, "sandboxes.agent_credentials")?,
            resolved_agent_credentials: parse_json(
                &r.resolved_agent_credentials,
                "sandboxes.resolved_agent_credentials",
            )?,
            secret_names: parse_json(&r.secret_names, "sandboxes.secret_names")?,
            injection: parse_json(&r.injection, "sandboxes.injection")?,
            options: parse_json(&r.options, "sandboxes.options")?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            provider: r.provider,
            error_message: r.error_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRecord {
    id: String,
    org_id: String,
    user_id: String,
    action: String,
    object_type: String,
    object_id: String,
    object_name: String,
    version: Option<i64>,
    sandbox_id: Option<String>,
    detail: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<AuditRecord> for crate::AuditRow {
    type Error = StoreError;
    fn try_from(r: AuditRecord) -> Result<Self, StoreError> {
        Ok(crate::AuditRow {
            detail: parse_json(&r.detail, "audit_events.detail")?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            action: r.action,
            object_type: r.object_type,
            object_id: r.object_id,
            object_name: r.object_name,
            version: r.version,
            sandbox_id: r.sandbox_id,
            created_at: r.created_at,
        })
    }
}

/// Convert every record, failing on the first corrupt one.
pub(crate) fn convert_all<R, T>(records: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    records.into_iter().map(T::try_from).collect()
}

/// One row per name: the user-scoped one where both scopes have it.
pub(crate) fn user_shadows_org(rows: Vec<SecretRow>) -> Vec<SecretRow> {
    let mut by_name: std::collections::BTreeMap<String, SecretRow> = Default::default();
    for row in rows {
        match by_name.get(&row.name) {
            Some(kept) if kept.scope == amika_types::Scope::User => {}
            _ => {
                by_name.insert(row.name.clone(), row);
            }
        }
    }
    by_name.into_values().collect()
}

// Column lists, so each SELECT and its record stay in step.
macro_rules! secret_columns {
    () => {
        "id, org_id, user_id, name, description, scope, version, kek_id, wrapped_key, ciphertext, \
         created_at, updated_at"
    };
}
macro_rules! credential_columns {
    () => {
        "id, org_id, user_id, kind, credential_type, name, scope, is_default, version, expires_at, \
         kek_id, wrapped_key, ciphertext, created_at, updated_at"
    };
}
macro_rules! sandbox_columns {
    () => {
        "id, org_id, user_id, name, provider, state, error_message, secret_env_vars, \
         agent_credentials, resolved_agent_credentials, secret_names, injection, options, \
         created_at, updated_at"
    };
}
macro_rules! api_key_columns {
    () => {
        "id, user_id, name, hash, obfuscated, last_used_at, created_at, updated_at"
    };
}
macro_rules! audit_columns {
    () => {
        "id, org_id, user_id, action, object_type, object_id, object_name, version, sandbox_id, \
         detail, created_at"
    };
}
pub(crate) use {
    api_key_columns, audit_columns, credential_columns, sandbox_columns, secret_columns,
};

#[derive(sqlx::FromRow)]
pub(crate) struct AgentSessionRecord {
    id: String,
    sandbox_id: String,
    org_id: String,
    user_id: String,
    agent: String,
    agent_session_id: Option<String>,
    credential_name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<AgentSessionRecord> for crate::AgentSessionRow {
    type Error = StoreError;
    fn try_from(r: AgentSessionRecord) -> Result<Self, StoreError> {
        Ok(crate::AgentSessionRow {
            agent: parse_enum(&r.agent)?,
            id: r.id,
            sandbox_id: r.sandbox_id,
            org_id: r.org_id,
            user_id: r.user_id,
            agent_session_id: r.agent_session_id,
            credential_name: r.credential_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentTurnRecord {
    id: String,
    session_id: String,
    sandbox_id: String,
    state: String,
    message: String,
    response: Option<String>,
    is_error: bool,
    error_code: Option<String>,
    exit_code: Option<i32>,
    is_new_session: bool,
    agent_session_id: Option<String>,
    cost_usd: Option<f64>,
    duration_ms: Option<i64>,
    deadline_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<AgentTurnRecord> for crate::AgentTurnRow {
    type Error = StoreError;
    fn try_from(r: AgentTurnRecord) -> Result<Self, StoreError> {
        Ok(crate::AgentTurnRow {
            state: parse_enum(&r.state)?,
            id: r.id,
            session_id: r.session_id,
            sandbox_id: r.sandbox_id,
            message: r.message,
            response: r.response,
            is_error: r.is_error,
            error_code: r.error_code,
            exit_code: r.exit_code,
            is_new_session: r.is_new_session,
            agent_session_id: r.agent_session_id,
            cost_usd: r.cost_usd,
            duration_ms: r.duration_ms,
            deadline_at: r.deadline_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

macro_rules! agent_session_columns {
    () => {
        "id, sandbox_id, org_id, user_id, agent, agent_session_id, credential_name, created_at, \
         updated_at"
    };
}
macro_rules! agent_turn_columns {
    () => {
        "id, session_id, sandbox_id, state, message, response, is_error, error_code, exit_code, \
         is_new_session, agent_session_id, cost_usd, duration_ms, deadline_at, created_at, \
         updated_at, finished_at"
    };
}
pub(crate) use {agent_session_columns, agent_turn_columns};

/// Implement [`crate::Store`] for `$store`, a struct with a `pool` field of a concrete sqlx pool.
macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            // ---- vault metadata

            async fn vault_canary(&self) -> $crate::Result<Option<$crate::Sealed>> {
                let sealed: Option<$crate::models::SealedColumns> = sqlx::query_as(
                    "SELECT kek_id, wrapped_key, ciphertext FROM vault_meta WHERE id = 'canary'",
                )
                .fetch_optional(&self.pool)
                .await?;
                Ok(sealed.map(Into::into))
            }

            async fn set_vault_canary(&self, sealed: &$crate::Sealed) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO vault_meta (id, kek_id, wrapped_key, ciphertext) \
                     VALUES ('canary', $1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET kek_id = excluded.kek_id, \
                     wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext",
                )
                .bind(&sealed.kek_id)
                .bind(&sealed.wrapped_key)
                .bind(&sealed.ciphertext)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn kek_ids_in_use(&self) -> $crate::Result<Vec<String>> {
                let mut ids: Vec<String> = sqlx::query_scalar(
                    "SELECT kek_id FROM secrets UNION SELECT kek_id FROM credentials \
                     UNION SELECT kek_id FROM vault_meta",
                )
                .fetch_all(&self.pool)
                .await?;
                // Sorted here rather than in SQL, where the order would depend on the collation.
                ids.sort();
                Ok(ids)
            }

            async fn all_sealed(&self) -> $crate::Result<Vec<$crate::SealedRef>> {
                use $crate::{SealedRef, SealedTable};
                let mut all = Vec::new();
                for (table, name, kind) in [
                    (SealedTable::Secret, "secrets", "CAST(NULL AS TEXT)"),
                    (SealedTable::Credential, "credentials", "kind"),
                ] {
                    let sql = format!(
                        "SELECT {kind} AS kind, id, org_id, user_id, version, kek_id, \
                         wrapped_key, ciphertext FROM {name} ORDER BY id"
                    );
                    let records: Vec<$crate::shared::SealedRefRecord> =
                        sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                    for r in records {
                        let kind = match r.kind {
                            Some(k) => Some($crate::shared::parse_enum(&k)?),
                            None => None,
                        };
                        all.push(SealedRef {
                            table,
                            kind,
                            id: r.id,
                            org_id: r.org_id,
                            user_id: r.user_id,
                            version: r.version,
                            sealed: r.sealed,
                        });
                    }
                }
                if let Some(sealed) = self.vault_canary().await? {
                    all.push(SealedRef {
                        table: SealedTable::Canary,
                        kind: None,
                        id: "canary".into(),
                        org_id: String::new(),
                        user_id: String::new(),
                        version: 0,
                        sealed,
                    });
                }
                Ok(all)
            }

            async fn replace_sealed(&self, updates: &[$crate::SealedRef]) -> $crate::Result<()> {
                use $crate::SealedTable;
                // Dropping the transaction on an early return rolls it back: all or nothing.
                let mut tx = self.pool.begin().await?;
                for u in updates {
                    // Secrets and credentials also match the version the new material was sealed
                    // for: if the row moved on since `all_sealed`, writing would pair a new
                    // version number with a value (and AAD) of the old one.
                    let (sql, what) = match u.table {
                        SealedTable::Secret => (
                            "UPDATE secrets SET kek_id = $1, wrapped_key = $2, ciphertext = $3 \
                             WHERE id = $4 AND version = $5",
                            "secret",
                        ),
                        SealedTable::Credential => (
                            "UPDATE credentials SET kek_id = $1, wrapped_key = $2, ciphertext = $3 \
                             WHERE id = $4 AND version = $5",
                            "credential",
                        ),
                        SealedTable::Canary => (
                            "UPDATE vault_meta SET kek_id = $1, wrapped_key = $2, ciphertext = $3 \
                             WHERE id = $4",
                            "vault canary",
                        ),
                    };
                    let mut query = sqlx::query(sql)
                        .bind(&u.sealed.kek_id)
                        .bind(&u.sealed.wrapped_key)
                        .bind(&u.sealed.ciphertext)
                        .bind(&u.id);
                    if u.table != SealedTable::Canary {
                        query = query.bind(u.version);
                    }
                    let done = query.execute(&mut *tx).await?;
                    if done.rows_affected() == 0 {
                        return Err($crate::StoreError::Conflict(format!(
                            "{what} {} (version {}) was changed or deleted during key rotation; \
                             nothing was replaced",
                            u.id, u.version
                        )));
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            // ---- orgs, users, api keys

            async fn create_org(&self, org: &$crate::OrgRow) -> $crate::Result<()> {
                sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(&org.id)
                    .bind(&org.name)
                    .bind($crate::shared::ts(org.created_at))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| {
                        $crate::shared::conflict_or_db(e, || {
                            format!("an org named {} already exists", org.name)
                        })
                    })?;
                Ok(())
            }

            async fn get_org(&self, id: &str) -> $crate::Result<$crate::OrgRow> {
                let record: Option<$crate::OrgRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                record.ok_or($crate::StoreError::NotFound("org"))
            }

            async fn get_org_by_name(&self, name: &str) -> $crate::Result<$crate::OrgRow> {
                let record: Option<$crate::OrgRow> =
                    sqlx::query_as("SELECT id, name, created_at FROM orgs WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                record.ok_or($crate::StoreError::NotFound("org"))
            }

            async fn count_users(&self) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            async fn count_users_in_org(&self, org_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn create_user(&self, user: &$crate::UserRow) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO users (id, org_id, name, is_admin, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&user.id)
                .bind(&user.org_id)
                .bind(&user.name)
                .bind(user.is_admin)
                .bind($crate::shared::ts(user.created_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || {
                        format!("a user named {} already exists in this org", user.name)
                    })
                })?;
                Ok(())
            }

            async fn get_user(&self, id: &str) -> $crate::Result<$crate::UserRow> {
                let record: Option<$crate::UserRow> = sqlx::query_as(
                    "SELECT id, org_id, name, is_admin, created_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("user"))
            }

            async fn create_api_key(&self, key: &$crate::ApiKeyRow) -> $crate::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO api_keys (",
                    $crate::shared::api_key_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&key.id)
                .bind(&key.user_id)
                .bind(&key.name)
                .bind(&key.hash)
                .bind(&key.obfuscated)
                .bind(key.last_used_at.map($crate::shared::ts))
                .bind($crate::shared::ts(key.created_at))
                .bind($crate::shared::ts(key.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    // Keys are random, so only a reused id or hash can collide.
                    $crate::shared::conflict_or_db(e, || "this API key already exists".to_string())
                })?;
                Ok(())
            }

            async fn get_api_key_by_hash(&self, hash: &str) -> $crate::Result<$crate::ApiKeyRow> {
                let record: Option<$crate::ApiKeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::api_key_columns!(),
                    " FROM api_keys WHERE hash = $1"
                ))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("api key"))
            }

            async fn get_api_key_and_user_by_hash(
                &self,
                hash: &str,
            ) -> $crate::Result<($crate::ApiKeyRow, $crate::UserRow)> {
                let record: Option<$crate::shared::ApiKeyUserRecord> = sqlx::query_as(
                    "SELECT k.id, k.user_id, k.name, k.hash, k.obfuscated, k.last_used_at, \
                     k.created_at, k.updated_at, u.org_id AS u_org_id, u.name AS u_name, \
                     u.is_admin AS u_is_admin, u.created_at AS u_created_at \
                     FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                record.map(Into::into).ok_or($crate::StoreError::NotFound("api key"))
            }

            async fn list_api_keys(
                &self,
                user_id: &str,
            ) -> $crate::Result<Vec<$crate::ApiKeyRow>> {
                let records: Vec<$crate::ApiKeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::api_key_columns!(),
                    " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(records)
            }

            async fn delete_api_key(&self, user_id: &str, id: &str) -> $crate::Result<()> {
                // Matching the owner too: another user's key id is as good as a missing one.
                let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                $crate::shared::expect_rows(done.rows_affected(), "api key")
            }

            async fn touch_api_key(
                &self,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let done = sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind($crate::shared::ts(at))
                    .execute(&self.pool)
                    .await?;
                $crate::shared::expect_rows(done.rows_affected(), "api key")
            }

            // ---- generic secrets

            async fn insert_secret(&self, row: &$crate::SecretRow) -> $crate::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO secrets (",
                    $crate::shared::secret_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(&row.name)
                .bind(&row.description)
                .bind(row.scope.as_str())
                .bind(row.version)
                .bind(&row.sealed.kek_id)
                .bind(&row.sealed.wrapped_key)
                .bind(&row.sealed.ciphertext)
                .bind($crate::shared::ts(row.created_at))
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::secret_conflict(row))
                })?;
                Ok(())
            }

            async fn update_secret(&self, row: &$crate::SecretRow) -> $crate::Result<()> {
                // Everything but id and created_at; a rename or scope change can still conflict.
                let done = sqlx::query(
                    "UPDATE secrets SET org_id = $2, user_id = $3, name = $4, description = $5, \
                     scope = $6, version = $7, kek_id = $8, wrapped_key = $9, ciphertext = $10, \
                     updated_at = $11 WHERE id = $1",
                )
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(&row.name)
                .bind(&row.description)
                .bind(row.scope.as_str())
                .bind(row.version)
                .bind(&row.sealed.kek_id)
                .bind(&row.sealed.wrapped_key)
                .bind(&row.sealed.ciphertext)
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::secret_conflict(row))
                })?;
                $crate::shared::expect_rows(done.rows_affected(), "secret")
            }

            async fn get_secret(&self, id: &str) -> $crate::Result<$crate::SecretRow> {
                let record: Option<$crate::shared::SecretRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::secret_columns!(),
                    " FROM secrets WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("secret"))?.try_into()
            }

            async fn list_visible_secrets(
                &self,
                org_id: &str,
                user_id: &str,
            ) -> $crate::Result<Vec<$crate::SecretRow>> {
                let records: Vec<$crate::shared::SecretRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::secret_columns!(),
                    " FROM secrets WHERE org_id = $1 AND (scope = 'org' OR user_id = $2) \
                     ORDER BY name, scope"
                ))
                .bind(org_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            async fn find_visible_secret(
                &self,
                org_id: &str,
                user_id: &str,
                name: &str,
            ) -> $crate::Result<$crate::SecretRow> {
                // The user's own secret shadows the org's of the same name. One branch per
                // scope, so that each is answered by its scope's unique (owner, name) index: an
                // `OR` of the scopes scans every secret of the org.
                let record: Option<$crate::shared::SecretRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::secret_columns!(),
                    " FROM secrets WHERE scope = 'user' AND user_id = $2 AND org_id = $1 \
                     AND name = $3 \
                     UNION ALL SELECT ",
                    $crate::shared::secret_columns!(),
                    " FROM secrets WHERE scope = 'org' AND org_id = $1 AND name = $3 \
                     ORDER BY scope DESC LIMIT 1" // 'user' sorts after 'org'
                ))
                .bind(org_id)
                .bind(user_id)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("secret"))?.try_into()
            }

            async fn find_visible_secrets(
                &self,
                org_id: &str,
                user_id: &str,
                names: &[String],
            ) -> $crate::Result<Vec<$crate::SecretRow>> {
                let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
                names.sort_unstable();
                names.dedup();
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                // As `find_visible_secret`, one indexed branch per scope; `$3...` are the names.
                let list = (0..names.len())
                    .map(|i| format!("${}", i + 3))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    concat!(
                        "SELECT ",
                        $crate::shared::secret_columns!(),
                        " FROM secrets WHERE scope = 'user' AND user_id = $2 AND org_id = $1 \
                         AND name IN ({list}) \
                         UNION ALL SELECT ",
                        $crate::shared::secret_columns!(),
                        " FROM secrets WHERE scope = 'org' AND org_id = $1 AND name IN ({list})"
                    ),
                    list = list
                );
                let mut query = sqlx::query_as(&sql).bind(org_id).bind(user_id);
                for name in &names {
                    query = query.bind(*name);
                }
                let records: Vec<$crate::shared::SecretRecord> =
                    query.fetch_all(&self.pool).await?;
                let rows: Vec<$crate::SecretRow> = $crate::shared::convert_all(records)?;
                Ok($crate::shared::user_shadows_org(rows))
            }

            async fn delete_secret(&self, id: &str) -> $crate::Result<()> {
                let done = sqlx::query("DELETE FROM secrets WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                $crate::shared::expect_rows(done.rows_affected(), "secret")
            }

            // ---- agent credentials

            async fn insert_credential(&self, row: &$crate::CredentialRow) -> $crate::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO credentials (",
                    $crate::shared::credential_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(row.kind.as_str())
                .bind(row.credential_type.as_str())
                .bind(&row.name)
                .bind(row.scope.as_str())
                .bind(row.is_default)
                .bind(row.version)
                .bind(row.expires_at.map($crate::shared::ts))
                .bind(&row.sealed.kek_id)
                .bind(&row.sealed.wrapped_key)
                .bind(&row.sealed.ciphertext)
                .bind($crate::shared::ts(row.created_at))
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::credential_conflict(row))
                })?;
                Ok(())
            }

            async fn update_credential(&self, row: &$crate::CredentialRow) -> $crate::Result<()> {
                let done = sqlx::query(
                    "UPDATE credentials SET org_id = $2, user_id = $3, kind = $4, \
                     credential_type = $5, name = $6, scope = $7, is_default = $8, version = $9, \
                     expires_at = $10, kek_id = $11, wrapped_key = $12, ciphertext = $13, \
                     updated_at = $14 WHERE id = $1",
                )
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(row.kind.as_str())
                .bind(row.credential_type.as_str())
                .bind(&row.name)
                .bind(row.scope.as_str())
                .bind(row.is_default)
                .bind(row.version)
                .bind(row.expires_at.map($crate::shared::ts))
                .bind(&row.sealed.kek_id)
                .bind(&row.sealed.wrapped_key)
                .bind(&row.sealed.ciphertext)
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::credential_conflict(row))
                })?;
                $crate::shared::expect_rows(done.rows_affected(), "credential")
            }

            async fn get_credential(&self, id: &str) -> $crate::Result<$crate::CredentialRow> {
                let record: Option<$crate::shared::CredentialRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::credential_columns!(),
                    " FROM credentials WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("credential"))?.try_into()
            }

            async fn list_visible_credentials(
                &self,
                org_id: &str,
                user_id: &str,
                kind: amika_types::AgentKind,
            ) -> $crate::Result<Vec<$crate::CredentialRow>> {
                let records: Vec<$crate::shared::CredentialRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::credential_columns!(),
                    " FROM credentials WHERE org_id = $1 AND kind = $3 \
                     AND (scope = 'org' OR user_id = $2) ORDER BY name, scope"
                ))
                .bind(org_id)
                .bind(user_id)
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            async fn clear_default_credential(
                &self,
                user_id: &str,
                kind: amika_types::AgentKind,
                except_id: &str,
            ) -> $crate::Result<()> {
                // Matching nothing is fine: there may be no other default to clear.
                sqlx::query(
                    "UPDATE credentials SET is_default = FALSE \
                     WHERE user_id = $1 AND kind = $2 AND scope = 'user' AND id <> $3",
                )
                .bind(user_id)
                .bind(kind.as_str())
                .bind(except_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_credential(&self, id: &str) -> $crate::Result<()> {
                let done = sqlx::query("DELETE FROM credentials WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                $crate::shared::expect_rows(done.rows_affected(), "credential")
            }

            // ---- sandboxes

            async fn insert_sandbox(&self, row: &$crate::SandboxRow) -> $crate::Result<()> {
                use $crate::shared::json_text;
                sqlx::query(concat!(
                    "INSERT INTO sandboxes (",
                    $crate::shared::sandbox_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(&row.name)
                .bind(&row.provider)
                .bind(row.state.as_str())
                .bind(&row.error_message)
                .bind(json_text(&row.secret_env_vars))
                .bind(json_text(&row.agent_credentials))
                .bind(json_text(&row.resolved_agent_credentials))
                .bind(json_text(&row.secret_names))
                .bind(json_text(&row.injection))
                .bind(json_text(&row.options))
                .bind($crate::shared::ts(row.created_at))
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::sandbox_conflict(row))
                })?;
                Ok(())
            }

            async fn update_sandbox(&self, row: &$crate::SandboxRow) -> $crate::Result<()> {
                use $crate::shared::json_text;
                let done = sqlx::query(
                    "UPDATE sandboxes SET org_id = $2, user_id = $3, name = $4, provider = $5, \
                     state = $6, error_message = $7, secret_env_vars = $8, \
                     agent_credentials = $9, resolved_agent_credentials = $10, \
                     secret_names = $11, injection = $12, options = $13, updated_at = $14 \
                     WHERE id = $1",
                )
                .bind(&row.id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(&row.name)
                .bind(&row.provider)
                .bind(row.state.as_str())
                .bind(&row.error_message)
                .bind(json_text(&row.secret_env_vars))
                .bind(json_text(&row.agent_credentials))
                .bind(json_text(&row.resolved_agent_credentials))
                .bind(json_text(&row.secret_names))
                .bind(json_text(&row.injection))
                .bind(json_text(&row.options))
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || $crate::shared::sandbox_conflict(row))
                })?;
                $crate::shared::expect_rows(done.rows_affected(), "sandbox")
            }

            async fn transition_sandbox(
                &self,
                id: &str,
                from: amika_types::SandboxState,
                to: amika_types::SandboxState,
                error_message: Option<&str>,
                updated_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE sandboxes SET state = $3, error_message = $4, updated_at = $5 \
                     WHERE id = $1 AND state = $2",
                )
                .bind(id)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(error_message)
                .bind($crate::shared::ts(updated_at))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_sandbox(&self, id: &str) -> $crate::Result<$crate::SandboxRow> {
                let record: Option<$crate::shared::SandboxRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::sandbox_columns!(),
                    " FROM sandboxes WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("sandbox"))?.try_into()
            }

            async fn get_sandbox_by_name(
                &self,
                user_id: &str,
                name: &str,
            ) -> $crate::Result<$crate::SandboxRow> {
                let record: Option<$crate::shared::SandboxRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::sandbox_columns!(),
                    " FROM sandboxes WHERE user_id = $1 AND name = $2"
                ))
                .bind(user_id)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
                record.ok_or($crate::StoreError::NotFound("sandbox"))?.try_into()
            }

            async fn list_sandboxes(
                &self,
                user_id: &str,
            ) -> $crate::Result<Vec<$crate::SandboxRow>> {
                let records: Vec<$crate::shared::SandboxRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::sandbox_columns!(),
                    " FROM sandboxes WHERE user_id = $1 ORDER BY name"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            async fn list_all_sandboxes(&self) -> $crate::Result<Vec<$crate::SandboxRow>> {
                let records: Vec<$crate::shared::SandboxRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::sandbox_columns!(),
                    " FROM sandboxes ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            async fn delete_sandbox(&self, id: &str) -> $crate::Result<()> {
                let done = sqlx::query("DELETE FROM sandboxes WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                $crate::shared::expect_rows(done.rows_affected(), "sandbox")
            }

            // ---- audit

            async fn insert_audit_event(&self, event: &$crate::AuditRow) -> $crate::Result<()> {
                self.insert_audit_events(std::slice::from_ref(event)).await
            }

            async fn insert_audit_events(
                &self,
                events: &[$crate::AuditRow],
            ) -> $crate::Result<()> {
                const COLUMNS: usize = 11;
                // Well under both backends' limits on bound parameters (SQLite 32766).
                const PER_STATEMENT: usize = 1000;
                if events.is_empty() {
                    return Ok(());
                }
                // One multi-row INSERT per chunk (one round trip, not one per event). A single
                // statement is all or none by itself; several share a transaction.
                let (mut tx, mut pooled) = (None, None);
                let conn = if events.len() > PER_STATEMENT {
                    &mut **tx.insert(self.pool.begin().await?)
                } else {
                    &mut **pooled.insert(self.pool.acquire().await?)
                };
                for chunk in events.chunks(PER_STATEMENT) {
                    let mut sql = String::from(concat!(
                        "INSERT INTO audit_events (",
                        $crate::shared::audit_columns!(),
                        ") VALUES "
                    ));
                    for i in 0..chunk.len() {
                        let params: Vec<String> = (1..=COLUMNS)
                            .map(|k| format!("${}", i * COLUMNS + k))
                            .collect();
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push('(');
                        sql.push_str(&params.join(", "));
                        sql.push(')');
                    }
                    let mut query = sqlx::query(&sql);
                    for event in chunk {
                        query = query
                            .bind(&event.id)
                            .bind(&event.org_id)
                            .bind(&event.user_id)
                            .bind(&event.action)
                            .bind(&event.object_type)
                            .bind(&event.object_id)
                            .bind(&event.object_name)
                            .bind(event.version)
                            .bind(&event.sandbox_id)
                            .bind($crate::shared::json_text(&event.detail))
                            .bind($crate::shared::ts(event.created_at));
                    }
                    query.execute(&mut *conn).await?;
                }
                if let Some(tx) = tx {
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn list_audit_events(
                &self,
                org_id: &str,
                limit: i64,
            ) -> $crate::Result<Vec<$crate::AuditRow>> {
                // Ids break ties between events of the same microsecond (they are UUIDv7, so
                // time-ordered themselves).
                let records: Vec<$crate::shared::AuditRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::audit_columns!(),
                    " FROM audit_events WHERE org_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(org_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            // ---- agent sessions and turns

            async fn insert_agent_session(
                &self,
                row: &$crate::AgentSessionRow,
            ) -> $crate::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO agent_sessions (",
                    $crate::shared::agent_session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(&row.id)
                .bind(&row.sandbox_id)
                .bind(&row.org_id)
                .bind(&row.user_id)
                .bind(row.agent.as_str())
                .bind(&row.agent_session_id)
                .bind(&row.credential_name)
                .bind($crate::shared::ts(row.created_at))
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || {
                        format!("an agent session with id {} already exists", row.id)
                    })
                })?;
                Ok(())
            }

            async fn update_agent_session(
                &self,
                row: &$crate::AgentSessionRow,
            ) -> $crate::Result<()> {
                // Which sandbox, org, user and agent a session belongs to never changes.
                let done = sqlx::query(
                    "UPDATE agent_sessions SET agent_session_id = $2, credential_name = $3, \
                     updated_at = $4 WHERE id = $1",
                )
                .bind(&row.id)
                .bind(&row.agent_session_id)
                .bind(&row.credential_name)
                .bind($crate::shared::ts(row.updated_at))
                .execute(&self.pool)
                .await?;
                $crate::shared::expect_rows(done.rows_affected(), "agent session")
            }

            async fn get_agent_session(
                &self,
                id: &str,
            ) -> $crate::Result<$crate::AgentSessionRow> {
                let record: Option<$crate::shared::AgentSessionRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::agent_session_columns!(),
                    " FROM agent_sessions WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record
                    .ok_or($crate::StoreError::NotFound("agent session"))?
                    .try_into()
            }

            async fn list_agent_sessions(
                &self,
                sandbox_id: &str,
            ) -> $crate::Result<Vec<$crate::AgentSessionRow>> {
                let records: Vec<$crate::shared::AgentSessionRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::agent_session_columns!(),
                    " FROM agent_sessions WHERE sandbox_id = $1 \
                     ORDER BY updated_at DESC, id DESC"
                ))
                .bind(sandbox_id)
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }

            async fn insert_agent_turn(&self, row: &$crate::AgentTurnRow) -> $crate::Result<()> {
                sqlx::query(concat!(
                    "INSERT INTO agent_turns (",
                    $crate::shared::agent_turn_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17)"
                ))
                .bind(&row.id)
                .bind(&row.session_id)
                .bind(&row.sandbox_id)
                .bind(row.state.as_str())
                .bind(&row.message)
                .bind(&row.response)
                .bind(row.is_error)
                .bind(&row.error_code)
                .bind(row.exit_code)
                .bind(row.is_new_session)
                .bind(&row.agent_session_id)
                .bind(row.cost_usd)
                .bind(row.duration_ms)
                .bind($crate::shared::ts(row.deadline_at))
                .bind($crate::shared::ts(row.created_at))
                .bind($crate::shared::ts(row.updated_at))
                .bind(row.finished_at.map($crate::shared::ts))
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::shared::conflict_or_db(e, || {
                        format!("an agent turn with id {} already exists", row.id)
                    })
                })?;
                Ok(())
            }

            async fn update_agent_turn(&self, row: &$crate::AgentTurnRow) -> $crate::Result<()> {
                // The message, session and creation time are fixed when a turn is created.
                let done = sqlx::query(
                    "UPDATE agent_turns SET state = $2, response = $3, is_error = $4, \
                     error_code = $5, exit_code = $6, is_new_session = $7, \
                     agent_session_id = $8, cost_usd = $9, duration_ms = $10, \
                     deadline_at = $11, updated_at = $12, finished_at = $13 WHERE id = $1",
                )
                .bind(&row.id)
                .bind(row.state.as_str())
                .bind(&row.response)
                .bind(row.is_error)
                .bind(&row.error_code)
                .bind(row.exit_code)
                .bind(row.is_new_session)
                .bind(&row.agent_session_id)
                .bind(row.cost_usd)
                .bind(row.duration_ms)
                .bind($crate::shared::ts(row.deadline_at))
                .bind($crate::shared::ts(row.updated_at))
                .bind(row.finished_at.map($crate::shared::ts))
                .execute(&self.pool)
                .await?;
                $crate::shared::expect_rows(done.rows_affected(), "agent turn")
            }

            async fn get_agent_turn(&self, id: &str) -> $crate::Result<$crate::AgentTurnRow> {
                let record: Option<$crate::shared::AgentTurnRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::agent_turn_columns!(),
                    " FROM agent_turns WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                record
                    .ok_or($crate::StoreError::NotFound("agent turn"))?
                    .try_into()
            }

            async fn list_agent_turns(
                &self,
                session_id: &str,
            ) -> $crate::Result<Vec<$crate::AgentTurnRow>> {
                // Ids break ties within a microsecond (UUIDv7, so time-ordered themselves).
                let records: Vec<$crate::shared::AgentTurnRecord> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shared::agent_turn_columns!(),
                    " FROM agent_turns WHERE session_id = $1 ORDER BY created_at, id"
                ))
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
                $crate::shared::convert_all(records)
            }
        }
    };
}
pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_enum_spelling_is_a_corrupt_row_not_a_panic() {
        let record = SecretRecord {
            id: "s".into(),
            org_id: "o".into(),
            user_id: "u".into(),
            name: "n".into(),
            description: None,
            scope: "everyone".into(),
            version: 1,
            sealed: Sealed {
                kek_id: "k".into(),
                wrapped_key: vec![],
                ciphertext: vec![],
            },
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let err = SecretRow::try_from(record).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(ref m) if m.contains("everyone")),
            "{err:?}"
        );
    }

    #[test]
    fn timestamps_keep_microseconds_only() {
        let t = DateTime::parse_from_rfc3339("2024-05-06T07:08:09.123456789Z")
            .unwrap()
            .to_utc();
        assert_eq!(ts(t).to_rfc3339(), "2024-05-06T07:08:09.123456+00:00");
    }
}

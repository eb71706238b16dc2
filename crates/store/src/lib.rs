//! amika's persistent state behind one [`Store`] trait, with a SQLite backend (the embedded
//! default) and a PostgreSQL backend (several servers sharing one state), chosen by URL.
//!
//! The store never sees a secret value: values arrive as [`Sealed`] ciphertext produced by the
//! vault, and leave the same way. Not-found is its own error variant, never `None` from a failed
//! query and never a default.

mod backend;
mod codec;
mod models;
pub mod postgres;
mod sandbox_cache;
mod sql;
pub mod sqlite;

pub use models::*;
pub use postgres::PostgresStore;
pub use sql::ssh_keys::SshPublicKeyRow;
pub use sql::ssh_tokens::SshTokenRow;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated (e.g. a name already taken); the message names it.
    #[error("{0}")]
    Conflict(String),
    /// Carries only the URL's scheme: the rest may hold a password.
    #[error("unsupported database URL scheme {0:?}: expected sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode; the message names the table, row and column, never the
    /// value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A typed column could not be serialized for storage (a bug, not bad input).
    #[error("cannot encode {table}.{column}: {source}")]
    Encode {
        table: &'static str,
        column: &'static str,
        source: serde_json::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Every persistent operation amika performs. Implementations: `sqlite::SqliteStore`,
/// `postgres::PostgresStore`; [`connect`] picks one by URL.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    // ---- vault metadata
    /// The canary sealed under the master key at first start (`None` only on a fresh database).
    async fn vault_canary(&self) -> Result<Option<Sealed>>;
    async fn set_vault_canary(&self, sealed: &Sealed) -> Result<()>;
    /// Distinct KEK ids referenced by any stored row (secrets, credentials, canary).
    async fn kek_ids_in_use(&self) -> Result<Vec<String>>;
    /// Every sealed value with what is needed to rebuild its AAD, for key rotation.
    async fn all_sealed(&self) -> Result<Vec<SealedRef>>;
    /// Replace the sealed material of many rows in one transaction (key rotation).
    async fn replace_sealed(&self, updates: &[SealedRef]) -> Result<()>;

    // ---- orgs, users, api keys
    async fn create_org(&self, org: &OrgRow) -> Result<()>;
    async fn get_org(&self, id: &str) -> Result<OrgRow>;
    async fn get_org_by_name(&self, name: &str) -> Result<OrgRow>;
    async fn count_users(&self) -> Result<i64>;
    async fn count_users_in_org(&self, org_id: &str) -> Result<i64>;
    async fn create_user(&self, user: &UserRow) -> Result<()>;
    async fn get_user(&self, id: &str) -> Result<UserRow>;
    async fn create_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    /// Look a key up by the SHA-256 hash of its plaintext.
    async fn get_api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRow>;
    /// The key with this hash and the user it belongs to, in one query: every request
    /// authenticates.
    async fn get_api_key_and_user_by_hash(&self, hash: &str) -> Result<(ApiKeyRow, UserRow)>;
    async fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRow>>;
    async fn delete_api_key(&self, user_id: &str, id: &str) -> Result<()>;
    async fn touch_api_key(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> Result<()>;

    // ---- generic secrets
    /// Insert; `Conflict` when (owner, name) is taken in that scope.
    async fn insert_secret(&self, row: &SecretRow) -> Result<()>;
    /// Overwrite metadata and sealed value of an existing row (same id), only if it still has
    /// `previous`'s version and `updated_at` (a compare-and-set in one statement): false when
    /// it changed meanwhile or is gone, and the caller reads it again. `Conflict` when a rename
    /// or scope change takes a name.
    async fn update_secret(&self, row: &SecretRow, previous: &SecretRow) -> Result<bool>;
    /// Write a batch of secrets all or none, in one transaction: `inserts` as
    /// [`Store::insert_secret`], `updates` (new row, row as read) as [`Store::update_secret`],
    /// and `events`, their audit events. False when an update's row changed meanwhile;
    /// `Conflict` when an insert's name was taken meanwhile. Either way nothing was written.
    async fn write_secrets(
        &self,
        inserts: &[SecretRow],
        updates: &[(SecretRow, SecretRow)],
        events: &[AuditRow],
    ) -> Result<bool>;
    async fn get_secret(&self, id: &str) -> Result<SecretRow>;
    /// Secrets visible to a user: their own user-scoped ones and their org's org-scoped ones.
    async fn list_visible_secrets(&self, org_id: &str, user_id: &str) -> Result<Vec<SecretRow>>;
    /// A page of [`Store::list_visible_secrets`]: at most `limit` of them, those after the sort
    /// key `after` = (name, scope) in its order (`("", "")` for the first page).
    async fn list_visible_secrets_after(
        &self,
        org_id: &str,
        user_id: &str,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<SecretRow>>;
    /// The user's own secret of that name, else the org's.
    async fn find_visible_secret(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<SecretRow>;
    /// [`Store::find_visible_secret`] for many names in one query (a create maps many env vars):
    /// for each name found, the user's own secret, else the org's. Missing names are simply
    /// absent from the result; its order is unspecified.
    async fn find_visible_secrets(
        &self,
        org_id: &str,
        user_id: &str,
        names: &[String],
    ) -> Result<Vec<SecretRow>>;
    async fn delete_secret(&self, id: &str) -> Result<()>;

    // ---- agent credentials
    async fn insert_credential(&self, row: &CredentialRow) -> Result<()>;
    /// [`Store::update_secret`] for credentials: a compare-and-set against `previous`.
    async fn update_credential(
        &self,
        row: &CredentialRow,
        previous: &CredentialRow,
    ) -> Result<bool>;
    async fn get_credential(&self, id: &str) -> Result<CredentialRow>;
    /// Credentials of one kind visible to a user (own user-scoped + org-scoped).
    async fn list_visible_credentials(
        &self,
        org_id: &str,
        user_id: &str,
        kind: amika_types::AgentKind,
    ) -> Result<Vec<CredentialRow>>;
    /// Clear `is_default` on every other user-scoped credential of this user and kind.
    async fn clear_default_credential(
        &self,
        user_id: &str,
        kind: amika_types::AgentKind,
        except_id: &str,
    ) -> Result<()>;
    async fn delete_credential(&self, id: &str) -> Result<()>;

    // ---- sandboxes
    /// Insert; `Conflict` when the user already has a sandbox of that name.
    async fn insert_sandbox(&self, row: &SandboxRow) -> Result<()>;
    /// Write every column but the state (which changes only through
    /// [`Store::transition_sandbox`] and [`Store::start_sandbox`]).
    async fn update_sandbox(&self, row: &SandboxRow) -> Result<()>;
    /// Set a sandbox's state, error message and `updated_at` only if it is still in state
    /// `from`, in one statement; false if it is not (changed meanwhile, or gone).
    async fn transition_sandbox(
        &self,
        id: &str,
        from: amika_types::SandboxState,
        to: amika_types::SandboxState,
        error_message: Option<&str>,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
    /// [`Store::transition_sandbox`] for a start: clears the error message and records what
    /// this start injects in the same statement, so the record is written only if the
    /// transition is.
    async fn start_sandbox(
        &self,
        id: &str,
        from: amika_types::SandboxState,
        to: amika_types::SandboxState,
        injection: &InjectionRecord,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
    async fn get_sandbox(&self, id: &str) -> Result<SandboxRow>;
    async fn get_sandbox_by_name(&self, user_id: &str, name: &str) -> Result<SandboxRow>;
    async fn list_sandboxes(&self, user_id: &str) -> Result<Vec<SandboxRow>>;
    /// [`Store::get_sandbox`], from memory when the row is there and nothing has written it
    /// since. Only to show a sandbox: a decision (a state check before acting) reads the
    /// database, so that a row another server has just written can never cause a wrong action.
    /// Fresh after every write through this store; on PostgreSQL, after a write through
    /// another server once its notification has arrived (milliseconds).
    async fn show_sandbox(&self, id: &str) -> Result<SandboxRow>;
    /// [`Store::get_sandbox_by_name`], as [`Store::show_sandbox`].
    async fn show_sandbox_by_name(&self, user_id: &str, name: &str) -> Result<SandboxRow>;
    /// [`Store::list_sandboxes`], as [`Store::show_sandbox`].
    async fn show_sandboxes(&self, user_id: &str) -> Result<std::sync::Arc<Vec<SandboxRow>>>;
    /// Every sandbox of every user (reconciliation at start).
    async fn list_all_sandboxes(&self) -> Result<Vec<SandboxRow>>;
    /// Every sandbox's id with its head, in one query, oldest first. Each head is decoded on
    /// its own: reconciliation at start must see every row, and a row whose state no longer
    /// decodes is its own `Corrupt` beside its id, not a failure of the whole listing.
    async fn list_all_sandbox_heads(&self) -> Result<Vec<(String, Result<SandboxHead>)>>;
    /// A sandbox's identity and state, without its JSON columns.
    async fn get_sandbox_head(&self, id: &str) -> Result<SandboxHead>;
    async fn get_sandbox_head_by_name(&self, user_id: &str, name: &str) -> Result<SandboxHead>;
    /// Set a sandbox's error message and `updated_at` only if it is still in `state` (not a
    /// state change); false if it is not.
    async fn set_sandbox_error(
        &self,
        id: &str,
        state: amika_types::SandboxState,
        error_message: Option<&str>,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool>;
    async fn delete_sandbox(&self, id: &str) -> Result<()>;

    // ---- audit
    async fn insert_audit_event(&self, event: &AuditRow) -> Result<()>;
    /// Several events in one statement, all or none (a create audits every value it injects).
    async fn insert_audit_events(&self, events: &[AuditRow]) -> Result<()>;
    /// At most `limit` of an org's events, newest first: all of them, or with `user_id` only
    /// that user's (filtered before the limit, so a member of a busy org still gets `limit`).
    async fn list_audit_events(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;

    // ---- ssh tokens (only their hashes)
    async fn insert_ssh_token(&self, row: &SshTokenRow) -> Result<()>;
    /// The token whose SHA-256 is `hash`, revoked or expired ones included.
    async fn get_ssh_token_by_hash(&self, hash: &str) -> Result<SshTokenRow>;
    /// Mark the token revoked if it belongs to this sandbox and user and is not revoked yet;
    /// `NotFound` otherwise.
    async fn revoke_ssh_token(
        &self,
        hash: &str,
        sandbox_id: &str,
        user_id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()>;

    // ---- registered ssh public keys
    /// `Conflict` naming which is taken: the key (anyone's) or the name (the user's).
    async fn insert_ssh_public_key(&self, row: &SshPublicKeyRow) -> Result<()>;
    async fn list_ssh_public_keys(&self, user_id: &str) -> Result<Vec<SshPublicKeyRow>>;
    async fn get_ssh_public_key_by_fingerprint(&self, fingerprint: &str)
        -> Result<SshPublicKeyRow>;
    /// `NotFound` unless the key is this user's.
    async fn delete_ssh_public_key(&self, id: &str, user_id: &str) -> Result<()>;

    // ---- agent sessions and their turns (every text already redacted by the server)
    async fn insert_agent_session(&self, row: &AgentSessionRow) -> Result<()>;
    async fn update_agent_session(&self, row: &AgentSessionRow) -> Result<()>;
    async fn get_agent_session(&self, id: &str) -> Result<AgentSessionRow>;
    /// A sandbox's sessions, most recently updated first.
    async fn list_agent_sessions(&self, sandbox_id: &str) -> Result<Vec<AgentSessionRow>>;
    async fn insert_agent_turn(&self, row: &AgentTurnRow) -> Result<()>;
    async fn update_agent_turn(&self, row: &AgentTurnRow) -> Result<()>;
    async fn get_agent_turn(&self, id: &str) -> Result<AgentTurnRow>;
    /// A session's turns, oldest first.
    async fn list_agent_turns(&self, session_id: &str) -> Result<Vec<AgentTurnRow>>;

    // ---- snapshots
    /// A name taken by the same user is a [`StoreError::Conflict`].
    async fn insert_snapshot(&self, row: &SnapshotRow) -> Result<()>;
    /// State, error, size and wrapped key (the rest never changes).
    async fn update_snapshot(&self, row: &SnapshotRow) -> Result<()>;
    async fn get_snapshot(&self, id: &str) -> Result<SnapshotRow>;
    /// The snapshot named `name` that the user sees: their own (either scope) first, then
    /// their org's org-scope one.
    async fn find_visible_snapshot(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<SnapshotRow>;
    /// The snapshots a user sees (their own and their org's org-scope ones), newest first.
    async fn list_visible_snapshots(&self, org_id: &str, user_id: &str)
        -> Result<Vec<SnapshotRow>>;
    /// Bytes of archives held by the user and by their whole org (quotas).
    async fn snapshot_usage(&self, org_id: &str, user_id: &str) -> Result<SnapshotUsage>;
    /// Every snapshot (reconciliation after a restart).
    async fn list_all_snapshots(&self) -> Result<Vec<SnapshotRow>>;
    async fn delete_snapshot(&self, id: &str) -> Result<()>;
}

/// Open (creating if needed) and migrate the store named by `url`:
/// `sqlite://PATH` / `sqlite:PATH` or `postgres://...` / `postgresql://...`.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        // Up to the first ':' (with no ':' there is no user:password either).
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreError::BadUrl(scheme.to_string()))
    }
}

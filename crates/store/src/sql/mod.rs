//! The one implementation of [`Store`], over any [`Backend`]: the SQL text both dialects share,
//! as named constants in a module per area, and the code that binds rows to it and decodes
//! what comes back.
//!
//! Sharing works because the two schemas are kept column-for-column alike and both dialects
//! accept `$n` placeholders, partial unique indexes, `ON CONFLICT ... DO UPDATE` and `UNION`.
//! Where they differ (column types, collations) the migrations say so, not the SQL here.
//!
//! The first migrations (`migrations/{sqlite,postgres}/0001_init.sql`) still say the shared SQL
//! is in `src/shared.rs`: it is here now. They are left as they are, since sqlx checks every
//! applied migration's checksum and an edit would refuse every existing database.

mod accounts;
mod agents;
mod audit;
mod credentials;
mod sandboxes;
mod secrets;
mod snapshots;
pub(crate) mod ssh_keys;
pub(crate) mod ssh_tokens;
mod vault;

use std::sync::Arc;

use amika_types::{AgentKind, SandboxState};
use chrono::{DateTime, Utc};

use crate::backend::Backend;
use crate::{
    AgentSessionRow, AgentTurnRow, ApiKeyRow, AuditRow, CredentialRow, InjectionRecord, OrgRow,
    Result, SandboxHead, SandboxRow, Sealed, SealedRef, SecretRow, SnapshotRow, SnapshotUsage,
    Store, UserRow,
};

#[async_trait::async_trait]
impl<B: Backend> Store for B {
    // ---- vault metadata
    async fn vault_canary(&self) -> Result<Option<Sealed>> {
        vault::vault_canary(self).await
    }
    async fn set_vault_canary(&self, sealed: &Sealed) -> Result<()> {
        vault::set_vault_canary(self, sealed).await
    }
    async fn kek_ids_in_use(&self) -> Result<Vec<String>> {
        vault::kek_ids_in_use(self).await
    }
    async fn all_sealed(&self) -> Result<Vec<SealedRef>> {
        vault::all_sealed(self).await
    }
    async fn replace_sealed(&self, updates: &[SealedRef]) -> Result<()> {
        vault::replace_sealed(self, updates).await
    }

    // ---- orgs, users, api keys
    async fn create_org(&self, org: &OrgRow) -> Result<()> {
        accounts::create_org(self, org).await
    }
    async fn get_org(&self, id: &str) -> Result<OrgRow> {
        accounts::get_org(self, id).await
    }
    async fn get_org_by_name(&self, name: &str) -> Result<OrgRow> {
        accounts::get_org_by_name(self, name).await
    }
    async fn count_users(&self) -> Result<i64> {
        accounts::count_users(self).await
    }
    async fn count_users_in_org(&self, org_id: &str) -> Result<i64> {
        accounts::count_users_in_org(self, org_id).await
    }
    async fn create_user(&self, user: &UserRow) -> Result<()> {
        accounts::create_user(self, user).await
    }
    async fn get_user(&self, id: &str) -> Result<UserRow> {
        accounts::get_user(self, id).await
    }
    async fn create_api_key(&self, key: &ApiKeyRow) -> Result<()> {
        accounts::create_api_key(self, key).await
    }
    async fn get_api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRow> {
        accounts::get_api_key_by_hash(self, hash).await
    }
    async fn get_api_key_and_user_by_hash(&self, hash: &str) -> Result<(ApiKeyRow, UserRow)> {
        accounts::get_api_key_and_user_by_hash(self, hash).await
    }
    async fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRow>> {
        accounts::list_api_keys(self, user_id).await
    }
    async fn delete_api_key(&self, user_id: &str, id: &str) -> Result<()> {
        accounts::delete_api_key(self, user_id, id).await
    }
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        accounts::touch_api_key(self, id, at).await
    }

    // ---- generic secrets
    async fn insert_secret(&self, row: &SecretRow) -> Result<()> {
        secrets::insert_secret(self, row).await
    }
    async fn update_secret(&self, row: &SecretRow, previous: &SecretRow) -> Result<bool> {
        secrets::update_secret(self, row, previous).await
    }
    async fn write_secrets(
        &self,
        inserts: &[SecretRow],
        updates: &[(SecretRow, SecretRow)],
        events: &[AuditRow],
    ) -> Result<bool> {
        secrets::write_secrets(self, inserts, updates, events).await
    }
    async fn get_secret(&self, id: &str) -> Result<SecretRow> {
        secrets::get_secret(self, id).await
    }
    async fn list_visible_secrets(&self, org_id: &str, user_id: &str) -> Result<Vec<SecretRow>> {
        secrets::list_visible_secrets(self, org_id, user_id).await
    }
    async fn list_visible_secrets_after(
        &self,
        org_id: &str,
        user_id: &str,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<SecretRow>> {
        secrets::list_visible_secrets_after(self, org_id, user_id, after, limit).await
    }
    async fn find_visible_secret(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<SecretRow> {
        secrets::find_visible_secret(self, org_id, user_id, name).await
    }
    async fn find_visible_secrets(
        &self,
        org_id: &str,
        user_id: &str,
        names: &[String],
    ) -> Result<Vec<SecretRow>> {
        secrets::find_visible_secrets(self, org_id, user_id, names).await
    }
    async fn delete_secret(&self, id: &str) -> Result<()> {
        secrets::delete_secret(self, id).await
    }

    // ---- agent credentials
    async fn insert_credential(&self, row: &CredentialRow) -> Result<()> {
        credentials::insert_credential(self, row).await
    }
    async fn update_credential(
        &self,
        row: &CredentialRow,
        previous: &CredentialRow,
    ) -> Result<bool> {
        credentials::update_credential(self, row, previous).await
    }
    async fn get_credential(&self, id: &str) -> Result<CredentialRow> {
        credentials::get_credential(self, id).await
    }
    async fn list_visible_credentials(
        &self,
        org_id: &str,
        user_id: &str,
        kind: AgentKind,
    ) -> Result<Vec<CredentialRow>> {
        credentials::list_visible_credentials(self, org_id, user_id, kind).await
    }
    async fn clear_default_credential(
        &self,
        user_id: &str,
        kind: AgentKind,
        except_id: &str,
    ) -> Result<()> {
        credentials::clear_default_credential(self, user_id, kind, except_id).await
    }
    async fn delete_credential(&self, id: &str) -> Result<()> {
        credentials::delete_credential(self, id).await
    }

    // ---- sandboxes
    async fn insert_sandbox(&self, row: &SandboxRow) -> Result<()> {
        let done = sandboxes::insert_sandbox(self, row).await;
        self.sandbox_cache().evict(&row.id);
        done
    }
    async fn update_sandbox(&self, row: &SandboxRow) -> Result<()> {
        let done = sandboxes::update_sandbox(self, row).await;
        self.sandbox_cache().evict(&row.id);
        done
    }
    async fn transition_sandbox(
        &self,
        id: &str,
        from: SandboxState,
        to: SandboxState,
        error_message: Option<&str>,
        updated_at: DateTime<Utc>,
    ) -> Result<bool> {
        let done =
            sandboxes::transition_sandbox(self, id, from, to, error_message, updated_at).await;
        self.sandbox_cache().evict(id);
        done
    }
    async fn start_sandbox(
        &self,
        id: &str,
        from: SandboxState,
        to: SandboxState,
        injection: &InjectionRecord,
        updated_at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sandboxes::start_sandbox(self, id, from, to, injection, updated_at).await;
        self.sandbox_cache().evict(id);
        done
    }
    async fn get_sandbox(&self, id: &str) -> Result<SandboxRow> {
        sandboxes::get_sandbox(self, id).await
    }
    async fn get_sandbox_by_name(&self, user_id: &str, name: &str) -> Result<SandboxRow> {
        sandboxes::get_sandbox_by_name(self, user_id, name).await
    }
    async fn list_sandboxes(&self, user_id: &str) -> Result<Vec<SandboxRow>> {
        sandboxes::list_sandboxes(self, user_id).await
    }
    async fn show_sandbox(&self, id: &str) -> Result<SandboxRow> {
        let cache = self.sandbox_cache();
        let read = sandboxes::get_sandbox(self, id);
        read_through(cache, cache.get(id), read, |t, row| cache.fill(t, row)).await
    }
    async fn show_sandbox_by_name(&self, user_id: &str, name: &str) -> Result<SandboxRow> {
        let cache = self.sandbox_cache();
        let hit = cache.get_by_name(user_id, name);
        let read = sandboxes::get_sandbox_by_name(self, user_id, name);
        read_through(cache, hit, read, |t, row| cache.fill(t, row)).await
    }
    async fn show_sandboxes(&self, user_id: &str) -> Result<Arc<Vec<SandboxRow>>> {
        let cache = self.sandbox_cache();
        let read = async { Ok(Arc::new(sandboxes::list_sandboxes(self, user_id).await?)) };
        let keep = |t, rows: &Arc<_>| cache.fill_list(t, user_id, Arc::clone(rows));
        read_through(cache, cache.list(user_id), read, keep).await
    }
    async fn list_all_sandboxes(&self) -> Result<Vec<SandboxRow>> {
        sandboxes::list_all_sandboxes(self).await
    }
    async fn list_all_sandbox_heads(&self) -> Result<Vec<(String, Result<SandboxHead>)>> {
        sandboxes::list_all_sandbox_heads(self).await
    }
    async fn get_sandbox_head(&self, id: &str) -> Result<SandboxHead> {
        sandboxes::get_sandbox_head(self, id).await
    }
    async fn get_sandbox_head_by_name(&self, user_id: &str, name: &str) -> Result<SandboxHead> {
        sandboxes::get_sandbox_head_by_name(self, user_id, name).await
    }
    async fn set_sandbox_error(
        &self,
        id: &str,
        state: SandboxState,
        error_message: Option<&str>,
        updated_at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sandboxes::set_sandbox_error(self, id, state, error_message, updated_at).await;
        self.sandbox_cache().evict(id);
        done
    }
    async fn delete_sandbox(&self, id: &str) -> Result<()> {
        let done = sandboxes::delete_sandbox(self, id).await;
        self.sandbox_cache().evict(id);
        done
    }

    // ---- audit
    async fn insert_audit_event(&self, event: &AuditRow) -> Result<()> {
        audit::insert_audit_events(self, std::slice::from_ref(event)).await
    }
    async fn insert_audit_events(&self, events: &[AuditRow]) -> Result<()> {
        audit::insert_audit_events(self, events).await
    }
    async fn list_audit_events(
        &self,
        org_id: &str,
        user_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        audit::list_audit_events(self, org_id, user_id, limit).await
    }

    // ---- ssh tokens
    async fn insert_ssh_token(&self, row: &crate::SshTokenRow) -> Result<()> {
        ssh_tokens::insert_ssh_token(self, row).await
    }
    async fn get_ssh_token_by_hash(&self, hash: &str) -> Result<crate::SshTokenRow> {
        ssh_tokens::get_ssh_token_by_hash(self, hash).await
    }
    async fn revoke_ssh_token(
        &self,
        hash: &str,
        sandbox_id: &str,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        ssh_tokens::revoke_ssh_token(self, hash, sandbox_id, user_id, at).await
    }

    // ---- registered ssh public keys
    async fn insert_ssh_public_key(&self, row: &crate::SshPublicKeyRow) -> Result<()> {
        ssh_keys::insert_ssh_public_key(self, row).await
    }
    async fn list_ssh_public_keys(&self, user_id: &str) -> Result<Vec<crate::SshPublicKeyRow>> {
        ssh_keys::list_ssh_public_keys(self, user_id).await
    }
    async fn get_ssh_public_key_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<crate::SshPublicKeyRow> {
        ssh_keys::get_ssh_public_key_by_fingerprint(self, fingerprint).await
    }
    async fn delete_ssh_public_key(&self, id: &str, user_id: &str) -> Result<()> {
        ssh_keys::delete_ssh_public_key(self, id, user_id).await
    }

    // ---- agent sessions and turns
    async fn insert_agent_session(&self, row: &AgentSessionRow) -> Result<()> {
        agents::insert_agent_session(self, row).await
    }
    async fn update_agent_session(&self, row: &AgentSessionRow) -> Result<()> {
        agents::update_agent_session(self, row).await
    }
    async fn get_agent_session(&self, id: &str) -> Result<AgentSessionRow> {
        agents::get_agent_session(self, id).await
    }
    async fn list_agent_sessions(&self, sandbox_id: &str) -> Result<Vec<AgentSessionRow>> {
        agents::list_agent_sessions(self, sandbox_id).await
    }
    async fn insert_agent_turn(&self, row: &AgentTurnRow) -> Result<()> {
        agents::insert_agent_turn(self, row).await
    }
    async fn update_agent_turn(&self, row: &AgentTurnRow) -> Result<()> {
        agents::update_agent_turn(self, row).await
    }
    async fn get_agent_turn(&self, id: &str) -> Result<AgentTurnRow> {
        agents::get_agent_turn(self, id).await
    }
    async fn list_agent_turns(&self, session_id: &str) -> Result<Vec<AgentTurnRow>> {
        agents::list_agent_turns(self, session_id).await
    }

    // ---- snapshots
    async fn insert_snapshot(&self, row: &SnapshotRow) -> Result<()> {
        snapshots::insert_snapshot(self, row).await
    }
    async fn update_snapshot(&self, row: &SnapshotRow) -> Result<()> {
        snapshots::update_snapshot(self, row).await
    }
    async fn get_snapshot(&self, id: &str) -> Result<SnapshotRow> {
        snapshots::get_snapshot(self, id).await
    }
    async fn find_visible_snapshot(
        &self,
        org_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<SnapshotRow> {
        snapshots::find_visible_snapshot(self, org_id, user_id, name).await
    }
    async fn list_visible_snapshots(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> Result<Vec<SnapshotRow>> {
        snapshots::list_visible_snapshots(self, org_id, user_id).await
    }
    async fn snapshot_usage(&self, org_id: &str, user_id: &str) -> Result<SnapshotUsage> {
        snapshots::snapshot_usage(self, org_id, user_id).await
    }
    async fn list_all_snapshots(&self) -> Result<Vec<SnapshotRow>> {
        snapshots::list_all_snapshots(self).await
    }
    async fn delete_snapshot(&self, id: &str) -> Result<()> {
        snapshots::delete_snapshot(self, id).await
    }
}

/// `hit` when the cache had it; else what `read` (a query not yet started) finds, handed to
/// `keep` for the cache unless a sandbox write came between the query's start and its answer.
async fn read_through<T>(
    cache: &crate::sandbox_cache::SandboxCache,
    hit: Option<T>,
    read: impl std::future::Future<Output = Result<T>>,
    keep: impl FnOnce(crate::sandbox_cache::Ticket, &T),
) -> Result<T> {
    if let Some(found) = hit {
        return Ok(found);
    }
    let ticket = cache.ticket();
    let found = read.await?;
    if let Some(ticket) = ticket {
        keep(ticket, &found);
    }
    Ok(found)
}

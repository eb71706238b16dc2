//! Audit events: who did what to which object and version, when, from which sandbox. Never a
//! value; where correlation helps, an HMAC of the value bound to its object, under a key
//! derived from the master key (see `Service::value_hmac`). What an org admin sees of members'
//! events: [`outline_unless_shared`].

use std::ops::RangeInclusive;

use amika_store::AuditRow;
use amika_types as t;
use serde_json::Value;

use super::{new_id, now, Caller, Result, Service, ServiceError};

/// How many events one listing may ask for, and how many it gets when it does not say.
pub const AUDIT_LIMITS: RangeInclusive<i64> = 1..=1000;
const DEFAULT_AUDIT_LIMIT: i64 = 100;

/// The 400 for a `limit` that is not a whole number in [`AUDIT_LIMITS`] (never clamped: a
/// client asking for more than it may have should learn so, not silently get fewer).
pub fn invalid_audit_limit() -> ServiceError {
    ServiceError::bad_request(format!(
        "limit must be a whole number in {}..={}",
        AUDIT_LIMITS.start(),
        AUDIT_LIMITS.end()
    ))
    .at("limit")
}

/// What an event is about.
#[derive(Debug)]
pub struct Subject<'a> {
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub object_name: &'a str,
    pub version: Option<i64>,
}

/// An org admin sees every event of the org, but an event by another member about something
/// private to that member (a user-scoped secret or credential, a sandbox and what was injected
/// into it) only in outline: who, what action, on which kind of object, when. Its object's id
/// and name, its sandbox, version and details are withheld, so that an admin learns neither
/// the existence and names of members' private objects nor anything of their values.
/// Events about what the org shares (org-scoped secrets and credentials, presets) are shown in
/// full, as are the caller's own.
fn outline_unless_shared(caller: &Caller, mut r: AuditRow) -> AuditRow {
    let shared = r.detail["scope"] == "org" || r.object_type == "preset";
    if r.user_id == caller.user_id || shared {
        return r;
    }
    r.object_id = String::new();
    r.object_name = String::new();
    r.version = None;
    r.sandbox_id = None;
    r.detail = serde_json::json!({"private": true});
    r
}

/// An event by `caller`, now.
pub fn audit_row(
    caller: &Caller,
    action: &str,
    subject: Subject<'_>,
    sandbox_id: Option<&str>,
    detail: Value,
) -> AuditRow {
    AuditRow {
        id: new_id("evt"),
        org_id: caller.org_id.clone(),
        user_id: caller.user_id.clone(),
        action: action.to_string(),
        object_type: subject.object_type.to_string(),
        object_id: subject.object_id.to_string(),
        object_name: subject.object_name.to_string(),
        version: subject.version,
        sandbox_id: sandbox_id.map(str::to_string),
        detail,
        created_at: now(),
    }
}

impl Service {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        subject: Subject<'_>,
        sandbox_id: Option<&str>,
        detail: Value,
    ) -> Result<()> {
        self.audit_all(
            caller,
            vec![audit_row(caller, action, subject, sandbox_id, detail)],
        )
        .await
    }

    /// Write several events at once, all or none (rows from [`audit_row`]).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn audit_all(&self, caller: &Caller, rows: Vec<AuditRow>) -> Result<()> {
        self.store.insert_audit_events(&rows).await?;
        for row in &rows {
            tracing::info!(action = %row.action, object_type = %row.object_type, object_id = %row.object_id, user_id = %caller.user_id, "audit");
        }
        Ok(())
    }

    /// Up to `limit` (default 100) of the events the caller may see, newest first: an admin's
    /// whole org, a member's own. Filtered in the store, before the limit, so a member of a
    /// busy org still gets `limit` of theirs.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        limit: Option<i64>,
    ) -> Result<Vec<t::AuditEvent>> {
        let limit = match limit {
            None => DEFAULT_AUDIT_LIMIT,
            Some(n) if AUDIT_LIMITS.contains(&n) => n,
            Some(_) => return Err(invalid_audit_limit()),
        };
        let only_user = (!caller.is_admin).then_some(caller.user_id.as_str());
        let rows = self
            .store
            .list_audit_events(&caller.org_id, only_user, limit)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| outline_unless_shared(caller, r))
            .map(|r| t::AuditEvent {
                id: r.id,
                org_id: r.org_id,
                user_id: r.user_id,
                action: r.action,
                object_type: r.object_type,
                object_id: r.object_id,
                object_name: r.object_name,
                version: r.version,
                sandbox_id: r.sandbox_id,
                detail: r.detail,
                created_at: r.created_at,
            })
            .collect())
    }
}

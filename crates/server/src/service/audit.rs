//! Audit events: who did what to which object and version, when, from which sandbox. Never a
//! value; where correlation helps, an HMAC of the value under a key derived from the master key.

use amika_store::AuditRow;
use amika_types as t;
use serde_json::Value;

use super::{new_id, now, Caller, Result, Service};

/// What an event is about.
#[derive(Debug)]
pub struct Subject<'a> {
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub object_name: &'a str,
    pub version: Option<i64>,
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
    pub async fn audit_all(&self, caller: &Caller, rows: Vec<AuditRow>) -> Result<()> {
        self.store.insert_audit_events(&rows).await?;
        for row in &rows {
            tracing::info!(action = %row.action, object_type = %row.object_type, object_id = %row.object_id, user_id = %caller.user_id, "audit");
        }
        Ok(())
    }

    /// The caller's org's events, newest first.
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        limit: Option<i64>,
    ) -> Result<Vec<t::AuditEvent>> {
        let limit = limit.unwrap_or(100).clamp(1, 1000);
        let rows = self.store.list_audit_events(&caller.org_id, limit).await?;
        Ok(rows
            .into_iter()
            // Members see their own events and org-wide ones; admins see the whole org.
            .filter(|r| caller.is_admin || r.user_id == caller.user_id)
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

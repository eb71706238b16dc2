//! The audit trail: append-only events, written many at once (a create audits every value it
//! injects) and listed newest first — for a whole org, or for one member of it, filtered in SQL
//! so a limit counts the events the caller gets.

use chrono::{DateTime, Utc};

use crate::backend::{params, Backend, Param, Statement};
use crate::codec::{convert_all, decode_json, Cell};
use crate::{AuditRow, Result, StoreError};

// The column list, so each SELECT and `AuditRecord` stay in step.
macro_rules! columns {
    () => {
        "id, org_id, user_id, action, object_type, object_id, object_name, version, sandbox_id, \
         detail, created_at"
    };
}
const COLUMNS: usize = 11;
/// Rows per INSERT: well under both backends' limits on bound parameters (SQLite 32766).
const PER_STATEMENT: usize = 1000;

// Ids break ties between events of the same microsecond (they are UUIDv7, so time-ordered
// themselves).
const LIST_FOR_ORG: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_events WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
);
const LIST_FOR_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_events WHERE org_id = $1 AND user_id = $2 \
     ORDER BY created_at DESC, id DESC LIMIT $3"
);

/// One multi-row INSERT of `rows` events (one round trip, not one per event).
fn insert_many(rows: usize) -> String {
    let mut sql = String::from(concat!(
        "INSERT INTO audit_events (",
        columns!(),
        ") VALUES "
    ));
    for i in 0..rows {
        let placeholders: Vec<String> = (1..=COLUMNS)
            .map(|k| format!("${}", i * COLUMNS + k))
            .collect();
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    sql
}

#[derive(sqlx::FromRow)]
struct AuditRecord {
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

impl TryFrom<AuditRecord> for AuditRow {
    type Error = StoreError;
    fn try_from(r: AuditRecord) -> Result<Self> {
        Ok(AuditRow {
            detail: decode_json(&r.detail, Cell::new("audit_events", &r.id, "detail"))?,
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

/// The statements inserting `events` (with `details`, each event's detail as JSON text): one
/// per [`PER_STATEMENT`] events.
pub(crate) fn audit_statements<'a>(
    events: &'a [AuditRow],
    details: &'a [String],
) -> Vec<Statement<'a>> {
    events
        .chunks(PER_STATEMENT)
        .zip(details.chunks(PER_STATEMENT))
        .map(|(chunk, details)| {
            let mut p: Vec<Param<'_>> = Vec::with_capacity(chunk.len() * COLUMNS);
            for (e, detail) in chunk.iter().zip(details) {
                p.extend(params![
                    &e.id,
                    &e.org_id,
                    &e.user_id,
                    &e.action,
                    &e.object_type,
                    &e.object_id,
                    &e.object_name,
                    e.version,
                    &e.sandbox_id,
                    detail,
                    e.created_at,
                ]);
            }
            Statement {
                sql: insert_many(chunk.len()).into(),
                params: p,
            }
        })
        .collect()
}

/// Several events, all or none: one statement per [`PER_STATEMENT`] events, in one transaction
/// when there are several.
pub(crate) async fn insert_audit_events(db: &impl Backend, events: &[AuditRow]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Free-form JSON already: stored as its text.
    let details: Vec<String> = events.iter().map(|e| e.detail.to_string()).collect();
    let statements = audit_statements(events, &details);
    // An INSERT of at least one row always changes rows: anything else is the database's fault.
    db.execute_all(&statements)
        .await?
        .map_err(|i| sqlx::Error::Protocol(format!("audit statement {i} inserted no rows")).into())
}

pub(crate) async fn list_audit_events(
    db: &impl Backend,
    org_id: &str,
    user_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let records: Vec<AuditRecord> = match user_id {
        None => db.fetch_all(LIST_FOR_ORG, &params![org_id, limit]).await?,
        Some(user_id) => {
            db.fetch_all(LIST_FOR_USER, &params![org_id, user_id, limit])
                .await?
        }
    };
    convert_all(records)
}

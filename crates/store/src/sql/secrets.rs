//! Generic secrets in both scopes: who sees which (their own and their org's), and which wins
//! when both scopes hold a name (the user's own). Values stay sealed; only metadata is readable.

use chrono::{DateTime, Utc};

use super::audit::audit_statements;
use crate::backend::{params, Backend, Param, Statement};
use crate::codec::{conflict_or_db, convert_all, expect_rows, parse_enum, Cell};
use crate::{AuditRow, Result, Sealed, SecretRow, StoreError};

// The column list, so each SELECT and `SecretRecord` stay in step.
macro_rules! columns {
    () => {
        "id, org_id, user_id, name, description, scope, version, kek_id, wrapped_key, ciphertext, \
         created_at, updated_at"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO secrets (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
// Everything but id and created_at; a rename or scope change can still conflict. Only if the
// row is still as it was read ($12, $13): a compare-and-set, so that two concurrent updates
// cannot both store the version they computed from the same old one.
const UPDATE: &str = "UPDATE secrets SET org_id = $2, user_id = $3, name = $4, description = $5, \
     scope = $6, version = $7, kek_id = $8, wrapped_key = $9, ciphertext = $10, \
     updated_at = $11 WHERE id = $1 AND version = $12 AND updated_at = $13";
const GET: &str = concat!("SELECT ", columns!(), " FROM secrets WHERE id = $1");
const LIST_VISIBLE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM secrets WHERE org_id = $1 AND (scope = 'org' OR user_id = $2) ORDER BY name, scope"
);
// A page of [`LIST_VISIBLE`]: the rows after the sort key ($3, $4), at most $5 of them. A user
// sees at most one secret per (name, scope), so the key is unique among the rows listed. One
// branch per scope, each walking its scope's unique (owner, name) index from the key and
// stopping after $5 rows, then merged: a page costs its own rows, not a sort of the whole org's
// secrets (bench/RESULTS.md, issue 17).
const LIST_VISIBLE_AFTER: &str = concat!(
    "SELECT * FROM (SELECT ",
    columns!(),
    " FROM secrets WHERE scope = 'org' AND org_id = $1 AND name >= $3 \
     AND (name > $3 OR 'org' > $4) ORDER BY name LIMIT $5) AS o UNION ALL SELECT * FROM (SELECT ",
    columns!(),
    " FROM secrets WHERE scope = 'user' AND user_id = $2 AND org_id = $1 AND name >= $3 \
     AND (name > $3 OR 'user' > $4) ORDER BY name LIMIT $5) AS u ORDER BY name, scope LIMIT $5"
);
// The user's own secret shadows the org's of the same name. One branch per scope, so that each
// is answered by its scope's unique (owner, name) index: an `OR` of the scopes scans every
// secret of the org.
const FIND_VISIBLE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM secrets WHERE scope = 'user' AND user_id = $2 AND org_id = $1 AND name = $3 \
     UNION ALL SELECT ",
    columns!(),
    " FROM secrets WHERE scope = 'org' AND org_id = $1 AND name = $3 \
     ORDER BY scope DESC LIMIT 1" // 'user' sorts after 'org'
);
const DELETE: &str = "DELETE FROM secrets WHERE id = $1";

/// [`FIND_VISIBLE`] for `count` names, `$3...`, in one query.
fn find_visible_many(count: usize) -> String {
    let list = (0..count)
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        concat!(
            "SELECT ",
            columns!(),
            " FROM secrets WHERE scope = 'user' AND user_id = $2 AND org_id = $1 \
             AND name IN ({list}) \
             UNION ALL SELECT ",
            columns!(),
            " FROM secrets WHERE scope = 'org' AND org_id = $1 AND name IN ({list})"
        ),
        list = list
    )
}

#[derive(sqlx::FromRow)]
struct SecretRecord {
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
    fn try_from(r: SecretRecord) -> Result<Self> {
        Ok(SecretRow {
            scope: parse_enum(&r.scope, Cell::new("secrets", &r.id, "scope"))?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            name: r.name,
            description: r.description,
            version: r.version,
            sealed: r.sealed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn conflict(row: &SecretRow) -> String {
    format!(
        "a secret named {} already exists in {} scope",
        row.name, row.scope
    )
}

/// One row per name: the user-scoped one where both scopes have it.
fn user_shadows_org(rows: Vec<SecretRow>) -> Vec<SecretRow> {
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

fn insert_params(row: &SecretRow) -> Vec<Param<'_>> {
    params![
        &row.id,
        &row.org_id,
        &row.user_id,
        &row.name,
        &row.description,
        row.scope.as_str(),
        row.version,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        &row.sealed.ciphertext,
        row.created_at,
        row.updated_at,
    ]
    .to_vec()
}

pub(crate) async fn insert_secret(db: &impl Backend, row: &SecretRow) -> Result<()> {
    db.execute(INSERT, &insert_params(row))
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    Ok(())
}

/// The parameters of [`UPDATE`]: `row` over the stored row, if that is still `previous`.
fn update_params<'a>(row: &'a SecretRow, previous: &SecretRow) -> Vec<Param<'a>> {
    params![
        &row.id,
        &row.org_id,
        &row.user_id,
        &row.name,
        &row.description,
        row.scope.as_str(),
        row.version,
        &row.sealed.kek_id,
        &row.sealed.wrapped_key,
        &row.sealed.ciphertext,
        row.updated_at,
        previous.version,
        previous.updated_at,
    ]
    .to_vec()
}

/// Inserts, compare-and-set updates (new row, row as read) and their audit events, all or none
/// in one transaction; false when an update's row changed meanwhile.
pub(crate) async fn write_secrets(
    db: &impl Backend,
    inserts: &[SecretRow],
    updates: &[(SecretRow, SecretRow)],
    events: &[AuditRow],
) -> Result<bool> {
    let mut statements: Vec<Statement<'_>> = Vec::new();
    for row in inserts {
        statements.push(Statement {
            sql: INSERT.into(),
            params: insert_params(row),
        });
    }
    for (row, previous) in updates {
        statements.push(Statement {
            sql: UPDATE.into(),
            params: update_params(row, previous),
        });
    }
    let details: Vec<String> = events.iter().map(|e| e.detail.to_string()).collect();
    statements.extend(audit_statements(events, &details));
    let written = db.execute_all(&statements).await.map_err(|e| {
        conflict_or_db(e, || {
            "a secret of this batch was created by another request meanwhile".to_string()
        })
    })?;
    match written {
        Ok(()) => Ok(true),
        // Only an update can change nothing: its row is no longer the one that was read.
        Err(i) if i >= inserts.len() && i < inserts.len() + updates.len() => Ok(false),
        Err(i) => Err(sqlx::Error::Protocol(format!("batch statement {i} changed no rows")).into()),
    }
}

pub(crate) async fn update_secret(
    db: &impl Backend,
    row: &SecretRow,
    previous: &SecretRow,
) -> Result<bool> {
    let done = db
        .execute(UPDATE, &update_params(row, previous))
        .await
        .map_err(|e| conflict_or_db(e, || conflict(row)))?;
    Ok(done > 0)
}

pub(crate) async fn get_secret(db: &impl Backend, id: &str) -> Result<SecretRow> {
    let record: Option<SecretRecord> = db.fetch_optional(GET, &params![id]).await?;
    record.ok_or(StoreError::NotFound("secret"))?.try_into()
}

pub(crate) async fn list_visible_secrets(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
) -> Result<Vec<SecretRow>> {
    let records: Vec<SecretRecord> = db
        .fetch_all(LIST_VISIBLE, &params![org_id, user_id])
        .await?;
    convert_all(records)
}

/// At most `limit` visible secrets after the sort key `after` (name, scope), in list order.
pub(crate) async fn list_visible_secrets_after(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
    after: (&str, &str),
    limit: i64,
) -> Result<Vec<SecretRow>> {
    let p = params![org_id, user_id, after.0, after.1, limit];
    let records: Vec<SecretRecord> = db.fetch_all(LIST_VISIBLE_AFTER, &p).await?;
    convert_all(records)
}

pub(crate) async fn find_visible_secret(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
    name: &str,
) -> Result<SecretRow> {
    let record: Option<SecretRecord> = db
        .fetch_optional(FIND_VISIBLE, &params![org_id, user_id, name])
        .await?;
    record.ok_or(StoreError::NotFound("secret"))?.try_into()
}

pub(crate) async fn find_visible_secrets(
    db: &impl Backend,
    org_id: &str,
    user_id: &str,
    names: &[String],
) -> Result<Vec<SecretRow>> {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = params![org_id, user_id].to_vec();
    p.extend(names.iter().map(|n| Param::from(*n)));
    let records: Vec<SecretRecord> = db.fetch_all(&find_visible_many(names.len()), &p).await?;
    Ok(user_shadows_org(convert_all(records)?))
}

pub(crate) async fn delete_secret(db: &impl Backend, id: &str) -> Result<()> {
    let done = db.execute(DELETE, &params![id]).await?;
    expect_rows(done, "secret")
}

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
}

//! Turning column values into typed fields and back, and sqlx errors into [`StoreError`]s: the
//! one place a stored value that does not decode becomes [`StoreError::Corrupt`] — never a
//! default — naming the table, the row and the column, and never the value.

use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Result, StoreError};

/// Where a column value came from, for the message of a corrupt one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell<'a> {
    pub table: &'static str,
    pub id: &'a str,
    pub column: &'static str,
}

impl<'a> Cell<'a> {
    pub(crate) fn new(table: &'static str, id: &'a str, column: &'static str) -> Self {
        Cell { table, id, column }
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!(
            "{} row {:?}, column {}: {why}",
            self.table, self.id, self.column
        ))
    }
}

/// An enum column (`scope`, `kind`, `state`, ...). The parse error quotes the unknown spelling:
/// these are fixed words of ours, never user data.
pub(crate) fn parse_enum<T: FromStr<Err = String>>(s: &str, at: Cell<'_>) -> Result<T> {
    s.parse().map_err(|e| at.corrupt(e))
}

/// A JSON column (TEXT in both schemas: nothing queries inside them) decoded into its type.
/// The error says what kind of failure and where in the text, not what the text held: a
/// serde message can quote the value.
pub(crate) fn decode_json<T: DeserializeOwned>(text: &str, at: Cell<'_>) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "is not JSON",
            serde_json::error::Category::Eof => "is truncated JSON",
            serde_json::error::Category::Data => "is JSON of the wrong shape",
            serde_json::error::Category::Io => "could not be read",
        };
        at.corrupt(format!(
            "the stored value {what} (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// The text a JSON column stores. Serialized through `serde_json::Value`, as rows always were,
/// so a row written now is byte for byte what the same row was before the columns were typed
/// (object keys in the same order).
pub(crate) fn encode_json<T: Serialize>(
    value: &T,
    table: &'static str,
    column: &'static str,
) -> Result<String> {
    serde_json::to_value(value)
        .map(|v| v.to_string())
        .map_err(|source| StoreError::Encode {
            table,
            column,
            source,
        })
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
pub(crate) fn expect_rows(rows_affected: u64, what: &'static str) -> Result<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

/// Convert every record, failing on the first corrupt one.
pub(crate) fn convert_all<R, T>(records: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    records.into_iter().map(T::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_json_column_names_table_row_and_column_but_not_the_value() {
        let at = Cell::new("sandboxes", "sbx_1", "options");
        for (text, what) in [
            ("{not json", "is not JSON"),
            (r#"{"network":"#, "is truncated JSON"),
            (
                r#"{"network":"sideways-secret"}"#,
                "is JSON of the wrong shape",
            ),
        ] {
            let err = decode_json::<crate::SandboxOptions>(text, at).unwrap_err();
            let StoreError::Corrupt(message) = &err else {
                panic!("{err:?}")
            };
            assert!(
                message.starts_with("sandboxes row \"sbx_1\", column options: ")
                    && message.contains(what),
                "{message}"
            );
            assert!(!message.contains("sideways"), "{message}");
        }
    }

    #[test]
    fn json_columns_are_written_as_before_they_were_typed() {
        // The bytes the untyped columns got (`json!(x).to_string()`) for the same values.
        let options = crate::SandboxOptions::new(amika_types::NetworkMode::None, Some(64), None);
        assert_eq!(
            encode_json(&options, "sandboxes", "options").unwrap(),
            serde_json::json!(options).to_string()
        );
        // Keys sorted: serde_json without `preserve_order`, as this workspace builds it.
        assert_eq!(
            encode_json(&options, "sandboxes", "options").unwrap(),
            r#"{"memory_mib":64,"network":"none","pids":null}"#
        );
    }
}

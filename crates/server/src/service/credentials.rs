//! Agent credentials (Claude, Codex): OAuth documents or API keys, sealed like secrets, at most
//! one default per user and kind. An OAuth value must be the agent's whole credential JSON.

use amika_store::{CredentialRow, StoreError};
use amika_types::{self as t, AgentKind, CredentialType, ErrorCode, Scope};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::Subject;
use super::sealing::SecretString;
use super::secrets::{forbid_org_write, overtaken, visible, writable, MAX_UPDATE_ATTEMPTS};
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

pub(crate) fn to_wire(r: CredentialRow) -> t::CredentialSummary {
    t::CredentialSummary {
        id: r.id,
        kind: r.kind,
        name: r.name,
        credential_type: r.credential_type,
        scope: r.scope,
        is_default: r.is_default,
        org_id: r.org_id,
        user_id: r.user_id,
        version: r.version,
        expires_at: r.expires_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// An agent kind as a request spells it (in a path): an unknown one is `unknown_kind`.
pub fn parse_agent_kind(raw: &str) -> Result<AgentKind> {
    raw.parse()
        .map_err(|message| ServiceError::invalid(ErrorCode::UnknownKind, message))
}

/// Check a value against its type and return the OAuth expiry if it has one.
/// The error never quotes the value.
pub fn check_credential_value(
    kind: AgentKind,
    ty: CredentialType,
    value: &str,
) -> Result<Option<DateTime<Utc>>> {
    validate::value(&format!("{kind} credential"), value)?;
    if kind == AgentKind::Github && ty == CredentialType::Oauth {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidValue,
            "a github credential is a token: push it with type api_key",
        )
        .at("type"));
    }
    match ty {
        CredentialType::ApiKey => {
            if value.trim_start().starts_with('{') {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidValue,
                    format!("{kind} api_key value is a JSON document, not a key: choose type oauth for a credential file"),
                )
                .at("value"));
            }
            if value.trim() != value || value.contains(char::is_whitespace) {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidValue,
                    format!("{kind} api_key value must be a single token without whitespace"),
                )
                .at("value"));
            }
            Ok(None)
        }
        CredentialType::Oauth => {
            let doc = read_oauth_document(value).map_err(|e| ServiceError::invalid(
                ErrorCode::InvalidOauthJson,
                format!(
                    "{kind} oauth value is not valid JSON (line {}, column {}): expected the agent's whole credential document{}",
                    e.line(),
                    e.column(),
                    match kind {
                        AgentKind::Claude => " (~/.claude/.credentials.json)",
                        AgentKind::Codex => " (~/.codex/auth.json)",
                        AgentKind::Github => "",
                    }
                ),
            ).at("value"))?;
            match doc {
                OauthDocument::Object(expiry, shape) => {
                    check_document_kind(kind, shape)?;
                    Ok(expiry.and_then(Expiry::at))
                }
                OauthDocument::NotObject => Err(ServiceError::invalid(
                    ErrorCode::InvalidOauthJson,
                    format!("{kind} oauth value must be a JSON object, the agent's whole credential document"),
                ).at("value")),
            }
        }
    }
}

/// Refuse a document of the other agent: Claude Code's (its `claudeAiOauth`) as a codex
/// credential, or Codex's `auth.json` (its `tokens`, without `claudeAiOauth`) as a claude one.
/// The message names the keys it went by, never a value.
fn check_document_kind(kind: AgentKind, shape: Shape) -> Result<()> {
    let refused = match kind {
        AgentKind::Codex if shape.claude => "this is a Claude Code credential document (it has claudeAiOauth), not a Codex one: choose kind claude for it, or paste the whole ~/.codex/auth.json",
        AgentKind::Claude if shape.codex_tokens && !shape.claude => "this is a Codex credential document (~/.codex/auth.json, with tokens), not a Claude Code one: choose kind codex for it, or paste the whole ~/.claude/.credentials.json",
        _ => return Ok(()),
    };
    Err(ServiceError::invalid(
        ErrorCode::InvalidOauthJson,
        format!("{kind} oauth value: {refused}"),
    )
    .at("value"))
}

/// Which agent's document an OAuth value looks like, by its top-level keys.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Shape {
    /// Has `claudeAiOauth` (Claude Code's `.credentials.json`).
    claude: bool,
    /// Has `tokens` (Codex's `auth.json`).
    codex_tokens: bool,
}

/// What check_credential_value needs of an OAuth document: whether it is an object, and its
/// expiry: `claudeAiOauth.expiresAt` (epoch milliseconds, as Claude writes it), else a
/// top-level `expiresAt`, else `expires_at` (epoch ms or s, or RFC 3339) — the first present.
///
/// Read by a visitor, not parsed into a `serde_json::Value`: a `Value` holds every token of the
/// document as a plain `String` and frees it unzeroized, while the visitor skips each string
/// without copying it (serde_json copies a string only when it has escapes, which tokens do
/// not). As with a `Value`, a repeated key counts by its last occurrence, and nesting is
/// limited by serde_json's recursion limit.
enum OauthDocument {
    Object(Option<Expiry>, Shape),
    NotObject,
}

/// A candidate expiry as the document spells it.
#[derive(Debug, PartialEq)]
enum Expiry {
    /// An integer that fits `i64`.
    Number(i64),
    Text(String),
    /// Anything else (a float, a huge integer, `null`, an object, ...): no expiry.
    Unusable,
}

impl Expiry {
    fn at(self) -> Option<DateTime<Utc>> {
        match self {
            Expiry::Number(n) if n > 100_000_000_000 => DateTime::from_timestamp_millis(n),
            Expiry::Number(n) => DateTime::from_timestamp(n, 0),
            Expiry::Text(s) => DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Expiry::Unusable => None,
        }
    }
}

fn read_oauth_document(value: &str) -> serde_json::Result<OauthDocument> {
    let mut de = serde_json::Deserializer::from_str(value);
    let doc = serde::Deserializer::deserialize_any(&mut de, DocumentVisitor)?;
    de.end()?;
    Ok(doc)
}

mod oauth_visitors {
    //! The serde visitors behind [`super::OauthDocument`]. Every value they do not need is
    //! skipped through `deserialize_any` (not `IgnoredAny`, which serde_json skips without its
    //! recursion limit), so a document is valid exactly when it is valid as a `Value`.

    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    use super::{Expiry, OauthDocument, Shape};

    pub(super) struct DocumentVisitor;
    /// Skips one value, strings without copying them.
    struct Skip;
    /// The value of `claudeAiOauth`: its `expiresAt`, if it is an object that has one.
    struct ClaudeOauth;
    struct ExpiryValue;

    /// The keys that matter; any other is `Other`. Compared without keeping the key.
    enum Key {
        ClaudeOauth,
        CodexTokens,
        ExpiresAt,
        ExpiresAtSnake,
        Other,
    }

    macro_rules! skip_scalars {
        ($value:ty, $skipped:expr) => {
            fn visit_bool<E>(self, _: bool) -> Result<$value, E> {
                Ok($skipped)
            }
            fn visit_i64<E>(self, _: i64) -> Result<$value, E> {
                Ok($skipped)
            }
            fn visit_u64<E>(self, _: u64) -> Result<$value, E> {
                Ok($skipped)
            }
            fn visit_f64<E>(self, _: f64) -> Result<$value, E> {
                Ok($skipped)
            }
            fn visit_str<E>(self, _: &str) -> Result<$value, E> {
                Ok($skipped)
            }
            fn visit_unit<E>(self) -> Result<$value, E> {
                Ok($skipped)
            }
        };
    }

    fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    impl<'de> DeserializeSeed<'de> for Skip {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Skip {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        skip_scalars!((), ());
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
            drain_seq(seq)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_key_seed(KeySeed)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            Ok(())
        }
    }

    struct KeySeed;

    impl<'de> DeserializeSeed<'de> for KeySeed {
        type Value = Key;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeySeed {
        type Value = Key;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object key")
        }
        fn visit_str<E>(self, key: &str) -> Result<Key, E> {
            Ok(match key {
                "claudeAiOauth" => Key::ClaudeOauth,
                "tokens" => Key::CodexTokens,
                "expiresAt" => Key::ExpiresAt,
                "expires_at" => Key::ExpiresAtSnake,
                _ => Key::Other,
            })
        }
    }

    impl<'de> Visitor<'de> for DocumentVisitor {
        type Value = OauthDocument;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        skip_scalars!(OauthDocument, OauthDocument::NotObject);
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OauthDocument, A::Error> {
            drain_seq(seq).map(|()| OauthDocument::NotObject)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OauthDocument, A::Error> {
            let (mut claude, mut camel, mut snake) = (None, None, None);
            let mut shape = Shape::default();
            while let Some(key) = map.next_key_seed(KeySeed)? {
                match key {
                    Key::ClaudeOauth => {
                        shape.claude = true;
                        claude = map.next_value_seed(ClaudeOauth)?;
                    }
                    Key::CodexTokens => {
                        shape.codex_tokens = true;
                        map.next_value_seed(Skip)?;
                    }
                    Key::ExpiresAt => camel = Some(map.next_value_seed(ExpiryValue)?),
                    Key::ExpiresAtSnake => snake = Some(map.next_value_seed(ExpiryValue)?),
                    Key::Other => map.next_value_seed(Skip)?,
                }
            }
            Ok(OauthDocument::Object(claude.or(camel).or(snake), shape))
        }
    }

    impl<'de> DeserializeSeed<'de> for ClaudeOauth {
        type Value = Option<Expiry>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Expiry>, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for ClaudeOauth {
        type Value = Option<Expiry>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        skip_scalars!(Option<Expiry>, None);
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Expiry>, A::Error> {
            drain_seq(seq).map(|()| None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Expiry>, A::Error> {
            let mut expiry = None;
            while let Some(key) = map.next_key_seed(KeySeed)? {
                match key {
                    Key::ExpiresAt => expiry = Some(map.next_value_seed(ExpiryValue)?),
                    _ => map.next_value_seed(Skip)?,
                }
            }
            Ok(expiry)
        }
    }

    impl<'de> DeserializeSeed<'de> for ExpiryValue {
        type Value = Expiry;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Expiry, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for ExpiryValue {
        type Value = Expiry;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Expiry, E> {
            Ok(Expiry::Unusable)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Expiry, E> {
            Ok(Expiry::Unusable)
        }
        fn visit_unit<E>(self) -> Result<Expiry, E> {
            Ok(Expiry::Unusable)
        }
        fn visit_i64<E>(self, n: i64) -> Result<Expiry, E> {
            Ok(Expiry::Number(n))
        }
        fn visit_u64<E>(self, n: u64) -> Result<Expiry, E> {
            Ok(i64::try_from(n).map_or(Expiry::Unusable, Expiry::Number))
        }
        fn visit_str<E>(self, s: &str) -> Result<Expiry, E> {
            Ok(Expiry::Text(s.to_owned()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Expiry, A::Error> {
            drain_seq(seq).map(|()| Expiry::Unusable)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Expiry, A::Error> {
            Skip.visit_map(map).map(|()| Expiry::Unusable)
        }
    }
}

use oauth_visitors::DocumentVisitor;

impl Service {
    pub async fn find_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        id_or_name: &str,
    ) -> Result<CredentialRow> {
        let not_found = || ServiceError::NotFound(format!("{kind} credential {id_or_name:?}"));
        let row = if id_or_name.starts_with("cred_") {
            match self.store.get_credential(id_or_name).await {
                Ok(r) if r.kind == kind => r,
                Ok(_) | Err(StoreError::NotFound(_)) => return Err(not_found()),
                Err(e) => return Err(e.into()),
            }
        } else {
            let mut rows = self
                .store
                .list_visible_credentials(&caller.org_id, &caller.user_id, kind)
                .await?;
            rows.retain(|r| r.name == id_or_name);
            // The caller's own credential wins over the org's of the same name.
            rows.sort_by_key(|r| r.scope != Scope::User);
            rows.into_iter().next().ok_or_else(not_found)?
        };
        if !visible(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(not_found());
        }
        Ok(row)
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, kind = %kind))]
    pub async fn list_credentials(
        &self,
        caller: &Caller,
        kind: AgentKind,
    ) -> Result<Vec<t::CredentialSummary>> {
        let rows = self
            .store
            .list_visible_credentials(&caller.org_id, &caller.user_id, kind)
            .await?;
        Ok(rows.into_iter().map(to_wire).collect())
    }

    fn credential_subject<'a>(row: &'a CredentialRow) -> Subject<'a> {
        Subject {
            object_type: "credential",
            object_id: &row.id,
            object_name: &row.name,
            version: Some(row.version),
        }
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, kind = %kind, credential = %req.name))]
    pub async fn create_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        req: t::CreateCredentialRequest,
    ) -> Result<t::CredentialSummary> {
        validate::object_name("credential name", &req.name)?;
        let value = SecretString::new(req.value);
        let expires_at = check_credential_value(kind, req.credential_type, value.expose_secret())?;
        let scope = req.scope.unwrap_or(Scope::User);
        forbid_org_write(caller, scope, "credentials")?;
        let at = now();
        let mut row = CredentialRow {
            id: new_id("cred"),
            org_id: caller.org_id.clone(),
            user_id: caller.user_id.clone(),
            kind,
            credential_type: req.credential_type,
            name: req.name,
            scope,
            is_default: req.is_default,
            version: 1,
            expires_at,
            sealed: Default::default(),
            created_at: at,
            updated_at: at,
        };
        self.seal_credential(&mut row, &value)?;
        self.store.insert_credential(&row).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict(
                ErrorCode::CredentialExists,
                format!("a {scope}-scoped {kind} credential named {:?} already exists: update it instead", row.name),
            )
            .at("name"),
            e => e.into(),
        })?;
        if row.is_default {
            self.store
                .clear_default_credential(&caller.user_id, kind, &row.id)
                .await?;
        }
        let detail = json!({"kind": kind, "type": row.credential_type, "scope": scope, "is_default": row.is_default, "value_hmac": self.value_hmac(&row.id, &value)});
        self.audit(
            caller,
            "credential.created",
            Self::credential_subject(&row),
            None,
            detail,
        )
        .await?;
        Ok(to_wire(row))
    }

    /// Store `req`'s changes: read, change, compare-and-set, as [`Service::update_secret`]
    /// does, so that concurrent updates each get a version of their own.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, kind = %kind, credential = %id_or_name))]
    pub async fn update_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        id_or_name: &str,
        mut req: t::UpdateCredentialRequest,
    ) -> Result<t::CredentialSummary> {
        let value = req.value.take().map(SecretString::new);
        // After the first read, by id (see `update_secret`).
        let mut key = id_or_name.to_string();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let previous = self.find_credential(caller, kind, &key).await?;
            key.clone_from(&previous.id);
            let (row, detail) = self.changed_credential(caller, &previous, &req, value.as_ref())?;
            if !self.store.update_credential(&row, &previous).await? {
                continue;
            }
            if row.is_default {
                self.store
                    .clear_default_credential(&caller.user_id, kind, &row.id)
                    .await?;
            }
            let subject = Self::credential_subject(&row);
            self.audit(caller, "credential.updated", subject, None, detail)
                .await?;
            return Ok(to_wire(row));
        }
        Err(overtaken("credential", id_or_name))
    }

    /// `previous` with `req`'s changes (a new value sealed for the next version) and the audit
    /// detail of the change.
    fn changed_credential(
        &self,
        caller: &Caller,
        previous: &CredentialRow,
        req: &t::UpdateCredentialRequest,
        value: Option<&SecretString>,
    ) -> Result<(CredentialRow, serde_json::Value)> {
        let kind = previous.kind;
        let mut row = previous.clone();
        if !writable(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(ServiceError::Forbidden(format!(
                "only org admins can change the org-scoped {kind} credential {:?}",
                row.name
            )));
        }
        if let Some(ty) = req.credential_type {
            row.credential_type = ty;
        }
        let mut detail = json!({"kind": kind, "type": row.credential_type});
        match value {
            Some(value) => {
                row.expires_at =
                    check_credential_value(kind, row.credential_type, value.expose_secret())?;
                row.version += 1;
                self.seal_credential(&mut row, value)?;
                detail["value_hmac"] = json!(self.value_hmac(&row.id, value));
            }
            None if req.credential_type.is_some() => {
                // A type change must still describe the stored value. The request has no
                // value: the error is about the type it asks for.
                let current = self.open_credential(&row)?;
                row.expires_at =
                    check_credential_value(kind, row.credential_type, current.expose_secret())
                        .map_err(|e| e.at("type"))?;
            }
            None => {}
        }
        if let Some(d) = req.is_default {
            row.is_default = d;
        }
        row.updated_at = now();
        Ok((row, detail))
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, kind = %kind, credential = %id_or_name))]
    pub async fn delete_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        id_or_name: &str,
    ) -> Result<()> {
        let row = self.find_credential(caller, kind, id_or_name).await?;
        if !writable(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(ServiceError::Forbidden(format!(
                "only org admins can delete the org-scoped {kind} credential {:?}",
                row.name
            )));
        }
        self.store.delete_credential(&row.id).await?;
        self.audit(
            caller,
            "credential.deleted",
            Self::credential_subject(&row),
            None,
            json!({"kind": kind}),
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, kind = %kind, credential = %id_or_name))]
    pub async fn reveal_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        id_or_name: &str,
    ) -> Result<SecretString> {
        let row = self.find_credential(caller, kind, id_or_name).await?;
        self.check_reveal(
            caller,
            &row.org_id,
            &row.user_id,
            row.scope,
            Self::credential_subject(&row),
        )
        .await?;
        let value = self.open_credential(&row)?;
        let detail = json!({"kind": kind, "value_hmac": self.value_hmac(&row.id, &value)});
        self.audit(
            caller,
            "credential.revealed",
            Self::credential_subject(&row),
            None,
            detail,
        )
        .await?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_values_must_be_json_objects_and_errors_never_quote_them() {
        let err =
            check_credential_value(AgentKind::Claude, CredentialType::Oauth, "not-json-SECRET")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("not valid JSON") && err.contains(".credentials.json"),
            "{err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
        let err = check_credential_value(AgentKind::Codex, CredentialType::Oauth, "[1,2]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("JSON object"), "{err}");
    }

    #[test]
    fn a_document_of_the_other_agent_is_refused_naming_the_key_it_went_by() {
        let claude_doc =
            r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-SECRET","expiresAt":1767225600000}}"#;
        let codex_doc = r#"{"OPENAI_API_KEY":null,"tokens":{"access_token":"SECRET"},"last_refresh":"2026-01-01T00:00:00Z"}"#;
        let refused = |kind, doc| {
            let e = check_credential_value(kind, CredentialType::Oauth, doc).unwrap_err();
            assert_eq!(e.field(), Some("value"));
            let text = e.to_string();
            assert!(!text.contains("SECRET"), "{text}");
            text
        };
        let e = refused(AgentKind::Codex, claude_doc);
        assert!(
            e.contains("Claude Code credential document (it has claudeAiOauth)")
                && e.contains("choose kind claude"),
            "{e}"
        );
        let e = refused(AgentKind::Claude, codex_doc);
        assert!(
            e.contains("Codex credential document") && e.contains("choose kind codex"),
            "{e}"
        );
        let e = check_credential_value(AgentKind::Claude, CredentialType::ApiKey, claude_doc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a JSON document, not a key: choose type oauth"),
            "{e}"
        );
        assert!(!e.contains("SECRET"), "{e}");
        // Each under its own kind is accepted; a document with neither key is left alone.
        check_credential_value(AgentKind::Claude, CredentialType::Oauth, claude_doc).unwrap();
        check_credential_value(AgentKind::Codex, CredentialType::Oauth, codex_doc).unwrap();
        check_credential_value(AgentKind::Codex, CredentialType::Oauth, r#"{"a":1}"#).unwrap();
        check_credential_value(AgentKind::Claude, CredentialType::Oauth, r#"{"a":1}"#).unwrap();
    }

    #[test]
    fn claude_expiry_is_read_from_epoch_millis() {
        let doc =
            r#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1767225600000}}"#;
        let at = check_credential_value(AgentKind::Claude, CredentialType::Oauth, doc)
            .unwrap()
            .unwrap();
        assert_eq!(at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(
            check_credential_value(AgentKind::Codex, CredentialType::Oauth, r#"{"tokens":{}}"#)
                .unwrap(),
            None
        );
    }

    #[test]
    fn expiry_is_the_first_present_of_the_three_places_as_a_value_would_read_it() {
        let at = |doc: &str| {
            check_credential_value(AgentKind::Claude, CredentialType::Oauth, doc).unwrap()
        };
        let ts = |s: i64| DateTime::from_timestamp(s, 0);
        assert_eq!(at(r#"{"expiresAt":1767225600}"#), ts(1_767_225_600));
        assert_eq!(
            at(r#"{"expires_at":"2026-01-01T01:00:00+01:00"}"#),
            ts(1_767_225_600)
        );
        // claudeAiOauth first, then expiresAt, then expires_at; present but unusable is None.
        assert_eq!(
            at(r#"{"expires_at":1,"expiresAt":2,"claudeAiOauth":{"expiresAt":3}}"#),
            ts(3)
        );
        assert_eq!(at(r#"{"expires_at":1,"expiresAt":2}"#), ts(2));
        assert_eq!(
            at(r#"{"claudeAiOauth":{"expiresAt":null},"expiresAt":2}"#),
            None
        );
        assert_eq!(at(r#"{"expiresAt":1.5}"#), None);
        assert_eq!(at(r#"{"expiresAt":18446744073709551615}"#), None);
        assert_eq!(at(r#"{"expiresAt":{"s":1}}"#), None);
        // Not an object there: on to the next place.
        assert_eq!(at(r#"{"claudeAiOauth":["x"],"expiresAt":2}"#), ts(2));
        assert_eq!(
            at(r#"{"claudeAiOauth":{"token":"t"},"expiresAt":2}"#),
            ts(2)
        );
        // A repeated key counts by its last occurrence; escapes in keys are undone.
        assert_eq!(at(r#"{"expiresAt":1,"expiresAt":2}"#), ts(2));
        assert_eq!(
            at(r#"{"claudeAiOauth":{"expiresAt":5},"claudeAiOauth":{}}"#),
            None
        );
        assert_eq!(at(r#"{"expires\u0041t":7}"#), ts(7));
    }

    #[test]
    fn oauth_documents_are_valid_exactly_when_serde_json_values_are() {
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for doc in [
            "{}",
            r#"{"a":[1,{"b":null}],"c":"\u00e9"}"#,
            "[]",
            "\"text\"",
            "1",
            "{",
            r#"{"a":1,}"#,
            "{} {}",
            r#"{"a":"\ud800"}"#,
            deep.as_str(),
        ] {
            let as_value = serde_json::from_str::<serde_json::Value>(doc);
            match (read_oauth_document(doc), as_value) {
                (Ok(OauthDocument::Object(..)), Ok(v)) => assert!(v.is_object(), "{doc}"),
                (Ok(OauthDocument::NotObject), Ok(v)) => assert!(!v.is_object(), "{doc}"),
                (Err(a), Err(b)) => {
                    assert_eq!((a.line(), a.column()), (b.line(), b.column()), "{doc}")
                }
                (a, b) => panic!("{doc}: {:?} vs {b:?}", a.map(|_| ())),
            }
        }
    }

    #[test]
    fn api_keys_reject_whitespace() {
        assert!(
            check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "sk-1 2").is_err()
        );
        assert!(check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "").is_err());
        check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "sk-abc").unwrap();
    }
}

//! Agent credentials (Claude, Codex): OAuth documents or API keys, sealed like secrets, at most
//! one default per user and kind. An OAuth value must be the agent's whole credential JSON.

use amika_store::{CredentialRow, StoreError};
use amika_types::{self as t, AgentKind, CredentialType, ErrorCode, Scope};
use amika_vault::{Aad, SecretString};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::Subject;
use super::secrets::{forbid_org_write, to_store_sealed, to_vault_sealed, visible, writable};
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

pub(crate) fn field(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Claude => "credential.claude",
        AgentKind::Codex => "credential.codex",
    }
}

pub(crate) fn credential_aad(row: &CredentialRow) -> Aad<'_> {
    Aad {
        org_id: &row.org_id,
        owner: &row.user_id,
        object_id: &row.id,
        version: row.version,
        field: field(row.kind),
    }
}

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

/// Check a value against its type and return the OAuth expiry if it has one.
/// The error never quotes the value.
pub fn check_credential_value(
    kind: AgentKind,
    ty: CredentialType,
    value: &str,
) -> Result<Option<DateTime<Utc>>> {
    validate::value(&format!("{kind} credential"), value)?;
    match ty {
        CredentialType::ApiKey => {
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
            let doc: serde_json::Value = serde_json::from_str(value).map_err(|e| ServiceError::invalid(
                ErrorCode::InvalidOauthJson,
                format!(
                    "{kind} oauth value is not valid JSON (line {}, column {}): expected the agent's whole credential document{}",
                    e.line(),
                    e.column(),
                    match kind {
                        AgentKind::Claude => " (~/.claude/.credentials.json)",
                        AgentKind::Codex => " (~/.codex/auth.json)",
                    }
                ),
            ).at("value"))?;
            if !doc.is_object() {
                return Err(ServiceError::invalid(
                    ErrorCode::InvalidOauthJson,
                    format!("{kind} oauth value must be a JSON object, the agent's whole credential document"),
                ).at("value"));
            }
            Ok(oauth_expiry(&doc))
        }
    }
}

/// `claudeAiOauth.expiresAt` (epoch milliseconds, as Claude writes it) or a top-level
/// `expiresAt`/`expires_at` (epoch ms or s, or RFC 3339).
fn oauth_expiry(doc: &serde_json::Value) -> Option<DateTime<Utc>> {
    let v = doc
        .pointer("/claudeAiOauth/expiresAt")
        .or_else(|| doc.get("expiresAt"))
        .or_else(|| doc.get("expires_at"))?;
    if let Some(n) = v.as_i64() {
        return if n > 100_000_000_000 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        };
    }
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

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
            sealed: amika_store::Sealed {
                kek_id: String::new(),
                wrapped_key: vec![],
                ciphertext: vec![],
            },
            created_at: at,
            updated_at: at,
        };
        row.sealed = to_store_sealed(self.vault.seal(&value, &credential_aad(&row))?);
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
        let detail = json!({"kind": kind, "type": row.credential_type, "scope": scope, "is_default": row.is_default, "value_hmac": self.vault.hmac(&value)});
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

    pub async fn update_credential(
        &self,
        caller: &Caller,
        kind: AgentKind,
        id_or_name: &str,
        req: t::UpdateCredentialRequest,
    ) -> Result<t::CredentialSummary> {
        let mut row = self.find_credential(caller, kind, id_or_name).await?;
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
        match req.value {
            Some(v) => {
                let value = SecretString::new(v);
                row.expires_at =
                    check_credential_value(kind, row.credential_type, value.expose_secret())?;
                row.version += 1;
                row.sealed = to_store_sealed(self.vault.seal(&value, &credential_aad(&row))?);
                detail["value_hmac"] = json!(self.vault.hmac(&value));
            }
            None if req.credential_type.is_some() => {
                // A type change must still describe the stored value.
                let current = self.open_credential(&row)?;
                row.expires_at =
                    check_credential_value(kind, row.credential_type, current.expose_secret())?;
            }
            None => {}
        }
        if let Some(d) = req.is_default {
            row.is_default = d;
        }
        row.updated_at = now();
        self.store.update_credential(&row).await?;
        if row.is_default {
            self.store
                .clear_default_credential(&caller.user_id, kind, &row.id)
                .await?;
        }
        self.audit(
            caller,
            "credential.updated",
            Self::credential_subject(&row),
            None,
            detail,
        )
        .await?;
        Ok(to_wire(row))
    }

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

    pub(crate) fn open_credential(&self, row: &CredentialRow) -> Result<SecretString> {
        Ok(self
            .vault
            .open(&to_vault_sealed(&row.sealed), &credential_aad(row))?)
    }

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
        let detail = json!({"kind": kind, "value_hmac": self.vault.hmac(&value)});
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
    fn api_keys_reject_whitespace() {
        assert!(
            check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "sk-1 2").is_err()
        );
        assert!(check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "").is_err());
        check_credential_value(AgentKind::Codex, CredentialType::ApiKey, "sk-abc").unwrap();
    }
}

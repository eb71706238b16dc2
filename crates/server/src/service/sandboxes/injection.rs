//! What a sandbox is given: the values its record names, decrypted at their current versions
//! into the provider's [`Injection`] (DESIGN §5: which credential goes where), and the
//! redaction set of those values that every relay of the sandbox's output applies.

use std::collections::BTreeMap;
use std::sync::Arc;

use amika_sandbox::{InjectedEnv, InjectedFile, Injection, SecretBytes};
use amika_store::{
    CredentialRow, InjectedCredentialRef, InjectedSecretRef, InjectionRecord, SandboxRow,
    SecretRow, StoreError,
};
use amika_types::{AgentKind, CredentialType, ErrorCode};

use crate::service::redaction::RedactionSet;
use crate::service::sealing::SecretString;
use crate::service::{Result, Service, ServiceError};

/// Everything a start needs: the injection with its values, and what to redact.
pub(super) struct Prepared {
    pub(super) injection: Injection,
    pub(super) redactions: RedactionSet,
    pub(super) record: InjectionRecord,
}

/// Where an env var that an injected credential also implies would not do what the resolution
/// says: a variable replacing a credential's key, or `ANTHROPIC_API_KEY` beside a claude OAuth
/// login (Claude Code then uses the variable, not the login). `secret_of` names the secret
/// mapped to a variable, `plain` says whether it has a plain value; `credentials` are (kind,
/// type, name). One place for the create's answer, its preview and the sandbox's page.
pub(crate) fn injection_warnings<'a>(
    secret_of: impl Fn(&str) -> Option<&'a str>,
    plain: impl Fn(&str) -> bool,
    credentials: impl IntoIterator<Item = (AgentKind, CredentialType, &'a str)>,
) -> Vec<String> {
    let origin = |var: &str| match secret_of(var) {
        Some(secret) => Some(format!("env var {var} (secret {secret:?})")),
        None => plain(var).then(|| format!("env var {var} (a plain value)")),
    };
    let mut warnings = Vec::new();
    for (kind, credential_type, name) in credentials {
        let var = match kind {
            AgentKind::Claude => "ANTHROPIC_API_KEY",
            AgentKind::Codex => "OPENAI_API_KEY",
            AgentKind::Github => continue,
        };
        let Some(what) = origin(var) else { continue };
        warnings.push(match (kind, credential_type) {
            (AgentKind::Claude, CredentialType::Oauth) => format!(
                "{what} is set beside the claude OAuth credential {name:?}: Claude Code uses the variable, not the OAuth login"
            ),
            _ => format!(
                "{what} replaces the key of the {kind} credential {name:?} that the sandbox reports"
            ),
        });
    }
    warnings
}

/// [`injection_warnings`] of a sandbox as its row recorded what was injected (a create's
/// warnings are not stored: they follow from this record).
pub(crate) fn recorded_injection_warnings(row: &SandboxRow) -> Vec<String> {
    let record = &row.injection;
    injection_warnings(
        |var| {
            let secret = record.secrets.iter().find(|s| s.env == var);
            secret.map(|s| s.name.as_str())
        },
        |var| row.options.env_vars.contains_key(var),
        record
            .credentials
            .iter()
            .map(|c| (c.kind, c.credential_type, c.name.as_str())),
    )
}

/// A decrypted value as the provider takes it (one copy, zeroized on drop).
pub(super) fn secret_bytes(v: &SecretString) -> SecretBytes {
    SecretBytes::new(v.expose_secret().as_bytes().to_vec())
}

/// `~/.codex/auth.json` for an API key: `{"OPENAI_API_KEY":"<key>"}`, the key escaped as JSON.
/// Written into one zeroizing buffer sized for the worst case (every byte escaped as `\u00XX`)
/// so that it never grows: a growing buffer frees each smaller copy of the key unzeroized, and
/// so would a `serde_json::Value` or a `String` built on the way.
fn codex_api_key_auth_json(key: &SecretString) -> Result<SecretBytes> {
    const OPEN: &[u8] = br#"{"OPENAI_API_KEY":"#;
    let mut doc = zeroize::Zeroizing::new(Vec::with_capacity(OPEN.len() + 2 + 6 * key.len() + 1));
    let capacity = doc.capacity();
    doc.extend_from_slice(OPEN);
    serde_json::to_writer(&mut *doc, key.expose_secret()).map_err(ServiceError::internal)?;
    doc.push(b'}');
    debug_assert_eq!(doc.capacity(), capacity, "the buffer grew");
    // Moves the buffer (no copy); the emptied `Zeroizing` has nothing left to clear.
    Ok(SecretBytes::new(std::mem::take(&mut *doc)))
}

/// Add one credential to the injection, as DESIGN §5 lays out.
fn inject_credential(
    injection: &mut Injection,
    kind: AgentKind,
    ty: CredentialType,
    label: &str,
    value: &SecretString,
) -> Result<()> {
    let env = |name: &str| InjectedEnv {
        name: name.to_string(),
        value: secret_bytes(value),
        label: label.to_string(),
    };
    let file = |path: &str, contents: SecretBytes| InjectedFile {
        relative_path: path.to_string(),
        contents,
        label: label.to_string(),
    };
    match (kind, ty) {
        (AgentKind::Claude, CredentialType::ApiKey) => injection.env.push(env("ANTHROPIC_API_KEY")),
        (AgentKind::Claude, CredentialType::Oauth) => injection
            .files
            .push(file(".claude/.credentials.json", secret_bytes(value))),
        (AgentKind::Codex, CredentialType::ApiKey) => {
            injection.env.push(env("OPENAI_API_KEY"));
            let doc = codex_api_key_auth_json(value)?;
            injection.files.push(file(".codex/auth.json", doc));
        }
        (AgentKind::Codex, CredentialType::Oauth) => injection
            .files
            .push(file(".codex/auth.json", secret_bytes(value))),
        // Resolution never picks one: `agent_credentials` names agents only.
        (AgentKind::Github, _) => {
            return Err(ServiceError::internal(
                "a github credential is never injected as an agent credential",
            ))
        }
    }
    Ok(())
}

impl Service {
    /// Decrypt what the record names, at the versions current now, beside the plain env vars.
    /// A plain variable replaces a credential's of the same name, and a secret replaces both:
    /// what the user named last wins over what a credential implies.
    pub(super) fn prepare(
        &self,
        plain_env: &BTreeMap<String, String>,
        secrets: &[(String, SecretRow)],
        credentials: &[CredentialRow],
    ) -> Result<Prepared> {
        let mut injection = Injection::default();
        let mut redactions = RedactionSet::new();
        let mut record = InjectionRecord::default();
        for cred in credentials {
            let value = self.open_credential(cred)?;
            inject_credential(
                &mut injection,
                cred.kind,
                cred.credential_type,
                &cred.name,
                &value,
            )?;
            redactions.add(&cred.name, value.expose_secret().as_bytes());
            record.credentials.push(InjectedCredentialRef {
                kind: cred.kind,
                credential_id: cred.id.clone(),
                name: cred.name.clone(),
                credential_type: cred.credential_type,
                version: cred.version,
            });
        }
        for (name, value) in plain_env {
            injection.env.retain(|e| &e.name != name);
            injection.env.push(InjectedEnv {
                name: name.clone(),
                value: SecretBytes::new(value.as_bytes().to_vec()),
                // Plain values are not redacted (they are no secret, and are shown on the
                // sandbox); the label is never used.
                label: format!("env {name}"),
            });
        }
        for (env, row) in secrets {
            let value = self.open_secret(row)?;
            if value.expose_secret().contains('\0') {
                return Err(ServiceError::unprocessable(
                    ErrorCode::InvalidValue,
                    format!(
                        "secret {:?} cannot be put in env var {env}: its value contains a NUL \
                         byte, which an environment variable cannot hold; push a value without NUL",
                        row.name
                    ),
                )
                .at(format!("secret_env_vars.{env}")));
            }
            // An explicit `--secret env:VAR=...` wins over a credential's variable of the same name.
            injection.env.retain(|e| &e.name != env);
            injection.env.push(InjectedEnv {
                name: env.clone(),
                value: secret_bytes(&value),
                label: row.name.clone(),
            });
            redactions.add(&row.name, value.expose_secret().as_bytes());
            record.secrets.push(InjectedSecretRef {
                env: env.clone(),
                secret_id: row.id.clone(),
                name: row.name.clone(),
                version: row.version,
            });
        }
        Ok(Prepared {
            injection,
            redactions,
            record,
        })
    }

    /// Decrypt the resolved credentials (from the rows resolution read) and the secrets into an
    /// injection.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) fn prepare_resolved(
        &self,
        plain_env: &BTreeMap<String, String>,
        secrets: &[(String, SecretRow)],
        resolutions: &[crate::service::resolver::Resolution],
        credential_rows: &[CredentialRow],
    ) -> Result<Prepared> {
        let mut credentials = Vec::new();
        for r in resolutions {
            if let Some(c) = &r.credential {
                let row = credential_rows
                    .iter()
                    .find(|row| row.id == c.id)
                    .ok_or_else(|| {
                        ServiceError::internal("resolved a credential it did not read")
                    })?;
                credentials.push(row.clone());
            }
        }
        self.prepare(plain_env, secrets, &credentials)
    }

    /// The redaction set of a running sandbox; after a server restart it is rebuilt from the
    /// values recorded for the sandbox.
    pub(crate) async fn redactions_for(&self, row: &SandboxRow) -> Result<Arc<RedactionSet>> {
        if let Some(set) = self
            .redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row.id)
        {
            return Ok(set.clone());
        }
        let record = &row.injection;
        // A row deleted since the start is skipped; any other store error is an error, not a
        // quietly smaller set (the set is cached for the sandbox's whole run).
        fn found<T>(r: Result<T, StoreError>) -> Result<Option<T>> {
            match r {
                Ok(row) => Ok(Some(row)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        let mut secrets = Vec::new();
        for s in &record.secrets {
            if let Some(secret) = found(self.store.get_secret(&s.secret_id).await)? {
                if secret.version != s.version {
                    tracing::warn!(sandbox = %row.id, secret = %s.name, "the secret changed since the sandbox started: its injected value cannot be redacted");
                }
                secrets.push((s.env.clone(), secret));
            }
        }
        let mut credentials = Vec::new();
        for c in &record.credentials {
            if let Some(cred) = found(self.store.get_credential(&c.credential_id).await)? {
                if cred.version != c.version {
                    tracing::warn!(sandbox = %row.id, credential = %c.name, "the credential changed since the sandbox started: its injected value cannot be redacted");
                }
                credentials.push(cred);
            }
        }
        // The same decryption and labels as the start's.
        let set = self
            .prepare(&BTreeMap::new(), &secrets, &credentials)?
            .redactions;
        let set = Arc::new(set);
        self.redactions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(row.id.clone(), set.clone());
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn codex_auth_json_is_what_serde_json_writes_and_never_regrows() {
        let keys = [
            "sk-proj-abc123".to_string(),
            "quote\" back\\slash \u{1} tab\t nl\n é 日本 \u{7f}".to_string(),
            "\u{0}".repeat(40),
        ];
        for key in keys {
            let expected = serde_json::to_vec(&json!({ "OPENAI_API_KEY": key })).unwrap();
            let built = codex_api_key_auth_json(&SecretString::new(key)).unwrap();
            assert_eq!(built.expose_secret(), expected.as_slice());
        }
    }
}

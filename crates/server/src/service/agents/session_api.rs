//! The sessions of the public API that are not a send: create one before its first send, the
//! latest of a sandbox, and a client's update of its status and metadata (`cancelled` stops a
//! send running in it).
//!
//! A session's `metadata` is the client's own: a JSON object, kept as given (its strings,
//! and its keys, redacted with the sandbox's injected values before they are stored), which
//! the server never writes into. What the server records about a session (its credential)
//! is answered apart, in `server_metadata`, so a client can neither overwrite nor be confused
//! by it.
//!
//! Both are audited, as a send is: `agent.session_created` (also when a send starts a session)
//! and `agent.session_updated`, with the session's id, its agent, the status it changed to and
//! the metadata keys a change touched, never a metadata value.

use amika_store::{AgentSessionRow, SandboxRow};
use amika_types::{self as t, AgentKind, AgentSessionStatus, ErrorCode};
use serde_json::{json, Map, Value};

use super::send::credential_for;
use super::sessions::{effective_status, in_flight, session_to_wire};
use crate::service::audit::Subject;
use crate::service::redaction::RedactionSet;
use crate::service::{new_id, now, Caller, Result, Service, ServiceError};

/// How long a PATCH to `cancelled` waits for the sends it stopped to record their end.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest metadata object, serialized.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The client's metadata of a request: an object, at most [`MAX_METADATA_BYTES`].
fn metadata_object(value: Value) -> Result<Map<String, Value>> {
    let what = match &value {
        Value::Object(_) => "",
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    match value {
        Value::Object(map) => check_metadata_size(map),
        _ => Err(ServiceError::bad_request(format!(
            "metadata must be a JSON object (e.g. {{\"ticket\": \"ENG-1\"}}), not {what}"
        ))
        .at("metadata")),
    }
}

fn check_metadata_size(map: Map<String, Value>) -> Result<Map<String, Value>> {
    let size = Value::Object(map).to_string();
    if size.len() > MAX_METADATA_BYTES {
        return Err(ServiceError::bad_request(format!(
            "metadata is {} bytes as JSON, more than the {MAX_METADATA_BYTES} a session keeps",
            size.len()
        ))
        .at("metadata"));
    }
    match serde_json::from_str(&size) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ServiceError::internal("metadata did not round-trip")),
    }
}

/// The same value with every string and key redacted.
fn redact_value(value: Value, redactions: &RedactionSet) -> Value {
    match value {
        Value::String(s) => Value::String(redactions.redact_all(&s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_value(v, redactions))
                .collect(),
        ),
        Value::Object(map) => Value::Object(redact_map(map, redactions)),
        other => other,
    }
}

fn redact_map(map: Map<String, Value>, redactions: &RedactionSet) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (redactions.redact_all(&k), redact_value(v, redactions)))
        .collect()
}

/// RFC 7386: `patch`'s keys set `target`'s, `null` removes one, objects merge recursively.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) => {
                let slot = target
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

impl Service {
    /// A new session with no sends yet, for an agent the sandbox holds a credential for.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn create_agent_session(
        &self,
        caller: &Caller,
        id_or_name: &str,
        req: t::CreateSessionRequest,
    ) -> Result<t::AgentSession> {
        if !req.agent_name.is_agent() {
            return Err(ServiceError::bad_request(format!(
                "{} is not an agent: expected claude or codex",
                req.agent_name
            ))
            .at("agent_name"));
        }
        let metadata = req.metadata.map(metadata_object).transpose()?;
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let credential =
            credential_for(&sandbox, req.agent_name).map_err(|e| e.at("agent_name"))?;
        let redactions = self.redactions_for(&sandbox).await?;
        let metadata = redact_map(metadata.unwrap_or_default(), &redactions);
        let row = self
            .insert_session(caller, &sandbox, req.agent_name, &credential, metadata)
            .await?;
        Ok(session_to_wire(&row, &[], false))
    }

    /// An `agent.*` event about a session of `sandbox` (`agent.session_created`,
    /// `agent.session_updated`, `agent.message_sent`): ids, the agent, statuses and metadata
    /// keys, never a metadata value or a message.
    pub(super) async fn audit_session(
        &self,
        caller: &Caller,
        sandbox: &SandboxRow,
        action: &str,
        detail: Value,
    ) -> Result<()> {
        let subject = Subject {
            object_type: "sandbox",
            object_id: &sandbox.id,
            object_name: &sandbox.name,
            version: None,
        };
        self.audit(caller, action, subject, Some(&sandbox.id), detail)
            .await
    }

    /// A new session row, written now (it needs no lock: nobody else knows it yet), and its
    /// `agent.session_created` event (a client's create, or a send that starts a session).
    pub(super) async fn insert_session(
        &self,
        caller: &Caller,
        sandbox: &SandboxRow,
        kind: AgentKind,
        credential: &str,
        metadata: Map<String, Value>,
    ) -> Result<AgentSessionRow> {
        let at = now();
        let s = AgentSessionRow {
            id: new_id("ses"),
            sandbox_id: sandbox.id.clone(),
            org_id: sandbox.org_id.clone(),
            user_id: caller.user_id.clone(),
            agent: kind,
            agent_session_id: None,
            credential_name: credential.to_string(),
            status: AgentSessionStatus::Idle,
            ended_at: None,
            metadata,
            created_at: at,
            updated_at: at,
        };
        self.store.insert_agent_session(&s).await?;
        let keys: Vec<&String> = s.metadata.keys().collect();
        let detail = json!({
            "agent": s.agent,
            "credential": credential,
            "session_id": s.id,
            "status": s.status,
            "metadata_keys": keys,
        });
        self.audit_session(caller, sandbox, "agent.session_created", detail)
            .await?;
        Ok(s)
    }

    /// The sandbox's most recently used session (of `agent`, when given), without its
    /// transcript; not found when there is none.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name))]
    pub async fn latest_agent_session(
        &self,
        caller: &Caller,
        id_or_name: &str,
        agent: Option<&str>,
    ) -> Result<t::AgentSession> {
        let agent = agent
            .map(|a| {
                a.parse::<AgentKind>()
                    .map_err(|e| ServiceError::bad_request(e).at("agent"))
            })
            .transpose()?;
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let row = self
            .store
            .list_agent_sessions(&sandbox.id)
            .await?
            .into_iter()
            .find(|s| agent.is_none_or(|k| s.agent == k))
            .ok_or_else(|| {
                ServiceError::NotFound(match agent {
                    Some(k) => format!("a {k} session in sandbox {:?}", sandbox.name),
                    None => format!("a session in sandbox {:?}", sandbox.name),
                })
            })?;
        let turns = self.session_turns(&row.id).await?;
        Ok(session_to_wire(&row, &turns, false))
    }

    /// A client's change of a session's status and metadata (see [`t::UpdateSessionRequest`]).
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, sandbox = %id_or_name, session = %session_id))]
    pub async fn update_agent_session(
        &self,
        caller: &Caller,
        id_or_name: &str,
        session_id: &str,
        req: t::UpdateSessionRequest,
    ) -> Result<t::AgentSession> {
        if req.status == Some(AgentSessionStatus::Running) {
            return Err(ServiceError::bad_request(
                "status running is the server's to set while a send runs: expected idle, \
                 completed, failed or cancelled",
            )
            .at("status"));
        }
        let patch = req.metadata.map(metadata_object).transpose()?;
        let sandbox = self.find_sandbox(caller, id_or_name).await?;
        let found = self.sandbox_session(&sandbox, session_id).await?;
        let redactions = self.redactions_for(&sandbox).await?;
        if req.status == Some(AgentSessionStatus::Cancelled) {
            self.cancel_sends(&found.id).await?;
        }
        // Under the session's lock: a send reads and writes the row under it too.
        let lock = self.agent_session_lock(&found.id);
        let _guard = lock.lock().await;
        let mut row = self.store.get_agent_session(&found.id).await?;
        let before = (row.status, row.metadata.clone());
        let turns = self.session_turns(&row.id).await?;
        if let Some(status) = req.status {
            if effective_status(&row, &turns) == AgentSessionStatus::Running {
                return Err(ServiceError::conflict(
                    ErrorCode::SessionBusy,
                    format!(
                        "session {} is answering a message: its status can change once the send \
                         ends (status cancelled stops it, when it runs on this server)",
                        row.id
                    ),
                )
                .at("status"));
            }
            row.status = status;
            row.ended_at = match status {
                AgentSessionStatus::Idle | AgentSessionStatus::Running => None,
                _ => Some(now()),
            };
        }
        if let Some(patch) = patch {
            merge_patch(&mut row.metadata, redact_map(patch, &redactions));
            row.metadata = check_metadata_size(std::mem::take(&mut row.metadata))?;
        }
        row.updated_at = now();
        self.store.update_agent_session(&row).await?;
        let mut detail = json!({
            "agent": row.agent,
            "session_id": row.id,
            "metadata_keys_changed": changed_keys(&before.1, &row.metadata),
        });
        if before.0 != row.status {
            detail["status"] = json!(row.status);
            detail["previous_status"] = json!(before.0);
        }
        self.audit_session(caller, &sandbox, "agent.session_updated", detail)
            .await?;
        Ok(session_to_wire(&row, &turns, false))
    }
}

impl Service {
    /// Stop the sends of a session that run on this server and wait until each has recorded
    /// its end (bounded: a send that takes longer is left to finish on its own).
    async fn cancel_sends(&self, session_id: &str) -> Result<()> {
        for turn in self.session_turns(session_id).await? {
            let Some(live) = self.live_send(&turn.id).filter(|_| in_flight(&turn)) else {
                continue;
            };
            live.cancel(
                "the session was cancelled (status set to cancelled) while the agent was \
                 running; the agent was stopped",
            );
            let mut follower = live.feed.follow(true);
            let drained = async { while follower.next().await.is_some() {} };
            if tokio::time::timeout(CANCEL_WAIT, drained).await.is_err() {
                tracing::warn!(job_id = %turn.id, "a cancelled send has not ended yet");
            }
        }
        Ok(())
    }
}

/// The top-level keys whose value differs between `before` and `after` (added, changed or
/// removed), sorted: what an audit event says of a metadata change, never the values.
fn changed_keys<'a>(before: &'a Map<String, Value>, after: &'a Map<String, Value>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn merge_patch_sets_removes_and_merges_nested_objects() {
        let mut target = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": "x"}));
        merge_patch(
            &mut target,
            obj(json!({"a": null, "b": {"c": null, "z": 9}, "e": {"k": 1}, "g": true})),
        );
        assert_eq!(
            Value::Object(target),
            json!({"b": {"d": 3, "z": 9}, "e": {"k": 1}, "f": "x", "g": true})
        );
    }

    #[test]
    fn changed_keys_are_those_added_changed_or_removed() {
        let before = obj(json!({"same": 1, "changed": {"a": 1}, "removed": "x"}));
        let after = obj(json!({"same": 1, "changed": {"a": 2}, "added": null}));
        assert_eq!(
            changed_keys(&before, &after),
            ["added", "changed", "removed"]
        );
        assert!(changed_keys(&before, &before).is_empty());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        for (value, what) in [
            (json!("x"), "not a string"),
            (json!([1]), "not an array"),
            (json!(3), "not a number"),
        ] {
            let err = metadata_object(value).unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        }
        let big = json!({"k": "x".repeat(MAX_METADATA_BYTES)});
        let err = metadata_object(big).unwrap_err().to_string();
        assert!(err.contains("more than the 16384"), "{err}");
        assert_eq!(
            metadata_object(json!({"k": [1, {"n": null}]})).unwrap(),
            obj(json!({"k": [1, {"n": null}]}))
        );
    }
}

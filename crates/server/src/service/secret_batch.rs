//! Many secrets pushed at once (`POST /secret-batches`), all or nothing: every entry is checked
//! before anything is written, every error is answered at once with its entry's index, and the
//! rows and their audit events are written in one transaction. A push killed halfway (its
//! request cut off) stores nothing.

use std::collections::HashMap;

use amika_store::{AuditRow, SecretRow, StoreError};
use amika_types::{self as t, Scope};
use serde_json::json;

use super::audit::audit_row;
use super::sealing::SecretString;
use super::secrets::{overtaken, to_wire, MAX_UPDATE_ATTEMPTS};
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

/// One checked entry: its scope decided, its value wrapped.
struct Entry {
    name: String,
    value: SecretString,
    scope: Scope,
    description: Option<String>,
}

/// What one attempt will write.
#[derive(Default)]
struct Plan {
    inserts: Vec<SecretRow>,
    updates: Vec<(SecretRow, SecretRow)>,
    events: Vec<AuditRow>,
    /// Per entry, in request order: (action, inserted or updated, index into that list).
    order: Vec<(t::SecretBatchAction, usize)>,
}

/// Check every entry; all the errors at once, each at `secrets[i].FIELD`.
fn check_entries(caller: &Caller, req: t::SecretBatchRequest) -> Result<Vec<Entry>> {
    if req.secrets.is_empty() {
        return Err(
            ServiceError::bad_request("secrets must hold at least one secret").at("secrets"),
        );
    }
    if let Some(i) = req.secrets.iter().position(|e| e.scope == Some(Scope::Org)) {
        if !caller.is_admin {
            return Err(ServiceError::Forbidden(format!(
                "only org admins can change org-scoped secrets (secrets[{i}] is org-scoped); \
                 nothing was stored"
            )));
        }
    }
    let mut errors = Vec::new();
    let mut seen: HashMap<(String, Scope), usize> = HashMap::new();
    let mut entries = Vec::with_capacity(req.secrets.len());
    for (i, e) in req.secrets.into_iter().enumerate() {
        let scope = e.scope.unwrap_or(Scope::User);
        if let Err(err) = validate::object_name("secret name", &e.name) {
            errors.push(err.at(format!("secrets[{i}].name")));
        } else if let Some(first) = seen.insert((e.name.clone(), scope), i) {
            errors.push(
                ServiceError::bad_request(format!(
                    "secrets[{i}] repeats the {scope}-scoped name {:?} of secrets[{first}]",
                    e.name
                ))
                .at(format!("secrets[{i}].name")),
            );
        }
        let value = SecretString::new(e.value);
        if let Err(err) = validate::value("secret", value.expose_secret()) {
            errors.push(err.at(format!("secrets[{i}].value")));
        }
        entries.push(Entry {
            name: e.name,
            value,
            scope,
            description: e.description,
        });
    }
    ServiceError::all(errors)?;
    Ok(entries)
}

impl Service {
    /// Create or update (a new version of) every secret of the batch, all or nothing.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, count = req.secrets.len()))]
    pub async fn push_secrets(
        &self,
        caller: &Caller,
        req: t::SecretBatchRequest,
    ) -> Result<t::SecretBatchResponse> {
        let entries = check_entries(caller, req)?;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let plan = self.plan_batch(caller, &entries).await?;
            let written = match self
                .store
                .write_secrets(&plan.inserts, &plan.updates, &plan.events)
                .await
            {
                Ok(written) => written,
                // Created by another request since this one read: read again.
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(e.into()),
            };
            if written {
                for e in &plan.events {
                    tracing::info!(action = %e.action, object_type = %e.object_type, object_id = %e.object_id, user_id = %caller.user_id, "audit");
                }
                return Ok(plan.answer());
            }
        }
        Err(overtaken("secret batch", "of this push"))
    }

    /// The rows and events of one attempt, from the caller's secrets as they are now.
    async fn plan_batch(&self, caller: &Caller, entries: &[Entry]) -> Result<Plan> {
        let existing: HashMap<(String, Scope), SecretRow> = self
            .store
            .list_visible_secrets(&caller.org_id, &caller.user_id)
            .await?
            .into_iter()
            .map(|r| ((r.name.clone(), r.scope), r))
            .collect();
        let at = now();
        let mut plan = Plan::default();
        for e in entries {
            let (action, mut row) = match existing.get(&(e.name.clone(), e.scope)) {
                Some(previous) => {
                    let mut row = previous.clone();
                    row.version += 1;
                    if e.description.is_some() {
                        row.description.clone_from(&e.description);
                    }
                    row.updated_at = at;
                    (t::SecretBatchAction::Updated, row)
                }
                None => (
                    t::SecretBatchAction::Created,
                    SecretRow {
                        id: new_id("sec"),
                        org_id: caller.org_id.clone(),
                        user_id: caller.user_id.clone(),
                        name: e.name.clone(),
                        description: e.description.clone(),
                        scope: e.scope,
                        version: 1,
                        sealed: Default::default(),
                        created_at: at,
                        updated_at: at,
                    },
                ),
            };
            self.seal_secret(&mut row, &e.value)?;
            let detail = json!({"scope": e.scope, "value_hmac": self.value_hmac(&row.id, &e.value), "batch": true});
            let audit_action = match action {
                t::SecretBatchAction::Created => "secret.created",
                t::SecretBatchAction::Updated => "secret.updated",
            };
            let subject = self.secret_subject(&row);
            plan.events
                .push(audit_row(caller, audit_action, subject, None, detail));
            match action {
                t::SecretBatchAction::Created => {
                    plan.order.push((action, plan.inserts.len()));
                    plan.inserts.push(row);
                }
                t::SecretBatchAction::Updated => {
                    plan.order.push((action, plan.updates.len()));
                    let previous = existing[&(e.name.clone(), e.scope)].clone();
                    plan.updates.push((row, previous));
                }
            }
        }
        Ok(plan)
    }
}

impl Plan {
    /// One result per entry, in request order.
    fn answer(self) -> t::SecretBatchResponse {
        let secrets = self
            .order
            .iter()
            .map(|&(action, i)| {
                let row = match action {
                    t::SecretBatchAction::Created => &self.inserts[i],
                    t::SecretBatchAction::Updated => &self.updates[i].0,
                };
                t::SecretBatchResult {
                    action,
                    secret: to_wire(row.clone()),
                }
            })
            .collect();
        t::SecretBatchResponse { secrets }
    }
}

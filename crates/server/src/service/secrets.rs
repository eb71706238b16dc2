//! Generic secrets (for env injection): create, update (a new version), delete, list, reveal.
//! Values are sealed (see `sealing`) before they reach the store, and opened only for injection
//! or the audited reveal.

use amika_store::{SecretRow, StoreError};
use amika_types::{self as t, ErrorCode, Scope};
use serde_json::json;

use super::audit::Subject;
use super::paging::{encode_cursor, Page, PageRequest};
use super::sealing::SecretString;
use super::{new_id, now, validate, Caller, Result, Service, ServiceError};

pub(crate) fn to_wire(r: SecretRow) -> t::SecretSummary {
    t::SecretSummary {
        id: r.id,
        org_id: r.org_id,
        user_id: r.user_id,
        name: r.name,
        description: r.description,
        scope: r.scope,
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// How many times an update reads and tries again when other updates of the same row overtake
/// it. Each round some update succeeds, so this many concurrent updates of one row all succeed.
pub(crate) const MAX_UPDATE_ATTEMPTS: usize = 64;

/// The answer when [`MAX_UPDATE_ATTEMPTS`] updates of the row overtook this one.
pub(crate) fn overtaken(what: &str, id_or_name: &str) -> ServiceError {
    ServiceError::conflict(
        ErrorCode::Conflict,
        format!(
            "the {what} {id_or_name:?} was changed {MAX_UPDATE_ATTEMPTS} times by other \
             requests while this update was being made: try it again"
        ),
    )
}

/// May the caller see (and use) an object of this org, owner and scope?
pub(crate) fn visible(caller: &Caller, org_id: &str, owner: &str, scope: Scope) -> bool {
    org_id == caller.org_id && (scope == Scope::Org || owner == caller.user_id)
}

/// May the caller change or reveal it? The owner for user scope, org admins for org scope.
pub(crate) fn writable(caller: &Caller, org_id: &str, owner: &str, scope: Scope) -> bool {
    visible(caller, org_id, owner, scope)
        && match scope {
            Scope::User => owner == caller.user_id,
            Scope::Org => caller.is_admin,
        }
}

pub(crate) fn forbid_org_write(caller: &Caller, scope: Scope, what: &str) -> Result<()> {
    if scope == Scope::Org && !caller.is_admin {
        return Err(ServiceError::Forbidden(format!(
            "only org admins can change org-scoped {what}"
        )));
    }
    Ok(())
}

impl Service {
    /// Find a visible secret by id (`sec_...`) or by name (the caller's own first, then the org's).
    pub async fn find_secret(&self, caller: &Caller, id_or_name: &str) -> Result<SecretRow> {
        let not_found = || ServiceError::NotFound(format!("secret {id_or_name:?}"));
        let row = if id_or_name.starts_with("sec_") {
            match self.store.get_secret(id_or_name).await {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => return Err(not_found()),
                Err(e) => return Err(e.into()),
            }
        } else {
            match self
                .store
                .find_visible_secret(&caller.org_id, &caller.user_id, id_or_name)
                .await
            {
                Ok(r) => r,
                Err(StoreError::NotFound(_)) => return Err(not_found()),
                Err(e) => return Err(e.into()),
            }
        };
        // Someone else's row answers exactly like a missing one: existence is not disclosed.
        if !visible(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(not_found());
        }
        Ok(row)
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_secrets(&self, caller: &Caller) -> Result<Vec<t::SecretSummary>> {
        Ok(self
            .list_secrets_page(caller, &PageRequest::default())
            .await?
            .items)
    }

    /// The visible secrets, by (name, scope): all of them, or the page asked for.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id))]
    pub async fn list_secrets_page(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<t::SecretSummary>> {
        let Some(limit) = page.limit else {
            let rows = self
                .store
                .list_visible_secrets(&caller.org_id, &caller.user_id)
                .await?;
            return Ok(Page::all(rows).map(to_wire));
        };
        // In SQL (the list may be long): one row more than the page tells whether more follow.
        let after = page.after.as_deref().unwrap_or_default();
        let key = |i: usize| after.get(i).map(String::as_str).unwrap_or_default();
        let mut rows = self
            .store
            .list_visible_secrets_after(
                &caller.org_id,
                &caller.user_id,
                (key(0), key(1)),
                i64::from(limit) + 1,
            )
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows
            .last()
            .filter(|_| more)
            .map(|r| encode_cursor(&[r.name.clone(), r.scope.as_str().to_string()]));
        Ok(Page {
            items: rows.into_iter().map(to_wire).collect(),
            next_cursor,
        })
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, secret = %req.name))]
    pub async fn create_secret(
        &self,
        caller: &Caller,
        req: t::CreateSecretRequest,
    ) -> Result<t::SecretSummary> {
        validate::object_name("secret name", &req.name)?;
        let value = SecretString::new(req.value);
        validate::value("secret", value.expose_secret())?;
        let scope = req.scope.unwrap_or(Scope::User);
        forbid_org_write(caller, scope, "secrets")?;
        let at = now();
        let mut row = SecretRow {
            id: new_id("sec"),
            org_id: caller.org_id.clone(),
            user_id: caller.user_id.clone(),
            name: req.name,
            description: req.description,
            scope,
            version: 1,
            sealed: Default::default(),
            created_at: at,
            updated_at: at,
        };
        self.seal_secret(&mut row, &value)?;
        self.store.insert_secret(&row).await.map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict(
                ErrorCode::SecretExists,
                format!(
                    "a {scope}-scoped secret named {:?} already exists: update it instead",
                    row.name
                ),
            )
            .at("name"),
            e => e.into(),
        })?;
        let detail = json!({"scope": scope, "value_hmac": self.value_hmac(&row.id, &value)});
        self.audit(
            caller,
            "secret.created",
            self.secret_subject(&row),
            None,
            detail,
        )
        .await?;
        Ok(to_wire(row))
    }

    pub(crate) fn secret_subject<'a>(&self, row: &'a SecretRow) -> Subject<'a> {
        Subject {
            object_type: "secret",
            object_id: &row.id,
            object_name: &row.name,
            version: Some(row.version),
        }
    }

    /// Store `req`'s changes. Read, change, then a compare-and-set: an update that another
    /// one overtook between its read and its write reads the row again and makes its change on
    /// the row as it now is, so every value stored gets a version of its own.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, secret = %id_or_name))]
    pub async fn update_secret(
        &self,
        caller: &Caller,
        id_or_name: &str,
        mut req: t::UpdateSecretRequest,
    ) -> Result<t::SecretSummary> {
        let value = req.value.take().map(SecretString::new);
        // After the first read, by id: a rename by someone else must not lose the row.
        let mut key = id_or_name.to_string();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let previous = self.find_secret(caller, &key).await?;
            key.clone_from(&previous.id);
            let (row, detail) = self.changed_secret(caller, &previous, &req, value.as_ref())?;
            let stored = self
                .store
                .update_secret(&row, &previous)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => ServiceError::conflict(
                        ErrorCode::SecretExists,
                        format!(
                            "a {}-scoped secret named {:?} already exists",
                            row.scope, row.name
                        ),
                    )
                    .at("name"),
                    e => e.into(),
                })?;
            if stored {
                let subject = self.secret_subject(&row);
                self.audit(caller, "secret.updated", subject, None, detail)
                    .await?;
                return Ok(to_wire(row));
            }
        }
        Err(overtaken("secret", id_or_name))
    }

    /// `previous` with `req`'s changes, sealed for its next version when the value changes, and
    /// the audit detail of the change.
    fn changed_secret(
        &self,
        caller: &Caller,
        previous: &SecretRow,
        req: &t::UpdateSecretRequest,
        value: Option<&SecretString>,
    ) -> Result<(SecretRow, serde_json::Value)> {
        let mut row = previous.clone();
        if !writable(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(ServiceError::Forbidden(format!(
                "only org admins can change the org-scoped secret {:?}",
                row.name
            )));
        }
        if let Some(name) = &req.name {
            validate::object_name("secret name", name)?;
            row.name.clone_from(name);
        }
        if let Some(scope) = req.scope {
            forbid_org_write(caller, scope, "secrets")?;
            row.scope = scope;
        }
        if req.description.is_some() {
            row.description.clone_from(&req.description);
        }
        let mut detail = json!({"scope": row.scope});
        if let Some(value) = value {
            validate::value("secret", value.expose_secret())?;
            row.version += 1;
            self.seal_secret(&mut row, value)?;
            detail["value_hmac"] = json!(self.value_hmac(&row.id, value));
        }
        row.updated_at = now();
        Ok((row, detail))
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, secret = %id_or_name))]
    pub async fn delete_secret(&self, caller: &Caller, id_or_name: &str) -> Result<()> {
        let row = self.find_secret(caller, id_or_name).await?;
        if !writable(caller, &row.org_id, &row.user_id, row.scope) {
            return Err(ServiceError::Forbidden(format!(
                "only org admins can delete the org-scoped secret {:?}",
                row.name
            )));
        }
        self.store.delete_secret(&row.id).await?;
        self.audit(
            caller,
            "secret.deleted",
            self.secret_subject(&row),
            None,
            json!({"scope": row.scope}),
        )
        .await
    }

    #[tracing::instrument(skip_all, err(level = "debug"), fields(org = %caller.org_id, user = %caller.user_id, secret = %id_or_name))]
    pub async fn reveal_secret(&self, caller: &Caller, id_or_name: &str) -> Result<SecretString> {
        let row = self.find_secret(caller, id_or_name).await?;
        self.check_reveal(
            caller,
            &row.org_id,
            &row.user_id,
            row.scope,
            self.secret_subject(&row),
        )
        .await?;
        let value = self.open_secret(&row)?;
        let detail = json!({"value_hmac": self.value_hmac(&row.id, &value)});
        self.audit(
            caller,
            "secret.revealed",
            self.secret_subject(&row),
            None,
            detail,
        )
        .await?;
        Ok(value)
    }

    /// Reveal policy, shared by secrets and credentials; a refusal is audited too.
    pub(crate) async fn check_reveal(
        &self,
        caller: &Caller,
        org_id: &str,
        owner: &str,
        scope: Scope,
        subject: Subject<'_>,
    ) -> Result<()> {
        let refusal = if !self.config.allow_reveal {
            Some("reveal is switched off on this server".to_string())
        } else if !writable(caller, org_id, owner, scope) {
            Some(match scope {
                Scope::User => "only the owner can reveal a user-scoped value".to_string(),
                Scope::Org => "only org admins can reveal an org-scoped value".to_string(),
            })
        } else {
            None
        };
        if let Some(why) = refusal {
            let action = format!("{}.reveal_denied", subject.object_type);
            self.audit(caller, &action, subject, None, json!({"reason": why}))
                .await?;
            return Err(ServiceError::Forbidden(why));
        }
        Ok(())
    }
}

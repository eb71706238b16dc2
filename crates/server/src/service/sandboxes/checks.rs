//! What a create request must be, checked before anything is read or written: every field's
//! error at once (each names its field; more than one is a [`ServiceError::Several`]), so the
//! API's `details` and the web form list them all in one answer.

use amika_types as t;

use super::setup::MAX_SETUP_TIMEOUT;
use crate::service::{presets, validate, Result, ServiceError};

/// Longest plain env var value accepted.
const MAX_ENV_VALUE_BYTES: usize = 64 * 1024;
/// Longest `setup_script_text` accepted.
const MAX_SETUP_SCRIPT_BYTES: usize = 256 * 1024;
/// Largest idle interval, in minutes (a week), as the public API documents it.
pub(crate) const MAX_INTERVAL_MINUTES: f64 = 10080.0;

/// Checks of a create request that need nothing stored, every one of them (each error names
/// its field, [`ServiceError::all`]); returns the warnings to answer with.
pub(super) fn check_request(req: &t::CreateSandboxRequest, provider: &str) -> Result<Vec<String>> {
    let mut errors = Vec::new();
    let mut check = |outcome: Result<()>| {
        if let Err(e) = outcome {
            errors.push(e);
        }
    };
    if !req.name.is_empty() {
        check(validate::sandbox_name(&req.name));
    }
    if let Some(p) = req.provider.as_ref().filter(|p| *p != provider) {
        check(Err(ServiceError::bad_request(format!(
            "unknown provider {p:?}: this server has {provider:?}"
        ))
        .at("provider")));
    }
    check(crate::service::snapshots::check_snapshot_field(req));
    if let Some(preset) = req.preset.as_deref().filter(|p| !p.is_empty()) {
        check(presets::find(preset).map(|_| ()));
    }
    check(super::limits::check_limits(req));
    for (field, minutes, min) in [
        ("auto_stop_interval", req.auto_stop_interval, 0.0),
        ("auto_delete_interval", req.auto_delete_interval, -1.0),
    ] {
        let Some(m) = minutes else { continue };
        let ok = m.is_finite() && (m == min || (0.0..=MAX_INTERVAL_MINUTES).contains(&m));
        if !ok {
            check(Err(ServiceError::bad_request(format!(
                "{field} must be a number of minutes from 0 to {MAX_INTERVAL_MINUTES}{}",
                if min < 0.0 { " (or -1 for never)" } else { "" }
            ))
            .at(field)));
        }
    }
    if let Some(secs) = req.setup_timeout_secs {
        if secs == 0 || secs > MAX_SETUP_TIMEOUT.as_secs() {
            check(Err(ServiceError::bad_request(format!(
                "setup_timeout_secs must be from 1 to {}",
                MAX_SETUP_TIMEOUT.as_secs()
            ))
            .at("setup_timeout_secs")));
        }
    }
    if let Some(text) = &req.setup_script_text {
        if text.len() > MAX_SETUP_SCRIPT_BYTES || text.contains('\0') {
            check(Err(ServiceError::bad_request(format!(
                "setup_script_text must be a script of at most {MAX_SETUP_SCRIPT_BYTES} bytes, without NUL"
            ))
            .at("setup_script_text")));
        }
    }
    for (env, value) in &req.env_vars {
        check(check_plain_env(req, env, value));
    }
    for (env, name) in &req.secret_env_vars {
        let outcome = validate::env_var(env).and_then(|()| {
            if name.is_empty() {
                return Err(ServiceError::bad_request(format!(
                    "secret_env_vars.{env}: secret name must not be empty"
                ))
                .at(format!("secret_env_vars.{env}")));
            }
            Ok(())
        });
        check(outcome);
    }
    for env in &req.disabled_repo_env_var_names {
        check(validate::env_var(env).map_err(|e| e.at("disabled_repo_env_var_names")));
    }
    ServiceError::all(errors)?;
    Ok(Vec::new())
}

/// One plain env var of a create: its name, its value, and that it is not also a secret.
fn check_plain_env(req: &t::CreateSandboxRequest, env: &str, value: &str) -> Result<()> {
    validate::env_var(env).map_err(|e| e.at(format!("env_vars.{env}")))?;
    if value.len() > MAX_ENV_VALUE_BYTES || value.contains('\0') {
        return Err(ServiceError::bad_request(format!(
            "env_vars.{env}: the value must be at most {MAX_ENV_VALUE_BYTES} bytes, without NUL"
        ))
        .at(format!("env_vars.{env}")));
    }
    if req.secret_env_vars.contains_key(env) {
        return Err(ServiceError::bad_request(format!(
            "env var {env} is given twice, as a plain value (env_vars / --env) and as a secret (secret_env_vars / --secret): give it once"
        ))
        .at(format!("env_vars.{env}")));
    }
    Ok(())
}

/// `outcome`'s value, or `None` with its error put among `errors` (a request's errors are
/// reported all at once).
pub(super) fn gather<T>(errors: &mut Vec<ServiceError>, outcome: Result<T>) -> Option<T> {
    outcome.map_err(|e| errors.push(e)).ok()
}

/// `last`'s value when neither it nor any of `errors` failed; else every error at once, the
/// first about each field only (an env var whose name is invalid is not also "not found").
pub(super) fn after<T>(mut errors: Vec<ServiceError>, last: Result<T>) -> Result<T> {
    let value = gather(&mut errors, last);
    let mut fields = Vec::new();
    let errors: Vec<ServiceError> = errors
        .into_iter()
        .flat_map(ServiceError::each)
        .filter(|e| match e.field() {
            Some(field) if fields.iter().any(|f| f == field) => false,
            Some(field) => {
                fields.push(field.to_string());
                true
            }
            None => true,
        })
        .collect();
    ServiceError::all(errors)?;
    value.ok_or_else(|| ServiceError::internal("a request's error was lost"))
}

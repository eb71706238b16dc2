//! The constraints the server enforces on request fields, declared in the OpenAPI document
//! from the same definitions the validators use (`service::validate`'s name rules, the limits'
//! ranges), so that a schema-valid request is not refused for a name or a limit and the two
//! cannot drift.

use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{OpenApi, RefOr};

use crate::service::sandboxes::setup::MAX_SETUP_TIMEOUT;
use crate::service::sandboxes::{MEMORY_MIB_RANGE, PIDS_RANGE};
use crate::service::validate::{NameRule, ENV_VAR, OBJECT_NAME, SANDBOX_NAME};

pub(super) struct Constraints;

fn name(rule: NameRule, may_be_empty: bool) -> impl Fn(&mut Object) {
    move |o| {
        o.max_length = Some(rule.max_chars);
        if may_be_empty {
            o.pattern = Some(format!("^$|{}", rule.pattern));
        } else {
            o.min_length = Some(1);
            o.pattern = Some(rule.pattern.to_string());
        }
    }
}

fn keys(rule: NameRule) -> impl Fn(&mut Object) {
    move |o| {
        if let Some(Schema::Object(names)) = o.property_names.as_deref_mut() {
            name(rule, false)(names);
        }
    }
}

fn range(range: std::ops::RangeInclusive<u64>) -> impl Fn(&mut Object) {
    move |o| {
        o.minimum = Some((*range.start()).into());
        o.maximum = Some((*range.end()).into());
    }
}

fn non_empty(o: &mut Object) {
    o.min_length = Some(1);
}

/// (schema, property, what to declare on it).
type Rule = (&'static str, &'static str, Box<dyn Fn(&mut Object)>);

fn rules() -> Vec<Rule> {
    vec![
        (
            "CreateSecretRequest",
            "name",
            Box::new(name(OBJECT_NAME, false)),
        ),
        (
            "UpdateSecretRequest",
            "name",
            Box::new(name(OBJECT_NAME, false)),
        ),
        (
            "CreateCredentialRequest",
            "name",
            Box::new(name(OBJECT_NAME, false)),
        ),
        (
            "SshPublicKeyRequest",
            "name",
            Box::new(name(OBJECT_NAME, false)),
        ),
        ("SshPublicKeyRequest", "public_key", Box::new(non_empty)),
        ("CreateSecretRequest", "value", Box::new(non_empty)),
        ("CreateCredentialRequest", "value", Box::new(non_empty)),
        (
            "CreateSandboxRequest",
            "name",
            Box::new(name(SANDBOX_NAME, true)),
        ),
        ("CreateSandboxRequest", "env_vars", Box::new(keys(ENV_VAR))),
        (
            "CreateSandboxRequest",
            "secret_env_vars",
            Box::new(keys(ENV_VAR)),
        ),
        (
            "CreateSandboxRequest",
            "memory_mib",
            Box::new(range(MEMORY_MIB_RANGE)),
        ),
        ("CreateSandboxRequest", "pids", Box::new(range(PIDS_RANGE))),
        (
            "CreateSandboxRequest",
            "setup_timeout_secs",
            Box::new(range(1..=MAX_SETUP_TIMEOUT.as_secs())),
        ),
        (
            "SecretBatchEntry",
            "name",
            Box::new(name(OBJECT_NAME, false)),
        ),
        ("SecretBatchEntry", "value", Box::new(non_empty)),
        (
            "CreateSnapshotRequest",
            "name",
            Box::new(name(SANDBOX_NAME, false)),
        ),
    ]
}

impl utoipa::Modify for Constraints {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, property, declare) in rules() {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) {
                declare(field);
            }
        }
    }
}

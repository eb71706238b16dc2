//! Submitted forms: their fields, the CSRF check every POST passes, and the errors shown next
//! to the fields they concern.
//!
//! A service error names the request field it is about (`ServiceError::field`, a JSON path such
//! as `name` or `secret_env_vars.DB`); each page maps those paths to its own inputs. Nothing here
//! reads an error's message to decide where it goes.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use axum::Form;

use super::html::{self, escape};
use super::html_response;
use super::session::{cross_site, forbidden_form, same_token, WebSession};
use crate::service::Service;

/// The longest input each kind of field takes, as the service's own checks
/// (`service::validate`, `service::agents`): the pages' `maxlength`s. A test below keeps them
/// in step.
pub mod limits {
    /// Secret and credential names.
    pub const OBJECT_NAME: usize = 128;
    pub const SANDBOX_NAME: usize = 63;
    pub const ENV_VAR: usize = 128;
    pub const VALUE: usize = crate::service::validate::MAX_VALUE_BYTES;
    pub const MESSAGE: usize = crate::service::agents::MAX_MESSAGE_BYTES;
    /// A snapshot's description, in characters (the service's `MAX_DESCRIPTION_CHARS`, which
    /// it keeps private; the snapshot flow test checks one more is refused).
    pub const SNAPSHOT_DESCRIPTION: usize = 1024;
}

/// Submitted form fields, in order (repeated names such as the env-var rows keep their order).
/// They may hold secret values: `Debug` shows the field names only.
#[derive(Default)]
pub struct Fields(pub Vec<(String, String)>);

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Fields {
    /// Move a field's value out (so a secret value is not left behind in the form).
    pub fn take(&mut self, name: &str) -> String {
        self.0
            .iter_mut()
            .find(|(k, _)| k == name)
            .map(|(_, v)| std::mem::take(v))
            .unwrap_or_default()
    }
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A POST from a signed-in user whose CSRF token checked out.
#[derive(Debug)]
pub struct WebForm {
    pub session: WebSession,
    pub fields: Fields,
}

pub(super) async fn read_form(req: Request) -> Result<Fields, Response> {
    match Form::<Vec<(String, String)>>::from_request(req, &()).await {
        Ok(Form(pairs)) => Ok(Fields(pairs)),
        Err(e) => Err(html_response(
            e.status(),
            html::bare_page(
                "Bad request",
                &format!(
                    "<h1>Bad request</h1><p>{}</p><p><a href=\"/sandboxes\">Back to amika</a></p>",
                    escape(&e.body_text())
                ),
            ),
        )),
    }
}

impl FromRequest<Service> for WebForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &Service) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        if cross_site(&parts.headers) {
            return Err(forbidden_form());
        }
        let session = WebSession::from_request_parts(&mut parts, svc).await?;
        let fields = read_form(Request::from_parts(parts, body)).await?;
        if !same_token(fields.get("_csrf"), &session.csrf) {
            return Err(forbidden_form());
        }
        Ok(WebForm { session, fields })
    }
}

/// Errors of a submitted form: per field (shown next to it) and for the form as a whole.
#[derive(Debug, Default)]
pub struct FormErrors {
    fields: Vec<(String, String)>,
    pub general: Vec<String>,
}

impl FormErrors {
    /// Attach `message` to `field` (the first message for a field wins).
    pub fn on(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if self.get(&field).is_none() {
            self.fields.push((field, message.into()));
        }
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::limits;
    use crate::service::validate;

    #[test]
    fn maxlengths_match_what_the_service_accepts() {
        let at = |n: usize| "a".repeat(n);
        validate::object_name("secret name", &at(limits::OBJECT_NAME)).unwrap();
        validate::object_name("secret name", &at(limits::OBJECT_NAME + 1)).unwrap_err();
        validate::sandbox_name(&at(limits::SANDBOX_NAME)).unwrap();
        validate::sandbox_name(&at(limits::SANDBOX_NAME + 1)).unwrap_err();
        validate::env_var(&at(limits::ENV_VAR)).unwrap();
        validate::env_var(&at(limits::ENV_VAR + 1)).unwrap_err();
        validate::value("secret", &at(limits::VALUE)).unwrap();
        validate::value("secret", &at(limits::VALUE + 1)).unwrap_err();
    }
}

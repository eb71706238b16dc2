//! Request extractors: the authenticated caller, and JSON bodies, path and query parameters whose
//! rejections come back in the error envelope.

use amika_types::ErrorCode;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::service::{Caller, Service, ServiceError};

/// The caller behind `Authorization: Bearer amk_...`.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl FromRequestParts<Service> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Service) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token {
            Some(t) => Ok(Auth(svc.authenticate(t).await?)),
            None => Err(ServiceError::Unauthorized.into()),
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s. The body must be a JSON object (every request
/// body of the API is one; serde would otherwise take `[a, b]` as a struct's fields in order),
/// and a number with no fraction (`60.0`) is the integer it equals, as JSON Schema counts it.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ServiceError::bad_request(
                "the body must be a JSON object (`{...}`) with the operation's fields",
            )
            .into());
        }
        integral_floats_as_integers(&mut value);
        // Through the bytes again, so that a field's error names its path as axum's does.
        let bytes = serde_json::to_vec(&value).map_err(ServiceError::internal)?;
        Ok(ApiJson(axum::Json::<T>::from_bytes(&bytes)?.0))
    }
}

/// Every number with no fractional part, written as a float (`60.0`), becomes the integer
/// (so that integer fields take it); other numbers stay as they are.
pub fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                // Integral and below 2^53 in magnitude: the cast is exact.
                #[allow(clippy::cast_possible_truncation)]
                let n = f as i64;
                *value = Value::from(n);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            r.body_text(),
        )
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s (a bad `limit` is a 400 in the envelope).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            r.body_text(),
        )
    }
}

/// The `{x}` of `/secrets/{x}` as an agent credential kind (GET and POST there). `/secrets/{x}`
/// is also a secret's URL, which takes only PUT and DELETE: so any other `x` is a 405 (before
/// the body is read), naming the kinds there are.
#[derive(Debug, Clone, Copy)]
pub struct KindPath(pub amika_types::AgentKind);

impl<S: Send + Sync> FromRequestParts<S> for KindPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(raw) = ApiPath::<String>::from_request_parts(parts, state).await?;
        raw.parse().map(KindPath).map_err(|message: String| {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::UnknownKind,
                format!(
                    "{} {}: {message}; a secret's URL /secrets/{{id}} takes only PUT and DELETE",
                    parts.method,
                    parts.uri.path()
                ),
            )
        })
    }
}

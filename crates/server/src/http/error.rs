//! The one place that maps failures to HTTP: status, machine-readable code, message, and the
//! trace id that ties an answer to the log. Internal causes are logged once and answered with a
//! generic message.

use amika_types::{ErrorBody, TRACE_HEADER};
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::service::ServiceError;

tokio::task_local! {
    /// The trace id of the request being served (set by the trace middleware).
    pub static TRACE_ID: String;
}

pub fn current_trace_id() -> String {
    TRACE_ID.try_with(|t| t.clone()).unwrap_or_default()
}

/// An error answer in the envelope of DESIGN §8.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::BadRequest { code, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, code, message)
            }
            ServiceError::Unauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or invalid API key: send `Authorization: Bearer amk_...`",
            ),
            ServiceError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            ServiceError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            ServiceError::Conflict { code, .. } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            ServiceError::Unprocessable { code, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ServiceError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                message,
            ),
            ServiceError::Internal(cause) => {
                tracing::error!(trace_id = %current_trace_id(), %cause, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error: see the server log for this trace id",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is too large",
                )
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("malformed JSON: {}", e.body_text()),
            ),
            // serde's message names unknown and missing fields and wrong types.
            JsonRejection::JsonDataError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
            }
            other => ApiError::new(other.status(), "invalid_request", other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let trace_id = current_trace_id();
        let body = ErrorBody {
            kind: "error".into(),
            code: self.code.clone(),
            error_code: self.code,
            message: self.message,
            details: self.details,
            trace_id: trace_id.clone(),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&trace_id) {
            resp.headers_mut().insert(TRACE_HEADER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

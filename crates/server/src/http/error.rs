//! The one place that maps failures to HTTP: status, machine-readable code, message, and the
//! trace id that ties an answer to the log. Internal causes are logged once and answered with a
//! generic message.

use amika_types::{ErrorBody, ErrorCode, ErrorDetail, TRACE_HEADER};
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::service::{error_chain as chain, ServiceError};

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
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<ErrorDetail>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The envelope of this error.
    pub fn body(self, trace_id: String) -> ErrorBody {
        ErrorBody::new(self.code, self.message, self.details, trace_id)
    }

    /// The request field the answer is about (the first of `details`), if any.
    pub fn field(&self) -> Option<&str> {
        self.details.first().map(|d| d.field.as_str())
    }
}

/// [`ServiceError::Several`]: the first error's status and code, every error in `details`.
fn several(errors: Vec<ServiceError>) -> ApiError {
    let count = errors.len();
    let parts: Vec<ApiError> = errors.into_iter().map(ApiError::from).collect();
    let Some(first) = parts.first() else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "invalid request",
        );
    };
    let (status, code) = (first.status, first.code);
    let message = format!(
        "{count} errors (each in details); the first: {}",
        first.message
    );
    ApiError {
        status,
        code,
        message,
        details: parts.into_iter().flat_map(|p| p.details).collect(),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let e = match e {
            ServiceError::Several(errors) => return several(errors),
            e => e,
        };
        let code = e.code();
        let status = match &e {
            ServiceError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) | ServiceError::Unreadable(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ServiceError::Several(_) => StatusCode::BAD_REQUEST, // answered by `several` above
        };
        let message = match &e {
            ServiceError::Unauthorized => {
                "missing or invalid API key: send `Authorization: Bearer amk_...`".to_string()
            }
            ServiceError::Internal(cause) => {
                // The one place an internal cause is logged; the client learns only the trace id.
                let cause = chain(cause.as_ref());
                tracing::error!(trace_id = %current_trace_id(), %cause, "internal error");
                "internal server error: see the server log for this trace id".to_string()
            }
            other => other.to_string(),
        };
        let details = e
            .field()
            .map(|field| ErrorDetail {
                field: field.to_string(),
                code: code.as_str().to_string(),
                message: message.clone(),
            })
            .into_iter()
            .collect();
        ApiError {
            status,
            code,
            message,
            details,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::PayloadTooLarge,
                    "request body is too large",
                )
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("malformed JSON: {}", e.body_text()),
            ),
            // serde's message names unknown and missing fields and wrong types.
            JsonRejection::JsonDataError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                e.body_text(),
            ),
            other => ApiError::new(other.status(), ErrorCode::InvalidRequest, other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let trace_id = current_trace_id();
        let mut resp = (self.status, Json(self.body(trace_id.clone()))).into_response();
        if let Ok(v) = HeaderValue::from_str(&trace_id) {
            resp.headers_mut().insert(TRACE_HEADER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Was: `Internal(String)` kept only the outer message, so the log said which key file
    /// could not be read but not why.
    #[test]
    fn an_internal_error_is_logged_once_with_its_whole_chain_and_never_answered() {
        let cause = amika_vault::VaultError::Io {
            path: "/data/master.key".into(),
            source: std::io::Error::other("disk on fire"),
        };
        let log = Log::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        let answer = tracing::subscriber::with_default(subscriber, || {
            ApiError::from(ServiceError::from(cause))
        });
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.matches("internal error").count(), 1, "{logged}");
        assert!(
            logged.contains("vault: I/O error on /data/master.key: disk on fire"),
            "{logged}"
        );
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.code, ErrorCode::Internal);
        assert_eq!(
            answer.message,
            "internal server error: see the server log for this trace id"
        );
        assert!(answer.details.is_empty());
    }

    #[test]
    fn a_chain_does_not_repeat_a_cause_its_outer_error_already_shows() {
        #[derive(Debug, thiserror::Error)]
        #[error("database error: {0}")]
        struct Database(#[source] PoolTimedOut);
        #[derive(Debug, thiserror::Error)]
        #[error("pool timed out")]
        struct PoolTimedOut;
        assert_eq!(
            chain(&ServiceError::internal(Database(PoolTimedOut))),
            "internal error: database error: pool timed out"
        );
        let io = std::io::Error::other("denied");
        assert_eq!(
            chain(&ServiceError::from(amika_vault::VaultError::Io {
                path: "/k".into(),
                source: io
            })),
            "internal error: vault: I/O error on /k: denied"
        );
    }

    /// A full file table (the host's or the server's) answered a bare 500; there is no safe
    /// way to fill the host's table in a test, so the mapping is checked on the errno.
    #[test]
    fn a_full_file_table_is_a_503_that_says_which() {
        use amika_sandbox::ProviderError;
        for (errno, needle) in [
            (
                libc::ENFILE,
                "the host's table of open files is full (ENFILE",
            ),
            (
                libc::EMFILE,
                "the amika server has as many files open as its limit allows (EMFILE",
            ),
        ] {
            let io = std::io::Error::from_raw_os_error(errno);
            let answer = ApiError::from(ServiceError::from(ProviderError::Io(io)));
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(answer.code, ErrorCode::ProviderUnavailable);
            assert!(answer.message.contains(needle), "{}", answer.message);
        }
        let other = std::io::Error::from_raw_os_error(libc::EIO);
        let answer = ApiError::from(ServiceError::from(ProviderError::Io(other)));
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

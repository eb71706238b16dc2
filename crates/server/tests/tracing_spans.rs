//! The log of a request: every line carries the request's trace id (the `request` span the
//! HTTP middleware opens) and the operation's span names its org, user and object as given,
//! and no value pushed through the API ever reaches the log, even with everything logged.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use tracing_subscriber::fmt::format::FmtSpan;

const B: &str = "/api/v0beta1";

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

impl Log {
    /// Capture everything, down to `TRACE`, with a line per closed span (which prints the
    /// span's fields), on this thread: `#[tokio::test]` runs the whole request on it.
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn a_failed_operation_is_logged_with_its_trace_id_and_sandbox() {
    let log = Log::default();
    let _capture = log.capture();
    let app = common::app().await;
    let req = Request::builder()
        .uri(format!("{B}/sandboxes/no-such-box"))
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = app.raw(req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let trace_id = headers[amika_types::TRACE_HEADER].to_str().unwrap();

    let logged = log.text();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains(trace_id)).collect();
    let error = lines
        .iter()
        .find(|l| l.contains("error=") && l.contains("not found"))
        .unwrap_or_else(|| panic!("no error line with trace id {trace_id}:\n{logged}"));
    assert!(
        error.contains("get_sandbox{") && error.contains("sandbox=no-such-box"),
        "{error}"
    );
    assert!(error.contains("org=") && error.contains("user="), "{error}");
    assert!(
        error.contains("method=GET") && error.contains("path=/api/v0beta1/sandboxes/no-such-box"),
        "{error}"
    );
    // The middleware's own line, the span close of the operation and of the authentication:
    // all in the request's span.
    assert!(lines
        .iter()
        .any(|l| l.contains("request") && l.contains("status=404")));
    assert!(lines.iter().any(|l| l.contains("authenticate")));
    // Another request has another trace id: lines are not all tagged alike.
    assert!(logged.lines().any(|l| !l.contains(trace_id)));
}

/// Values are never in requests except pushes: push secrets and credentials with distinctive
/// values, update and reveal them, and fail creates that carry values in every way the API
/// refuses one; with everything logged, no line holds any of the values.
#[tokio::test]
async fn pushed_values_are_in_no_log_line_even_when_the_push_fails() {
    const VALUES: [&str; 5] = [
        "tr4ce-secret-value-9f8e7d6c5b4a",
        "tr4ce-updated-value-1a2b3c4d5e6f",
        "tr4ce-duplicate-value-0f1e2d3c4b5a",
        "sk-tr4ce-key-with space-77aa88bb",
        "tr4ce-oauth-token-66cc55dd",
    ];
    let log = Log::default();
    let _capture = log.capture();
    let app = common::app().await;
    let k = app.admin_key.clone();
    let secret = json!({"name": "PUSHED", "value": VALUES[0]});
    app.ok(Method::POST, &format!("{B}/secrets"), &k, Some(secret))
        .await;
    let update = json!({"value": VALUES[1]});
    app.ok(
        Method::PUT,
        &format!("{B}/secrets/PUSHED"),
        &k,
        Some(update),
    )
    .await;
    let revealed = app
        .ok(
            Method::POST,
            &format!("{B}/secrets/PUSHED/reveal"),
            &k,
            None,
        )
        .await;
    assert_eq!(revealed["value"], VALUES[1]);

    let failing = [
        // A second secret of the same name: a conflict.
        (
            "/secrets",
            json!({"name": "PUSHED", "value": VALUES[2]}),
            StatusCode::CONFLICT,
        ),
        // An API key that is not one token.
        (
            "/secrets/claude",
            json!({"name": "bad-key", "value": VALUES[3], "type": "api_key"}),
            StatusCode::BAD_REQUEST,
        ),
        // An OAuth document that is not JSON, the token where the parser stops.
        (
            "/secrets/claude",
            json!({"name": "bad-oauth", "value": format!("{{\"accessToken\": {}}}", VALUES[4]), "type": "oauth"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (path, body, expected) in failing {
        let (status, answer) = app
            .call(Method::POST, &format!("{B}{path}"), Some(&k), Some(body))
            .await;
        assert_eq!(status.as_u16() / 100, expected.as_u16() / 100, "{answer}");
    }

    let logged = log.text();
    // The operations were logged, with their spans' fields...
    for op in ["create_secret{", "update_secret{", "reveal_secret{"] {
        assert!(logged.contains(op), "{op} not logged:\n{logged}");
    }
    assert!(logged.contains("secret=PUSHED"), "{logged}");
    assert!(logged.contains("create_credential{"), "{logged}");
    assert!(logged.matches("error=").count() >= 3, "{logged}");
    // ...and no value, whole or in part.
    for value in VALUES {
        let tail = &value[value.len() - 8..];
        assert!(
            !logged.contains(value) && !logged.contains(tail),
            "{value:?} was logged:\n{logged}"
        );
    }
}

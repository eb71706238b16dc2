//! Test harness: a real server state (real store, real vault, real provider; built by
//! `amika_testkit`) driven through the router in-process with `oneshot`.
#![allow(dead_code)]

pub mod snapshots;

use amika_server::ServerConfig;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct App {
    pub router: Router,
    pub admin_key: String,
    pub dir: tempfile::TempDir,
    pub service: amika_server::Service,
}

/// A fresh server on SQLite in a temp dir, or on the database `database_url` names.
pub async fn app_with(
    database_url: Option<String>,
    tweak: impl FnOnce(&mut ServerConfig) + Send,
) -> App {
    let server = amika_testkit::ServerBuilder::new()
        .database_url(database_url)
        .configure(tweak)
        .open()
        .await
        .expect("server opens");
    App {
        router: server.router(),
        admin_key: server.admin_key,
        dir: server.dir,
        service: server.service,
    }
}

pub async fn app() -> App {
    app_with(None, |_| {}).await
}

impl App {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, json)
    }

    pub async fn raw(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn ok(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(method.clone(), path, Some(key), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {json}");
        json
    }

    /// The newest 1,000 audit events `key` may see.
    pub async fn audit_events(&self, key: &str) -> Vec<Value> {
        let events = self
            .ok(
                Method::GET,
                "/api/v0beta1/audit-events?limit=1000",
                key,
                None,
            )
            .await;
        events.as_array().unwrap().clone()
    }

    /// Create a user (as the admin) and return their API key.
    pub async fn user(&self, name: &str, org: &str, admin: bool) -> String {
        let v = self
            .ok(
                Method::POST,
                "/api/v0beta1/admin/users",
                &self.admin_key,
                Some(serde_json::json!({"name": name, "org": org, "is_admin": admin})),
            )
            .await;
        v["api_key"].as_str().unwrap().to_string()
    }
}

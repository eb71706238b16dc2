//! Routes that exist only for benchmarks. Two switches: the code is compiled only with the
//! `bench` cargo feature of amika-server (the benchmarks enable it, the `amika` binary does
//! not), and even then the routes are mounted only when the server starts with
//! `AMIKA_BENCH_ROUTES=1` in its environment — the second switch keeps them off in a build
//! where cargo unified the feature into the binary (`cargo build --workspace`). They are left
//! out of the OpenAPI document on purpose (they are not part of the API).
//!
//! `GET /bench/constant` answers a constant without touching the service: the ceiling of this
//! HTTP stack on this machine, measured in the same server and run as the real endpoints
//! (`bench/src/bin/api.rs`). `GET /bench/authenticated` answers the same constant after
//! authenticating the caller, which separates the cost of authentication from the rest.

use axum::routing::get;
use axum::Router;

use super::auth::Auth;
use crate::service::Service;

/// The environment variable that mounts these routes (`1`).
pub const BENCH_ROUTES_ENV: &str = "AMIKA_BENCH_ROUTES";

const CONSTANT: &str = "{\"ok\":true}";

/// The benchmark routes when `AMIKA_BENCH_ROUTES=1`, else none.
pub fn routes() -> Router<Service> {
    routes_when(std::env::var(BENCH_ROUTES_ENV).is_ok_and(|v| v == "1"))
}

fn routes_when(enabled: bool) -> Router<Service> {
    if enabled {
        Router::new()
            .route("/bench/constant", get(constant))
            .route("/bench/authenticated", get(authenticated))
    } else {
        Router::new()
    }
}

async fn constant() -> ([(&'static str, &'static str); 1], &'static str) {
    ([("content-type", "application/json")], CONSTANT)
}

async fn authenticated(_: Auth) -> ([(&'static str, &'static str); 1], &'static str) {
    ([("content-type", "application/json")], CONSTANT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// `key`: no header, the admin's real key (`Some(true)`) or a wrong one (`Some(false)`).
    async fn status(enabled: bool, path: &str, key: Option<bool>) -> StatusCode {
        let dir = tempfile::tempdir().unwrap();
        let config =
            crate::ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        let opened = crate::open(config).await.unwrap();
        let admin_key = opened.first_admin_key.clone().unwrap();
        let app = routes_when(enabled).with_state(opened.service);
        let mut req = Request::get(path);
        match key {
            Some(true) => req = req.header("authorization", format!("Bearer {}", *admin_key)),
            Some(false) => req = req.header("authorization", "Bearer amk_wrong"),
            None => {}
        }
        let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        if resp.status() == StatusCode::OK {
            let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
            assert_eq!(&body[..], CONSTANT.as_bytes());
            return StatusCode::OK;
        }
        resp.status()
    }

    #[tokio::test]
    async fn bench_routes_exist_only_when_switched_on() {
        assert_eq!(status(true, "/bench/constant", None).await, StatusCode::OK);
        assert_eq!(
            status(false, "/bench/constant", None).await,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn the_authenticated_constant_needs_a_key() {
        assert_eq!(
            status(true, "/bench/authenticated", None).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(true, "/bench/authenticated", Some(false)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(true, "/bench/authenticated", Some(true)).await,
            StatusCode::OK
        );
    }
}

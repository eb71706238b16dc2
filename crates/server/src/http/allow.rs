//! The `Allow` header of every 405: the methods the OpenAPI document lists for the URL. The
//! router's own would list what its route template serves, and `/secrets/{x}` serves both a
//! secret (PUT, DELETE) and a credential kind (GET, POST): the document is the contract, one
//! path per kind, so a client is told what the URL it sent takes.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Each documented path as its segments (`None` for a `{param}`), with its methods.
type Templates = Vec<(Vec<Option<String>>, String)>;

fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        super::openapi()
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_string()))
                    .collect();
                let mut methods = Vec::new();
                for (name, present) in [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ] {
                    if present {
                        methods.push(name);
                    }
                }
                (segments, methods.join(","))
            })
            .collect()
    })
}

/// The documented methods of `path`: of the template it matches with the most literal
/// segments (`/secrets/claude` before `/secrets/{id}`).
fn documented_methods(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').collect();
    templates()
        .iter()
        .filter(|(segments, _)| {
            segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|lit| lit == *p))
        })
        .max_by_key(|(segments, _)| segments.iter().filter(|s| s.is_some()).count())
        .map(|(_, methods)| methods.as_str())
}

/// Middleware: a 405's `Allow` becomes the document's methods for the URL, where it has any.
pub async fn documented_allow(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(v) = documented_methods(&path).and_then(|m| HeaderValue::from_str(m).ok()) {
            resp.headers_mut().insert(header::ALLOW, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::documented_methods;

    #[test]
    fn the_most_literal_template_wins() {
        assert_eq!(
            documented_methods("/api/v0beta1/secrets/claude"),
            Some("GET,HEAD,POST")
        );
        assert_eq!(
            documented_methods("/api/v0beta1/secrets/gemini"),
            Some("PUT,DELETE")
        );
        assert_eq!(documented_methods("/healthz"), Some("GET,HEAD"));
        assert_eq!(documented_methods("/nowhere/at/all"), None);
    }
}

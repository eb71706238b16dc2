//! The HTTP side of pagination (`service::paging`): the `limit` and `cursor` query parameters
//! every list takes, and the answer's headers. The body stays the plain array the public Amika
//! API answers; the next page's cursor travels in `X-Next-Cursor` and in a `Link: <...>;
//! rel="next"` header, both absent on the last page and on unpaged answers.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::Json;
use serde::Deserialize;

use crate::service::paging::{Page, PageRequest};
use crate::service::Result;

/// The header with the next page's cursor.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// `limit` and `cursor`, as every list takes them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Answer a page of at most this many items (1..=1000) instead of the whole list; the next
    /// page's cursor comes in the `X-Next-Cursor` header. Without `limit` and `cursor` the
    /// whole list is answered.
    // Taken as text so that a non-number gets the same 400 as an out-of-range number.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Continue after the previous page: its `X-Next-Cursor` header, as it came (100 items
    /// unless `limit` says otherwise).
    #[param(value_type = Option<String>, pattern = "^([0-9a-f]{2})+$", max_length = 4096)]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// What the query asks for; a malformed `limit` or `cursor` is a 400 naming it.
    pub fn request(&self) -> Result<PageRequest> {
        PageRequest::parse(self.limit.as_deref(), self.cursor.as_deref())
    }
}

/// The answer of a list: the page's items as the body, the next page in the headers.
pub fn answer<T>(
    page: Page<T>,
    uri: &OriginalUri,
    request: &PageRequest,
) -> (HeaderMap, Json<Vec<T>>) {
    let mut headers = HeaderMap::new();
    if let (Some(cursor), Some(limit)) = (&page.next_cursor, request.limit) {
        // The cursor is lowercase hex, so both values are valid header text.
        if let Ok(v) = HeaderValue::from_str(cursor) {
            headers.insert(NEXT_CURSOR, v);
        }
        let link = format!(
            "<{}?limit={limit}&cursor={cursor}>; rel=\"next\"",
            uri.0.path()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(axum::http::header::LINK, v);
        }
    }
    (headers, Json(page.items))
}

/// Documents the paging headers on the 200 answer of every operation that takes `cursor`.
pub(super) struct PagingHeaders;

impl utoipa::Modify for PagingHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{header::HeaderBuilder, path::ParameterIn, Object, RefOr, Type};
        for item in openapi.paths.paths.values_mut() {
            let Some(op) = item.get.as_mut() else {
                continue;
            };
            let paged = op
                .parameters
                .iter()
                .flatten()
                .any(|p| p.name == "cursor" && matches!(p.parameter_in, ParameterIn::Query));
            let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") else {
                continue;
            };
            if !paged {
                continue;
            }
            let cursor = HeaderBuilder::new()
                .schema(Object::with_type(Type::String))
                .description(Some(
                    "The `cursor` of the next page; absent on the last page and when the request \
                 sent neither `limit` nor `cursor`.",
                ));
            let link = HeaderBuilder::new()
                .schema(Object::with_type(Type::String))
                .description(Some(
                    "`<PATH?limit=N&cursor=C>; rel=\"next\"`: the next page's URL (RFC 8288); \
                 present exactly when `X-Next-Cursor` is.",
                ));
            ok.headers.insert("X-Next-Cursor".into(), cursor.build());
            ok.headers.insert("Link".into(), link.build());
        }
    }
}

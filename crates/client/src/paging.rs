//! Paged lists: `limit` and `cursor` in, the items and the `X-Next-Cursor` header out. The list
//! calls of [`Client`] page through transparently; a caller that wants the first items before
//! the whole list has arrived (`amika secret list` on thousands of secrets) walks the pages
//! itself with [`Client::list_page`]. A server that does not page (the public Amika API answers
//! the whole array and no cursor) gives one page holding everything, so both work alike.

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::{decode, Client, ClientError};

/// Items per page when a list call pages through.
pub const PAGE_SIZE: u32 = 500;

/// The header with the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

/// One page of a list and the cursor of the next (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl Client {
    /// `GET path?limit=&cursor=`: one page of a list (`path` as for any call, e.g. `/secrets`).
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<T>, ClientError> {
        let mut url = format!("{}?limit={limit}", self.api_url(path));
        if let Some(cursor) = cursor {
            // A cursor is lowercase hex: nothing to escape.
            url.push_str("&cursor=");
            url.push_str(cursor);
        }
        let response = self.send_json(Method::GET, &url, None::<&()>).await?;
        let next_cursor = response
            .headers()
            .get(NEXT_CURSOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let items = decode(response, &url).await?;
        Ok(Page { items, next_cursor })
    }

    /// Every item of a paged list, fetched a page at a time.
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ClientError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: Page<T> = self.list_page(path, PAGE_SIZE, cursor.as_deref()).await?;
            all.extend(page.items);
            match page.next_cursor {
                // A cursor that does not move would loop for ever: stop rather than hang.
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }
}

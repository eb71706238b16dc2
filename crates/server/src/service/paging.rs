//! Pagination of list endpoints: `limit` and `cursor`, keyset style.
//!
//! A list is paged only when the caller sends `limit` or `cursor`; without either it answers
//! everything, as the public Amika API does (its clients expect the whole array). A page is the
//! next items in the list's own order after the cursor's sort key, and the cursor of the next
//! page is the sort key of the page's last item. Items inserted or deleted between two pages
//! therefore never make another item be skipped or answered twice (an offset would).
//!
//! The cursor is the sort key's fields joined by NUL, as lowercase hex: opaque to clients, yet
//! every string of the documented pattern decodes to some position, so no well-formed cursor is
//! refused (a fuzzer sending any schema-valid cursor gets a page, possibly empty).

use super::{Result, ServiceError};

/// Items per page when only `cursor` is sent.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit`.
pub const MAX_LIMIT: u32 = 1000;
/// The longest cursor accepted, in characters (a sort key of names well under 1 KiB).
pub const MAX_CURSOR_CHARS: usize = 4096;
/// The pattern every cursor matches (also declared in the OpenAPI document).
pub const CURSOR_PATTERN: &str = "^([0-9a-f]{2})+$";

/// What a caller asked of a list: everything, or a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// `None`: the whole list (neither `limit` nor `cursor` was sent).
    pub limit: Option<u32>,
    /// The sort key after which the page starts (decoded cursor); `None`: from the start.
    pub after: Option<Vec<String>>,
}

/// One page of a list, and the cursor of the next one when there is more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The whole list as one page.
    pub fn all(items: Vec<T>) -> Self {
        Page {
            items,
            next_cursor: None,
        }
    }

    /// The same page with its items converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

impl PageRequest {
    /// The request of a list call from its raw query values: `limit` a whole number in
    /// 1..=[`MAX_LIMIT`], `cursor` one of ours; each error names its parameter.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self> {
        let limit_value = match limit {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
                _ => {
                    return Err(ServiceError::bad_request(format!(
                        "limit must be a whole number in 1..={MAX_LIMIT}, not {text:?}"
                    ))
                    .at("limit"))
                }
            },
        };
        let after = cursor.map(decode_cursor).transpose()?;
        if limit_value.is_none() && after.is_none() {
            return Ok(PageRequest::default());
        }
        Ok(PageRequest {
            limit: Some(limit_value.unwrap_or(DEFAULT_LIMIT)),
            after,
        })
    }

    /// Whether the whole list is asked for.
    pub fn is_all(&self) -> bool {
        self.limit.is_none()
    }

    /// Page a list already in memory: `key` gives each item's sort key, unique within the list.
    /// The items need not come sorted; the page is in key order.
    pub fn apply<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> Vec<String>) -> Page<T> {
        let Some(limit) = self.limit else {
            return Page::all(items);
        };
        items.sort_by_key(|a| key(a));
        if let Some(after) = &self.after {
            items.retain(|item| key(item) > *after);
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

/// The cursor that continues after the item whose sort key is `key`.
pub fn encode_cursor(key: &[String]) -> String {
    hex::encode(key.join("\0"))
}

fn decode_cursor(cursor: &str) -> Result<Vec<String>> {
    let well_formed = !cursor.is_empty()
        && cursor.len() <= MAX_CURSOR_CHARS
        && cursor.len().is_multiple_of(2)
        && cursor
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed {
        return Err(ServiceError::bad_request(format!(
            "cursor must be the X-Next-Cursor of a previous page (lowercase hex, at most \
             {MAX_CURSOR_CHARS} characters)"
        ))
        .at("cursor"));
    }
    let bytes = hex::decode(cursor).unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes)
        .split('\0')
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ServiceError) -> String {
        match e {
            ServiceError::BadRequest { field, message, .. } => {
                format!("{}: {message}", field.unwrap_or_default())
            }
            other => panic!("not a 400: {other}"),
        }
    }

    #[test]
    fn without_limit_or_cursor_the_whole_list_is_answered() {
        let req = PageRequest::parse(None, None).unwrap();
        assert!(req.is_all());
        let page = req.apply(vec![3, 1, 2], |n| vec![n.to_string()]);
        assert_eq!(page.items, vec![3, 1, 2]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn malformed_limits_and_cursors_are_refused_naming_the_parameter() {
        for bad in ["0", "-1", "1001", "abc", "1.5", ""] {
            let e = field(PageRequest::parse(Some(bad), None).unwrap_err());
            assert!(
                e.starts_with("limit: limit must be a whole number in 1..=1000"),
                "{e}"
            );
        }
        for bad in ["", "a", "ABCD", "zz", "0g", &"ab".repeat(3000)] {
            let e = field(PageRequest::parse(None, Some(bad)).unwrap_err());
            assert!(
                e.starts_with("cursor: cursor must be the X-Next-Cursor"),
                "{e}"
            );
        }
    }

    #[test]
    fn pages_walk_the_list_once_in_key_order_even_with_inserts_between_them() {
        let mut items: Vec<u32> = (0..25).map(|n| n * 2).collect();
        let key = |n: &u32| vec![format!("{n:04}")];
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let req = PageRequest::parse(Some("7"), cursor.as_deref()).unwrap();
            let page = req.apply(items.clone(), key);
            seen.extend(page.items.iter().copied());
            // Between pages, new items land before and after the position reached.
            items.push(seen.len() as u32 * 2 + 1);
            items.push(1000 + seen.len() as u32);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let originals: Vec<u32> = seen
            .iter()
            .copied()
            .filter(|n| n % 2 == 0 && *n < 50)
            .collect();
        assert_eq!(originals, (0..25).map(|n| n * 2).collect::<Vec<_>>());
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(unique, seen, "no item twice");
    }

    #[test]
    fn any_well_formed_cursor_is_a_position() {
        let req = PageRequest::parse(Some("2"), Some("ff00")).unwrap();
        assert_eq!(req.after.as_deref().map(<[String]>::len), Some(2));
        let key = vec!["b".to_string(), "org".to_string()];
        let back = PageRequest::parse(None, Some(&encode_cursor(&key))).unwrap();
        assert_eq!(back.after, Some(key));
        assert_eq!(back.limit, Some(DEFAULT_LIMIT));
    }
}

//! Cursor pagination shared by every listing route:
//! `?limit=&cursor=` in, `{"data": [...], "pagination": {...}}` out.

use std::sync::Arc;

use domain::{Page, PageLimit, PageRequest};
use serde::Serialize;

use crate::auth::CursorKeys;
use crate::cursor::CursorCodec;
use crate::http::{ApiError, ApiRequest};

/// Seals and opens cursors with the active cursor key.
#[derive(Clone)]
pub struct Cursors {
    keys: Arc<CursorKeys>,
}

/// The `pagination` object of a listing response.
#[derive(Debug, Serialize)]
pub struct Pagination {
    /// The page size this page was read with (the client's or the default).
    pub limit: u16,
    /// Pass as `?cursor=` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// How many items the whole listing holds, across all pages.
    pub total: u64,
}

/// A listing response body: one page of views and where to go next.
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    /// The page's items, newest first.
    pub data: Vec<T>,
    /// How to ask for the next page.
    pub pagination: Pagination,
}

impl Cursors {
    /// Cursors keyed by the active cursor key: rotating it invalidates the
    /// cursors handed out before (a client then starts its listing again).
    pub fn new(keys: Arc<CursorKeys>) -> Self {
        Self { keys }
    }

    async fn codec(&self) -> Result<CursorCodec, ApiError> {
        let keys = self.keys.current().await.map_err(ApiError::Unavailable)?;
        Ok(CursorCodec::new(keys.active().1))
    }

    /// Reads `limit` and `cursor` for a listing whose scope is `scope`
    /// (which listing, for whom, with which filters).
    pub async fn page_request(&self, request: &ApiRequest, scope: &str) -> Result<PageRequest, ApiError> {
        let limit = PageLimit::parse(request.query("limit"))?;
        let after = match request.query("cursor") {
            None | Some("") => None,
            Some(cursor) => Some(self.codec().await?.open(cursor, scope).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is invalid, expired or belongs to another listing")
            })?),
        };
        Ok(PageRequest { limit, after })
    }

    /// Builds the response body, sealing the next position into a cursor.
    pub async fn paginated<T, V>(
        &self,
        page: Page<T>,
        limit: PageLimit,
        scope: &str,
        view: impl Fn(&T) -> V,
    ) -> Result<Paginated<V>, ApiError> {
        let next_cursor = match &page.next {
            None => None,
            Some(position) => Some(self.codec().await?.seal(scope, position)),
        };
        Ok(Paginated {
            data: page.items.iter().map(view).collect(),
            pagination: Pagination { limit: limit.get(), next_cursor, total: page.total },
        })
    }
}

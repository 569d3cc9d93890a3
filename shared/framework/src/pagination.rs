//! Cursor pagination shared by every listing route:
//! `?cursor=` in, `{"data": [...], "pagination": {...}}` out. A cursor seals
//! a store's position (an opaque string) under the listing's scope; what a
//! page size is and how a store reads a page are the caller's.

use std::sync::Arc;

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

    /// Whether the cursor key has been read, waiting for a read under way
    /// but never starting one.
    pub async fn key_has_been_read(&self) -> bool {
        self.keys.has_been_read().await
    }

    async fn codec(&self) -> Result<CursorCodec, ApiError> {
        let keys = self.keys.current().await.map_err(ApiError::Unavailable)?;
        Ok(CursorCodec::new(keys.active().1))
    }

    /// Opens `?cursor=` of a listing whose scope is `scope` (which listing,
    /// for whom, with which filters): the position the page starts after,
    /// `None` for the first page. A 400 `invalid_cursor` if it does not open.
    pub async fn position(&self, request: &ApiRequest, scope: &str) -> Result<Option<String>, ApiError> {
        match request.query("cursor") {
            None | Some("") => Ok(None),
            Some(cursor) => Ok(Some(self.codec().await?.open(cursor, scope).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "cursor is invalid, expired or belongs to another listing")
            })?)),
        }
    }

    /// Builds the response body of a listing's page read with page size
    /// `limit`: its `data`, the listing's `total`, and the store's `next`
    /// position (`None` on the last page) sealed into a cursor of `scope`.
    pub async fn page<V>(
        &self,
        scope: &str,
        limit: u16,
        data: Vec<V>,
        next: Option<&str>,
        total: u64,
    ) -> Result<Paginated<V>, ApiError> {
        let next_cursor = match next {
            None => None,
            Some(position) => Some(self.codec().await?.seal(scope, position)),
        };
        Ok(Paginated { data, pagination: Pagination { limit, next_cursor, total } })
    }
}

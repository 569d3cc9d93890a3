//! The shop's listings on the framework's cursors: `?limit=` is the domain's
//! [`PageLimit`], a cursor seals a store's [`Page`] position.

use crate::error::AppError;
use domain::{Page, PageLimit, PageRequest};
use framework::http::ApiRequest;
use framework::pagination::{Cursors, Paginated};

/// Reads and answers a page of a listing whose scope is `scope` (which
/// listing, for whom, with which filters).
pub(crate) trait Paging {
    /// The page `?limit=&cursor=` asks for: a bad limit is a 422, then a
    /// cursor that does not open under `scope` a 400.
    async fn page_request(&self, request: &ApiRequest, scope: &str) -> Result<PageRequest, AppError>;

    /// The response body of `page`, its next position sealed into a cursor.
    async fn paginated<T, V>(
        &self,
        page: Page<T>,
        limit: PageLimit,
        scope: &str,
        view: impl Fn(&T) -> V,
    ) -> Result<Paginated<V>, AppError>;
}

impl Paging for Cursors {
    async fn page_request(&self, request: &ApiRequest, scope: &str) -> Result<PageRequest, AppError> {
        let limit = PageLimit::parse(request.query("limit"))?;
        let after = self.position(request, scope).await?;
        Ok(PageRequest { limit, after })
    }

    async fn paginated<T, V>(
        &self,
        page: Page<T>,
        limit: PageLimit,
        scope: &str,
        view: impl Fn(&T) -> V,
    ) -> Result<Paginated<V>, AppError> {
        let data = page.items.iter().map(view).collect();
        Ok(self.page(scope, limit.get(), data, page.next.as_deref(), page.total).await?)
    }
}

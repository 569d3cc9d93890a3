//! GET /users/me, GET /users (admin) and PATCH /users/{id} (admin).

use domain::ports::UserStore;
use domain::{PageLimit, UserId, UserPatch};
use platform::http::{ApiError, ApiRequest, ApiResponse};
use platform::pagination::Cursors;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::UserView;

const LIST_SCOPE: &str = "users";

/// GET /users/me: the caller's own account, with its ETag.
pub async fn me(request: ApiRequest, users: &impl UserStore) -> Result<ApiResponse, ApiError> {
    let principal = request.principal()?;
    let user = users.get(principal.user_id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse::ok(UserView::from(&user)).etag(user.version))
}

/// GET /users (admin): every account, newest first, in pages.
pub async fn list(request: ApiRequest, users: &impl UserStore, cursors: &Cursors) -> Result<ApiResponse, ApiError> {
    let page_request = cursors.page_request(&request, LIST_SCOPE).await?;
    let limit: PageLimit = page_request.limit;
    let page = users.list(&page_request).await?;
    let body = cursors.paginated(page, limit, LIST_SCOPE, |user| UserView::from(user)).await?;
    Ok(ApiResponse::ok(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    role: Option<String>,
    disabled: Option<bool>,
}

/// PATCH /users/{id} (admin): changes role or disabled. `If-Match` is
/// required; a patch that changes nothing writes nothing and keeps the
/// version; an admin cannot demote or disable themselves (409 `self_lockout`),
/// and a change that takes an admin away commits only while the admin making
/// it still is one (409 `last_active_admin`): never no active admin left.
pub async fn update(request: ApiRequest, users: &impl UserStore) -> Result<ApiResponse, ApiError> {
    let actor = request.principal()?.user_id;
    // An id that cannot exist is simply not found.
    let id = UserId::parse(request.path_param("id")?).map_err(|_| ApiError::NotFound)?;
    let body: PatchBody = request.json()?;
    let patch = UserPatch::parse(body.role.as_deref(), body.disabled)?;
    let precondition = request.if_match()?;

    let (precondition, patch) = (&precondition, &patch);
    crate::current_version::on_the_current_version(Some(precondition), || async move {
        let user = users.get(id).await?.ok_or(ApiError::NotFound)?;
        if !precondition.matches(user.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let patched = user
            .patched(patch, actor, OffsetDateTime::now_utc())
            .map_err(|refused| ApiError::conflict("self_lockout", refused.to_string()))?;
        if patched.version != user.version {
            // Taking an admin away needs the acting admin to still be one when it commits.
            let witness = user.loses_admin(&patched).then_some(actor);
            users.update(&patched, witness).await?;
            tracing::info!(user_id = %id, by = %actor, role = %patched.role, disabled = patched.disabled, "user updated");
        }
        Ok(ApiResponse::ok(UserView::from(&patched)).etag(patched.version))
    })
    .await
}

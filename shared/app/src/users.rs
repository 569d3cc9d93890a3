//! GET /users/me, GET /users/me/export, GET /users (admin) and PATCH
//! /users/{id} (admin).

use crate::caller::Caller as _;
use crate::error::AppError;
use domain::ports::{OrderFilter, OrderStore, SecondFactorStore, SessionStore, UserStore};
use domain::{PageLimit, PageRequest, UserId, UserPatch};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use framework::pagination::Cursors;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::paging::Paging as _;
use crate::{OrderView, UserView};

const LIST_SCOPE: &str = "users";

/// GET /users/me: the caller's own account, with its ETag.
pub async fn me(request: ApiRequest, users: &impl UserStore) -> Result<ApiResponse, AppError> {
    let principal = request.principal()?;
    let user = users.get(principal.user_id()).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiResponse::ok(UserView::from(&user)).etag(user.version))
}

/// The most orders one export holds: ten pages of the largest size. A
/// customer with more gets the newest ones and `orders_truncated: true`;
/// the bound keeps one request's reads and its body within the function's
/// time and the response size API Gateway allows.
pub const EXPORT_MAX_ORDERS: usize = 1_000;

/// The document GET /users/me/export answers with.
#[derive(Serialize)]
struct Export {
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
    account: UserView,
    orders: Vec<OrderView>,
    orders_total: u64,
    orders_truncated: bool,
    sessions: Vec<SessionExport>,
    second_factor: SecondFactorExport,
}

/// A live session (signed-in device) as the export shows it: never its secret.
#[derive(Serialize)]
struct SessionExport {
    id: String,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// The second factor's state: never its secret nor the recovery codes.
#[derive(Serialize)]
struct SecondFactorExport {
    /// `none`, `pending` or `confirmed`.
    totp: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    enrolled_at: Option<OffsetDateTime>,
    recovery_codes_left: usize,
}

/// GET /users/me/export: what the shop keeps about the caller, as one
/// download: the account (never its credentials), its orders, newest
/// first, every page of the order listing walked here, up to
/// [`EXPORT_MAX_ORDERS`], its live sessions and its second factor's state
/// (never a secret, a token hash or a recovery code). Personal: the layer
/// makes it `private, no-cache`.
pub async fn export(
    request: ApiRequest,
    users: &impl UserStore,
    orders: &impl OrderStore,
    sessions: &impl SessionStore,
    second_factors: &impl SecondFactorStore,
) -> Result<ApiResponse, AppError> {
    let principal = request.principal()?;
    let id = principal.user_id();
    let now = OffsetDateTime::now_utc();
    let (user, live, enrolment, recovery_codes_left) = tokio::join!(
        users.get(id),
        sessions.list(id, now),
        second_factors.enrolment(id),
        second_factors.recovery_codes_left(id),
    );
    let user = user?.ok_or(ApiError::NotFound)?;
    let enrolment = enrolment?;
    let second_factor = SecondFactorExport {
        totp: enrolment.as_ref().map_or("none", |enrolment| enrolment.state.as_str()),
        enrolled_at: enrolment.as_ref().map(|enrolment| enrolment.created_at),
        recovery_codes_left: recovery_codes_left?,
    };
    let sessions = live?
        .iter()
        .map(|session| SessionExport {
            id: session.id.to_string(),
            started_at: session.started_at,
            expires_at: session.expires_at,
        })
        .collect();
    let filter = OrderFilter { owner: Some(user.id), status: None };
    let mut page_request = PageRequest { limit: PageLimit::parse(Some(&PageLimit::MAX.to_string()))?, after: None };
    let mut exported = Vec::new();
    let (orders_total, orders_truncated) = loop {
        let page = orders.list(filter, &page_request).await?;
        exported.extend(page.items.iter().map(OrderView::from));
        match page.next {
            Some(_) if exported.len() >= EXPORT_MAX_ORDERS => break (page.total, true),
            Some(next) => page_request.after = Some(next),
            None => break (page.total, exported.len() > EXPORT_MAX_ORDERS),
        }
    };
    exported.truncate(EXPORT_MAX_ORDERS);
    let body = Export {
        exported_at: now,
        account: UserView::from(&user),
        orders: exported,
        orders_total,
        orders_truncated,
        sessions,
        second_factor,
    };
    Ok(ApiResponse::ok(body).header(http::header::CONTENT_DISPOSITION, "attachment; filename=\"shop-export.json\""))
}

/// GET /users (admin): every account, newest first, in pages.
pub async fn list(request: ApiRequest, users: &impl UserStore, cursors: &Cursors) -> Result<ApiResponse, AppError> {
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
/// A change of role or disabled flag ends every session of the account.
pub async fn update(
    request: ApiRequest,
    users: &impl UserStore,
    sessions: &impl domain::ports::SessionStore,
) -> Result<ApiResponse, AppError> {
    let actor = request.principal()?.user_id();
    // An id that cannot exist is simply not found.
    let id = UserId::parse(request.path_param("id")?).map_err(|_| ApiError::NotFound)?;
    let body: PatchBody = request.json()?;
    let patch = UserPatch::parse(body.role.as_deref(), body.disabled)?;
    let precondition = request.if_match()?;

    let (precondition, patch) = (&precondition, &patch);
    crate::current_version::on_the_current_version(Some(precondition), || async move {
        let user = users.get(id).await?.ok_or(ApiError::NotFound)?;
        if !precondition.matches(user.version) {
            return Err(ApiError::PreconditionFailed.into());
        }
        let patched = user
            .patched(patch, actor, OffsetDateTime::now_utc())
            .map_err(AppError::PatchRefused)?;
        if patched.version != user.version {
            // Taking an admin away needs the acting admin to still be one when it commits.
            let witness = user.loses_admin(&patched).then_some(actor);
            users.update(&patched, witness).await?;
            tracing::info!(user_id = %id, by = %actor, role = %patched.role, disabled = patched.disabled, "user updated");
            // A disabled or re-roled account keeps no session: its reads
            // trust the old role for at most one access-token lifetime.
            crate::sessions::end_on_account_change(sessions, &user, &patched).await;
        }
        Ok(ApiResponse::ok(UserView::from(&patched)).etag(patched.version))
    })
    .await
}

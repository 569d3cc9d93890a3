//! Orders: POST /orders, GET /orders, GET /orders/{id}, PATCH /orders/{id}
//! and DELETE /orders/{id}. Customers see and change only their own orders;
//! anyone else's is "not found", so existence never leaks.

use crate::caller::Caller as _;
use crate::error::AppError;
use domain::ports::{OrderFilter, OrderStore, ProductStore, Publisher, StoreError, UserStore};
use domain::{DomainEvent, Order, OrderId, OrderRequest, OrderStatus, PricingError, ValidationError};
use framework::auth::Principal;
use framework::http::{ApiError, ApiRequest, ApiResponse, IfMatch};
use framework::idempotency::{Idempotency, IdempotencyStore, KeyPolicy};
use framework::metrics::{self, names};
use framework::pagination::Cursors;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::paging::Paging as _;
use crate::views::OrderView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    product_id: String,
    #[serde(deserialize_with = "crate::input::whole_number")]
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    lines: Vec<LineBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

fn pricing_error(error: &PricingError) -> AppError {
    ValidationError::field("lines", error.to_string()).into()
}

fn order_response(order: &Order) -> ApiResponse {
    ApiResponse::ok(OrderView::from(order)).etag(order.version)
}

/// The order, if `principal` may see it.
async fn visible_order(request: &ApiRequest, orders: &impl OrderStore) -> Result<(Principal, Order), AppError> {
    let principal = request.principal()?.clone();
    let id = OrderId::parse(request.path_param("id")?).map_err(|_| ApiError::NotFound)?;
    let order = orders.get(id).await?.ok_or(ApiError::NotFound)?;
    if !order.is_owned_by(principal.user_id()) && !principal.is_admin() {
        return Err(ApiError::NotFound.into());
    }
    Ok((principal, order))
}

/// Places an order priced from the catalogue. The `Idempotency-Key` is
/// required: a retry (after a lost answer, a 503, a timeout) gets the first
/// response and creates nothing, whether or not the first attempt's commit
/// was known when it answered. Once the transaction is sent the request's
/// budget no longer cuts it short, and once it has committed the answer is
/// 201 whatever the publish after it does (the relay sends what it could not).
/// Only an account whose email is verified may order (`403
/// email_unverified`): its user item is read alongside the catalogue, so the
/// check adds no round trip and a verification counts at once. The placing
/// write checks the account again, so an account deleted after that read
/// gets no order (`401 invalid_token`, as every request of a deleted
/// account): of the placement and the deletion exactly one happens.
pub async fn place(
    request: ApiRequest,
    users: &impl UserStore,
    products: &impl ProductStore,
    orders: &impl OrderStore,
    keys: &impl IdempotencyStore,
    publisher: &impl Publisher,
) -> Result<ApiResponse, AppError> {
    let owner = request.principal()?.user_id();
    let idempotency = Idempotency::new("orders:place", keys).policy(KeyPolicy::Required);
    idempotency
        .run(&request, async |key| -> Result<ApiResponse, AppError> {
            let body: PlaceBody = request.json()?;
            let lines: Vec<(String, i64)> = body.lines.into_iter().map(|l| (l.product_id, l.quantity)).collect();
            let order_request = OrderRequest::parse(&lines)?;
            let ids: Vec<_> = order_request.lines.iter().map(|(id, _)| *id).collect();
            let (catalogue, verified) =
                tokio::join!(products.get_many(&ids), crate::registration::require_verified(users, owner));
            verified?;
            let catalogue = catalogue?;
            let now = OffsetDateTime::now_utc();
            let order = order_request.price(owner, &catalogue, now).map_err(|error| pricing_error(&error))?;
            let event = DomainEvent::order_placed(order.id, owner, &request.correlation_id, now);
            let location = format!("/api/v1/orders/{}", order.id);
            let response = ApiResponse::created(OrderView::from(&order), &location).etag(order.version);
            let record = key.map(|key| crate::idempotency::stored(key.record(&response)));
            request.commit(&response, orders.place(&order, &event, record.as_ref())).await.map_err(|error| {
                match error {
                    // Verified when read (and a verification is never undone): the account was deleted since.
                    StoreError::NotFound => {
                        tracing::info!("order refused: the account was deleted while the order was placed");
                        AppError::from(ApiError::InvalidToken)
                    }
                    other => AppError::from(other),
                }
            })?;
            tracing::info!(order_id = %order.id, lines = order.lines.len(), total = order.total.minor(), "order placed");
            metrics::count(names::ORDERS_PLACED, 1.0);
            publisher.publish_after_commit(&event).await;
            Ok(response)
        })
        .await
        .map_err(AppError::from)
}

/// GET /orders: newest first, in pages, optionally `?status=`; customers see
/// only their own orders, admins everyone's.
pub async fn list(request: ApiRequest, orders: &impl OrderStore, cursors: &Cursors) -> Result<ApiResponse, AppError> {
    let principal = request.principal()?;
    let status = request.query("status").map(OrderStatus::parse).transpose()?;
    let owner = (!principal.is_admin()).then_some(principal.user_id());
    // The scope binds cursors to this caller and filter: no cursor opens another listing.
    let scope = format!(
        "orders:owner={}:status={}",
        owner.map_or_else(|| "*".to_owned(), |o| o.to_string()),
        status.map_or("*", OrderStatus::as_str)
    );
    let page_request = cursors.page_request(&request, &scope).await?;
    let page = orders.list(OrderFilter { owner, status }, &page_request).await?;
    let body = cursors.paginated(page, page_request.limit, &scope, |o| OrderView::from(o)).await?;
    Ok(ApiResponse::ok(body))
}

/// GET /orders/{id}, with its ETag; 404 for an order the caller may not see.
pub async fn get(request: ApiRequest, orders: &impl OrderStore) -> Result<ApiResponse, AppError> {
    let (_, order) = visible_order(&request, orders).await?;
    Ok(order_response(&order))
}

/// PATCH: the owner may cancel; an admin may cancel or ship. `If-Match` is required.
pub async fn update(request: ApiRequest, orders: &impl OrderStore) -> Result<ApiResponse, AppError> {
    let body: StatusBody = request.json()?;
    let target = OrderStatus::parse(&body.status)?;
    if !matches!(target, OrderStatus::Cancelled | OrderStatus::Shipped) {
        return Err(ValidationError::field("status", "can only be set to cancelled or shipped").into());
    }
    let precondition = request.if_match()?;
    change_status(&request, orders, target, Some(precondition)).await
}

/// DELETE: cancels the order. `If-Match` is optional here; when present it must match.
pub async fn cancel(request: ApiRequest, orders: &impl OrderStore) -> Result<ApiResponse, AppError> {
    let precondition = request.optional_if_match();
    change_status(&request, orders, OrderStatus::Cancelled, precondition).await
}

async fn change_status(
    request: &ApiRequest,
    orders: &impl OrderStore,
    target: OrderStatus,
    precondition: Option<IfMatch>,
) -> Result<ApiResponse, AppError> {
    let precondition = precondition.as_ref();
    crate::current_version::on_the_current_version(precondition, || async move {
        let (principal, order) = visible_order(request, orders).await?;
        if target == OrderStatus::Shipped && !principal.is_admin() {
            return Err(ApiError::Forbidden.into());
        }
        if precondition.is_some_and(|precondition| !precondition.matches(order.version)) {
            return Err(ApiError::PreconditionFailed.into());
        }
        let next = order
            .transitioned(target, None, OffsetDateTime::now_utc())
            .map_err(AppError::IllegalTransition)?;
        // Conditional on the version read: a concurrent change is a 412 (or, unpinned, a fresh read), never a lost update.
        orders.transition(&order, &next).await?;
        tracing::info!(order_id = %order.id, from = %order.status, to = %next.status, by = %principal.user_id(), "order status changed");
        metrics::count(
            if next.status == OrderStatus::Shipped { names::ORDERS_SHIPPED } else { names::ORDERS_CANCELLED },
            1.0,
        );
        Ok(order_response(&next))
    })
    .await
}

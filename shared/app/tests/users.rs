//! User administration on in-memory adapters.

mod support;

use domain::Role;
use domain::ports::{OrderFilter, OrderStore};
use framework::http::ApiError;
use http::{Method, StatusCode};
use in_memory::{Dependency, Memory};
use serde_json::json;
use support::{body, request, user, with_header, with_path};

fn patch(
    admin: &domain::User,
    target: &domain::User,
    if_match: &str,
    body: serde_json::Value,
) -> framework::http::ApiRequest {
    with_header(with_path(request(Method::PATCH, Some(admin), Some(body)), target.id), "if-match", if_match)
}

#[tokio::test]
async fn admins_change_roles_and_flags_at_the_current_version_only() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let target = user(&memory, Role::User).await;
    let promoted = app::users::update(
        patch(&admin, &target, "\"1\"", json!({"role": "admin"})),
        &memory.users(),
        &memory.sessions(),
    )
    .await
    .unwrap();
    assert_eq!((body(&promoted)["role"].as_str(), body(&promoted)["version"].as_u64()), (Some("admin"), Some(2)));
    let stale = app::users::update(
        patch(&admin, &target, "\"1\"", json!({"disabled": true})),
        &memory.users(),
        &memory.sessions(),
    )
    .await
    .map_err(ApiError::from)
    .unwrap_err();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let same =
        app::users::update(patch(&admin, &target, "*", json!({"role": "admin"})), &memory.users(), &memory.sessions())
            .await
            .unwrap();
    assert_eq!(body(&same)["version"], 2, "a change to nothing writes nothing");
    assert_eq!(memory.user(target.id).unwrap().role, Role::Admin);
}

#[tokio::test]
async fn an_admin_cannot_lock_themselves_out_and_bad_patches_are_refused() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let lockout =
        app::users::update(patch(&admin, &admin, "*", json!({"disabled": true})), &memory.users(), &memory.sessions())
            .await
            .map_err(ApiError::from)
            .unwrap_err();
    assert_eq!((lockout.status(), lockout.code()), (StatusCode::CONFLICT, "self_lockout"));
    for bad in [json!({}), json!({"role": "root"}), json!({"role": "user", "email": "x@example.com"})] {
        let refused = app::users::update(patch(&admin, &admin, "*", bad.clone()), &memory.users(), &memory.sessions())
            .await
            .map_err(ApiError::from)
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let ghost = in_memory::contract::new_user("ghost");
    let missing =
        app::users::update(patch(&admin, &ghost, "*", json!({"role": "admin"})), &memory.users(), &memory.sessions())
            .await
            .map_err(ApiError::from)
            .unwrap_err();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_profile_is_read_from_the_store_and_an_outage_is_a_503() {
    let memory = Memory::new();
    let me = user(&memory, Role::User).await;
    let profile = app::users::me(request(Method::GET, Some(&me), None), &memory.users()).await.unwrap();
    assert_eq!(body(&profile)["email"], me.email.to_string());
    assert!(body(&profile).get("password_hash").is_none());
    memory.set_down(Dependency::Table, true);
    let down = app::users::me(request(Method::GET, Some(&me), None), &memory.users())
        .await
        .map_err(ApiError::from)
        .unwrap_err();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Holds every `get` until `readers` of them have read: the reads of
/// concurrent requests all happen before any of their writes.
struct ReadTogether {
    inner: in_memory::MemoryUserStore,
    barrier: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl domain::ports::UserStore for ReadTogether {
    async fn create(
        &self,
        user: &domain::User,
        event: Option<&domain::DomainEvent>,
        idempotency: Option<&domain::IdempotencyRecord>,
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.create(user, event, idempotency).await
    }
    async fn get(&self, id: domain::UserId) -> Result<Option<domain::User>, domain::ports::StoreError> {
        let read = self.inner.get(id).await;
        self.barrier.wait().await;
        read
    }
    async fn find_by_email(&self, email: &domain::Email) -> Result<Option<domain::User>, domain::ports::StoreError> {
        self.inner.find_by_email(email).await
    }
    async fn list(
        &self,
        page: &domain::PageRequest,
    ) -> Result<domain::Page<domain::UserProfile>, domain::ports::StoreError> {
        self.inner.list(page).await
    }
    async fn update(
        &self,
        user: &domain::User,
        admin_witness: Option<domain::UserId>,
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.update(user, admin_witness).await
    }
}

/// Regression: two admins demoting (or disabling) each other at the same
/// moment each passed the "not yourself" check, both changes committed, and
/// the shop was left without an active admin. A change that takes an admin
/// away now commits only while the admin making it is still an active
/// admin, so one of the two is refused with 409 `last_active_admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_removing_each_other_at_once_leave_one_active_admin() {
    for body in [json!({"role": "user"}), json!({"disabled": true})] {
        let memory = Memory::new();
        let (first, second) = (user(&memory, Role::Admin).await, user(&memory, Role::Admin).await);
        let users = std::sync::Arc::new(ReadTogether { inner: memory.users(), barrier: tokio::sync::Barrier::new(2) });
        let race = |actor: domain::User, target: domain::User| {
            let (users, sessions, body) = (users.clone(), memory.sessions(), body.clone());
            tokio::spawn(async move { app::users::update(patch(&actor, &target, "*", body), &*users, &sessions).await })
        };
        let (one, two) = tokio::join!(race(first.clone(), second.clone()), race(second.clone(), first.clone()));
        let outcomes = [one.unwrap().map_err(ApiError::from), two.unwrap().map_err(ApiError::from)];
        let refused: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "{body}: exactly one change is refused: {outcomes:?}");
        assert_eq!((refused[0].status(), refused[0].code()), (StatusCode::CONFLICT, "last_active_admin"));
        let active_admins = [first.id, second.id]
            .into_iter()
            .filter(|id| memory.user(*id).is_some_and(|user| user.role == Role::Admin && !user.disabled))
            .count();
        assert_eq!(active_admins, 1, "{body}");
    }
}

/// `count` pending orders of `owner`, placed straight into `orders`.
async fn orders_of(
    orders: &impl domain::ports::OrderStore,
    owner: &domain::User,
    count: usize,
) -> Vec<domain::OrderId> {
    let product = in_memory::contract::new_product(100, 5);
    let mut placed = Vec::new();
    for _ in 0..count {
        let order = in_memory::contract::new_order(owner.id, &[&product], 1);
        let event = domain::DomainEvent::order_placed(order.id, owner.id, "export", time::OffsetDateTime::now_utc());
        orders.place(&order, &event, None).await.unwrap();
        placed.push(order.id);
    }
    placed
}

fn export_ids(response: &framework::http::ApiResponse) -> Vec<String> {
    body(response)["orders"].as_array().unwrap().iter().map(|order| order["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_export_holds_the_account_without_credentials_and_every_page_of_its_own_orders() {
    let memory = Memory::new();
    let (buyer, stranger) = (user(&memory, Role::User).await, user(&memory, Role::User).await);
    let orders = memory.orders_with_limits(domain::HoldLimits::new(2_000, 2_000).unwrap());
    let mut placed: Vec<String> = orders_of(&orders, &buyer, 250).await.iter().map(ToString::to_string).collect();
    orders_of(&orders, &stranger, 3).await;

    let export = app::users::export(
        request(Method::GET, Some(&buyer), None),
        &memory.users(),
        &orders,
        &memory.sessions(),
        &memory.second_factors(),
    )
    .await
    .unwrap();

    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(support::header(&export, "content-disposition"), Some("attachment; filename=\"shop-export.json\""));
    let document = body(&export);
    assert_eq!(
        (document["account"]["id"].as_str(), document["account"]["email"].as_str()),
        (Some(&*buyer.id.to_string()), Some(&*buyer.email.to_string()))
    );
    assert!(!document.to_string().contains("password"), "no credentials in an export: {}", document["account"]);
    assert_eq!((document["orders_total"].as_u64(), document["orders_truncated"].as_bool()), (Some(250), Some(false)));
    let mut exported = export_ids(&export);
    assert_eq!(exported.len(), 250, "three pages of the listing, walked to the end");
    exported.sort();
    placed.sort();
    assert_eq!(exported, placed, "every order of the caller once, none of anyone else's");
}

#[tokio::test]
async fn an_export_stops_at_its_bound_newest_first_and_says_so() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let orders = memory.orders_with_limits(domain::HoldLimits::new(2_000, 2_000).unwrap());
    orders_of(&orders, &buyer, app::users::EXPORT_MAX_ORDERS + 5).await;
    let everything = domain::PageRequest { limit: domain::PageLimit::parse(Some("100")).unwrap(), after: None };
    let newest = orders.list(OrderFilter { owner: Some(buyer.id), status: None }, &everything).await.unwrap();

    let export = app::users::export(
        request(Method::GET, Some(&buyer), None),
        &memory.users(),
        &orders,
        &memory.sessions(),
        &memory.second_factors(),
    )
    .await
    .unwrap();

    let document = body(&export);
    assert_eq!((document["orders_total"].as_u64(), document["orders_truncated"].as_bool()), (Some(1_005), Some(true)));
    let exported = export_ids(&export);
    assert_eq!(exported.len(), app::users::EXPORT_MAX_ORDERS);
    assert_eq!(
        exported[..100],
        newest.items.iter().map(|order| order.id.to_string()).collect::<Vec<_>>()[..],
        "newest first"
    );
}

#[tokio::test]
async fn an_export_needs_a_caller_and_a_store_outage_is_a_503() {
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let anonymous = app::users::export(
        request(Method::GET, None, None),
        &memory.users(),
        &memory.orders(),
        &memory.sessions(),
        &memory.second_factors(),
    )
    .await;
    assert_eq!(anonymous.map_err(ApiError::from).unwrap_err().status(), StatusCode::UNAUTHORIZED);
    memory.set_down(Dependency::Table, true);
    let down = app::users::export(
        request(Method::GET, Some(&buyer), None),
        &memory.users(),
        &memory.orders(),
        &memory.sessions(),
        &memory.second_factors(),
    )
    .await;
    assert_eq!(down.map_err(ApiError::from).unwrap_err().status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_export_lists_live_sessions_and_the_second_factor_without_any_secret() {
    use domain::ports::SessionStore;
    let memory = Memory::new();
    let buyer = user(&memory, Role::User).await;
    let now = time::OffsetDateTime::now_utc();
    let hash = domain::SecretHash::from_bytes([7; 32]);
    let session = domain::Session::start(buyer.id, Role::User, false, hash, now, domain::RefreshLifetime::DEFAULT);
    memory.sessions().start(&session).await.unwrap();

    let export = app::users::export(
        request(Method::GET, Some(&buyer), None),
        &memory.users(),
        &memory.orders(),
        &memory.sessions(),
        &memory.second_factors(),
    )
    .await
    .unwrap();

    let document = body(&export);
    let sessions = document["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{document}");
    assert_eq!(sessions[0]["id"].as_str(), Some(&*session.id.to_string()));
    assert!(!document.to_string().contains(&"07".repeat(32)), "no token hash in an export: {document}");
    assert_eq!(
        document["second_factor"],
        serde_json::json!({"totp": "none", "enrolled_at": null, "recovery_codes_left": 0})
    );
}

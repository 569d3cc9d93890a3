//! Account deletion (DELETE /users/me) and the erasure sweep on in-memory
//! adapters: re-authentication, the refusals, orders kept without their
//! owner, retries and crashes between steps, and races with real
//! parallelism.

mod support;

use std::time::Duration;

use app::auth::PasswordCheck;
use app::erasure::{self, ERASE_ATTEMPTS};
use async_trait::async_trait;
use domain::ports::{AccountErasure, OrderFilter, OrderStore, SessionStore, StoreError, UserStore};
use domain::{DomainEvent, ErasureError, Order, OrderStatus, Password, PasswordHash, Role, User, UserId, UserPatch};
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::{Memory, MemoryAccountErasure, MemoryThrottle};
use serde_json::json;
use support::request;

/// Passwords checked without argon2 (its cost is not under test here): the
/// stored hash of `secret` is `plain:secret`.
struct Plain;

impl PasswordCheck for Plain {
    fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        hash.as_str() == format!("plain:{}", password.expose())
    }

    fn verify_nothing(&self, _password: &Password) {}
}

const PASSWORD: &str = "correct horse battery";

async fn account(memory: &Memory, role: Role) -> User {
    let mut user = in_memory::contract::new_user("erasure");
    user.role = role;
    // Verified, as an account that places orders is.
    user.email_verified = true;
    user.password_hash = PasswordHash::from_phc(format!("plain:{PASSWORD}"));
    memory.users().insert(&user, None).await.unwrap();
    user
}

fn attempts(memory: &Memory) -> MemoryThrottle {
    memory.throttle(ERASE_ATTEMPTS.name, ERASE_ATTEMPTS.attempts, ERASE_ATTEMPTS.window)
}

async fn delete(memory: &Memory, user: &User, password: &str) -> Result<ApiResponse, ApiError> {
    delete_through(memory, &memory.erasures(), user, password).await
}

async fn delete_through(
    memory: &Memory,
    erasures: &impl AccountErasure,
    user: &User,
    password: &str,
) -> Result<ApiResponse, ApiError> {
    let request = request(Method::DELETE, Some(user), Some(json!({ "password": password })));
    erasure::delete_me(request, &memory.users(), erasures, &Plain, &attempts(memory)).await.map_err(ApiError::from)
}

/// The erasing write commits, then the process dies: every later step fails.
struct CrashAfterTheCommit(MemoryAccountErasure);

#[async_trait]
impl AccountErasure for CrashAfterTheCommit {
    async fn erase(&self, user: &User) -> Result<(), ErasureError> {
        self.0.erase(user).await
    }

    async fn unfinished(&self, _limit: usize) -> Result<Vec<UserId>, StoreError> {
        Err(StoreError::Unavailable("crashed".into()))
    }

    async fn finish(&self, _id: UserId, _limit: usize) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("crashed".into()))
    }

    async fn erased(&self, id: UserId) -> Result<bool, StoreError> {
        self.0.erased(id).await
    }
}

/// A placed order of `owner`, moved on to `status` (a final one, or pending).
async fn order_of(memory: &Memory, owner: &User, status: OrderStatus) -> Order {
    let orders = memory.orders_with_limits(domain::HoldLimits::new(5_000, 5_000).unwrap());
    let product = support::product(memory, 1999, 100).await;
    let order = in_memory::contract::new_order(owner.id, &[&product], 1);
    let event = DomainEvent::order_placed(order.id, owner.id, "t", order.created_at);
    orders.place(&order, &event, None).await.unwrap();
    if status == OrderStatus::Pending {
        return order;
    }
    let moved = order.transitioned(status, None, order.created_at).unwrap();
    orders.transition(&order, &moved).await.unwrap();
    moved
}

fn all_orders() -> domain::PageRequest {
    domain::PageRequest { limit: domain::PageLimit::parse(Some("100")).unwrap(), after: None }
}

#[tokio::test]
async fn a_customer_deletes_their_account_with_their_password_and_the_books_keep_its_orders() {
    let memory = Memory::new();
    let customer = account(&memory, Role::User).await;
    let cancelled = order_of(&memory, &customer, OrderStatus::Cancelled).await;
    let rejected = order_of(&memory, &customer, OrderStatus::Rejected).await;

    let now = time::OffsetDateTime::now_utc();
    let hash = domain::SecretHash::from_bytes([9; 32]);
    let session = domain::Session::start(customer.id, Role::User, false, hash, now, domain::RefreshLifetime::DEFAULT);
    memory.sessions().start(&session).await.unwrap();

    let response = delete(&memory, &customer, PASSWORD).await.unwrap();

    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert_eq!(memory.user(customer.id), None);
    assert!(memory.sessions().list(customer.id, now).await.unwrap().is_empty(), "its sessions are gone");
    assert_eq!(memory.users().find_by_email(&customer.email).await.unwrap(), None, "signing in finds no account");
    for before in [&cancelled, &rejected] {
        let after = memory.order(before.id).unwrap();
        assert_eq!((after.owner, after.total, after.status), (None, before.total, before.status));
    }
    let listed = memory.orders().list(OrderFilter { owner: None, status: None }, &all_orders()).await.unwrap();
    assert_eq!(listed.items.len(), 2, "an admin's listing still reads them");
    assert!(memory.erasures_unfinished().is_empty(), "a small account is finished within the request");
    let mut again = in_memory::contract::new_user("again");
    again.email = customer.email.clone();
    memory.users().insert(&again, None).await.expect("the address is free to register again");
}

#[tokio::test]
async fn a_wrong_password_erases_nothing_and_guesses_are_bounded() {
    let memory = Memory::new();
    let customer = account(&memory, Role::User).await;
    for _ in 0..ERASE_ATTEMPTS.attempts {
        let refused = delete(&memory, &customer, "not the password").await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (StatusCode::FORBIDDEN, "password_incorrect"));
    }
    let throttled = delete(&memory, &customer, PASSWORD).await.unwrap_err();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password, past the bound");
    assert!(memory.user(customer.id).is_some());
    let missing = request(Method::DELETE, Some(&customer), Some(json!({})));
    let refused = erasure::delete_me(missing, &memory.users(), &memory.erasures(), &Plain, &attempts(&memory)).await;
    assert_eq!(
        refused.map_err(ApiError::from).unwrap_err().status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password is required"
    );
    memory.advance(ERASE_ATTEMPTS.window);
    assert_eq!(delete(&memory, &customer, PASSWORD).await.unwrap().status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn admins_and_accounts_with_open_orders_are_refused() {
    let memory = Memory::new();
    let admin = account(&memory, Role::Admin).await;
    let refused = delete(&memory, &admin, PASSWORD).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::CONFLICT, "admin_account"));
    assert!(memory.user(admin.id).is_some());

    let buyer = account(&memory, Role::User).await;
    let open = order_of(&memory, &buyer, OrderStatus::Pending).await;
    let refused = delete(&memory, &buyer, PASSWORD).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::CONFLICT, "orders_open"));
    let cancelled = open.transitioned(OrderStatus::Cancelled, None, open.created_at).unwrap();
    memory.orders().transition(&open, &cancelled).await.unwrap();
    assert_eq!(delete(&memory, &buyer, PASSWORD).await.unwrap().status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_account_with_many_orders_is_erased_at_once_and_its_orders_by_the_sweep() {
    let memory = Memory::new();
    let customer = account(&memory, Role::User).await;
    let count = erasure::ORDERS_PER_STEP * erasure::STEPS_IN_REQUEST + 234;
    let mut total_before = 0;
    for _ in 0..count {
        total_before += order_of(&memory, &customer, OrderStatus::Cancelled).await.total.minor();
    }

    assert_eq!(delete(&memory, &customer, PASSWORD).await.unwrap().status, StatusCode::NO_CONTENT);

    assert_eq!(memory.user(customer.id), None, "the account is gone at once");
    assert_eq!(memory.erasures_unfinished(), [customer.id], "its older orders are left for the sweep");
    let swept = erasure::sweep(&memory.erasures(), Duration::from_secs(5)).await.unwrap();
    assert_eq!((swept.unfinished, swept.finished), (1, 1));
    let orders = memory.orders_all();
    assert_eq!(orders.len(), count, "no order is lost");
    assert!(orders.iter().all(|order| order.owner.is_none()), "none names the erased account");
    assert_eq!(orders.iter().map(|order| order.total.minor()).sum::<u64>(), total_before, "the books add up");
    assert!(memory.erasures_unfinished().is_empty());
}

#[tokio::test]
async fn a_crash_after_the_erasing_write_is_finished_by_the_sweep_and_a_retry_is_harmless() {
    let memory = Memory::new();
    let customer = account(&memory, Role::User).await;
    let shipped = order_of(&memory, &customer, OrderStatus::Cancelled).await;
    let crashing = CrashAfterTheCommit(memory.erasures());

    let response = delete_through(&memory, &crashing, &customer, PASSWORD).await.unwrap();

    assert_eq!(response.status, StatusCode::NO_CONTENT, "the commit is the answer");
    assert_eq!(memory.user(customer.id), None);
    assert_eq!(memory.order(shipped.id).unwrap().owner, Some(customer.id), "the step after the commit failed");

    let retried = delete(&memory, &customer, PASSWORD).await.unwrap();
    assert_eq!(retried.status, StatusCode::NO_CONTENT, "a repeat of a delete that happened is a success");
    let swept = erasure::sweep(&memory.erasures(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(swept.finished, 1);
    assert_eq!(memory.order(shipped.id).unwrap().owner, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_erase_once_and_all_succeed() {
    let memory = Memory::new();
    let customer = account(&memory, Role::User).await;
    order_of(&memory, &customer, OrderStatus::Cancelled).await;
    // As many as the password attempts' bound lets through at once.
    let tasks: Vec<_> = (0..ERASE_ATTEMPTS.attempts)
        .map(|_| {
            let (memory, customer) = (memory.clone(), customer.clone());
            tokio::spawn(async move { delete(&memory, &customer, PASSWORD).await.map(|r| r.status) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), StatusCode::NO_CONTENT);
    }
    assert_eq!(memory.user(customer.id), None);
    assert!(memory.orders_all().iter().all(|order| order.owner.is_none()));
}

/// Two admins who each demote the other and delete themselves, all at
/// once, many times over: whatever the interleaving, the shop keeps an
/// active admin (a deletion needs a demotion first, and a demotion needs an
/// admin who stays).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_deleting_themselves_and_demoting_each_other_at_once_never_leave_no_admin() {
    for _ in 0..50 {
        let memory = Memory::new();
        let (first, second) = (account(&memory, Role::Admin).await, account(&memory, Role::Admin).await);
        let demote = |actor: User, target: User| {
            let memory = memory.clone();
            tokio::spawn(async move {
                let users = memory.users();
                let Some(current) = users.get(target.id).await.unwrap() else { return };
                let patch = UserPatch { role: Some(Role::User), disabled: None };
                if let Ok(demoted) = current.patched(&patch, actor.id, time::OffsetDateTime::now_utc()) {
                    let witness = current.loses_admin(&demoted).then_some(actor.id);
                    let _ = users.update(&demoted, witness).await;
                }
            })
        };
        let delete_self = |admin: User| {
            let memory = memory.clone();
            tokio::spawn(async move {
                // Twice: before and after a demotion may have landed.
                for _ in 0..2 {
                    let _ = delete(&memory, &admin, PASSWORD).await;
                    tokio::task::yield_now().await;
                }
            })
        };
        let tasks = [
            demote(first.clone(), second.clone()),
            demote(second.clone(), first.clone()),
            delete_self(first.clone()),
            delete_self(second.clone()),
        ];
        for task in tasks {
            task.await.unwrap();
        }
        let admins = [first.id, second.id]
            .into_iter()
            .filter(|id| memory.user(*id).is_some_and(|user| user.is_active_admin()))
            .count();
        assert!(admins >= 1, "no active admin left");
    }
}

/// Two admins deleting themselves at once: both refused, both still admins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_deleting_themselves_at_once_are_both_refused() {
    for _ in 0..50 {
        let memory = Memory::new();
        let admins = [account(&memory, Role::Admin).await, account(&memory, Role::Admin).await];
        let tasks: Vec<_> = admins
            .iter()
            .map(|admin| {
                let (memory, admin) = (memory.clone(), admin.clone());
                tokio::spawn(async move { delete(&memory, &admin, PASSWORD).await.map_err(|error| error.code()) })
            })
            .collect();
        let outcomes: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
        let left =
            admins.iter().filter(|admin| memory.user(admin.id).is_some_and(|user| user.is_active_admin())).count();
        assert!(left >= 1, "no active admin left: {outcomes:?}");
        for outcome in outcomes {
            assert_eq!(outcome.map(|response| response.status), Err("admin_account"));
        }
        assert_eq!(left, 2);
    }
}

/// The catalogue as DynamoDB serves it: a read takes a round trip (here
/// `delay`), during which anything else may commit.
#[derive(Clone)]
struct CatalogueRoundTrip {
    inner: in_memory::MemoryProductStore,
    delay: Duration,
}

#[async_trait]
impl domain::ports::ProductStore for CatalogueRoundTrip {
    async fn create(
        &self,
        product: &domain::Product,
        idempotency: Option<&domain::IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.inner.create(product, idempotency).await
    }
    async fn get(&self, id: domain::ProductId) -> Result<Option<domain::Product>, StoreError> {
        self.inner.get(id).await
    }
    async fn get_many(&self, ids: &[domain::ProductId]) -> Result<Vec<domain::Product>, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.get_many(ids).await
    }
    async fn list(
        &self,
        active: bool,
        page: &domain::PageRequest,
    ) -> Result<domain::Page<domain::Product>, StoreError> {
        self.inner.list(active, page).await
    }
    async fn replace(&self, previous: &domain::Product, next: &domain::Product) -> Result<(), StoreError> {
        self.inner.replace(previous, next).await
    }
    async fn delete(&self, product: &domain::Product) -> Result<(), StoreError> {
        self.inner.delete(product).await
    }
}

/// A customer places an order while their account is being deleted, on
/// four threads, many times over, the deletion starting at different
/// moments of the placement (before its catalogue read ends, around its
/// write, after it): exactly one of the two commits. Never an erased
/// account with an open order (stock held for nobody), never two successes;
/// a placement that loses is refused as any request of a gone account is
/// (401 `invalid_token`), a deletion that loses as one with an open order
/// (409 `orders_open`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_placed_while_the_account_is_deleted_never_outlives_the_account() {
    let memory = Memory::new();
    let products = CatalogueRoundTrip { inner: memory.products(), delay: Duration::from_millis(1) };
    let mug = support::product(&memory, 1250, 1_000_000).await;
    let (mut placed, mut deleted) = (0, 0);
    for round in 0..120_u32 {
        let customer = account(&memory, Role::User).await;
        let body = json!({ "lines": [{ "product_id": mug.id.to_string(), "quantity": 1 }] });
        let order = support::with_header(
            request(Method::POST, Some(&customer), Some(body)),
            "idempotency-key",
            &ulid::Ulid::new().to_string(),
        );
        let placement = {
            let (memory, products) = (memory.clone(), products.clone());
            tokio::spawn(async move {
                let (users, orders, keys, publisher) =
                    (memory.users(), memory.orders(), memory.idempotency(), memory.publisher());
                app::orders::place(order, &users, &products, &orders, &keys, &publisher).await
            })
        };
        let deletion = {
            let (memory, customer) = (memory.clone(), customer.clone());
            // From at once to well after the catalogue read: 0, 0.5, 1, 1.5 and 2 ms.
            let start = Duration::from_micros(u64::from(round % 5) * 500);
            tokio::spawn(async move {
                tokio::time::sleep(start).await;
                delete(&memory, &customer, PASSWORD).await
            })
        };
        let (placement, deletion) = (placement.await.unwrap().map_err(ApiError::from), deletion.await.unwrap());

        let erased = memory.user(customer.id).is_none();
        let open_and_ownerless_or_theirs = memory
            .orders_all()
            .into_iter()
            .filter(|order| matches!(order.status, OrderStatus::Pending | OrderStatus::Confirmed))
            .filter(|order| order.owner.is_none_or(|owner| owner == customer.id))
            .count();
        let outcome = format!(
            "round {round}: placement {:?}, deletion {:?}",
            placement.as_ref().map(|r| r.status).map_err(ApiError::code),
            deletion.as_ref().map(|r| r.status).map_err(ApiError::code),
        );
        assert!(!(erased && open_and_ownerless_or_theirs > 0), "an erased account holds an open order: {outcome}");
        match (placement, deletion) {
            (Ok(order), Err(refused)) => {
                assert_eq!(order.status, StatusCode::CREATED, "{outcome}");
                assert_eq!((refused.status(), refused.code()), (StatusCode::CONFLICT, "orders_open"), "{outcome}");
                assert!(!erased, "{outcome}");
                placed += 1;
            }
            (Err(refused), Ok(gone)) => {
                assert_eq!(gone.status, StatusCode::NO_CONTENT, "{outcome}");
                assert_eq!(
                    (refused.status(), refused.code()),
                    (StatusCode::UNAUTHORIZED, "invalid_token"),
                    "{outcome}"
                );
                assert!(erased, "{outcome}");
                deleted += 1;
            }
            _ => panic!("exactly one of the two commits: {outcome}"),
        }
    }
    // Both orders of events happened, so the race was really run.
    assert!(placed > 0 && deleted > 0, "placed first {placed} times, deleted first {deleted} times");
}

/// The HTTP layer as functions/delete-account wires it, over `memory`'s accounts.
fn delete_account_server(memory: &Memory) -> framework::http::HttpServer {
    let settings = framework::config::Settings::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".to_owned()))
        .expect("settings");
    let authenticator = framework::http::Authenticator::new(support::tokens(), std::sync::Arc::new(memory.users()));
    framework::http::HttpServer::new("delete-account", framework::http::Access::UserOrErased(authenticator), &settings)
}

/// DELETE /api/v1/users/me with `token` and the password, as API Gateway
/// hands it over, through `server` to the use case on `memory`.
async fn delete_over_http(
    server: &framework::http::HttpServer,
    memory: &Memory,
    token: &str,
) -> lambda_http::Response<lambda_http::Body> {
    use lambda_http::RequestExt;
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/delete-account.json")).unwrap();
    event["headers"]["Authorization"] = format!("Bearer {token}").into();
    event["multiValueHeaders"]["Authorization"] = json!([format!("Bearer {token}")]);
    event["body"] = json!({ "password": PASSWORD }).to_string().into();
    let mut context = lambda_http::Context::default();
    context.request_id = "erasure-over-http".into();
    let event = lambda_http::request::from_str(&event.to_string()).unwrap().with_lambda_context(context);
    let handler = |request| {
        let (users, erasures, attempts) = (memory.users(), memory.erasures(), attempts(memory));
        async move { erasure::delete_me(request, &users, &erasures, &Plain, &attempts).await }
    };
    server.handle(event, &handler).await
}

/// A client whose first answer was lost (a timeout) retries with the same,
/// still valid access token and password: the account is gone, and the
/// retry is answered as the first was (204), through the HTTP layer that
/// checks the token's account. Only an account that was erased gets that
/// answer: a token of an id that never was an account stays 401, through
/// the layer and in the use case alike.
#[tokio::test]
async fn a_retried_deletion_answers_204_and_a_token_of_no_account_stays_401() {
    let memory = Memory::new();
    let server = delete_account_server(&memory);
    let customer = account(&memory, Role::User).await;
    let token =
        support::tokens().issue(app::caller::subject(customer.id), framework::auth::Role::User).await.unwrap().token;

    let first = delete_over_http(&server, &memory, &token).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(memory.user(customer.id), None);
    let retried = delete_over_http(&server, &memory, &token).await;
    assert_eq!(retried.status(), StatusCode::NO_CONTENT, "a retry of a deletion that happened is a success");

    let never = in_memory::contract::new_user("never-stored");
    let token =
        support::tokens().issue(app::caller::subject(never.id), framework::auth::Role::User).await.unwrap().token;
    let refused = delete_over_http(&server, &memory, &token).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "a token of no account");
    let refused = delete(&memory, &never, PASSWORD).await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (StatusCode::UNAUTHORIZED, "invalid_token"));
}

//! User administration on in-memory adapters.

mod support;

use domain::Role;
use http::{Method, StatusCode};
use in_memory::{Dependency, Memory};
use serde_json::json;
use support::{body, request, user, with_header, with_path};

fn patch(
    admin: &domain::User,
    target: &domain::User,
    if_match: &str,
    body: serde_json::Value,
) -> platform::http::ApiRequest {
    with_header(with_path(request(Method::PATCH, Some(admin), Some(body)), target.id), "if-match", if_match)
}

#[tokio::test]
async fn admins_change_roles_and_flags_at_the_current_version_only() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let target = user(&memory, Role::User).await;
    let promoted =
        app::users::update(patch(&admin, &target, "\"1\"", json!({"role": "admin"})), &memory.users()).await.unwrap();
    assert_eq!((body(&promoted)["role"].as_str(), body(&promoted)["version"].as_u64()), (Some("admin"), Some(2)));
    let stale = app::users::update(patch(&admin, &target, "\"1\"", json!({"disabled": true})), &memory.users())
        .await
        .unwrap_err();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let same =
        app::users::update(patch(&admin, &target, "*", json!({"role": "admin"})), &memory.users()).await.unwrap();
    assert_eq!(body(&same)["version"], 2, "a change to nothing writes nothing");
    assert_eq!(memory.user(target.id).unwrap().role, Role::Admin);
}

#[tokio::test]
async fn an_admin_cannot_lock_themselves_out_and_bad_patches_are_refused() {
    let memory = Memory::new();
    let admin = user(&memory, Role::Admin).await;
    let lockout =
        app::users::update(patch(&admin, &admin, "*", json!({"disabled": true})), &memory.users()).await.unwrap_err();
    assert_eq!((lockout.status(), lockout.code()), (StatusCode::CONFLICT, "self_lockout"));
    for bad in [json!({}), json!({"role": "root"}), json!({"role": "user", "email": "x@example.com"})] {
        let refused = app::users::update(patch(&admin, &admin, "*", bad.clone()), &memory.users()).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let ghost = in_memory::contract::new_user("ghost");
    let missing =
        app::users::update(patch(&admin, &ghost, "*", json!({"role": "admin"})), &memory.users()).await.unwrap_err();
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
    let down = app::users::me(request(Method::GET, Some(&me), None), &memory.users()).await.unwrap_err();
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
            let (users, body) = (users.clone(), body.clone());
            tokio::spawn(async move { app::users::update(patch(&actor, &target, "*", body), &*users).await })
        };
        let (one, two) = tokio::join!(race(first.clone(), second.clone()), race(second.clone(), first.clone()));
        let outcomes = [one.unwrap(), two.unwrap()];
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

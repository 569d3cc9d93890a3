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

//! Registration and login from outside: one account per email whatever its
//! case (answered alike either way: `verification.rs`), every bad field
//! named, and login throttling that counts every guess (known email or not)
//! while the owner still gets in.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, app, error_code, unique_email};

#[tokio::test]
async fn register_login_and_read_own_profile() {
    let app = app();
    let email = unique_email("ada");

    let registered = app.register(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    assert!(registered.headers().get("location").is_none(), "the answer points at no account");

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["expires_in"], 300, "access tokens live five minutes");
    let token = login["token"].as_str().unwrap();

    let me = app.get("/users/me", Some(token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["etag"], "\"1\"");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], email, "stored normalised");
    assert_eq!(me["role"], "user");
    assert!(me.get("password_hash").is_none() && !me.to_string().contains("argon2"));
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let app = app();
    let email = unique_email("dup");
    assert_eq!(app.register(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let again = app.register(&format!("  {}  ", email.to_uppercase()), "another long password").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED, "answered alike");
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK, "the first password still signs in");
    assert_eq!(app.login(&email, "another long password").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_have_exactly_one_winner() {
    let app = app();
    let email = unique_email("race");
    let attempts = (0..6).map(|_| app.register(&email, PASSWORD));
    let statuses: Vec<StatusCode> = join_all(attempts).await.iter().map(reqwest::Response::status).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::ACCEPTED), "{statuses:?}");
    let parsed = domain::Email::parse(&email).unwrap();
    let store = crate::helpers::user_store().await;
    let user = domain::ports::UserStore::find_by_email(&store, &parsed).await.unwrap().expect("one account");
    assert_eq!(user.email, parsed);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK, "the one account signs in");
}

#[tokio::test]
async fn registration_rejects_bad_input_with_every_field_named() {
    let response = app().register("not-an-email", "short").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "password"]);
}

#[tokio::test]
async fn registration_cannot_choose_a_role() {
    let email = unique_email("sneaky");
    let response =
        app().post("/auth/register", None, json!({"email": email, "password": PASSWORD, "role": "admin"})).await;
    assert_eq!(error_code(response, StatusCode::UNPROCESSABLE_ENTITY).await, "validation_failed");
    assert_eq!(app().login(&email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "nothing was created");
}

#[tokio::test]
async fn login_refuses_wrong_password_and_unknown_email_alike() {
    let app = app();
    let user = app.new_user("login").await;
    let wrong = app.login(&user.email, "wrong password!").await;
    let unknown = app.login(&unique_email("nobody"), PASSWORD).await;
    assert_eq!(error_code(wrong, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
    assert_eq!(error_code(unknown, StatusCode::UNAUTHORIZED).await, "invalid_credentials");
}

/// Regression: the failed-login throttle read the count, ran
/// argon2, then counted, so parallel guesses all passed a 5-per-window limit;
/// and five wrong passwords from anyone locked the owner out.
#[tokio::test]
async fn parallel_guesses_get_at_most_the_limit_of_password_checks_and_the_owner_still_logs_in() {
    let attacker = app();
    let user = attacker.new_user("guessed").await;
    let wrong: Vec<String> = (0..20).map(|i| format!("wrong password {i}")).collect();
    let guesses = wrong.iter().map(|password| attacker.login(&user.email, password));
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(reqwest::Response::status).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(checked <= 5, "{checked} passwords were checked: {statuses:?}");
    assert_eq!(checked + throttled, 20, "{statuses:?}");
    assert_eq!(attacker.login(&user.email, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // The owner, from another address, is not locked out by the attacker.
    let owner = app();
    assert_eq!(owner.login(&user.email, PASSWORD).await.status(), StatusCode::OK);
}

/// An unknown email is throttled exactly like a known one: the throttle must
/// not tell an attacker which accounts exist.
#[tokio::test]
async fn unknown_emails_are_throttled_like_known_ones() {
    let attacker = app();
    let nobody = unique_email("nobody-throttled");
    let statuses: Vec<StatusCode> = join_all((0..8).map(|_| attacker.login(&nobody, "some password")))
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert!(statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count() <= 5, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

/// Regression: the throttle counted per account and address and per address
/// only, so guesses spread over many addresses each had their own five.
/// Now one account gets at most 20 password checks a day from addresses it
/// never signed in from; its owner still gets in from their own address.
#[tokio::test]
async fn guesses_from_thirty_addresses_get_at_most_the_daily_bound_and_the_owner_still_logs_in() {
    let owner = app();
    let user = owner.new_user("botnet-target").await; // signs in once: the owner's address is known
    let guessers: Vec<TestApp> = (0..30).map(|_| app()).collect();
    let wrong: Vec<String> = (0..30).map(|i| format!("guess number {i}")).collect();
    let guesses = guessers.iter().zip(&wrong).map(|(guesser, password)| guesser.login(&user.email, password));
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(reqwest::Response::status).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(checked <= 20, "{checked} passwords were checked from 30 addresses: {statuses:?}");
    assert_eq!(checked + throttled, 30, "{statuses:?}");

    assert_eq!(owner.login(&user.email, PASSWORD).await.status(), StatusCode::OK, "the owner, at home");
    let newcomer = app().login(&user.email, PASSWORD).await;
    assert_eq!(newcomer.status(), StatusCode::TOO_MANY_REQUESTS, "a new address waits for the next day");
    assert!(newcomer.headers().contains_key("retry-after"));
}

/// POST /auth/register with `key` as its Idempotency-Key.
async fn register_keyed(app: &TestApp, key: &str, email: &str, password: &str) -> reqwest::Response {
    let body = json!({"email": email, "password": password});
    app.client.post(app.url("/auth/register")).header("idempotency-key", key).json(&body).send().await.unwrap()
}

/// A keyed registration replays its `202` and does nothing again. The
/// password stays out of the stored fingerprint and is not compared: every
/// registration gets the same answer, so a replay (even with another
/// password, or by a stranger holding the key) reveals nothing, and it
/// changes nothing: the first password still signs in, the other does not.
#[tokio::test]
async fn a_keyed_registration_replays_its_answer_and_changes_nothing() {
    let (client, stranger) = (app(), app());
    let (key, email) = (ulid::Ulid::new().to_string(), unique_email("keyed"));
    let first = register_keyed(&client, &key, &email, PASSWORD).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();

    for (who, password) in [(&client, PASSWORD), (&client, "a corrected password"), (&stranger, "a stranger's guess")] {
        let retry = register_keyed(who, &key, &email, password).await;
        assert_eq!(
            (retry.status(), retry.headers()["idempotent-replayed"].to_str().unwrap()),
            (StatusCode::ACCEPTED, "true")
        );
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
    }
    assert_eq!(client.login(&email, "a corrected password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(client.login(&email, PASSWORD).await.status(), StatusCode::OK);
    let patience = std::time::Duration::from_secs(90);
    assert_eq!(crate::helpers::emails_to(&email, 1, patience).await.len(), 1, "the link arrived");
    let later = crate::helpers::emails_to(&email, 2, std::time::Duration::from_secs(5)).await;
    assert_eq!(later.len(), 1, "and nothing more: {later:?}");
}

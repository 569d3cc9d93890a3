//! The admins' second factor on in-memory adapters: enrolment pending until
//! a code confirms it, login asking for a code once it is confirmed, codes
//! and recovery codes that work once (also when raced on many threads), the
//! per-account limit on code attempts, and the time steps on a moved clock.

mod support;

use adapters::throttle::Limit;
use app::auth::{self, LoginLimits, PasswordCheck};
use app::mfa::{self, Proof};
use domain::ports::SecondFactorStore;
use domain::{Password, PasswordHash, Role, User};
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::Memory;
use serde_json::{Value, json};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Secret, TOTP};

use support::{body, request};

const PASSWORD: &str = "correct horse battery staple";

/// Accepts exactly [`PASSWORD`]: these tests are about the second factor,
/// not argon2 (which would make the raced logins slow).
struct PlainCheck;

impl PasswordCheck for PlainCheck {
    fn verify(&self, password: &Password, _hash: &PasswordHash) -> bool {
        password.expose() == PASSWORD
    }

    fn verify_nothing(&self, _password: &Password) {}
}

/// POST /auth/login with `body`, from client address `ip`.
async fn login_from(memory: &Memory, body: Value, ip: &str) -> Result<ApiResponse, ApiError> {
    let throttle = |limit: Limit| memory.throttle(limit.name, limit.attempts, limit.window);
    let limits = LoginLimits {
        per_account_and_client: throttle(auth::PER_ACCOUNT_AND_CLIENT),
        per_client: throttle(auth::PER_CLIENT),
        per_account: throttle(auth::PER_ACCOUNT),
        known_addresses: memory.sign_in_history(auth::KNOWN_ADDRESSES.name, auth::KNOWN_ADDRESSES.ttl),
    };
    let sessions = app::sessions::Sessions { store: memory.sessions(), lifetime: domain::RefreshLifetime::DEFAULT };
    let mut request = request(Method::POST, None, Some(body));
    ip.clone_into(&mut request.client_ip);
    let factors = support::second_factors(memory);
    auth::login(request, &memory.users(), &PlainCheck, &support::tokens(), &limits, &sessions, &factors)
        .await
        .map_err(ApiError::from)
}

async fn login(memory: &Memory, user: &User, extra: &Value) -> Result<ApiResponse, ApiError> {
    let mut body = json!({"email": user.email.as_ref(), "password": PASSWORD});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    login_from(memory, body, "192.0.2.10").await
}

fn code(error: Result<ApiResponse, ApiError>) -> &'static str {
    error.expect_err("refused").code()
}

/// Begins `user`'s enrolment at `now`; the authenticator app's view of the
/// secret shown, read from the `otpauth://` URI as an app reads it.
async fn enrol(memory: &Memory, user: &User, now: OffsetDateTime) -> TOTP {
    let response =
        mfa::enrol_at(request(Method::POST, Some(user), None), &memory.users(), &memory.second_factors(), now)
            .await
            .expect("enrolled");
    assert_eq!(response.status, StatusCode::CREATED);
    let body = body(&response);
    assert_eq!(body["status"], "pending");
    app_of(body["otpauth_uri"].as_str().expect("a URI"))
}

fn app_of(uri: &str) -> TOTP {
    assert!(uri.starts_with("otpauth://totp/Shop:"), "{uri}");
    let query = uri.split_once('?').expect("a query").1;
    let secret = query.split('&').find_map(|pair| pair.strip_prefix("secret=")).expect("a secret");
    assert!(query.contains("digits=6") && query.contains("period=30") && query.contains("algorithm=SHA1"), "{uri}");
    TOTP::new(Algorithm::SHA1, 6, 1, 30, Secret::Encoded(secret.to_owned()).to_bytes().unwrap()).unwrap()
}

/// The app's code at `at`.
fn code_at(app: &TOTP, at: OffsetDateTime) -> String {
    app.generate(u64::try_from(at.unix_timestamp()).unwrap())
}

/// A six-digit code that is not `right`.
fn wrong(right: &str) -> String {
    let last = right.as_bytes()[5] - b'0';
    format!("{}{}", &right[..5], (last + 1) % 10)
}

async fn confirm(memory: &Memory, user: &User, code: &str, now: OffsetDateTime) -> Result<ApiResponse, ApiError> {
    let request = request(Method::POST, Some(user), Some(json!({"code": code})));
    mfa::confirm_at(request, &memory.users(), &support::second_factors(memory), now).await.map_err(ApiError::from)
}

/// An admin whose enrolment is confirmed at `now`; the app and the recovery codes.
async fn enrolled_admin(memory: &Memory, now: OffsetDateTime) -> (User, TOTP, Vec<String>) {
    let admin = support::user(memory, Role::Admin).await;
    let app = enrol(memory, &admin, now).await;
    let confirmed = confirm(memory, &admin, &code_at(&app, now), now).await.expect("confirmed");
    let codes =
        body(&confirmed)["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (admin, app, codes)
}

fn token_of(response: &ApiResponse) -> String {
    body(response)["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn an_enrolment_is_pending_until_a_code_confirms_it() {
    let memory = Memory::new();
    let now = OffsetDateTime::now_utc();
    let customer = support::user(&memory, Role::User).await;
    let (users, factors) = (memory.users(), memory.second_factors());
    let refused = mfa::enrol_at(request(Method::POST, Some(&customer), None), &users, &factors, now).await;
    assert_eq!(code(refused.map_err(ApiError::from)), "forbidden", "the second factor is the admins'");
    assert_eq!(code(confirm(&memory, &customer, "123456", now).await), "forbidden");

    let admin = support::user(&memory, Role::Admin).await;
    let first = enrol(&memory, &admin, now).await;
    assert!(login(&memory, &admin, &json!({})).await.is_ok(), "pending: the password alone still signs in");
    // Enrolling again replaces the pending secret: the first app's codes no longer confirm.
    let second = enrol(&memory, &admin, now).await;
    let refused = confirm(&memory, &admin, &code_at(&first, now), now).await.unwrap_err();
    assert!(matches!(refused, ApiError::Validation(_)), "{refused:?}");
    let right = code_at(&second, now);
    assert!(matches!(confirm(&memory, &admin, &wrong(&right), now).await, Err(ApiError::Validation(_))));
    assert_eq!(code(confirm(&memory, &admin, "12345", now).await), "validation_failed");

    let confirmed = confirm(&memory, &admin, &right, now).await.expect("confirmed");
    let shown = body(&confirmed);
    assert_eq!(shown["status"], "confirmed");
    let codes: std::collections::BTreeSet<&str> =
        shown["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(codes.len(), 10, "ten distinct recovery codes: {shown}");
    assert_eq!(memory.second_factors().recovery_codes_left(admin.id).await.unwrap(), 10, "stored (hashed)");

    assert_eq!(code(confirm(&memory, &admin, &right, now).await), "mfa_already_enrolled");
    let again = mfa::enrol_at(request(Method::POST, Some(&admin), None), &users, &factors, now).await;
    assert_eq!(
        code(again.map_err(ApiError::from)),
        "mfa_already_enrolled",
        "a confirmed second factor is never replaced"
    );
    let stranger = support::user(&memory, Role::Admin).await;
    assert_eq!(code(confirm(&memory, &stranger, &right, now).await), "mfa_not_pending");
}

#[tokio::test]
async fn a_confirmed_admin_signs_in_with_a_code_and_no_code_works_twice() {
    let memory = Memory::new();
    // Confirmed with the code of the step now falls in: that step is used.
    let now = OffsetDateTime::now_utc();
    let (admin, app, _) = enrolled_admin(&memory, now).await;

    assert_eq!(code(login(&memory, &admin, &json!({})).await), "mfa_required");
    // A wrong password learns nothing about the second factor, with or without a code.
    let wrong_password = json!({"email": admin.email.as_ref(), "password": "not the password"});
    assert_eq!(code(login_from(&memory, wrong_password.clone(), "192.0.2.10").await), "invalid_credentials");
    let mut with_code = wrong_password;
    with_code["totp_code"] = json!(code_at(&app, now + time::Duration::seconds(30)));
    assert_eq!(code(login_from(&memory, with_code, "192.0.2.10").await), "invalid_credentials");

    // The confirmation's own code, replayed within its window.
    assert_eq!(code(login(&memory, &admin, &json!({"totp_code": code_at(&app, now)})).await), "invalid_mfa_code");
    // The next step's code (one step of drift is accepted) signs in once.
    let next = code_at(&app, now + time::Duration::seconds(30));
    let signed_in = login(&memory, &admin, &json!({"totp_code": next})).await.expect("signed in");
    let principal = support::tokens().verify(&token_of(&signed_in)).await.unwrap();
    assert!(principal.mfa, "the token says the second factor was checked");
    assert_eq!(code(login(&memory, &admin, &json!({"totp_code": next})).await), "invalid_mfa_code", "replayed");
    assert_eq!(code(login(&memory, &admin, &json!({"totp_code": wrong(&next)})).await), "invalid_mfa_code");
    assert_eq!(
        code(login(&memory, &admin, &json!({"totp_code": "12-34-56"})).await),
        "validation_failed",
        "a code is six digits"
    );

    // Customers never need one, and their tokens never claim one.
    let customer = support::user(&memory, Role::User).await;
    let signed_in = login(&memory, &customer, &json!({})).await.expect("signed in");
    assert!(!support::tokens().verify(&token_of(&signed_in)).await.unwrap().mfa);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let memory = Memory::new();
    let (admin, app, codes) = enrolled_admin(&memory, OffsetDateTime::now_utc()).await;
    let first = login(&memory, &admin, &json!({"recovery_code": codes[0]})).await.expect("signed in");
    assert!(support::tokens().verify(&token_of(&first)).await.unwrap().mfa);
    assert_eq!(code(login(&memory, &admin, &json!({"recovery_code": codes[0]})).await), "invalid_mfa_code", "once");
    // Spelled as a person might type it.
    let typed = codes[1].to_uppercase().replace('-', " ");
    assert!(login(&memory, &admin, &json!({"recovery_code": typed})).await.is_ok());
    assert_eq!(memory.second_factors().recovery_codes_left(admin.id).await.unwrap(), 8);
    // Another admin's recovery code is not this one's.
    let (other, _, other_codes) = enrolled_admin(&memory, OffsetDateTime::now_utc()).await;
    assert_eq!(code(login(&memory, &admin, &json!({"recovery_code": other_codes[0]})).await), "invalid_mfa_code");
    assert!(login(&memory, &other, &json!({"recovery_code": other_codes[0]})).await.is_ok());
    let both = json!({"totp_code": code_at(&app, OffsetDateTime::now_utc()), "recovery_code": codes[2]});
    assert_eq!(code(login(&memory, &admin, &both).await), "validation_failed", "one or the other");
}

/// Code attempts count per account before they are checked: past five in a
/// quarter hour even the right code is 429, and only someone who has the
/// password gets to make them.
#[tokio::test]
async fn code_attempts_are_limited_per_account() {
    let memory = Memory::new();
    let now = OffsetDateTime::now_utc();
    let (admin, app, codes) = enrolled_admin(&memory, now).await;
    let right = code_at(&app, now + time::Duration::seconds(30));
    for attempt in 0..mfa::CODE_ATTEMPTS.attempts {
        let guess = json!({"totp_code": wrong(&right)});
        assert_eq!(code(login(&memory, &admin, &guess).await), "invalid_mfa_code", "attempt {attempt}");
    }
    let throttled = login(&memory, &admin, &json!({"totp_code": right})).await.unwrap_err();
    assert!(matches!(throttled, ApiError::TooManyRequests { .. }), "{throttled:?}");
    assert_eq!(code(login(&memory, &admin, &json!({"recovery_code": codes[0]})).await), "rate_limited");
    // The quarter hour passes: the right code works, and the misses are forgiven.
    memory.advance(std::time::Duration::from_secs(15 * 60));
    let later = code_at(&app, OffsetDateTime::now_utc() + time::Duration::seconds(15 * 60));
    let factors = support::second_factors(&memory);
    let proof = Proof::Totp(domain::totp::TotpCode::parse(&later, "totp_code").unwrap());
    let admitted =
        mfa::at_sign_in(&admin, proof, &factors, OffsetDateTime::now_utc() + time::Duration::seconds(15 * 60));
    assert!(admitted.await.expect("admitted"));
}

/// The time steps on a moved clock: a code is good for its step and one
/// either side, each step once, and never a step before the last one used.
#[tokio::test]
async fn each_time_step_is_accepted_once_and_in_order() {
    let memory = Memory::new();
    let start = OffsetDateTime::now_utc();
    let (admin, app, _) = enrolled_admin(&memory, start).await;
    let factors = support::second_factors(&memory);
    let at = |seconds: i64| start + time::Duration::seconds(seconds);
    let sign_in = async |code: &str, now: OffsetDateTime| {
        mfa::at_sign_in(&admin, Proof::Totp(domain::totp::TotpCode::parse(code, "totp_code").unwrap()), &factors, now)
            .await
            .map_err(|error| ApiError::from(error).code())
    };
    assert_eq!(sign_in(&code_at(&app, at(30)), at(30)).await, Ok(true));
    assert_eq!(sign_in(&code_at(&app, at(30)), at(45)).await, Err("invalid_mfa_code"), "the same step again");
    // Typed late (one step of drift), accepted once.
    assert_eq!(sign_in(&code_at(&app, at(60)), at(90)).await, Ok(true));
    // An older step than the last used one, though within the window: refused.
    assert_eq!(sign_in(&code_at(&app, at(30)), at(60)).await, Err("invalid_mfa_code"));
    // Two steps old: outside the window.
    assert_eq!(sign_in(&code_at(&app, at(120)), at(185)).await, Err("invalid_mfa_code"));
    assert_eq!(sign_in(&code_at(&app, at(185)), at(185)).await, Ok(true));
}

/// Logins racing on many threads with the same code (or recovery code):
/// exactly one signs in, every other is 401 `invalid_mfa_code`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_with_one_code_sign_in_once() {
    // Five racers: within the per-account attempt limit, so each is checked.
    let racers = usize::try_from(mfa::CODE_ATTEMPTS.attempts).unwrap();
    for (round, recovery) in (0..20).map(|round| (round, round % 2 == 1)) {
        // A fresh account each round: the losers' misses count against its limit.
        let memory = Memory::new();
        let now = OffsetDateTime::now_utc();
        let (admin, app, codes) = enrolled_admin(&memory, now).await;
        let proof = if recovery {
            json!({"recovery_code": codes[0]})
        } else {
            json!({"totp_code": code_at(&app, now + time::Duration::seconds(30))})
        };
        let logins: Vec<_> = (0..racers)
            .map(|n| {
                let (memory, mut body) = (memory.clone(), proof.clone());
                body["email"] = json!(admin.email.as_ref());
                body["password"] = json!(PASSWORD);
                tokio::spawn(async move { login_from(&memory, body, &format!("198.51.100.{n}")).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in logins {
            outcomes.push(racer.await.expect("no panic").map(|_| "signed in").map_err(|error| error.code()));
        }
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "round {round}, {proof}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(_) | Err("invalid_mfa_code"))), "{outcomes:?}");
    }
}

/// An operator resets an admin's lost second factor (`cargo xtask admin
/// reset-second-factor`): the enrolment and the recovery codes are gone,
/// every session of the account is ended, and the password alone signs in
/// again (the admin then enrols anew); another admin's second factor is
/// untouched. Running it again is harmless; an address without an account
/// is 404 and changes nothing.
#[tokio::test]
async fn an_operator_resets_a_lost_second_factor_and_a_second_run_is_harmless() {
    let memory = Memory::new();
    let now = OffsetDateTime::now_utc();
    let (admin, app, codes) = enrolled_admin(&memory, now).await;
    let (colleague, _, _) = enrolled_admin(&memory, now).await;
    // The next step's code (the confirmation used this one's).
    let next = code_at(&app, now + time::Duration::seconds(30));
    login(&memory, &admin, &json!({"totp_code": next})).await.expect("signed in with a code");
    login(&memory, &admin, &json!({"recovery_code": codes[0]})).await.expect("signed in with a recovery code");
    assert_eq!(code(login(&memory, &admin, &json!({})).await), "mfa_required");
    let (users, factors, sessions) = (memory.users(), memory.second_factors(), memory.sessions());

    let reset = mfa::reset(&users, &factors, &sessions, &admin.email).await.expect("reset");

    assert_eq!(reset, mfa::SecondFactorReset { user_id: admin.id, factor_removed: true, sessions_ended: 2 });
    assert_eq!(factors.enrolment(admin.id).await.unwrap(), None, "no enrolment, pending or confirmed");
    assert_eq!(factors.recovery_codes_left(admin.id).await.unwrap(), 0, "no recovery code");
    assert!(domain::ports::SessionStore::list(&sessions, admin.id, now).await.unwrap().is_empty(), "no session");
    let again = mfa::reset(&users, &factors, &sessions, &admin.email).await.expect("a second run");
    assert_eq!(again, mfa::SecondFactorReset { user_id: admin.id, factor_removed: false, sessions_ended: 0 });
    assert!(factors.enrolment(colleague.id).await.unwrap().is_some_and(|e| e.is_confirmed()), "others keep theirs");

    let signed_in = login(&memory, &admin, &json!({})).await.expect("the password alone signs in");
    assert_eq!(signed_in.status, StatusCode::OK);
    enrol(&memory, &admin, now).await;

    let nobody = domain::Email::parse("nobody.here@example.com").unwrap();
    let unknown = mfa::reset(&users, &factors, &sessions, &nobody).await.map_err(ApiError::from).unwrap_err();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

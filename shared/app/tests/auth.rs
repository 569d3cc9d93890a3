//! Login on in-memory adapters: a login throttle that parallel guesses
//! cannot outrun. (Registration: `registration.rs`.)

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use adapters::throttle::Limit;
use app::auth::{self, LoginLimits, PasswordCheck};
use domain::{Password, PasswordHash};
use framework::auth::PasswordHasher;
use framework::http::{ApiError, ApiResponse};
use http::{Method, StatusCode};
use in_memory::{Memory, MemorySignInHistory, MemoryThrottle};
use serde_json::json;
use support::request;

const PASSWORD: &str = "correct horse battery";
/// Password checks one account gets per day from addresses it never signed in from.
const ACCOUNT_BOUND: usize = auth::PER_ACCOUNT.attempts as usize;

type Limits = LoginLimits<MemoryThrottle, MemorySignInHistory>;

/// The login function's limits, on `memory`.
fn limits(memory: &Memory) -> Limits {
    let throttle = |limit: Limit| memory.throttle(limit.name, limit.attempts, limit.window);
    LoginLimits {
        per_account_and_client: throttle(auth::PER_ACCOUNT_AND_CLIENT),
        per_client: throttle(auth::PER_CLIENT),
        per_account: throttle(auth::PER_ACCOUNT),
        known_addresses: memory.sign_in_history(auth::KNOWN_ADDRESSES.name, auth::KNOWN_ADDRESSES.ttl),
    }
}

async fn login(
    memory: &Memory,
    limits: &Limits,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<ApiResponse, ApiError> {
    login_checked_by(&PasswordHasher::new(), memory, limits, email, password, ip).await
}

/// [`login`] with `hasher` checking the password.
async fn login_checked_by(
    hasher: &impl PasswordCheck,
    memory: &Memory,
    limits: &Limits,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<ApiResponse, ApiError> {
    let mut request = request(Method::POST, None, Some(json!({"email": email, "password": password})));
    request.client_ip = ip.to_owned();
    let sessions = app::sessions::Sessions { store: memory.sessions(), lifetime: domain::RefreshLifetime::DEFAULT };
    let second_factors = support::second_factors(memory);
    app::auth::login(request, &memory.users(), hasher, &support::tokens(), limits, &sessions, &second_factors)
        .await
        .map_err(ApiError::from)
}

/// Counts the password checks (argon2 runs) login makes.
#[derive(Clone, Default)]
struct CountingHasher {
    hasher: PasswordHasher,
    checks: Arc<AtomicUsize>,
}

impl CountingHasher {
    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

impl PasswordCheck for CountingHasher {
    fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        self.checks.fetch_add(1, Ordering::SeqCst);
        PasswordCheck::verify(&self.hasher, password, hash)
    }

    fn verify_nothing(&self, password: &Password) {
        self.checks.fetch_add(1, Ordering::SeqCst);
        PasswordCheck::verify_nothing(&self.hasher, password);
    }
}

/// Registers `email` with [`PASSWORD`] (no key).
async fn register(memory: &Memory, email: &str) -> ApiResponse {
    support::register(memory, email, PASSWORD, None).await.unwrap()
}

/// Regression: register's replay check was an `AsyncFn` closure, whose
/// future rustc cannot prove `Send`; the register function (lambda_http
/// needs a `Send` handler future) stopped compiling while these tests passed.
#[test]
fn the_handlers_futures_are_send() {
    fn is_send<T: Send>(_: T) {}
    let memory = Memory::new();
    let (users, keys, hasher, publisher) =
        (memory.users(), memory.idempotency(), PasswordHasher::new(), memory.publisher());
    let registration = support::registration(&memory);
    is_send(app::registration::register(request(Method::POST, None, None), &registration, &keys, &hasher, &publisher));
    let (tokens, limits) = (support::tokens(), limits(&memory));
    let sessions = app::sessions::Sessions { store: memory.sessions(), lifetime: domain::RefreshLifetime::DEFAULT };
    let second_factors = support::second_factors(&memory);
    is_send(app::auth::login(
        request(Method::POST, None, None),
        &users,
        &hasher,
        &tokens,
        &limits,
        &sessions,
        &second_factors,
    ));
}

/// Regression: the throttle read the count, checked the password,
/// then counted: parallel guesses all got a password check.
#[tokio::test]
async fn twenty_parallel_guesses_get_at_most_five_password_checks() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let _ = register(&memory, "grace@example.com").await;
    let guesses = (0..20).map(|i| {
        login(&memory, &limits, "grace@example.com", if i == 19 { PASSWORD } else { "wrong password" }, "203.0.113.9")
    });
    let outcomes = futures::future::join_all(guesses).await;
    let checked =
        outcomes.iter().filter(|o| !matches!(o, Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS)).count();
    assert!(checked <= 5, "{checked} attempts reached the password check");
    // The owner, elsewhere, still gets in.
    assert_eq!(
        login(&memory, &limits, "grace@example.com", PASSWORD, "198.51.100.1").await.unwrap().status,
        StatusCode::OK
    );
}

/// Regression: the throttle counted per account and address and per address
/// only, so guesses spread over many addresses (a botnet, proxies) each got
/// their own five: 200 addresses made 200 password checks on one account.
/// The account's owner still gets in from the address they signed in from.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_from_two_hundred_addresses_get_at_most_the_daily_bound_of_password_checks() {
    let memory = Memory::new();
    let limits = Arc::new(limits(&memory));
    let _ = register(&memory, "root@example.com").await;
    let home = "198.51.100.20";
    assert!(login(&memory, &limits, "root@example.com", PASSWORD, home).await.is_ok(), "the owner signs in at home");

    let hasher = CountingHasher::default();
    let guesses = (0..200).map(|i| {
        let (memory, limits, hasher) = (memory.clone(), Arc::clone(&limits), hasher.clone());
        tokio::spawn(async move {
            let (password, address) = (format!("guess number {i}"), format!("203.0.{}.{}", i / 100, i % 100 + 1));
            login_checked_by(&hasher, &memory, &limits, "root@example.com", &password, &address).await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    assert!(
        hasher.checks() <= ACCOUNT_BOUND,
        "{} of 200 guesses from 200 addresses got a password check (bound {ACCOUNT_BOUND})",
        hasher.checks()
    );
    let refused = outcomes.iter().filter(|o| matches!(o, Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(refused.count(), 200 - hasher.checks(), "every guess without a check was a 429");

    // The owner from home is not locked out; from a new address, they wait
    // for the day's window like everyone else (documented).
    assert_eq!(login(&memory, &limits, "root@example.com", PASSWORD, home).await.unwrap().status, StatusCode::OK);
    let elsewhere = login(&memory, &limits, "root@example.com", PASSWORD, "192.0.2.200").await.unwrap_err();
    assert_eq!(elsewhere.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Regression: past 30 failures an address was refused for every account,
/// so one guesser behind a carrier NAT locked out everyone sharing its
/// address. Now the address keeps password checks for the accounts that
/// signed in from it before, and only newcomers wait.
#[tokio::test]
async fn an_address_past_its_limit_still_serves_accounts_that_signed_in_from_it() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let nat = "100.64.0.1";
    let _ = register(&memory, "neighbour@example.com").await;
    let _ = register(&memory, "newcomer@example.com").await;
    assert!(login(&memory, &limits, "neighbour@example.com", PASSWORD, nat).await.is_ok());

    // A guesser behind the same address spends its limit across many accounts.
    for i in 0..auth::PER_CLIENT.attempts {
        let guess = login(&memory, &limits, &format!("target{i}@example.com"), "guess", nat).await;
        assert_eq!(guess.unwrap_err().code(), "invalid_credentials");
    }
    let neighbour = login(&memory, &limits, "neighbour@example.com", PASSWORD, nat).await;
    assert_eq!(neighbour.map(|r| r.status).map_err(|e| e.code()), Ok(StatusCode::OK), "a known account still gets in");
    let newcomer = login(&memory, &limits, "newcomer@example.com", PASSWORD, nat).await.unwrap_err();
    assert_eq!(newcomer.status(), StatusCode::TOO_MANY_REQUESTS, "an account new to the address waits");
    assert!(login(&memory, &limits, "newcomer@example.com", PASSWORD, "192.0.2.9").await.is_ok(), "elsewhere it is in");
}

/// An address stays the account's own for 90 days after its latest sign-in,
/// then counts against the day's bound again.
#[tokio::test]
async fn a_known_address_lapses_after_ninety_days_without_a_sign_in() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let _ = register(&memory, "ida@example.com").await;
    let home = "198.51.100.30";
    assert!(login(&memory, &limits, "ida@example.com", PASSWORD, home).await.is_ok());
    let spend_the_bound = async |memory: &Memory| {
        for i in 0..auth::PER_ACCOUNT.attempts {
            let guess = login(memory, &limits, "ida@example.com", "guess", &format!("203.0.113.{i}")).await;
            assert_eq!(guess.unwrap_err().code(), "invalid_credentials");
        }
    };
    memory.advance(Duration::from_secs(89 * 24 * 60 * 60));
    spend_the_bound(&memory).await;
    assert!(login(&memory, &limits, "ida@example.com", PASSWORD, home).await.is_ok(), "known on day 89");
    memory.advance(auth::KNOWN_ADDRESSES.ttl);
    spend_the_bound(&memory).await;
    let lapsed = login(&memory, &limits, "ida@example.com", PASSWORD, home).await.unwrap_err();
    assert_eq!(lapsed.status(), StatusCode::TOO_MANY_REQUESTS, "90 days after the latest sign-in it is new again");
}

#[tokio::test]
async fn a_successful_login_forgives_earlier_misses_from_its_address() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let _ = register(&memory, "alan@example.com").await;
    for _ in 0..4 {
        assert_eq!(
            login(&memory, &limits, "alan@example.com", "typo", "192.0.2.1").await.unwrap_err().code(),
            "invalid_credentials"
        );
    }
    assert!(login(&memory, &limits, "alan@example.com", PASSWORD, "192.0.2.1").await.is_ok());
    for _ in 0..4 {
        assert_eq!(
            login(&memory, &limits, "alan@example.com", "typo", "192.0.2.1").await.unwrap_err().code(),
            "invalid_credentials",
            "the window was reset"
        );
    }
    let unknown = login(&memory, &limits, "nobody@example.com", PASSWORD, "192.0.2.1").await.unwrap_err();
    assert_eq!(unknown.code(), "invalid_credentials", "an unknown email reads like a wrong password");
}

#[tokio::test]
async fn a_disabled_account_is_refused_only_after_the_right_password() {
    let memory = Memory::new();
    let limits = limits(&memory);
    let password = Password::parse_new(PASSWORD.into()).unwrap();
    let password_hash = app::passwords::HashesPasswords::hash_new(&PasswordHasher::new(), &password).unwrap();
    let email = domain::Email::parse("off@example.com").unwrap();
    let mut user =
        domain::NewUser { email, password_hash, role: domain::Role::User }.into_user(time::OffsetDateTime::now_utc());
    user.disabled = true;
    domain::ports::UserStore::insert(&memory.users(), &user, None).await.unwrap();
    assert_eq!(
        login(&memory, &limits, "off@example.com", "wrong", "192.0.2.2").await.unwrap_err().code(),
        "invalid_credentials"
    );
    assert_eq!(
        login(&memory, &limits, "off@example.com", PASSWORD, "192.0.2.2").await.unwrap_err().code(),
        "account_disabled"
    );
}

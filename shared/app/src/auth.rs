//! POST /auth/login, and the operator's account creation. (Registration is
//! in `registration`.)

use std::fmt::Write as _;
use std::time::Duration;

use crate::caller::{access_role, subject};
use crate::error::AppError;
use adapters::throttle::{History, Limit};
use domain::ports::{SignInHistory, StoreError, Taken, Throttle, UserStore};
use domain::{DomainEvent, Email, NewUser, Password, PasswordHash, Role, ValidationError};
use framework::auth::{PasswordHasher, Tokens};
use framework::http::{ApiError, ApiRequest, ApiResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    email: String,
    password: String,
}

/// What login takes: the credentials and, for an admin with a confirmed
/// second factor, one of its codes (see `mfa`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// Parses both fields, reporting every bad one at once.
pub(crate) fn parse_credentials(
    credentials: Credentials,
    parse_password: fn(String) -> Result<Password, ValidationError>,
) -> Result<(Email, Password), ValidationError> {
    let mut errors = ValidationError::default();
    let email = errors.collect(Email::parse(&credentials.email));
    let password = errors.collect(parse_password(credentials.password));
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(errors),
    }
}

/// An account for `email` with `password` hashed, created now, verified:
/// the operator vouches for the address.
fn new_user(hasher: &PasswordHasher, email: Email, password: &Password, role: Role) -> Result<domain::User, AppError> {
    let password_hash = hasher.hash(password.expose()).map(PasswordHash::from_phc).map_err(ApiError::Internal)?;
    let mut user = NewUser { email, password_hash, role }.into_user(OffsetDateTime::now_utc());
    user.email_verified = true;
    Ok(user)
}

fn email_taken(error: StoreError) -> AppError {
    match error {
        StoreError::AlreadyExists(Taken::Email) => AppError::EmailTaken,
        other => other.into(),
    }
}

/// Creates an account for the operator's `create-admin` command (and the
/// tools that seed accounts): verified, since the operator vouches for the
/// address, its `user-created` event (the welcome email) committed with the
/// account through the outbox. Returns the event for publishing.
pub async fn create_user(
    users: &impl UserStore,
    hasher: &PasswordHasher,
    email: Email,
    password: &Password,
    role: Role,
    correlation_id: &str,
) -> Result<(domain::User, DomainEvent), AppError> {
    let user = new_user(hasher, email, password, role)?;
    let event = DomainEvent::user_created(user.id, &user.email, correlation_id, user.created_at);
    users.insert(&user, Some(&event)).await.map_err(email_taken)?;
    Ok((user, event))
}

/// Password checks per account and client address: a guesser gets five per
/// quarter hour, and cannot lock the owner (elsewhere) out.
pub const PER_ACCOUNT_AND_CLIENT: Limit = Limit { name: "LOGIN", attempts: 5, window: Duration::from_secs(15 * 60) };
/// Password checks per client address, whatever the account: bounds one
/// address guessing across many accounts. Successful logins are refunded.
/// Past it the address is not shut out: it still gets password checks for
/// the accounts that signed in from it before (a carrier NAT's customers).
pub const PER_CLIENT: Limit = Limit { name: "LOGIN-CLIENT", attempts: 30, window: Duration::from_secs(15 * 60) };
/// Password checks per account from addresses it never signed in from,
/// however many addresses send them: bounds a guesser spread over proxies or
/// a botnet to 20 a day (a fixed UTC day). Counted by a hash of the email.
pub const PER_ACCOUNT: Limit = Limit { name: "LOGIN-ACCOUNT", attempts: 20, window: Duration::from_secs(24 * 60 * 60) };
/// The (account, address) pairs that signed in, by a hash of the two: an
/// account's own addresses skip [`PER_ACCOUNT`] and [`PER_CLIENT`], so no one
/// elsewhere can lock its owner out. Kept 90 days after the latest sign-in.
pub const KNOWN_ADDRESSES: History = History { name: "LOGIN-KNOWN", ttl: Duration::from_secs(90 * 24 * 60 * 60) };

/// What login needs of a password hasher: [`PasswordHasher`] in the
/// functions, a double that counts argon2 runs in tests.
pub trait PasswordCheck: Send + Sync {
    /// Whether `password` matches `hash` (one argon2 run).
    fn verify(&self, password: &Password, hash: &PasswordHash) -> bool;
    /// Takes as long as [`PasswordCheck::verify`] and matches nothing: the
    /// check made for an unknown email.
    fn verify_nothing(&self, password: &Password);
}

impl PasswordCheck for PasswordHasher {
    fn verify(&self, password: &Password, hash: &PasswordHash) -> bool {
        PasswordHasher::verify(self, password.expose(), hash.as_str())
    }

    fn verify_nothing(&self, password: &Password) {
        PasswordHasher::verify_nothing(self, password.expose());
    }
}

/// The counters a login attempt passes before its password is checked, and
/// the history that tells an account's own addresses from the rest.
pub struct LoginLimits<T, H> {
    /// Counts [`PER_ACCOUNT_AND_CLIENT`]; reset when the owner signs in.
    pub per_account_and_client: T,
    /// Counts [`PER_CLIENT`]; a successful login is refunded.
    pub per_client: T,
    /// Counts [`PER_ACCOUNT`] for addresses the account never signed in
    /// from; a successful login is refunded.
    pub per_account: T,
    /// [`KNOWN_ADDRESSES`]: remembers each successful sign-in.
    pub known_addresses: H,
}

/// Exchanges email and password for a short-lived access token.
///
/// Every attempt is counted before the password is checked (atomic
/// increments), so parallel guesses cannot outrun a limit: per account and
/// client address always; from an address the account never signed in from,
/// also per client address and per account (however many addresses send
/// them). Over a limit the answer is 429, whatever the password. Unknown
/// emails are counted and timed exactly like known ones, so the answers
/// reveal nothing about which accounts exist.
pub async fn login(
    request: ApiRequest,
    users: &impl UserStore,
    hasher: &impl PasswordCheck,
    tokens: &Tokens,
    limits: &LoginLimits<impl Throttle, impl SignInHistory>,
    sessions: &crate::sessions::Sessions<impl domain::ports::SessionStore>,
    second_factors: &crate::mfa::SecondFactors<impl domain::ports::SecondFactorStore, impl Throttle>,
) -> Result<ApiResponse, AppError> {
    let LoginBody { email, password, totp_code, recovery_code } = request.json()?;
    let (email, password) = parse_credentials(Credentials { email, password }, Password::parse_attempt)?;
    let proof = crate::mfa::Proof::parse(totp_code.as_deref(), recovery_code.as_deref())?;
    // Hashed: these keys are stored, and must not hold the email address.
    let account = short_hash(email.as_ref());
    let account_and_client = format!("{account}#{}", request.client_ip);
    let known_key = short_hash(&format!("{}\n{}", email.as_ref(), request.client_ip));
    let (known, per_account_and_client, per_client, user) = tokio::join!(
        limits.known_addresses.knows(&known_key),
        limits.per_account_and_client.hit(&account_and_client),
        limits.per_client.hit(&request.client_ip),
        users.find_by_email(&email),
    );
    let (known, per_account_and_client, per_client, user) = (known?, per_account_and_client?, per_client?, user?);
    let refused = if !per_account_and_client.allowed {
        Some(("account and client", per_account_and_client))
    } else if known {
        None
    } else if !per_client.allowed {
        Some(("client", per_client))
    } else {
        // Counted only for attempts about to be checked, so the day's
        // bound is a bound on password checks.
        let per_account = limits.per_account.hit(&account).await?;
        (!per_account.allowed).then_some(("account", per_account))
    };
    if let Some((limit, decision)) = refused {
        tracing::warn!(limit, known_address = known, "login refused: too many attempts");
        framework::metrics::count(framework::metrics::names::LOGINS_FAILED, 1.0);
        return Err(ApiError::TooManyRequests { retry_after_seconds: decision.reset_seconds }.into());
    }
    let verified = if let Some(user) = &user {
        hasher.verify(&password, &user.password_hash)
    } else {
        hasher.verify_nothing(&password);
        false
    };
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!(known_address = known, "login refused: wrong email or password");
        framework::metrics::count(framework::metrics::names::LOGINS_FAILED, 1.0);
        return Err(AppError::InvalidCredentials);
    };
    // The owner is in: their earlier misses from this address are forgiven,
    // this attempt does not count against their address or account, and the
    // address is now one of the account's own.
    let (reset, refund_client, refund_account, remember) = tokio::join!(
        limits.per_account_and_client.reset(&account_and_client),
        limits.per_client.refund(&request.client_ip),
        async { if known { Ok(()) } else { limits.per_account.refund(&account).await } },
        limits.known_addresses.remember(&known_key),
    );
    if let Err(error) = reset.and(refund_client).and(refund_account).and(remember) {
        tracing::warn!(error = framework::telemetry::chain(&error), "could not update the login counters");
    }
    // Checked only after the password, so it reveals nothing to a guesser.
    if !user.can_sign_in() {
        return Err(ApiError::AccountDisabled.into());
    }
    if user.role == Role::Admin && !password.is_long_enough_for_an_admin() {
        // Promoted with a password chosen under the user minimum: allowed
        // (the promotion could not see it), but operators should know.
        tracing::warn!(user_id = %user.id, "an admin signed in with a password below the admin minimum");
    }
    // Asked only now, after the password: a wrong password learns nothing of it.
    let mfa = crate::mfa::at_sign_in(&user, proof, second_factors, OffsetDateTime::now_utc()).await?;
    let issued =
        tokens.issue_with_mfa(subject(user.id), access_role(user.role), mfa).await.map_err(ApiError::Unavailable)?;
    let refresh = crate::sessions::start(sessions, &user, mfa, OffsetDateTime::now_utc()).await?;
    tracing::info!(user_id = %user.id, "login succeeded");
    Ok(crate::sessions::signed_in(&issued, &refresh))
}

/// A short, stable, one-way name for `text`.
pub(crate) fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(12).fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

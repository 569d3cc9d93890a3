//! POST /auth/register and POST /auth/login.

use domain::ports::{Publisher, StoreError, UserStore};
use domain::{DomainEvent, Email, NewUser, Password, Role, ValidationError};
use platform::auth::{PasswordHasher, Tokens};
use platform::ratelimit::FixedWindow;
use platform::http::{ApiError, ApiRequest, ApiResponse};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::UserView;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

/// Parses both fields, reporting every bad one at once.
fn parse_credentials(
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

/// Creates an account with the `user` role and emits `user-created`.
pub async fn register(
    request: ApiRequest,
    users: &impl UserStore,
    hasher: &PasswordHasher,
    publisher: &impl Publisher,
) -> Result<ApiResponse, ApiError> {
    let (email, password) = parse_credentials(request.json()?, Password::parse_new)?;
    let (user, event) = create_user(users, hasher, email, &password, Role::User, &request.correlation_id).await?;
    tracing::info!(user_id = %user.id, "user registered");
    publisher.publish_after_commit(&event).await;
    Ok(ApiResponse::created(UserView::from(&user), "/api/v1/users/me").etag(user.version))
}

/// The one way accounts come to exist, shared by registration and the
/// operator's `create-admin` command. The `user-created` event is committed
/// with the account (outbox) and returned for publishing.
pub async fn create_user(
    users: &impl UserStore,
    hasher: &PasswordHasher,
    email: Email,
    password: &Password,
    role: Role,
    correlation_id: &str,
) -> Result<(domain::User, DomainEvent), ApiError> {
    let password_hash = hasher.hash(password).map_err(ApiError::Internal)?;
    let now = OffsetDateTime::now_utc();
    let user = NewUser { email, password_hash, role }.into_user(now);
    let event = DomainEvent::user_created(user.id, &user.email, correlation_id, now);
    match users.insert(&user, Some(&event)).await {
        Ok(()) => Ok((user, event)),
        Err(StoreError::AlreadyExists("email")) => {
            Err(ApiError::conflict("email_taken", "an account with this email already exists"))
        }
        Err(error) => Err(error.into()),
    }
}

/// Exchanges email and password for a short-lived access token. After 5
/// failures for one email within 15 minutes, further attempts get 429 until
/// the window ends, whatever the password (guessing gets slow).
pub async fn login(
    request: ApiRequest,
    users: &impl UserStore,
    hasher: &PasswordHasher,
    tokens: &Tokens,
    throttle: &FixedWindow,
) -> Result<ApiResponse, ApiError> {
    let (email, password) = parse_credentials(request.json()?, Password::parse_attempt)?;
    let standing = throttle.peek(email.as_ref()).await?;
    if !standing.allowed {
        tracing::warn!("login refused: too many failures for this account");
        return Err(ApiError::TooManyRequests { retry_after_seconds: standing.reset_seconds });
    }
    let user = users.find_by_email(&email).await?;
    let verified = match &user {
        Some(user) => hasher.verify(&password, &user.password_hash),
        None => {
            hasher.verify_nothing(&password);
            false
        }
    };
    let Some(user) = user.filter(|_| verified) else {
        throttle.hit(email.as_ref()).await?;
        tracing::info!("login refused: wrong email or password");
        return Err(ApiError::InvalidCredentials);
    };
    // Checked only after the password, so it reveals nothing to a guesser.
    if !user.can_sign_in() {
        return Err(ApiError::AccountDisabled);
    }
    let issued = tokens.issue(user.id, user.role).await.map_err(ApiError::Unavailable)?;
    tracing::info!(user_id = %user.id, "login succeeded");
    Ok(ApiResponse::ok(serde_json::json!({
        "token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    })))
}

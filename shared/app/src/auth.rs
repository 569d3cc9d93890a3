//! POST /auth/register and POST /auth/login.

use domain::ports::{StoreError, UserStore};
use domain::{Email, NewUser, Password, Role, ValidationError};
use platform::auth::{PasswordHasher, Tokens};
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

/// Creates an account with the `user` role.
pub async fn register(
    request: ApiRequest,
    users: &impl UserStore,
    hasher: &PasswordHasher,
) -> Result<ApiResponse, ApiError> {
    let (email, password) = parse_credentials(request.json()?, Password::parse_new)?;
    let user = create_user(users, hasher, email, &password, Role::User).await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok(ApiResponse::created(UserView::from(&user), "/api/v1/users/me").etag(user.version))
}

/// The one way accounts come to exist, shared by registration and the
/// operator's `create-admin` command.
pub async fn create_user(
    users: &impl UserStore,
    hasher: &PasswordHasher,
    email: Email,
    password: &Password,
    role: Role,
) -> Result<domain::User, ApiError> {
    let password_hash = hasher.hash(password).map_err(ApiError::Internal)?;
    let user = NewUser { email, password_hash, role }.into_user(OffsetDateTime::now_utc());
    match users.insert(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::AlreadyExists("email")) => {
            Err(ApiError::conflict("email_taken", "an account with this email already exists"))
        }
        Err(error) => Err(error.into()),
    }
}

/// Exchanges email and password for a short-lived access token.
pub async fn login(
    request: ApiRequest,
    users: &impl UserStore,
    hasher: &PasswordHasher,
    tokens: &Tokens,
) -> Result<ApiResponse, ApiError> {
    let (email, password) = parse_credentials(request.json()?, Password::parse_attempt)?;
    let Some(user) = users.find_by_email(&email).await? else {
        hasher.verify_nothing(&password);
        tracing::info!("login refused: unknown email");
        return Err(ApiError::InvalidCredentials);
    };
    if !hasher.verify(&password, &user.password_hash) {
        tracing::info!(user_id = %user.id, "login refused: wrong password");
        return Err(ApiError::InvalidCredentials);
    }
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

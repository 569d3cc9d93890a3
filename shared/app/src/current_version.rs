//! Read-check-write on the current version: what `If-Match: *` (or no
//! `If-Match` where it is optional) means when another write lands between
//! the read and the conditional write.

use crate::error::AppError;
use domain::ports::StoreError;
use framework::http::{ApiError, IfMatch};

/// Attempts in all before a still-moving resource is reported as 412.
const ATTEMPTS: usize = 3;

/// Runs `attempt` (read, check, conditional write) again when a concurrent
/// write moved the version under it and the client did not pin a version
/// (`If-Match: *`, or no header): that client asked to change the current
/// version, whichever it is, so a consumer confirming the order meanwhile
/// is no reason to refuse. A pinned version's mismatch is the 412 the client
/// asked for, at once.
///
/// `attempt` is a closure returning a future (not an `async` closure: the
/// futures of those are not `Send` for every lifetime, which the Lambda
/// runtime needs).
pub(crate) async fn on_the_current_version<T, F, Attempt>(
    precondition: Option<&IfMatch>,
    mut attempt: F,
) -> Result<T, AppError>
where
    F: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, AppError>>,
{
    let pinned = matches!(precondition, Some(IfMatch::Versions(_)));
    for _ in 1..ATTEMPTS {
        match attempt().await {
            // A stale read, however it surfaced: the handler's 412 or the store's refused write.
            Err(AppError::Http(ApiError::PreconditionFailed) | AppError::Store(StoreError::VersionMismatch))
                if !pinned =>
            {
                tracing::info!("the resource changed between read and write; reading it again");
            }
            outcome => return outcome,
        }
    }
    attempt().await
}

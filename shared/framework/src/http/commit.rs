//! The commit of a request's write, as the HTTP layer sees it: once the
//! write is sent its outcome is no longer the request budget's to decide, and
//! once it has committed its answer is the request's answer, whatever the
//! work after it (publishing the event the relay would send anyway) does.
//!
//! Without this, a transaction that committed but answered late, or a slow
//! publish after it, ran into the request's deadline and the client got a
//! 503 for a write that had happened; a client that followed the advice to
//! retry a 503 then wrote twice.

use std::sync::Arc;

use tokio::sync::watch;

use super::ApiResponse;

/// Where a request's one committing write stands.
#[derive(Debug, Clone, Default)]
pub enum CommitState {
    /// Nothing sent: a deadline may still cancel the request cleanly.
    #[default]
    NotSent,
    /// Sent, outcome unknown: cancelling now would answer 503 for a write
    /// that may have happened, so the layer waits (up to the function's own
    /// limit) for the outcome.
    Sent,
    /// Committed: this is the answer, even if the work after it never ends.
    Committed(ApiResponse),
}

/// Shared between a request's handler and the layer that runs it.
#[derive(Debug, Clone)]
pub struct Commit {
    state: Arc<watch::Sender<CommitState>>,
}

impl Default for Commit {
    fn default() -> Self {
        Self { state: Arc::new(watch::Sender::new(CommitState::NotSent)) }
    }
}

impl Commit {
    /// Runs `write`, the request's committing write, whose success makes
    /// `response` the request's answer (see the module's documentation).
    pub async fn run<T, E>(&self, response: &ApiResponse, write: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        self.state.send_replace(CommitState::Sent);
        let outcome = write.await;
        self.state.send_replace(match &outcome {
            Ok(_) => CommitState::Committed(response.clone()),
            // A refused write (a condition, a taken key) changed nothing.
            Err(_) => CommitState::NotSent,
        });
        outcome
    }

    /// Where the write stands now.
    pub fn state(&self) -> CommitState {
        self.state.borrow().clone()
    }

    /// The committed answer, as soon as there is one.
    pub async fn committed(&self) -> ApiResponse {
        let mut receiver = self.state.subscribe();
        let state = receiver
            .wait_for(|state| matches!(state, CommitState::Committed(_)))
            .await
            .expect("the sender lives in self");
        match &*state {
            CommitState::Committed(response) => response.clone(),
            CommitState::NotSent | CommitState::Sent => unreachable!("waited for Committed"),
        }
    }
}

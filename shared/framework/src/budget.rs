//! Time budgets, all derived from the function's timeout (the template's
//! `Timeout`), so that nothing inside a function waits longer than the
//! function may run: a hung dependency becomes a clear, early failure (a 503
//! with `Retry-After`, a retried queue record) instead of Lambda's timeout.

use std::time::{Duration, Instant};

/// Every time limit of one function, each a fixed share of its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    timeout: Duration,
}

impl Budget {
    /// The budgets of a function whose Lambda timeout is `function_timeout`.
    pub fn new(function_timeout: Duration) -> Self {
        Self { timeout: function_timeout }
    }

    /// The function's own timeout.
    pub fn function_timeout(&self) -> Duration {
        self.timeout
    }

    /// Opening a connection to an AWS endpoint (10 %).
    pub fn connect(&self) -> Duration {
        self.timeout / 10
    }

    /// One attempt of an AWS call, its response included (20 %).
    pub fn attempt(&self) -> Duration {
        self.timeout / 5
    }

    /// One AWS call with all its retries (30 %): a request makes a few calls
    /// in a row, and must still answer within [`Budget::request`].
    pub fn operation(&self) -> Duration {
        self.timeout * 3 / 10
    }

    /// How long an API request may take before it is answered with a 503
    /// (50 %): half the timeout leaves room for one slow call and the answer.
    pub fn request(&self) -> Duration {
        self.timeout / 2
    }

    /// Kept free before Lambda's own deadline, to report what happened.
    pub fn margin(&self) -> Duration {
        (self.timeout / 10).max(Duration::from_secs(1))
    }

    /// How long a message claim holds: longer than any invocation that took
    /// it can still be running, so a lapsed claim means its holder is gone.
    pub fn claim_duration(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    /// When an invocation that Lambda ends at `lambda_deadline` (if known)
    /// must have finished its own work, starting now.
    pub fn work_deadline(&self, started: Instant, lambda_deadline: Option<Instant>, work: Duration) -> Instant {
        let own = started + work;
        match lambda_deadline {
            Some(deadline) => own.min(deadline.checked_sub(self.margin()).unwrap_or(started).max(started)),
            None => own,
        }
    }
}

/// Lambda's deadline for the current invocation (milliseconds since the
/// epoch, as the Runtime API sends it) as an `Instant`.
pub fn lambda_deadline(deadline_ms: u64) -> Option<Instant> {
    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).ok()?;
    let remaining = Duration::from_millis(deadline_ms.checked_sub(now_ms)?);
    Some(Instant::now() + remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_budget_fits_inside_the_function_timeout() {
        let budget = Budget::new(Duration::from_secs(10));
        assert_eq!(budget.connect(), Duration::from_secs(1));
        assert_eq!(budget.attempt(), Duration::from_secs(2));
        assert_eq!(budget.operation(), Duration::from_secs(3));
        assert_eq!(budget.request(), Duration::from_secs(5));
        assert!(budget.request() + budget.margin() < budget.function_timeout());
        assert!(budget.claim_duration() > budget.function_timeout());
    }

    #[test]
    fn work_ends_before_lambdas_deadline() {
        let budget = Budget::new(Duration::from_secs(10));
        let now = Instant::now();
        let soon = now + Duration::from_secs(3);
        assert_eq!(
            budget.work_deadline(now, Some(soon), budget.request()),
            soon.checked_sub(Duration::from_secs(1)).unwrap()
        );
        assert_eq!(budget.work_deadline(now, None, budget.request()), now + Duration::from_secs(5));
        let past = budget.work_deadline(now, Some(now), budget.request());
        assert_eq!(past, now, "a deadline already gone leaves no time, never a negative one");
    }
}

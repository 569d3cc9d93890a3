//! Retry delays with full jitter: each retry sleeps a uniformly random time
//! between zero and an exponentially growing ceiling. Without jitter, callers
//! that collided once (two transactions on one item) retry in lockstep and
//! collide again; with it they spread out (the "full jitter" of the AWS
//! Architecture Blog's "Exponential Backoff And Jitter").

use std::time::Duration;

/// An exponential ceiling (`base`, doubling per attempt, never above `cap`)
/// from which each delay is drawn uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Ceilings `base`, `2 * base`, `4 * base`, ... up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The ceiling of the delay before retry number `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A delay before retry number `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=ceiling))
    }

    /// Sleeps for [`Backoff::delay`] of `attempt`.
    pub async fn sleep(&self, attempt: u32) {
        tokio::time::sleep(self.delay(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_zero_and_the_cap_and_are_spread() {
        let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100));
        for attempt in 0..40 {
            let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(attempt)).collect();
            let ceiling = backoff.ceiling(attempt);
            assert!(ceiling <= Duration::from_millis(100), "the ceiling of attempt {attempt} is above the cap");
            assert!(delays.iter().all(|d| *d <= ceiling), "a delay of attempt {attempt} is above {ceiling:?}");
            let first = delays[0];
            assert!(delays.iter().any(|d| *d != first), "attempt {attempt}: every delay was {first:?}, no jitter");
        }
        assert_eq!(backoff.ceiling(0), Duration::from_millis(20));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(80));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(100));
    }
}

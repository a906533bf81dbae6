//! Retry timing. `next_retry` is a pure function of the attempt count and the configured
//! schedule (SPEC §2.7: 5m, 10m, 20m, 40m, 1h, …; the last step repeats until `max_age`).
//! `Clock` gives Unix milliseconds that follow `tokio::time`, so tests that pause and advance
//! tokio's clock move the queue's notion of "now" (and of message age) with it.

use std::time::Duration;

/// Wait before the next attempt after `attempts` attempts have been made (1 = the first failed).
pub fn next_retry(attempts: u32, schedule: &[Duration]) -> Duration {
    let Some(last) = schedule.last() else {
        return Duration::from_secs(300);
    };
    let i = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    schedule.get(i).copied().unwrap_or(*last)
}

/// When the next attempt is due (Unix ms), never later than the message's expiry, so the last
/// attempt happens at `max_age` and a still-failing message bounces then.
pub fn next_attempt_at(
    now: i64,
    attempts: u32,
    schedule: &[Duration],
    received_at: i64,
    max_age: Duration,
) -> i64 {
    let wait = i64::try_from(next_retry(attempts, schedule).as_millis()).unwrap_or(i64::MAX);
    let expiry = received_at.saturating_add(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
    now.saturating_add(wait).min(expiry.max(now))
}

pub fn expired(now: i64, received_at: i64, max_age: Duration) -> bool {
    now.saturating_sub(received_at) >= i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX)
}

/// Wall-clock milliseconds advancing with `tokio::time` (pausable in tests).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall0: i64,
    inst0: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let wall0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Clock {
            wall0,
            inst0: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.inst0.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall0.saturating_add(elapsed)
    }

    /// The tokio instant at which Unix ms `at` is reached.
    pub fn instant_at(&self, at: i64) -> tokio::time::Instant {
        let delta = u64::try_from(at.saturating_sub(self.wall0)).unwrap_or(0);
        self.inst0 + Duration::from_millis(delta)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_vectors() {
        let m = |x: u64| Duration::from_secs(60 * x);
        let schedule = [m(5), m(10), m(20), m(40), m(60)];
        let cases = [
            (0, m(5)),
            (1, m(5)),
            (2, m(10)),
            (3, m(20)),
            (4, m(40)),
            (5, m(60)),
            (6, m(60)),
            (100, m(60)),
        ];
        for (attempts, want) in cases {
            assert_eq!(next_retry(attempts, &schedule), want, "attempts {attempts}");
        }
        assert_eq!(next_retry(3, &[]), Duration::from_secs(300));
    }

    #[test]
    fn next_attempt_is_clamped_to_expiry() {
        let s = [Duration::from_secs(60)];
        assert_eq!(
            next_attempt_at(1_000, 1, &s, 0, Duration::from_secs(3600)),
            61_000
        );
        assert_eq!(
            next_attempt_at(3_590_000, 1, &s, 0, Duration::from_secs(3600)),
            3_600_000
        );
        assert!(expired(3_600_000, 0, Duration::from_secs(3600)));
        assert!(!expired(3_599_999, 0, Duration::from_secs(3600)));
    }
}

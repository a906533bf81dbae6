//! The one clock (STYLE rule on injected time): wall-clock Unix milliseconds that advance with
//! `tokio::time`, so a test on paused time moves every window, TTL and retry at once.
//! [`now_ms`] is the system clock for code that has no [`Clock`] in reach yet.

use std::time::Duration;

use crate::model::Millis;

/// Unix milliseconds now, from the system clock.
pub fn now_ms() -> Millis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Wall-clock milliseconds advancing with `tokio::time` (pausable in tests). Copy it freely:
/// every copy reads the same time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall0: Millis,
    inst0: tokio::time::Instant,
}

impl Clock {
    /// A clock reading the system time now and advancing with `tokio::time` from here.
    pub fn new() -> Clock {
        Clock::starting_at(now_ms())
    }

    /// A clock that reads `wall0` now (tests pick the date; with paused time it stays there
    /// until time is advanced).
    pub fn starting_at(wall0: Millis) -> Clock {
        Clock {
            wall0,
            inst0: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> Millis {
        let elapsed = i64::try_from(self.inst0.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall0.saturating_add(elapsed)
    }

    /// The tokio instant at which Unix ms `at` is reached.
    pub fn instant_at(&self, at: Millis) -> tokio::time::Instant {
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

    #[tokio::test(start_paused = true)]
    async fn paused_clock_moves_only_when_time_is_advanced() {
        let c = Clock::starting_at(1_000_000);
        assert_eq!(c.now_ms(), 1_000_000);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms(), 1_090_000);
        assert_eq!(
            c.instant_at(1_100_000),
            c.instant_at(1_090_000) + Duration::from_secs(10)
        );
    }
}

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

pub use outguard_types::time::Clock;

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

/// Properties of the retry schedule over random schedules, ages and arrival times: a message's
/// whole life simulated attempt by attempt with the same functions the queue calls.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Schedules as the config allows them (at least one step), in seconds; the SPEC's shape
    /// (5m, 10m, 20m, … growing) is the sorted case.
    fn steps() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec(60u64..=86_400, 1..10)
    }

    proptest! {
        #[test]
        fn waits_come_from_the_schedule_and_never_exceed_its_max(
            steps in steps(),
            attempts in 0u32..10_000,
        ) {
            let schedule: Vec<Duration> = steps.iter().map(|s| Duration::from_secs(*s)).collect();
            let max = *schedule.iter().max().unwrap();
            let wait = next_retry(attempts, &schedule);
            prop_assert!(wait <= max);
            prop_assert!(schedule.contains(&wait));
        }

        #[test]
        fn a_message_life_is_bounded_and_ends_in_a_bounce(
            mut steps in steps(),
            max_age_s in 60u64..=5 * 86_400,
            received_at in 0i64..4_000_000_000_000,
        ) {
            steps.sort_unstable();
            let schedule: Vec<Duration> = steps.iter().map(|s| Duration::from_secs(*s)).collect();
            let max_ms = i64::try_from(steps[steps.len() - 1] * 1000).unwrap();
            let max_age = Duration::from_secs(max_age_s);
            let expiry = received_at + i64::try_from(max_age_s * 1000).unwrap();
            let (mut now, mut attempts, mut last_wait) = (received_at, 0u32, 0i64);
            loop {
                attempts += 1; // the attempt made at `now` failed temporarily
                if expired(now, received_at, max_age) {
                    break; // the queue bounces it here
                }
                let next = next_attempt_at(now, attempts, &schedule, received_at, max_age);
                let wait = next - now;
                prop_assert!(next > now, "no progress at attempt {attempts}");
                prop_assert!(next <= expiry, "attempt after the queue lifetime");
                prop_assert!(wait <= max_ms, "wait {wait} ms over the schedule's max");
                // Non-decreasing, except the last wait, cut short to land on the expiry.
                prop_assert!(wait >= last_wait || next == expiry, "wait shrank: {last_wait} -> {wait}");
                last_wait = wait;
                now = next;
                prop_assert!(attempts < 100_000);
            }
            // The bounce happens exactly at the lifetime, never later: total <= max_age.
            prop_assert_eq!(now, expiry);
            prop_assert!(now - received_at <= i64::try_from(max_age.as_millis()).unwrap());
        }
    }
}

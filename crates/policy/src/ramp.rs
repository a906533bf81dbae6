//! The trust ramp (issue 25): a new account — or one whose restriction ended — starts with a
//! fraction of its policy's recipient limits that grows linearly with clean days, up to the
//! policy's limits after `days`. Its clean history starts at the account's creation, at the end
//! of each of its restrictions, and at its latest setback — a message called spam, a trusted
//! complaint or a hard bounce ([`note_setback`], a mark in the [`SignalStore`] kept `days`).
//! The arithmetic is pure: the relay applies it to the effective policy at RCPT and shows the
//! [`Ramp`] in the trace.

use std::fmt;

use outguard_types::model::Millis;
use outguard_types::policy::EffectivePolicy;

use crate::counters::{CounterError, DAY_MS};
use crate::restriction::{Restriction, Subject};
use crate::signals::SignalStore;

/// Where one account stands on the ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Whole clean days so far (0 on the first day).
    pub day: u32,
    pub days: u32,
    /// The fraction of the policy's limits that applies now (start ≤ f < 1).
    pub factor: f64,
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trust ramp: clean day {} of {}, limits at {:.0} %",
            self.day + 1,
            self.days,
            self.factor * 100.0
        )
    }
}

/// When the account's clean history started: its creation, or the end (lift or expiry) of its
/// latest restriction, whichever is later.
pub fn history_start(created_at: Millis, history: &[Restriction], subject: &Subject) -> Millis {
    history
        .iter()
        .filter(|r| r.subject.same(subject))
        .map(|r| {
            r.lifted
                .as_ref()
                .map(|l| l.at)
                .or(r.until)
                .unwrap_or(r.created_at)
        })
        .fold(created_at, Millis::max)
}

/// The signal-store key of an account's latest setback.
fn setback_key(account: &str) -> String {
    format!("ramp:{}", account.to_ascii_lowercase())
}

/// Restart `account`'s clean history at `now` (a spam verdict, a trusted complaint or a hard
/// bounce). Kept `days`: a setback older than the ramp cannot shorten it.
pub async fn note_setback(
    store: &dyn SignalStore,
    account: &str,
    days: u32,
    now: Millis,
) -> Result<(), CounterError> {
    let ttl = i64::from(days.max(1)).saturating_mul(DAY_MS);
    store.mark(&setback_key(account), now, ttl).await
}

/// The account's latest setback within the ramp, if any.
pub async fn last_setback(
    store: &dyn SignalStore,
    account: &str,
    now: Millis,
) -> Result<Option<Millis>, CounterError> {
    store.last_mark(&setback_key(account), now).await
}

/// The ramp at `now` for a history that started at `start`; `None` once past it (full limits).
/// `start_percent` is clamped to 1–100, `days` to at least 1.
pub fn ramp(start: Millis, now: Millis, start_percent: u32, days: u32) -> Option<Ramp> {
    let days = days.max(1);
    let first = f64::from(start_percent.clamp(1, 100)) / 100.0;
    let day = u32::try_from(now.saturating_sub(start).max(0) / DAY_MS).unwrap_or(u32::MAX);
    if day >= days || first >= 1.0 {
        return None;
    }
    let factor = first + (1.0 - first) * f64::from(day) / f64::from(days);
    Some(Ramp { day, days, factor })
}

/// Scale the recipient limits of `eff` by the ramp (each at least 1).
pub fn apply(eff: &mut EffectivePolicy, r: &Ramp) {
    let scale = |n: u32| ((f64::from(n) * r.factor).floor() as u32).max(1);
    eff.external_per_hour = scale(eff.external_per_hour);
    eff.internal_per_hour = scale(eff.internal_per_hour);
    eff.per_day = scale(eff.per_day);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restriction::{Lift, RestrictionReason};
    use crate::{LimitKind, Measure};

    const T0: Millis = 1_795_456_800_000;

    #[test]
    fn grows_linearly_to_the_full_limits() {
        let at = |d: i64| ramp(T0, T0 + d * DAY_MS + 1, 10, 10);
        assert_eq!(at(0).map(|r| (r.day, r.factor)), Some((0, 0.1)));
        let r5 = at(5).unwrap();
        assert!((r5.factor - 0.55).abs() < 1e-9, "{r5:?}");
        assert!(at(9).unwrap().factor < 1.0);
        assert_eq!(at(10), None);
        assert_eq!(ramp(T0, T0, 100, 10), None, "100 % is no ramp");
        assert_eq!(
            at(0).unwrap().to_string(),
            "trust ramp: clean day 1 of 10, limits at 10 %"
        );
    }

    #[test]
    fn limits_are_scaled_never_to_zero() {
        let mut eff = EffectivePolicy {
            external_per_hour: 500,
            internal_per_hour: 1000,
            per_day: 5,
            ..EffectivePolicy::default()
        };
        apply(&mut eff, &ramp(T0, T0, 10, 10).unwrap());
        assert_eq!(
            (eff.external_per_hour, eff.internal_per_hour, eff.per_day),
            (50, 100, 1)
        );
    }

    #[test]
    fn a_restriction_restarts_the_history() {
        let me = Subject::Account("bob@a.example".into());
        let other = Subject::Account("eve@a.example".into());
        let reason = RestrictionReason::new(
            LimitKind::ExternalPerHour,
            vec![Measure::new("external recipients in last hour", 11, 10)],
        );
        let mut r = Restriction {
            subject: me.clone(),
            tenant: "a".into(),
            reason,
            created_at: T0 + DAY_MS,
            until: None,
            lifted: None,
        };
        assert_eq!(
            history_start(T0, std::slice::from_ref(&r), &me),
            T0 + DAY_MS
        );
        assert_eq!(history_start(T0, std::slice::from_ref(&r), &other), T0);
        r.lifted = Some(Lift {
            by: "op".into(),
            at: T0 + 2 * DAY_MS,
            reason: "reset".into(),
        });
        assert_eq!(history_start(T0, &[r], &me), T0 + 2 * DAY_MS);
    }
}

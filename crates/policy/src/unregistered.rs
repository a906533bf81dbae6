//! Mail from domains a tenant has not registered (SPEC §9, EOP's `5.7.750`): a forwarding
//! connector may relay it, but the tenant's connectors together get at most
//! `unregistered_domain_messages_per_hour` such messages per sliding hour. The message that
//! would go past the allowance is refused and the whole tenant is blocked until an operator lifts
//! it (a tenant admin cannot: it is a tenant restriction).
//!
//! Counted at MAIL as a reservation, like recipients at RCPT: a transaction that is not
//! completed gives its unit back, so only messages really sent count. After an operator's lift
//! the same day the tenant is not blocked again, but the allowance still holds message by
//! message (the window keeps sliding), so a lift never means "unlimited until midnight".

use outguard_types::model::Millis;

use crate::counters::{CounterError, Counters, HOUR_MS, Reservation, ReserveOutcome, WindowCheck};
use crate::decide::{Action, Refusal, keys};
use crate::reply::{Measure, Reject};
use crate::restriction::{
    LimitKind, Restriction, RestrictionReason, Subject, active_for, exempt_today,
};

/// The answer for one message from an unregistered domain. One short-lived value per MAIL,
/// never stored: the size difference between the variants does not matter.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum UnregisteredDecision {
    /// Within the allowance: keep the reservation with the transaction.
    Admit(Reservation),
    /// Past it: refuse with `5.7.750`, and block the tenant when `action` says so.
    Refuse {
        refusal: Refusal,
        action: Option<Action>,
    },
}

/// Count one message of `tenant` from an unregistered domain against `per_hour`.
pub async fn admit_unregistered(
    counters: &dyn Counters,
    tenant: &str,
    per_hour: u32,
    history: &[Restriction],
    now: Millis,
) -> Result<UnregisteredDecision, CounterError> {
    let checks = [WindowCheck {
        key: keys::tenant(tenant, "unregistered"),
        window_ms: HOUR_MS,
        limit: u64::from(per_hour),
    }];
    let count = match counters.reserve(&checks, 1, now).await? {
        ReserveOutcome::Admitted(r) => return Ok(UnregisteredDecision::Admit(r)),
        ReserveOutcome::Refused { count, .. } => count,
    };
    let m = Measure::new(
        "messages from unregistered domains in last hour",
        count + 1,
        u64::from(per_hour),
    );
    let subject = Subject::Tenant(tenant.to_string());
    let block = active_for(history, &subject, now).is_none()
        && !exempt_today(history, &subject, now).contains(&LimitKind::UnregisteredDomain);
    let action = block.then(|| Action::Restrict {
        restriction: Restriction::tenant(
            tenant,
            RestrictionReason::new(LimitKind::UnregisteredDomain, vec![m.clone()]),
            now,
        ),
    });
    Ok(UnregisteredDecision::Refuse {
        refusal: Refusal {
            reject: Reject::unregistered_domains(),
            detail: format!("tenant {tenant}: {m}"),
            measures: vec![m],
        },
        action,
    })
}

#[cfg(test)]
mod tests {
    use outguard_types::model::Role;

    use super::*;
    use crate::memory::MemoryCounters;
    use crate::restriction::{check_lift, lift};

    const NOW: Millis = 1_795_456_800_000;

    #[tokio::test]
    async fn allowance_then_block_then_operator_lift() {
        let c = MemoryCounters::new();
        let mut history = Vec::new();
        for i in 0..3 {
            let d = admit_unregistered(&c, "t", 3, &history, NOW + i)
                .await
                .unwrap();
            assert!(matches!(d, UnregisteredDecision::Admit(_)), "message {i}");
        }
        let UnregisteredDecision::Refuse { refusal, action } =
            admit_unregistered(&c, "t", 3, &history, NOW + 5)
                .await
                .unwrap()
        else {
            panic!("the 4th message must be refused");
        };
        assert_eq!(
            (refusal.reject.code, refusal.reject.enhanced.as_str()),
            (550, "5.7.750")
        );
        let Some(Action::Restrict { restriction: r }) = action else {
            panic!("the tenant must be blocked");
        };
        assert_eq!(r.subject, Subject::Tenant("t".into()));
        assert_eq!(r.until, None, "until an operator lifts it");
        assert_eq!(r.reject().enhanced, "5.7.750");
        assert!(check_lift(&r, Role::TenantAdmin, 0, 3, "please", NOW).is_err());
        assert!(check_lift(&r, Role::Operator, 0, 3, "checked", NOW).is_ok());
        // While blocked, no second restriction is made.
        history.push(r.clone());
        let d = admit_unregistered(&c, "t", 3, &history, NOW + 6)
            .await
            .unwrap();
        assert!(matches!(
            d,
            UnregisteredDecision::Refuse { action: None, .. }
        ));
        // Lifted by an operator: not blocked again today, but the allowance still holds.
        history[0] = lift(&r, "operator", "checked", NOW + 7);
        let d = admit_unregistered(&c, "t", 3, &history, NOW + 8)
            .await
            .unwrap();
        assert!(matches!(
            d,
            UnregisteredDecision::Refuse { action: None, .. }
        ));
        // An hour later the window has room again.
        let d = admit_unregistered(&c, "t", 3, &history, NOW + HOUR_MS + 10)
            .await
            .unwrap();
        assert!(matches!(d, UnregisteredDecision::Admit(_)));
        // Other tenants have their own allowance.
        let d = admit_unregistered(&c, "u", 3, &[], NOW + 9).await.unwrap();
        assert!(matches!(d, UnregisteredDecision::Admit(_)));
    }
}

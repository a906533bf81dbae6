//! Login behaviour at AUTH (issue 25 part 1): every AUTH success of an account records its
//! client network in the signal store (`outguard_policy::login`); a count that reaches its
//! `[login_behaviour]` line raises `suspicious_login_pattern` (once a day per account) and,
//! with `restrict`, restricts the account with its policy's spam action — the next MAIL of any
//! session gets `5.1.8`. The finding is also returned to the session, whose messages carry it
//! in their trace's policy step (it shows when the tenant's policy only alerts).

use std::net::IpAddr;

use outguard_policy::crossing::{Crossing, actions};
use outguard_policy::{AlertKind, LimitKind, Subject, login};

use crate::server::Relay;
use crate::smtp::identity::Identity;

impl Relay {
    /// After an AUTH success from `ip`: record, judge, act. Returns the trace note when a line
    /// was reached. A signal store that fails is logged and changes nothing: the login itself
    /// was good, and MAIL defers on its own when the counters are down.
    pub async fn login_behaviour(&self, id: &Identity, ip: IpAddr) -> Option<String> {
        let cfg = &self.cfg.login_behaviour;
        let Identity::Account {
            address, tenant, ..
        } = id
        else {
            return None;
        };
        if !cfg.enabled || !self.enforcer.enabled {
            return None;
        }
        let now = self.clock.now_ms();
        let facts = match login::record(&*self.enforcer.signals, address, ip, now).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, account = %address, "cannot record the login network");
                return None;
            }
        };
        let crossed = login::judge(&facts, cfg);
        if crossed.is_empty() {
            return None;
        }
        let summary = login::describe(address, ip, &crossed);
        tracing::warn!(account = %address, %tenant, %ip, %summary, "suspicious login pattern");
        let subject = Subject::Account(address.clone());
        let c = Crossing {
            subject,
            tenant,
            kind: AlertKind::SuspiciousLoginPattern,
            limit: LimitKind::LoginPattern,
            summary: summary.clone(),
            measures: crossed,
        };
        let history = self.enforcer.cache.restrictions();
        let (_, eff) = self.effective(tenant, address).await;
        let alerted = crate::fbl::rates::alerted_today(self, c.kind, tenant, &c.subject, now).await;
        let restrict_with = cfg.restrict.then_some(eff.spam_action);
        for action in actions(&c, &history, alerted, restrict_with, now) {
            self.take_action(action, &eff).await;
        }
        Some(summary)
    }
}

//! The policy seam of the message path (SPEC §2.2, §2.4, §2.5, §3): the pure decisions of
//! `outguard-policy` applied with this node's counters, cached policies and restrictions, and
//! the side effects they call for (restriction records, held mail, alerts, notification email,
//! webhooks). MAIL → [`Relay::policy_at_mail`], RCPT → [`Relay::policy_at_rcpt`], an abandoned
//! transaction → [`Relay::policy_release`], after the scan → [`Relay::policy_after_scan`].

mod actions;
mod bulk;
mod cache;
pub mod lift;
mod login;
mod ramp;
pub mod signals;
mod suppressed;
mod unregistered;

use std::sync::Arc;

use outguard_policy::{
    AlertKind, Counters, Measure, RcptDecision, RcptRequest, Reject, Reservation, ScannedMessage,
    SenderRef,
};
use outguard_proto::Reply;
use outguard_types::policy::EffectivePolicy;
use outguard_types::verdict::Verdict;

pub use cache::{
    PolicyCache, refresh_loop as cache_refresh_loop, refresh_now as refresh_restrictions_now,
};

use crate::pipeline::{Disposition, Submission, sender_domain};
use crate::server::Relay;
use crate::server::sender_dns::DomainExists;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::Identity;

/// The policy state of one node: counters and the caches of policies and restrictions.
pub struct Enforcer {
    pub counters: Arc<dyn Counters>,
    /// Sender reputation, hourly history and campaign fingerprints ([`signals`]).
    pub signals: Arc<dyn outguard_policy::SignalStore>,
    pub cache: PolicyCache,
    /// False only in the relay benchmark's policy-off row (`serve --bench-policy-off`).
    pub enabled: bool,
}

/// What a transaction reserved and the numbers its decisions were made on.
#[derive(Debug, Default)]
pub struct TxnPolicy {
    pub reservations: Vec<Reservation>,
    pub measures: Vec<String>,
}

/// The disposition plus what the scan's policy step found (for the trace and holding).
pub struct AfterScan {
    pub disposition: Disposition,
    pub measures: Vec<String>,
    /// The submitter was restricted by this very message: spool it held.
    pub hold: bool,
    pub policy_name: String,
}

fn reply_of(r: &Reject) -> Reply {
    Reply::new(r.code, &r.enhanced, r.text.clone())
}

fn counter_trouble() -> Reply {
    Reply::new(
        451,
        "4.3.0",
        "Temporary failure counting limits, try again later",
    )
}

fn sender_ref(id: &Identity) -> Option<SenderRef<'_>> {
    match id {
        Identity::Account { address, .. } => Some(SenderRef::Account(address)),
        Identity::Connector {
            cidr,
            limit_per_hour,
            ..
        } => Some(SenderRef::Connector {
            cidr,
            limit_per_hour: *limit_per_hour,
        }),
        Identity::None | Identity::FeedbackLoop => None,
    }
}

/// The address policies are matched against: the account, or a connector's envelope sender.
fn policy_sender<'a>(id: &'a Identity, mail_from: &'a str) -> &'a str {
    match id {
        Identity::Account { address, .. } => address,
        _ => mail_from,
    }
}

fn strings(m: &[Measure]) -> Vec<String> {
    m.iter().map(ToString::to_string).collect()
}

impl Relay {
    pub(crate) async fn effective(&self, tenant: &str, sender: &str) -> (String, EffectivePolicy) {
        self.enforcer
            .cache
            .effective(&self.store, &self.cfg.policy.default, tenant, sender)
            .await
    }

    /// MAIL: restrictions of the account/connector and its tenant, then the message rate.
    pub async fn policy_at_mail(&self, id: &Identity, txn: &mut TxnPolicy) -> Result<(), Reply> {
        if !self.enforcer.enabled {
            return Ok(());
        }
        let (Some(sender), Some(tenant)) = (sender_ref(id), id.tenant()) else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let history = self.enforcer.cache.restrictions();
        let rate = self.cfg.limits.messages_per_minute;
        match outguard_policy::admit_mail(
            &*self.enforcer.counters,
            &history,
            &sender,
            tenant,
            rate,
            now,
        )
        .await
        {
            Ok(Ok(res)) => {
                txn.reservations.extend(res);
                Ok(())
            }
            Ok(Err(refusal)) => {
                tracing::info!(sender = sender.subject().id(), detail = %refusal.detail, "refused at MAIL");
                Err(reply_of(&refusal.reject))
            }
            Err(e) => {
                tracing::error!(error = %e, "counter store failed at MAIL");
                Err(counter_trouble())
            }
        }
    }

    /// RCPT: reserve the recipient in every window; a crossing takes the policy's action.
    pub async fn policy_at_rcpt(
        &self,
        id: &Identity,
        mail_from: &str,
        to: &str,
        txn: &mut TxnPolicy,
    ) -> Result<(), Reply> {
        if !self.enforcer.enabled {
            return Ok(());
        }
        let (Some(sender), Some(tenant)) = (sender_ref(id), id.tenant()) else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let history = self.enforcer.cache.restrictions();
        // A restriction made earlier in this transaction (or on another node) holds at once.
        if let Err(refusal) = outguard_policy::check_sender(&history, &sender, tenant, now) {
            self.record_refusal(id, tenant, mail_from, to, &refusal.reject, now)
                .await;
            return Err(reply_of(&refusal.reject));
        }
        if self.cfg.suppression.enabled {
            self.check_suppressed(&sender, tenant, to, now).await?;
        }
        let domains = self
            .enforcer
            .cache
            .tenant_domains(&self.store, tenant)
            .await;
        let internal = outguard_policy::rcpt::is_internal(to, &domains);
        let (_, mut eff) = self.effective(tenant, policy_sender(id, mail_from)).await;
        if let Some(r) = self.trust_ramp(id, &history, now).await {
            outguard_policy::ramp::apply(&mut eff, &r);
            let shown = r.to_string();
            if !txn.measures.contains(&shown) {
                txn.measures.push(shown);
            }
        }
        let req = RcptRequest {
            sender,
            tenant,
            internal,
            n: 1,
        };
        match outguard_policy::reserve_recipient(
            &*self.enforcer.counters,
            &req,
            &eff,
            &history,
            now,
        )
        .await
        {
            Ok(RcptDecision::Admit {
                reservation,
                measures,
                actions,
            }) => {
                txn.reservations.push(reservation);
                txn.measures.extend(strings(&measures));
                for a in actions {
                    self.take_action(a, &eff).await;
                }
                Ok(())
            }
            Ok(RcptDecision::Refuse {
                refusal, action, ..
            }) => {
                tracing::info!(sender = sender.subject().id(), detail = %refusal.detail, "recipient refused by policy");
                if let Some(a) = action {
                    self.take_action(a, &eff).await;
                }
                self.record_refusal(id, tenant, mail_from, to, &refusal.reject, now)
                    .await;
                Err(reply_of(&refusal.reject))
            }
            Err(e) => {
                tracing::error!(error = %e, "counter store failed at RCPT");
                Err(counter_trouble())
            }
        }
    }

    /// Keep a recipient the policy refused in the record (`policy_refusals`, through the trace
    /// writer): it made no message, yet the what-if simulator must replay the attempt that
    /// crossed a limit to make the same restriction at the same time (issue 22).
    async fn record_refusal(
        &self,
        id: &Identity,
        tenant: &str,
        mail_from: &str,
        to: &str,
        reject: &Reject,
        now: outguard_types::model::Millis,
    ) {
        let refusal = outguard_store::PolicyRefusal {
            at: now,
            tenant: tenant.to_string(),
            submitter: id.submitter(),
            mail_from: mail_from.to_string(),
            rcpt: to.to_string(),
            reply: format!("{} {}", reject.code, reject.enhanced),
        };
        self.tracer
            .record(outguard_store::trace::TraceRecord::Refusal(Box::new(
                refusal,
            )))
            .await;
    }

    /// Give back what an abandoned transaction reserved (SPEC §2.4: recipients of a transaction
    /// that is not completed are given back).
    pub async fn policy_release(&self, txn: &mut TxnPolicy) {
        for r in txn.reservations.drain(..) {
            if let Err(e) = self.enforcer.counters.release(&r).await {
                tracing::warn!(error = %e, "could not give back a reservation");
            }
        }
        txn.measures.clear();
    }

    /// After the scan: spam counters and thresholds, then the disposition (pool, reject,
    /// quarantine, BCC).
    pub async fn policy_after_scan(
        &self,
        sub: &Submission<'_>,
        v: &Verdict,
        recent_spam: Option<&outguard_types::verdict::Reason>,
        message_id: &str,
    ) -> AfterScan {
        let tenant = sub.identity.tenant().unwrap_or_default().to_string();
        let (policy_name, eff) = match sub.identity.tenant() {
            Some(t) => {
                self.effective(t, policy_sender(sub.identity, sub.mail_from))
                    .await
            }
            None => ("service".to_string(), EffectivePolicy::default()),
        };
        let mut measures = Vec::new();
        let mut hold = false;
        if let Some(sender) = sender_ref(sub.identity).filter(|_| self.enforcer.enabled) {
            let msg = ScannedMessage {
                sender,
                tenant: &tenant,
                class: v.class,
                reasons: &v.reasons,
                message_id,
            };
            let history = self.enforcer.cache.restrictions();
            match outguard_policy::after_verdict(
                &*self.enforcer.counters,
                &msg,
                &eff,
                &history,
                self.clock.now_ms(),
            )
            .await
            {
                Ok(out) => {
                    measures = strings(&out.measures);
                    for a in out.actions {
                        hold |= matches!(&a, outguard_policy::Action::Restrict { .. });
                        self.take_action(a, &eff).await;
                    }
                }
                Err(e) => {
                    // SPEC §6: never let a message through uncounted. The client retries later.
                    tracing::error!(error = %e, "counter store failed after scan: deferring");
                    return AfterScan {
                        disposition: Disposition::Reject(counter_trouble()),
                        measures,
                        hold: false,
                        policy_name,
                    };
                }
            }
            // Restricted earlier in this very transaction (the crossing RCPT): its mail is held too.
            let history = self.enforcer.cache.restrictions();
            hold |= outguard_policy::check_sender(&history, &sender, &tenant, self.clock.now_ms())
                .is_err();
        }
        let resolves = match (&sub.sender, sender_domain(sub.mail_from)) {
            (SenderKind::Owned, Some(d)) => self.sender_dns.check(d).await != DomainExists::No,
            _ => true,
        };
        let in_accepted = sub.sender != SenderKind::Forwarded;
        let disposition = match outguard_policy::disposition(v, &eff, resolves, in_accepted) {
            outguard_policy::Disposition::Reject(r) => Disposition::Reject(reply_of(&r)),
            outguard_policy::Disposition::Quarantine { header } => Disposition::Quarantine {
                pool: "high-risk".into(),
                extra_headers: vec![("X-Outguard-Verdict".into(), header)],
            },
            outguard_policy::Disposition::Deliver {
                pool,
                header,
                bcc,
                why,
            } => {
                // Null-sender mail from a connector (its NDRs) is high-risk whatever it says.
                let pool = if sub.sender == SenderKind::Null {
                    "high-risk"
                } else {
                    pool
                };
                // A sender whose mail was called spam recently: high-risk until it has sent
                // enough clean mail in a row (`outguard_policy::signals::reputation`).
                let (pool, header, why) = match recent_spam {
                    Some(r) if pool == outguard_policy::disposition::POOL_REGULAR => (
                        outguard_policy::disposition::POOL_HIGH_RISK,
                        Some(outguard_policy::disposition::verdict_header(v)),
                        format!("{}: {}", r.tag, r.detail),
                    ),
                    _ => (pool, header, why.to_string()),
                };
                let mut extra = Vec::new();
                if let Some(h) = header {
                    extra.push(("X-Outguard-Verdict".to_string(), h));
                }
                measures.push(why);
                let bcc = self.count_bcc(sub, &eff, bcc, &mut measures).await;
                Disposition::Deliver {
                    pool: pool.to_string(),
                    extra_headers: extra,
                    bcc,
                }
            }
        };
        AfterScan {
            disposition,
            measures,
            hold,
            policy_name,
        }
    }

    /// The sender signals after the scan (`signals`): the verdict they leave, and the
    /// `ACCOUNT_RECENT_SPAM` reason when the sender's reputation keeps it on `high-risk`. A
    /// counter store that fails defers the message (`451 4.3.0`), as for the limits.
    pub async fn sender_signals(
        &self,
        sub: &Submission<'_>,
        body: &[u8],
        v: Verdict,
    ) -> Result<signals::Signalled, Reply> {
        let (Some(sender), Some(tenant)) = (sender_ref(sub.identity), sub.identity.tenant()) else {
            return Ok(signals::Signalled {
                verdict: v,
                recent_spam: None,
                campaign_alert: None,
            });
        };
        if !self.enforcer.enabled {
            return Ok(signals::Signalled {
                verdict: v,
                recent_spam: None,
                campaign_alert: None,
            });
        }
        let (suspicious, spam) = self.scanner.thresholds();
        let input = signals::SignalInput {
            subject: sender.subject(),
            tenant,
            rcpts: sub.rcpts,
            fingerprint: signals::body_fingerprint(body),
            suppressed_after: self.cfg.suppression.signal_after,
        };
        let now = self.clock.now_ms();
        let t = signals::Thresholds { suspicious, spam };
        match signals::assess(&*self.enforcer.signals, t, &input, v, now).await {
            Ok(out) => {
                if let (true, Identity::Account { address, .. }) =
                    (out.verdict.class.is_spam(), sub.identity)
                {
                    self.ramp_setback(address, now).await;
                }
                if let Some((summary, key)) = &out.campaign_alert {
                    tracing::warn!(%summary, "campaign detected");
                    crate::dnsbl::monitor::service_alert(
                        self,
                        AlertKind::CampaignDetected,
                        summary.clone(),
                        Some(key.clone()),
                        now,
                    )
                    .await;
                }
                Ok(out)
            }
            Err(e) => {
                tracing::error!(error = %e, "signal store failed after scan: deferring");
                Err(counter_trouble())
            }
        }
    }

    /// BCC copies count against the sender's recipient windows like any other recipient
    /// (SPEC §9): each is reserved in turn, and a copy whose window is full is not sent — the
    /// trace says so — rather than carrying the sender past its limit. The refusal takes no
    /// restriction: the copy is the tenant's setting, not the sender's doing.
    async fn count_bcc(
        &self,
        sub: &Submission<'_>,
        eff: &EffectivePolicy,
        bcc: Vec<String>,
        measures: &mut Vec<String>,
    ) -> Vec<String> {
        let (Some(sender), Some(tenant)) = (sender_ref(sub.identity), sub.identity.tenant()) else {
            return bcc;
        };
        if bcc.is_empty() || !self.enforcer.enabled {
            return bcc;
        }
        let domains = self
            .enforcer
            .cache
            .tenant_domains(&self.store, tenant)
            .await;
        let history = self.enforcer.cache.restrictions();
        let mut sent = Vec::with_capacity(bcc.len());
        for to in bcc {
            let req = RcptRequest {
                sender,
                tenant,
                internal: outguard_policy::rcpt::is_internal(&to, &domains),
                n: 1,
            };
            let counters = &*self.enforcer.counters;
            match outguard_policy::reserve_recipient(
                counters,
                &req,
                eff,
                &history,
                self.clock.now_ms(),
            )
            .await
            {
                Ok(RcptDecision::Admit {
                    measures: m,
                    actions,
                    ..
                }) => {
                    measures.extend(m.iter().map(|x| format!("BCC copy to {to}: {x}")));
                    for a in actions {
                        self.take_action(a, eff).await;
                    }
                    sent.push(to);
                }
                Ok(RcptDecision::Refuse { refusal, .. }) => {
                    measures.push(format!("BCC copy to {to} not sent: {}", refusal.detail));
                }
                Err(e) => {
                    tracing::error!(error = %e, "counter store failed counting a BCC copy");
                    measures.push(format!(
                        "BCC copy to {to} not sent: limits could not be counted"
                    ));
                }
            }
        }
        sent
    }
}

//! The bulk-sender compliance gate in the message path (issue 25 part 4), after the policy's
//! disposition: count the message in its stream (tenant + From domain) per mailbox provider,
//! decide whether the stream is bulk, and for a bulk message gather the facts the checks need
//! (DKIM signatures verified, DMARC and SPF records, the unsubscribe headers), apply the
//! tenant's policy actions (`outguard_policy::bulk`) and record the stream for the compliance
//! page. A message the policy already refuses is not checked; one that is not bulk never is.
//!
//! The counting uses the signal store (in-process or Redis, hourly buckets, a day per key): a
//! store that fails leaves the message unjudged by volume (a header-marked message is still
//! checked), since this gate only adds to what the limits already decided.

use outguard_policy::bulk::{self, Finding};
use outguard_store::BulkObservation;
use outguard_types::policy::BulkAction;

use super::{AfterScan, policy_sender, reply_of};
use crate::pipeline::{Disposition, HeaderFacts, Submission, sender_domain};
use crate::server::Relay;
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::domain_of;

/// Recipients of one message per provider name (only providers it has recipients at).
fn per_provider(relay: &Relay, rcpts: &[String]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for r in rcpts {
        let Some(p) = domain_of(r).and_then(|d| relay.cfg.bulk.provider_of(d)) else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| *n == p.name) {
            Some((_, n)) => *n += 1,
            None => out.push((p.name.clone(), 1)),
        }
    }
    out
}

impl Relay {
    /// Run the gate on one assessed message; returns the disposition it leaves.
    pub async fn bulk_gate(
        &self,
        sub: &Submission<'_>,
        body: &[u8],
        facts: &HeaderFacts,
        message_id: &str,
        mut after: AfterScan,
    ) -> AfterScan {
        if !self.cfg.bulk.enabled || !self.enforcer.enabled {
            return after;
        }
        let Some(tenant) = sub.identity.tenant() else {
            return after;
        };
        if !matches!(sub.sender, SenderKind::Owned) {
            return after;
        }
        let Some(from_domain) = facts
            .from
            .first()
            .and_then(|a| domain_of(a))
            .map(str::to_ascii_lowercase)
        else {
            return after;
        };
        let why = match self.bulk_reason(tenant, &from_domain, sub, facts).await {
            Some(w) => w,
            None => return after,
        };
        if matches!(after.disposition, Disposition::Reject(_)) {
            return after;
        }
        let findings = self.bulk_findings(sub, body, facts, &from_domain).await;
        let (_, eff) = self
            .effective(tenant, policy_sender(sub.identity, sub.mail_from))
            .await;
        let gate = bulk::decide(&from_domain, &why, &findings, &eff.bulk);
        tracing::info!(%tenant, domain = %from_domain, measure = %gate.measure, "bulk stream checked");
        after.measures.push(gate.measure.clone());
        match (&gate.reject, gate.action, &mut after.disposition) {
            (Some(r), _, _) => after.disposition = Disposition::Reject(reply_of(r)),
            (None, Some(BulkAction::HighRisk), Disposition::Deliver { pool, .. })
            | (None, Some(BulkAction::HighRisk), Disposition::Quarantine { pool, .. })
                if pool != outguard_policy::disposition::POOL_HIGH_RISK =>
            {
                after.measures.push(format!(
                    "bulk sender requirements not met: high-risk pool instead of {pool}"
                ));
                *pool = outguard_policy::disposition::POOL_HIGH_RISK.to_string();
            }
            _ => {}
        }
        self.record_stream(tenant, &from_domain, &why, message_id, &findings, &gate)
            .await;
        after
    }

    /// Why the message's stream is bulk (marked, or its volume at one provider), counting it.
    async fn bulk_reason(
        &self,
        tenant: &str,
        from_domain: &str,
        sub: &Submission<'_>,
        facts: &HeaderFacts,
    ) -> Option<String> {
        let providers = per_provider(self, sub.rcpts);
        let names: Vec<String> = providers.iter().map(|(n, _)| n.clone()).collect();
        let volume = bulk::count(
            &*self.enforcer.signals,
            tenant,
            from_domain,
            &providers,
            &names,
            1,
            self.clock.now_ms(),
        )
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "cannot count a bulk stream"))
        .ok();
        if let Some(why) = bulk::marked(
            facts.list_unsubscribe.is_some(),
            facts.precedence.as_deref(),
        ) {
            return Some(why);
        }
        let limit = u64::from(self.cfg.bulk.provider_recipients_per_day);
        match volume?.top_provider {
            Some((name, n)) if n > limit => {
                Some(format!("{n} recipients at {name} in 24 hours > {limit}"))
            }
            _ => None,
        }
    }

    /// The four checks of one bulk message.
    async fn bulk_findings(
        &self,
        sub: &Submission<'_>,
        body: &[u8],
        facts: &HeaderFacts,
        from: &str,
    ) -> Vec<Finding> {
        let client = self.auth_dns.client_signatures(body).await;
        let envelope = sender_domain(sub.mail_from).map(str::to_ascii_lowercase);
        // Ours: delivery signs with the envelope sender's domain when it has a `[[dkim]]` key.
        let ours = envelope.as_deref().filter(|e| {
            self.cfg
                .dkim
                .iter()
                .any(|k| k.domain.eq_ignore_ascii_case(e))
        });
        let spf_record = match envelope.as_deref() {
            Some(e) if bulk::aligned(e, from) => self.auth_dns.spf(e).await,
            _ => bulk::Lookup::Missing,
        };
        let org = bulk::org_domain(from);
        let at_from = self.auth_dns.dmarc(from).await;
        let at_org = match (&at_from, org != from) {
            (bulk::Lookup::Missing, true) => Some(self.auth_dns.dmarc(&org).await),
            _ => None,
        };
        let signed: Vec<&[String]> = client.iter().map(|s| &s.signed_headers[..]).collect();
        vec![
            bulk::dkim(from, &client, ours),
            bulk::spf(from, envelope.as_deref(), &spf_record),
            bulk::dmarc(from, &at_from, at_org.as_ref()),
            bulk::one_click(
                facts.list_unsubscribe.as_deref(),
                facts.list_unsubscribe_post.as_deref(),
                &signed,
            ),
        ]
    }

    async fn record_stream(
        &self,
        tenant: &str,
        from_domain: &str,
        why: &str,
        message_id: &str,
        findings: &[Finding],
        gate: &bulk::Gate,
    ) {
        let checks: serde_json::Map<String, serde_json::Value> = findings
            .iter()
            .map(|f| (f.check.as_str().to_string(), f.outcome.as_str().into()))
            .collect();
        let failure: Vec<String> = findings
            .iter()
            .filter(|f| f.outcome == bulk::Outcome::Fail)
            .map(|f| format!("{}: {}", f.check.as_str(), f.detail))
            .collect();
        let o = BulkObservation {
            tenant: tenant.to_string(),
            from_domain: from_domain.to_string(),
            why: why.to_string(),
            at: self.clock.now_ms(),
            message_id: message_id.to_string(),
            checks: serde_json::Value::Object(checks).to_string(),
            action: gate.action.map_or("none", BulkAction::as_str).to_string(),
            failure: (!failure.is_empty()).then(|| failure.join("; ")),
        };
        if let Err(e) = self.store.record_bulk(&o).await {
            tracing::warn!(error = %e, "cannot record a bulk stream");
        }
    }
}

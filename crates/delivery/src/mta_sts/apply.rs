//! Applying a discovered policy to one domain's delivery round (RFC 8461 §4, §5). Only for a
//! destination reached through its MX hosts whose TLS policy is the default (`[delivery] tls`):
//! the operator's `[delivery.tls_policies]` entry or `[[routes]]` win over what the domain
//! publishes. `enforce`: only the MX hosts matching the policy's `mx` patterns are tried, under
//! `verify` (chain and name); none matching = `451 4.7.5`, retried, nothing sent. `testing`:
//! mail goes as usual, and each attempt's trace says what `enforce` would have refused (MX not
//! in the policy, no TLS, a certificate `verify` would refuse). `none`: nothing.

use std::sync::Arc;

use outguard_types::config::TlsPolicy;
use outguard_types::model::EventKind;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use serde_json::json;

use super::cache::{Discovery, Got};
use super::{Mode, Policy};
use crate::attempt::TlsChoice;
use crate::mx::{Route, route_config};
use crate::queue::Inner;
use crate::tls::{Findings, recording_client_config};

/// The MTA-STS policy in effect for one domain's round, as its attempts' traces describe it.
#[derive(Debug)]
pub struct StsUse {
    pub mode: Mode,
    pub id: String,
    pub got: Got,
    /// `testing`: what `enforce` would have checked.
    pub testing: Option<Testing>,
}

impl StsUse {
    /// `MTA-STS enforce, policy id 20240101, cached`.
    pub fn describe(&self) -> String {
        format!(
            "MTA-STS {}, policy id {}, {}",
            self.mode.as_str(),
            self.id,
            self.got.describe()
        )
    }
}

/// `testing` mode: the opportunistic TLS config that records what `verify` would have said.
#[derive(Debug)]
pub struct Testing {
    policy: Policy,
    findings: Findings,
    /// `None`: no trust roots, so no certificate can be judged.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Testing {
    fn new(policy: Policy, verifier: Option<Arc<WebPkiServerVerifier>>) -> Testing {
        let findings = Findings::default();
        let tls = verifier.and_then(|v| {
            recording_client_config(v, findings.clone())
                .map_err(|e| tracing::warn!(error = %e, "MTA-STS testing: no recording TLS config"))
                .ok()
        });
        Testing {
            policy,
            findings,
            tls,
        }
    }

    /// What `enforce` would have made of an attempt to MX `host` (`tls`: it went inside TLS;
    /// `verified`: under the `verify` policy, so the certificate passed already).
    pub fn verdict(&self, host: &str, tls: bool, verified: bool) -> String {
        if !self.policy.matches(host) {
            return format!(
                "would have failed: MX host {host} matches no mx of the policy ({})",
                self.policy.mx.join(", ")
            );
        }
        if !tls {
            return "would have failed: no TLS".into();
        }
        if verified {
            return "would have passed".into();
        }
        if self.tls.is_none() {
            return "certificate not judged: no trust roots (set [delivery] tls_ca_file)".into();
        }
        let findings = self
            .findings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let host = host.trim_end_matches('.');
        match findings
            .iter()
            .rev()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
        {
            Some((_, Some(error))) => format!("would have failed: certificate: {error}"),
            Some((_, None)) => "would have passed".into(),
            None => "certificate not judged (a connection opened before)".into(),
        }
    }
}

/// Discover and apply the policy of `domain` (see the module doc): `enforce` narrows `route`
/// to the matching MX hosts and makes `tls` `verify`; `testing` attaches what to report.
/// `Err(reply)`: nothing may be sent now (the reply to record, a 4xx).
pub(crate) async fn hook(
    inner: &Inner,
    msg: &str,
    domain: &str,
    route: &mut Route,
    tls: &mut TlsChoice,
) -> Result<(), String> {
    let Some(sts) = &inner.sts else {
        return Ok(());
    };
    let routed = route_config(domain, &inner.deps.config.routes).is_some();
    if !tls.is_default() || routed || domain.starts_with('[') {
        return Ok(());
    }
    let (id, policy, got) = match sts.discover(domain, inner.clock.now_ms()).await {
        Discovery::NoPolicy => return Ok(()),
        Discovery::Failed(why) => {
            inner.trace(
                msg,
                EventKind::Routed,
                format!("{domain}: MTA-STS policy not fetched, delivering without one: {why}"),
                json!({"domain": domain, "mta_sts": {"error": why}}),
            );
            return Ok(());
        }
        Discovery::Policy { id, policy, got } => (id, policy, got),
    };
    let mode = policy.mode;
    match mode {
        Mode::None => Ok(()),
        Mode::Testing => {
            tls.sts = Some(Arc::new(StsUse {
                mode,
                id,
                got,
                testing: Some(Testing::new(policy, sts.verifier())),
            }));
            Ok(())
        }
        Mode::Enforce => {
            let used = StsUse {
                mode,
                id,
                got,
                testing: None,
            };
            let (keep, skipped): (Vec<_>, Vec<_>) =
                route.hops.drain(..).partition(|h| policy.matches(&h.host));
            let mut skipped: Vec<&str> = skipped.iter().map(|h| h.host.as_str()).collect();
            skipped.dedup();
            if keep.is_empty() {
                let reason = format!(
                    "{domain}: {}: no MX host matches the policy's mx ({}): {} refused",
                    used.describe(),
                    policy.mx.join(", "),
                    skipped.join(", ")
                );
                tracing::warn!(id = %msg, %domain, policy_id = %used.id, mx = ?skipped,
                    "delivery refused by MTA-STS: no MX host matches the policy");
                inner.trace(
                    msg,
                    EventKind::Deferred,
                    reason.clone(),
                    json!({"domain": domain, "tls_refused": true,
                           "mta_sts": {"mode": mode.as_str(), "id": used.id, "mx": policy.mx,
                                       "refused_hosts": skipped}}),
                );
                return Err(format!("451 4.7.5 {reason}"));
            }
            if !skipped.is_empty() {
                inner.trace(
                    msg,
                    EventKind::Routed,
                    format!(
                        "{domain}: {}: MX hosts not in the policy skipped: {}",
                        used.describe(),
                        skipped.join(", ")
                    ),
                    json!({"domain": domain,
                           "mta_sts": {"mode": mode.as_str(), "id": used.id, "skipped": skipped}}),
                );
            }
            route.hops = keep;
            *tls = TlsChoice {
                policy: TlsPolicy::Verify,
                source: "mta-sts",
                sts: Some(Arc::new(used)),
            };
            Ok(())
        }
    }
}

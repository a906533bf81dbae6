//! The two seams of the message path that other components fill: `scan` (the spam engine) and
//! `policy` (limits, restrictions, disposition). Policy is a **pass-through** until the policy
//! engine is wired in: it admits every sender and recipient and routes by verdict class only.

use outguard_proto::Reply;
use outguard_spam::ScanContext;
use outguard_types::verdict::Verdict;

use super::Relay;
use super::sender_dns::DomainExists;
use crate::pipeline::{Disposition, Submission, sender_domain};
use crate::smtp::checks::SenderKind;
use crate::smtp::identity::Identity;

/// Messages larger than this are scanned on the blocking pool so one big message cannot stall
/// the sessions sharing its worker thread.
const INLINE_SCAN_MAX: usize = 256 * 1024;

impl Relay {
    /// Scan step: the whole message through the spam engine.
    pub async fn scan(&self, sub: &Submission<'_>, body: &[u8]) -> Verdict {
        let domain = sender_domain(sub.mail_from).map(str::to_string);
        if body.len() <= INLINE_SCAN_MAX {
            let ctx = ScanContext { sender_domain: domain.as_deref(), ..ScanContext::default() };
            return self.scanner.scan(body, &ctx);
        }
        let (engine, body) = (self.scanner.clone(), body.to_vec());
        let out = tokio::task::spawn_blocking(move || {
            let ctx = ScanContext { sender_domain: domain.as_deref(), ..ScanContext::default() };
            engine.scan(&body, &ctx)
        })
        .await;
        out.unwrap_or_else(|_| Verdict { score: 0.0, class: outguard_types::verdict::Class::Suspicious, reasons: vec![] })
    }

    /// Policy at MAIL (restrictions, message rate). Pass-through until the policy engine lands.
    pub async fn policy_at_mail(&self, _id: &Identity) -> Result<(), Reply> {
        Ok(())
    }

    /// Policy at RCPT (recipient limits). Pass-through until the policy engine lands.
    pub async fn policy_at_rcpt(&self, _id: &Identity, _to: &str) -> Result<(), Reply> {
        Ok(())
    }

    /// Disposition by verdict and sender kind (SPEC §2.5), without limits or reject score yet.
    pub async fn policy_after_scan(&self, sub: &Submission<'_>, v: &Verdict) -> Disposition {
        let mut extra = Vec::new();
        let dubious = match (sub.sender.clone(), sender_domain(sub.mail_from)) {
            (SenderKind::Owned, Some(d)) => self.sender_dns.check(d).await == DomainExists::No,
            _ => false,
        };
        let pool = if v.class.is_spam() {
            extra.push(("X-Outguard-Verdict".to_string(), format!("{}; score={:.2}", v.class.as_str(), v.score)));
            "high-risk"
        } else if dubious {
            extra.push(("X-Outguard-Verdict".to_string(), "dubious-sender; sender domain has no A or MX record".to_string()));
            "high-risk"
        } else {
            match sub.sender {
                SenderKind::Null => "high-risk",
                SenderKind::Forwarded => "relay",
                SenderKind::Owned => "regular",
            }
        };
        Disposition::Deliver { pool: pool.to_string(), extra_headers: extra }
    }
}

//! The scan step of the message path: the whole message through the in-process spam engine.
//! (The policy step lives in `crate::enforce`.)

use outguard_spam::ScanContext;
use outguard_types::verdict::Verdict;

use super::Relay;
use crate::pipeline::{Submission, sender_domain};

/// Messages larger than this are scanned on the blocking pool so one big message cannot stall
/// the sessions sharing its worker thread.
const INLINE_SCAN_MAX: usize = 256 * 1024;

impl Relay {
    /// Scan step: the whole message through the spam engine.
    pub async fn scan(&self, sub: &Submission<'_>, body: &[u8]) -> Verdict {
        let domain = sender_domain(sub.mail_from).map(str::to_string);
        // The tenant's own domains let the engine see display-name spoofing of them.
        let domains = match sub.identity.tenant() {
            Some(t) => self.enforcer.cache.tenant_domains(&self.store, t).await,
            None => Vec::new(),
        };
        let overlay = self
            .enforcer
            .cache
            .spam_overlay(&self.store, sub.identity.tenant())
            .await;
        let started = std::time::Instant::now();
        if body.len() <= INLINE_SCAN_MAX {
            let ctx = ScanContext {
                sender_domain: domain.as_deref(),
                tenant_domains: &domains,
            };
            let v = self
                .scanner
                .scan_with_overlay(body, &ctx, overlay.as_deref());
            self.metrics.observe_scan(started.elapsed());
            return v;
        }
        let (engine, body) = (self.scanner.clone(), body.to_vec());
        let out = tokio::task::spawn_blocking(move || {
            let ctx = ScanContext {
                sender_domain: domain.as_deref(),
                tenant_domains: &domains,
            };
            engine.scan_with_overlay(&body, &ctx, overlay.as_deref())
        })
        .await;
        self.metrics.observe_scan(started.elapsed());
        out.unwrap_or_else(|_| Verdict {
            score: 0.0,
            class: outguard_types::verdict::Class::Suspicious,
            reasons: vec![],
        })
    }
}

//! Proof of a domain (SPEC §9): the TXT record `outguard-verify=<token>` at the domain itself,
//! asked of our own resolver (`[dns] resolver`) without an answer cache, so a record published
//! a moment ago is seen at the next check. Also the periodic pass `serve` runs every
//! `[dns] domain_verify_interval` over every pending domain (tokio time, so tests can pause and
//! advance it).

use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use outguard_store::Store;
use outguard_types::config::DnsConfig;

use outguard_relay::server::Relay;

/// The TXT record's text for `token`.
pub fn record_text(token: &str) -> String {
    format!("outguard-verify={token}")
}

/// What DNS said about a domain's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    Found,
    /// The name answered, without our record (or does not exist).
    Missing,
    /// The resolver could not tell (SERVFAIL, timeout): try again later.
    Unknown(String),
}

/// TXT lookups for domain proofs. Cheap to clone.
#[derive(Clone)]
pub struct TxtResolver {
    dns: TokioResolver,
}

impl TxtResolver {
    /// The resolver named by `dns.resolver`, else the system configuration; no cache.
    pub fn new(cfg: &DnsConfig) -> Result<TxtResolver, NetError> {
        let mut builder = outguard_delivery::mx::resolver_builder(cfg)?;
        let opts = builder.options_mut();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        opts.cache_size = 0;
        Ok(TxtResolver {
            dns: builder.build()?,
        })
    }

    /// Is `outguard-verify=<token>` among the TXT records of `domain`? A record split into
    /// several character-strings counts as their concatenation (RFC 7208 §3.3 practice).
    pub async fn proof(&self, domain: &str, token: &str) -> Proof {
        let want = record_text(token);
        let name = format!("{}.", domain.trim_end_matches('.'));
        match self.dns.lookup(name.as_str(), RecordType::TXT).await {
            Ok(lookup) => {
                let found = lookup.answers().iter().any(|r| match &r.data {
                    RData::TXT(t) => {
                        let text: Vec<u8> =
                            t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                        text.trim_ascii() == want.as_bytes()
                    }
                    _ => false,
                });
                if found { Proof::Found } else { Proof::Missing }
            }
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Proof::Missing,
            Err(e) => Proof::Unknown(e.to_string()),
        }
    }
}

/// One pass over the pending domains: each whose record is found (and which no other tenant's
/// verified domain now nests with) becomes verified. Returns the names verified.
pub async fn verify_pending(store: &Store, dns: &TxtResolver) -> Vec<String> {
    let pending = match store.list_pending_domains().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list pending domains");
            return Vec::new();
        }
    };
    let system = super::Actor {
        role: outguard_types::model::Role::Operator,
        tenant: None,
        name: "system:domain-verify".into(),
        ip: None,
    };
    let mut done = Vec::new();
    for d in pending {
        match super::domains::prove(store, dns, &system, &d).await {
            Ok(()) => done.push(d.domain),
            Err(e) => tracing::debug!(domain = %d.domain, reason = %e, "still pending"),
        }
    }
    done
}

/// `serve`'s periodic verification, until shutdown.
pub async fn run(relay: Arc<Relay>) {
    let dns = match TxtResolver::new(&relay.cfg.dns) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "domain verification disabled: cannot build the resolver");
            return;
        }
    };
    let mut tick = tokio::time::interval(relay.cfg.dns.domain_verify_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = relay.shutdown.stopped() => return,
        }
        for name in verify_pending(&relay.store, &dns).await {
            tracing::info!(domain = %name, "domain verified by its DNS TXT record");
        }
    }
}

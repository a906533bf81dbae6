//! Policy discovery with a per-node cache (RFC 8461 §3, §5.1): look up `_mta-sts.<domain>`;
//! a cached, unexpired policy with the record's `id` is used as it is; a new `id` (or nothing
//! cached) fetches the policy file. A failed fetch keeps an unexpired cached policy; with
//! nothing cached it means no policy (mail goes as before). No record (or a DNS failure)
//! keeps the cached policy until its `max_age` runs out. Time is the caller's `now` (ms).
//!
//! Bounded (STYLE rule 6): at most [`MAX_CACHED`] domains; when full, expired entries go first,
//! then the one that expires soonest. Two messages to a domain without a cached policy that are
//! tried in the same moment may both fetch it; the second simply replaces the first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;

use super::fetch::fetch;
use super::{Policy, record_id};
use crate::mx::MxResolver;

/// Most domains whose policy is kept.
pub const MAX_CACHED: usize = 100_000;

#[derive(Debug, Clone)]
struct Cached {
    id: String,
    policy: Policy,
    /// Unix ms after which the policy is no longer used.
    expires_at: i64,
}

/// How the policy in effect was got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Fetched,
    Cached,
    /// The record's `id` changed (or could not be read) and the refetch failed: the cached,
    /// unexpired policy stays in effect (RFC 8461 §5.1).
    KeptAfter(String),
}

impl Got {
    pub fn describe(&self) -> String {
        match self {
            Got::Fetched => "fetched".into(),
            Got::Cached => "cached".into(),
            Got::KeptAfter(why) => format!("cached; refetch failed: {why}"),
        }
    }
}

/// The outcome of discovery for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// No `_mta-sts` record and nothing cached.
    NoPolicy,
    /// A record, but its policy could not be fetched and nothing is cached: no policy.
    Failed(String),
    Policy {
        id: String,
        policy: Policy,
        got: Got,
    },
}

/// MTA-STS discovery for delivery: the resolver, the HTTPS trust, the cache.
pub struct Sts {
    resolver: MxResolver,
    /// What `verify` checks certificates with; `None`: no trust roots.
    verifier: Option<Arc<WebPkiServerVerifier>>,
    /// Client config for the policy fetch, from `verifier`; `None`: no fetch.
    https: Option<Arc<ClientConfig>>,
    port: u16,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Sts {
    /// `port`: of `https://mta-sts.<domain>/` (`[delivery.mta_sts] https_port`).
    pub fn new(
        resolver: MxResolver,
        verifier: Option<Arc<WebPkiServerVerifier>>,
        port: u16,
    ) -> Sts {
        let https = verifier.clone().and_then(|v| {
            crate::tls::verifier_client_config(v)
                .map_err(
                    |e| tracing::warn!(error = %e, "MTA-STS: no TLS config for policy fetches"),
                )
                .ok()
        });
        Sts {
            resolver,
            verifier,
            https,
            port,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// What `verify` checks certificates with (`testing` mode judges with it too).
    pub fn verifier(&self) -> Option<Arc<WebPkiServerVerifier>> {
        self.verifier.clone()
    }

    fn cached(&self, domain: &str, now: i64) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(domain).filter(|c| c.expires_at > now).cloned()
    }

    fn store(&self, domain: &str, entry: Cached, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED && !cache.contains_key(domain) {
            cache.retain(|_, c| c.expires_at > now);
            if cache.len() >= MAX_CACHED
                && let Some(soonest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.expires_at)
                    .map(|(d, _)| d.clone())
            {
                cache.remove(&soonest);
            }
        }
        cache.insert(domain.to_string(), entry);
    }

    /// The `id` of the one `v=STSv1` TXT record at `_mta-sts.<domain>`; `None` when there is
    /// none, several, an invalid one (RFC 8461 §3.1) or DNS could not tell.
    async fn record(&self, domain: &str) -> Option<String> {
        let records = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%domain, error = %e, "MTA-STS record lookup failed");
                return None;
            }
        };
        let mut sts = records.iter().filter(|r| r.starts_with("v=STSv1"));
        match (sts.next(), sts.next()) {
            (Some(one), None) => record_id(one).ok(),
            _ => None,
        }
    }

    /// The policy that applies to mail for `domain` at `now` (Unix ms).
    pub async fn discover(&self, domain: &str, now: i64) -> Discovery {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let cached = self.cached(&domain, now);
        let found = |c: Cached, got| Discovery::Policy {
            id: c.id,
            policy: c.policy,
            got,
        };
        let (id, cached) = match (self.record(&domain).await, cached) {
            (None, None) => return Discovery::NoPolicy,
            (None, Some(c)) => return found(c, Got::Cached),
            (Some(id), Some(c)) if c.id == id => return found(c, Got::Cached),
            (Some(id), cached) => (id, cached),
        };
        match fetch(&self.resolver, self.https.as_ref(), &domain, self.port).await {
            Ok(policy) => {
                let max_age =
                    i64::try_from(policy.max_age.saturating_mul(1000)).unwrap_or(i64::MAX);
                let entry = Cached {
                    id: id.clone(),
                    policy: policy.clone(),
                    expires_at: now.saturating_add(max_age),
                };
                self.store(&domain, entry, now);
                Discovery::Policy {
                    id,
                    policy,
                    got: Got::Fetched,
                }
            }
            Err(e) => {
                tracing::warn!(%domain, %id, error = %e, "MTA-STS policy fetch failed");
                match cached {
                    Some(c) => found(c, Got::KeptAfter(e.to_string())),
                    None => Discovery::Failed(e.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_harness::http::{Answer, Receiver};
    use outguard_harness::{DnsServer, TestCa, Zones};
    use outguard_types::config::DnsConfig;

    fn fetched(d: &Discovery) -> Option<&Got> {
        match d {
            Discovery::Policy { got, .. } => Some(got),
            _ => None,
        }
    }

    /// Time is the caller's: the policy is used for `max_age` (60 s here) from the fetch, then
    /// fetched again; a vanished record keeps the cached policy until then; with nothing cached
    /// a failed fetch is no policy.
    #[tokio::test]
    async fn policies_are_cached_for_max_age_of_injected_time() {
        let ca = TestCa::new("cache test CA").expect("ca");
        let cert = ca.server_config(&["mta-sts.c.example"]).expect("cert");
        let body = "version: STSv1\nmode: testing\nmx: *.c.example\nmax_age: 60\n";
        let addr = "127.0.0.1:0".parse().expect("addr");
        let server = Receiver::start_answering(addr, Some(cert), Answer::ok("text/plain", body))
            .await
            .expect("server");
        let mut z = Zones::new();
        z.txt("_mta-sts.c.example", "v=STSv1; id=1;")
            .a("mta-sts.c.example", [127, 0, 0, 1].into())
            .txt("_mta-sts.down.example", "v=STSv1; id=1;")
            .txt("_mta-sts.two.example", "v=STSv1; id=1;")
            .txt("_mta-sts.two.example", "v=STSv1; id=2;");
        let dns = DnsServer::start(z).await.expect("dns");
        let resolver = MxResolver::new(&DnsConfig {
            resolver: Some(dns.addr()),
            ..DnsConfig::default()
        })
        .expect("resolver");
        let dir = tempfile::tempdir().expect("dir");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.pem()).expect("pem");
        let verifier = crate::tls::verifier(Some(&pem)).expect("verifier");
        let sts = Sts::new(resolver, Some(verifier), server.addr.port());

        let t0 = 1_000_000_000;
        let d = sts.discover("c.example", t0).await;
        assert_eq!(fetched(&d), Some(&Got::Fetched), "{d:?}");
        let d = sts.discover("C.Example.", t0 + 59_999).await;
        assert_eq!(fetched(&d), Some(&Got::Cached), "{d:?}");
        assert_eq!(server.connections(), 1);
        let d = sts.discover("c.example", t0 + 60_000).await;
        assert_eq!(fetched(&d), Some(&Got::Fetched), "expired: {d:?}");
        assert_eq!(server.connections(), 2);

        // The record is withdrawn: the cached policy stays until its max_age runs out.
        dns.update(|z| {
            z.remove("_mta-sts.c.example");
        });
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // resolver cache TTL
        let d = sts.discover("c.example", t0 + 100_000).await;
        assert_eq!(fetched(&d), Some(&Got::Cached), "{d:?}");
        let d = sts.discover("c.example", t0 + 120_000).await;
        assert_eq!(d, Discovery::NoPolicy);
        assert_eq!(server.connections(), 2);

        // A record but no reachable policy host, nothing cached: no policy, saying why.
        let d = sts.discover("down.example", t0).await;
        assert!(
            matches!(&d, Discovery::Failed(why) if why.contains("mta-sts.down.example")),
            "{d:?}"
        );
        // Two STSv1 records: treated as none (RFC 8461 §3.1).
        assert_eq!(sts.discover("two.example", t0).await, Discovery::NoPolicy);
    }
}

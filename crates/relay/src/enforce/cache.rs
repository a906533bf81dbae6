//! What every decision reads, kept in memory and refreshed from the store: the restrictions
//! (active, and today's for the lift rules) and each tenant's policies and accepted domains.
//! A version row in the store tells when to reload, so a restriction or a lift made on any node
//! (or by the CLI) holds here within the poll interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use outguard_policy::{Restriction, Subject};
use outguard_store::Store;
use outguard_types::policy::{EffectivePolicy, Policy, PolicySettings};

use outguard_types::time::now_ms;

/// How long tenant policies and domains are trusted before the version is checked again.
const TENANT_TTL: Duration = Duration::from_secs(2);
const DAY_MS: i64 = 24 * 3600 * 1000;

struct TenantPolicies {
    policies: Vec<Policy>,
    default: PolicySettings,
    domains: Vec<String>,
    version: i64,
    loaded: Instant,
}

/// How long a learned spam overlay is used before it is read from the store again.
const OVERLAY_TTL: Duration = Duration::from_secs(5);

type CachedOverlay = (Option<Arc<outguard_spam::Overlay>>, Instant);

#[derive(Default)]
pub struct PolicyCache {
    restrictions: RwLock<Arc<Vec<Restriction>>>,
    restrictions_version: RwLock<Option<i64>>,
    tenants: RwLock<HashMap<String, Arc<TenantPolicies>>>,
    overlays: RwLock<HashMap<String, CachedOverlay>>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl PolicyCache {
    /// Active restrictions and those created today (lifted ones included: the lift rules need them).
    pub fn restrictions(&self) -> Arc<Vec<Restriction>> {
        read(&self.restrictions)
    }

    /// Add a restriction made on this node at once (the store reload confirms it later).
    pub fn push_restriction(&self, r: Restriction) {
        let mut g = self.restrictions.write().unwrap_or_else(|p| p.into_inner());
        let mut v = (**g).clone();
        v.push(r);
        *g = Arc::new(v);
    }

    /// Reload restrictions when the store's version moved (or on first call). Returns the
    /// subjects that became restricted since the last load — made on another node, or while
    /// this one was down — so their mail queued here can be held too.
    pub async fn refresh_restrictions(
        &self,
        store: &Store,
    ) -> Result<Vec<Subject>, outguard_store::StoreError> {
        let version = store.restrictions_version().await?;
        if read(&self.restrictions_version) == Some(version) {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let before = self.restrictions();
        let since = outguard_policy::restriction::utc_day_start(now).min(now - DAY_MS);
        let keep: Vec<Restriction> = store
            .current_restrictions(since, now)
            .await?
            .into_iter()
            .map(|s| s.restriction)
            .collect();
        let mut newly: Vec<Subject> = Vec::new();
        for r in keep.iter().filter(|r| r.is_active(now)) {
            let known =
                outguard_policy::restriction::active_for(&before, &r.subject, now).is_some();
            if !known && !newly.iter().any(|s| s.same(&r.subject)) {
                newly.push(r.subject.clone());
            }
        }
        *self.restrictions.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keep);
        *self
            .restrictions_version
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(version);
        Ok(newly)
    }

    async fn tenant(&self, store: &Store, tenant: &str) -> Option<Arc<TenantPolicies>> {
        let cached = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned();
        if let Some(t) = &cached
            && t.loaded.elapsed() < TENANT_TTL
        {
            return cached;
        }
        let version = store.policies_version().await.ok()?;
        if let Some(t) = &cached
            && t.version == version
        {
            let fresh = Arc::new(TenantPolicies {
                loaded: Instant::now(),
                ..clone_tp(t)
            });
            self.tenants
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(tenant.to_string(), fresh.clone());
            return Some(fresh);
        }
        let loaded = async {
            let policies = store.list_policies(tenant).await?;
            let default = store.tenant_default(tenant).await?;
            let domains = store
                .list_domains(Some(tenant))
                .await?
                .into_iter()
                // A pending claim makes nobody internal (SPEC §9): only verified domains count.
                .filter(|d| d.status == outguard_types::model::DomainStatus::Verified)
                .map(|d| d.domain)
                .collect();
            Ok::<_, outguard_store::StoreError>(TenantPolicies {
                policies,
                default,
                domains,
                version,
                loaded: Instant::now(),
            })
        }
        .await;
        match loaded {
            Ok(tp) => {
                let tp = Arc::new(tp);
                self.tenants
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tenant.to_string(), tp.clone());
                Some(tp)
            }
            Err(e) => {
                tracing::error!(%tenant, error = %e, "cannot load tenant policies; using the last known");
                cached
            }
        }
    }

    /// The policy in force for `sender` of `tenant` and its name (for the trace).
    pub async fn effective(
        &self,
        store: &Store,
        service: &PolicySettings,
        tenant: &str,
        sender: &str,
    ) -> (String, EffectivePolicy) {
        match self.tenant(store, tenant).await {
            Some(tp) => {
                let (name, eff) = outguard_policy::decide::effective_for(
                    &tp.policies,
                    &tp.default,
                    service,
                    sender,
                );
                (name.to_string(), eff)
            }
            None => (
                "service".into(),
                PolicySettings::default().resolve(&PolicySettings::default(), service),
            ),
        }
    }

    /// The spam overlay operators taught for `tenant` (`outguard spam learn --tenant`, FBL
    /// complaints), else the global one; None when nothing was learned.
    pub async fn spam_overlay(
        &self,
        store: &Store,
        tenant: Option<&str>,
    ) -> Option<Arc<outguard_spam::Overlay>> {
        for key in [
            tenant.map(|t| format!("spam-overlay:{t}")),
            Some("spam-overlay:global".to_string()),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(o) = self.overlay(store, &key).await {
                return Some(o);
            }
        }
        None
    }

    async fn overlay(&self, store: &Store, key: &str) -> Option<Arc<outguard_spam::Overlay>> {
        if let Some((o, at)) = self
            .overlays
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            && at.elapsed() < OVERLAY_TTL
        {
            return o.clone();
        }
        let loaded = match store.get_blob(key).await {
            Ok(Some(b)) => match outguard_spam::Overlay::from_bytes(&b) {
                Ok(o) => Some(Arc::new(o)),
                Err(e) => {
                    tracing::error!(%key, error = %e, "stored spam overlay is unreadable; scanning without it");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(%key, error = %e, "cannot read spam overlay");
                return None;
            }
        };
        self.overlays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), (loaded.clone(), Instant::now()));
        loaded
    }

    pub async fn tenant_domains(&self, store: &Store, tenant: &str) -> Vec<String> {
        self.tenant(store, tenant)
            .await
            .map(|t| t.domains.clone())
            .unwrap_or_default()
    }
}

fn clone_tp(t: &TenantPolicies) -> TenantPolicies {
    TenantPolicies {
        policies: t.policies.clone(),
        default: t.default.clone(),
        domains: t.domains.clone(),
        version: t.version,
        loaded: t.loaded,
    }
}

/// Poll the store for restriction changes until shutdown (every node sees a new restriction
/// or a lift within `every`).
pub async fn refresh_loop(cache: Arc<crate::server::Relay>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cache.shutdown.stopped() => return,
        }
        refresh_now(&cache).await;
    }
}

/// Reload the restrictions now and hold the queued mail of any subject restricted since the last
/// load. The poll loop calls it; so does a lift, so that on the node that lifted the very next
/// command is admitted (SPEC §3) instead of after the next poll.
pub async fn refresh_now(relay: &crate::server::Relay) {
    match relay
        .enforcer
        .cache
        .refresh_restrictions(&relay.store)
        .await
    {
        Ok(newly) => {
            for subject in newly {
                relay.hold_queued(&subject).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot refresh restrictions"),
    }
}

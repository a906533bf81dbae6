//! Connectors: a tenant's own mail servers, admitted by source address (CIDR). A CIDR belongs to
//! one tenant (primary key on its canonical text). The management rules (width, no overlap with
//! another tenant's prefix, who may set `forwarding`) live in `ops::connectors`; within one
//! tenant, overlapping prefixes are allowed and the most specific one wins.
//!
//! A client address matched by connectors of *different* tenants (only possible in a store
//! written before the no-overlap rule) goes to the tenant whose matching connector is oldest:
//! a later, narrower prefix must never take over another tenant's server (SPEC §9).
//!
//! `connector_for_ip` runs once per SMTP connection, so it reads an in-memory snapshot of the
//! table. The snapshot is reloaded after any change made through this handle and, so that a change
//! made on another node is seen too, whenever it is older than [`SNAPSHOT_MAX_AGE`].

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use outguard_types::model::{Connector, Millis};

use crate::Store;
use crate::error::{StoreError, bad_column, unique_as_conflict};

pub(crate) const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(2);

struct Snapshot {
    loaded: Instant,
    connectors: Arc<Vec<Connector>>,
}

pub(crate) struct ConnectorCache {
    snap: RwLock<Option<Snapshot>>,
}

impl ConnectorCache {
    pub(crate) fn new() -> Self {
        ConnectorCache {
            snap: RwLock::new(None),
        }
    }

    fn fresh(&self, now: Instant) -> Option<Arc<Vec<Connector>>> {
        let guard = self.snap.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|s| now.duration_since(s.loaded) < SNAPSHOT_MAX_AGE)
            .map(|s| s.connectors.clone())
    }

    fn set(&self, connectors: Option<Vec<Connector>>, now: Instant) {
        let mut guard = self.snap.write().unwrap_or_else(|p| p.into_inner());
        *guard = connectors.map(|c| Snapshot {
            loaded: now,
            connectors: Arc::new(c),
        });
    }
}

/// The connector admitting `ip` (IPv4-mapped IPv6 counts as IPv4): among the matching prefixes
/// of the tenant whose matching connector is oldest, the most specific.
pub(crate) fn longest_match(connectors: &[Connector], ip: IpAddr) -> Option<&Connector> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let matching = || connectors.iter().filter(|c| c.cidr.contains(&ip));
    let first = matching().min_by_key(|c| (c.created_at, c.cidr.prefix_len()))?;
    matching()
        .filter(|c| c.tenant == first.tenant)
        .max_by_key(|c| c.cidr.prefix_len())
}

type ConnectorTuple = (String, String, Option<i64>, i64, i64);

fn connector_from(row: ConnectorTuple) -> Result<Connector, StoreError> {
    let (cidr, tenant, limit, created_at, forwarding) = row;
    Ok(Connector {
        cidr: cidr
            .parse()
            .map_err(|_| bad_column("connectors.cidr", &cidr))?,
        tenant,
        limit_per_hour: limit
            .map(|l| {
                u32::try_from(l)
                    .map_err(|_| bad_column("connectors.limit_per_hour", &l.to_string()))
            })
            .transpose()?,
        created_at,
        forwarding: forwarding != 0,
    })
}

impl Store {
    /// Admits `cidr` (normalised to its network address) as a connector of `tenant`, without
    /// `forwarding`.
    pub async fn add_connector(
        &self,
        tenant: &str,
        cidr: IpNet,
        limit_per_hour: Option<u32>,
        now: Millis,
    ) -> Result<Connector, StoreError> {
        self.add_connector_with(tenant, cidr, limit_per_hour, false, now)
            .await
    }

    /// [`Store::add_connector`] with the operator's `forwarding` mark.
    pub async fn add_connector_with(
        &self,
        tenant: &str,
        cidr: IpNet,
        limit_per_hour: Option<u32>,
        forwarding: bool,
        now: Millis,
    ) -> Result<Connector, StoreError> {
        let cidr = cidr.trunc();
        self.require_tenant(tenant).await?;
        let text = cidr.to_string();
        sqlx::query(
            "INSERT INTO connectors (cidr, tenant, limit_per_hour, created_at, forwarding) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&text)
        .bind(tenant)
        .bind(limit_per_hour.map(i64::from))
        .bind(now)
        .bind(i64::from(forwarding))
        .execute(self.w())
        .await
        .map_err(|e| unique_as_conflict(e, format!("connector {text} already exists")))?;
        self.inner.connectors.set(None, Instant::now());
        Ok(Connector {
            cidr,
            tenant: tenant.to_string(),
            limit_per_hour,
            created_at: now,
            forwarding,
        })
    }

    pub async fn list_connectors(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<Connector>, StoreError> {
        let rows: Vec<ConnectorTuple> =
            match tenant {
                Some(t) => sqlx::query_as(
                    "SELECT cidr, tenant, limit_per_hour, created_at, forwarding FROM connectors \
                     WHERE tenant = $1 ORDER BY cidr",
                )
                .bind(t)
                .fetch_all(self.r())
                .await?,
                None => sqlx::query_as(
                    "SELECT cidr, tenant, limit_per_hour, created_at, forwarding FROM connectors \
                     ORDER BY tenant, cidr",
                )
                .fetch_all(self.r())
                .await?,
            };
        rows.into_iter().map(connector_from).collect()
    }

    pub async fn remove_connector(&self, cidr: IpNet) -> Result<(), StoreError> {
        let text = cidr.trunc().to_string();
        let done = sqlx::query("DELETE FROM connectors WHERE cidr = $1")
            .bind(&text)
            .execute(self.w())
            .await?;
        self.inner.connectors.set(None, Instant::now());
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("connector {text}")));
        }
        Ok(())
    }

    /// The connector admitting a client from `ip`: the most specific matching prefix.
    pub async fn connector_for_ip(&self, ip: IpAddr) -> Result<Option<Connector>, StoreError> {
        let now = Instant::now();
        let all = match self.inner.connectors.fresh(now) {
            Some(all) => all,
            None => {
                let list = self.list_connectors(None).await?;
                self.inner.connectors.set(Some(list.clone()), now);
                Arc::new(list)
            }
        };
        Ok(longest_match(&all, ip).cloned())
    }
}

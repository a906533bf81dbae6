//! The records store: tenants, accepted domains, accounts, connectors, API tokens, the message
//! trace, blobs, the audit log, outbound spam policies, restrictions, alerts and web UI sessions, on SQLite
//! (embedded default) or PostgreSQL (cluster mode) with one SQL text and one test suite for both (STYLE rule 7). Also home of the message spool
//! ([`spool`]), which is local to each node whatever the records backend.
//!
//! [`Store`] is a cheap `Clone` handle around the connection pools; every method takes the time
//! (`now`, Unix ms) from the caller where a record is stamped. Errors are [`StoreError`] values:
//! callers branch on the variant, never on the text. Password hashes never leave this crate.

pub mod files;
pub mod memory_counters;
pub mod memory_signals;
pub mod redis_counters;
pub mod spool;
pub mod trace;

mod accounts;
mod alerts;
mod audit;
mod blobs;
mod bulk_streams;
mod connectors;
mod credcache;
mod db;
mod dnsbl;
mod domains;
mod error;
mod fbl;
mod messages;
mod names;
mod policies;
mod restrictions;
mod retention;
mod suppressions;
mod tenants;
mod tokens;
mod traffic;
mod ui_sessions;
mod webhooks;

use std::sync::Arc;

use sqlx::AnyPool;

pub use accounts::generate_password;
pub use alerts::{MAX_ALERTS_LIMIT, StoredAlert};
pub use audit::AuditEntry;
pub use bulk_streams::{BulkObservation, BulkStream};
pub use db::Backend;
pub use dnsbl::{DnsblCheck, DnsblListing, DnsblTrack, MAX_DNSBL_HISTORY};
pub use domains::normalize_domain;
pub use error::StoreError;
pub use fbl::{FblAttribution, FblRecord, MAX_FBL_LIMIT};
pub use messages::TraceWrite;
pub use messages::{DEFAULT_SEARCH_LIMIT, HourlyVolume, MAX_SEARCH_LIMIT, SenderVolume};
pub use policies::DEFAULT_POLICY;
pub use restrictions::StoredRestriction;
pub use retention::RetentionKind;
pub use suppressions::{MAX_SUPPRESSIONS_LIMIT, Suppression, normalize_recipient};
pub use tokens::TOKEN_PREFIX;
pub use traffic::{PolicyRefusal, TrafficMessage};
pub use ui_sessions::UiSession;
pub use webhooks::StoredWebhook;

/// Handle to the records database. Clone it freely: clones share pools and caches.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pools: db::Pools,
    creds: credcache::CredCache,
    connectors: connectors::ConnectorCache,
    domains: domains::DomainCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.pools.backend)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database named by `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`; `?mode=rwc` implied): the parent directory is created.
    /// - `postgres://user@host:port/db[?schema=NAME]`: `schema` selects (and creates) a schema.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let pools = db::connect(url).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                pools,
                creds: credcache::CredCache::new(),
                connectors: connectors::ConnectorCache::new(),
                domains: domains::DomainCache::new(),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.pools.backend
    }

    /// One round trip to the database (health checks; cluster nodes defer submissions when the
    /// store is away).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.w()).await?;
        Ok(())
    }

    /// Closes the pools (waits for checked-out connections to come back).
    pub async fn close(&self) {
        self.inner.pools.write.close().await;
        self.inner.pools.read.close().await;
    }

    pub(crate) fn r(&self) -> &AnyPool {
        &self.inner.pools.read
    }

    pub(crate) fn w(&self) -> &AnyPool {
        &self.inner.pools.write
    }
}

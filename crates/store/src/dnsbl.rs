//! DNSBL monitor records (SPEC §4): the history of every check of one pool IP on one zone, and
//! the latest answer per (IP, zone) that `outguard dnsbl check`, the API and the UI show.
//! `status` is one of `listed`, `clean`, `error` (the zone answered one of its error codes) or
//! `unknown` (SERVFAIL, timeout); the monitor decides, the store only keeps.
//!
//! Also the monitor's own state per IP ([`DnsblTrack`]: listed, by which zones, clean streak,
//! drained), saved after every round and loaded at start, so a restart neither returns a listed
//! IP to rotation nor raises a second `ip_listed` for a listing it already reported.

use std::collections::BTreeMap;

use outguard_types::model::Millis;
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// Upper bound of one history page.
pub const MAX_DNSBL_HISTORY: u32 = 10_000;

/// One check of one IP on one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsblCheck {
    pub ip: String,
    pub zone: String,
    pub checked_at: Millis,
    pub status: String,
    /// The A answer (e.g. `127.0.0.2`) when there was one.
    pub code: Option<String>,
    /// The zone's TXT reason for a listing, or what went wrong for `error` / `unknown`.
    pub reason: Option<String>,
}

/// One zone's listing of an IP as the monitor saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsblListing {
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// The monitor's state of one pool IP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsblTrack {
    pub ip: String,
    /// Considered listed (drained if it is a regular IP and not the last healthy one).
    pub listed: bool,
    /// Zones whose latest informative answer was a listing.
    pub zones: BTreeMap<String, DnsblListing>,
    /// Clean rounds in a row while listed.
    pub clean_streak: u32,
    /// Taken out of rotation by the monitor.
    pub drained: bool,
    pub updated_at: Millis,
}

type TrackRow = (String, i64, i64, i64, String, i64);

fn track_from_row(
    (ip, listed, clean_streak, drained, zones, updated_at): TrackRow,
) -> Result<DnsblTrack, StoreError> {
    let zones =
        serde_json::from_str(&zones).map_err(|_| bad_column("dnsbl_tracks.zones", &zones))?;
    Ok(DnsblTrack {
        ip,
        listed: listed != 0,
        zones,
        clean_streak: u32::try_from(clean_streak).unwrap_or(0),
        drained: drained != 0,
        updated_at,
    })
}

type Row = (String, String, i64, String, Option<String>, Option<String>);

fn from_row((ip, zone, checked_at, status, code, reason): Row) -> DnsblCheck {
    DnsblCheck {
        ip,
        zone,
        checked_at,
        status,
        code,
        reason,
    }
}

impl Store {
    /// Appends `check` to the history and makes it the latest answer for its IP and zone.
    pub async fn record_dnsbl_check(&self, check: &DnsblCheck) -> Result<(), StoreError> {
        let mut tx = self.w().begin().await?;
        for table in ["dnsbl_checks", "dnsbl_state"] {
            let upsert = if table == "dnsbl_state" {
                " ON CONFLICT (ip, zone) DO UPDATE SET checked_at = excluded.checked_at, \
                 status = excluded.status, code = excluded.code, reason = excluded.reason"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO {table} (ip, zone, checked_at, status, code, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6){upsert}"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&check.ip)
                .bind(&check.zone)
                .bind(check.checked_at)
                .bind(&check.status)
                .bind(check.code.as_deref())
                .bind(check.reason.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Saves the monitor's state of one IP (replacing the previous one).
    pub async fn save_dnsbl_track(&self, t: &DnsblTrack) -> Result<(), StoreError> {
        let zones = serde_json::to_string(&t.zones)
            .map_err(|e| StoreError::invalid(format!("cannot encode DNSBL zones: {e}")))?;
        sqlx::query(
            "INSERT INTO dnsbl_tracks (ip, listed, clean_streak, drained, zones, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ip) DO UPDATE SET \
             listed = excluded.listed, clean_streak = excluded.clean_streak, \
             drained = excluded.drained, zones = excluded.zones, updated_at = excluded.updated_at",
        )
        .bind(&t.ip)
        .bind(i64::from(t.listed))
        .bind(i64::from(t.clean_streak))
        .bind(i64::from(t.drained))
        .bind(zones)
        .bind(t.updated_at)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// The monitor's saved state of every IP, by IP.
    pub async fn dnsbl_tracks(&self) -> Result<Vec<DnsblTrack>, StoreError> {
        let rows: Vec<TrackRow> = sqlx::query_as(
            "SELECT ip, listed, clean_streak, drained, zones, updated_at FROM dnsbl_tracks ORDER BY ip",
        )
        .fetch_all(self.r())
        .await?;
        rows.into_iter().map(track_from_row).collect()
    }

    /// The latest answer of every (IP, zone) ever checked, by IP then zone.
    pub async fn dnsbl_state(&self) -> Result<Vec<DnsblCheck>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT ip, zone, checked_at, status, code, reason FROM dnsbl_state ORDER BY ip, zone",
        )
        .fetch_all(self.r())
        .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Checks newest first, of one IP (`None`: all), at most `limit` (1–10,000).
    pub async fn dnsbl_history(
        &self,
        ip: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DnsblCheck>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_DNSBL_HISTORY));
        let cols = "SELECT ip, zone, checked_at, status, code, reason FROM dnsbl_checks";
        let rows: Vec<Row> = match ip {
            Some(ip) => {
                let sql = format!("{cols} WHERE ip = $1 ORDER BY checked_at DESC LIMIT $2");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(ip)
                    .bind(limit)
                    .fetch_all(self.r())
                    .await?
            }
            None => {
                let sql = format!("{cols} ORDER BY checked_at DESC LIMIT $1");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(limit)
                    .fetch_all(self.r())
                    .await?
            }
        };
        Ok(rows.into_iter().map(from_row).collect())
    }
}

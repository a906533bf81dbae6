//! Accounts (SMTP AUTH users), their argon2id password hashes and send-as grants.
//!
//! - An account's address must lie in an accepted domain of its tenant (`Invalid` otherwise), and
//!   a send-as target (`user@dom` or `@dom`) likewise: one tenant can never send as another's.
//! - `add_account` with no password creates an account that cannot AUTH until `set_password`
//!   (the CLI generates and prints a random one instead).
//! - `verify_password` runs argon2 on the blocking pool, answers the same way (and in about the
//!   same time) for unknown accounts and wrong passwords, and uses [`crate::credcache`] so a
//!   repeated AUTH costs microseconds.

use std::collections::HashMap;
use std::time::Instant;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use outguard_types::model::{Account, Millis};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;

use crate::error::{StoreError, unique_as_conflict};
use crate::{Store, names};

/// Stored for accounts created without a password: not a PHC string, so nothing verifies.
const NO_PASSWORD: &str = "!";
/// A real argon2id hash (default parameters) of a random string, verified against when the
/// account does not exist, so "no such user" takes as long as "wrong password".
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$e0xIPGhBJ5qt7YRiLjr8CQ$tePq8o8yRQi7fp+/DE1bpVzsEGXaJXtmVb3mYQ5JGGU";
const MAX_PASSWORD: usize = 1024;

/// A fresh random password for accounts created without one (24 base64url characters, 144 bits).
pub fn generate_password() -> String {
    use base64::Engine;
    use rand::Rng;
    let mut raw = [0u8; 18];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn blocking_failed(_: tokio::task::JoinError) -> StoreError {
    StoreError::Backend(sqlx::Error::WorkerCrashed)
}

async fn hash_password(password: &str) -> Result<String, StoreError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(StoreError::invalid("password must be 1-1024 bytes"));
    }
    let pw = password.to_string();
    let hashed =
        tokio::task::spawn_blocking(move || Argon2::default().hash_password(pw.as_bytes()))
            .await
            .map_err(blocking_failed)?;
    hashed
        .map(|h| h.to_string())
        .map_err(|e| StoreError::invalid(format!("cannot hash password: {e}")))
}

/// Constant-time-compare argon2 verification on the blocking pool.
async fn check_password(password: &str, hash: &str) -> Result<bool, StoreError> {
    let (pw, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || {
        let target = if hash == NO_PASSWORD {
            DUMMY_HASH
        } else {
            hash.as_str()
        };
        let ok = Argon2::default()
            .verify_password(pw.as_bytes(), target)
            .is_ok();
        ok && hash != NO_PASSWORD
    })
    .await
    .map_err(blocking_failed)
}

fn account_row(row: &AnyRow, send_as: Vec<String>) -> Result<Account, StoreError> {
    Ok(Account {
        address: row.try_get("address")?,
        tenant: row.try_get("tenant")?,
        created_at: row.try_get("created_at")?,
        send_as,
    })
}

impl Store {
    /// Creates an account in `tenant`. `address` must be in one of the tenant's accepted domains.
    pub async fn add_account(
        &self,
        tenant: &str,
        address: &str,
        password: Option<&str>,
        now: Millis,
    ) -> Result<Account, StoreError> {
        let (address, domain) = names::address(address)?;
        self.require_tenant(tenant).await?;
        self.require_own_domain(tenant, &domain).await?;
        let hash = match password {
            Some(pw) => hash_password(pw).await?,
            None => NO_PASSWORD.to_string(),
        };
        sqlx::query(
            "INSERT INTO accounts (address, tenant, domain, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&address)
        .bind(tenant)
        .bind(&domain)
        .bind(&hash)
        .bind(now)
        .execute(self.w())
        .await
        .map_err(|e| unique_as_conflict(e, format!("account {address} already exists")))?;
        Ok(Account {
            address,
            tenant: tenant.to_string(),
            created_at: now,
            send_as: Vec::new(),
        })
    }

    /// `Invalid` unless `domain` is an accepted domain of `tenant`.
    async fn require_own_domain(&self, tenant: &str, domain: &str) -> Result<(), StoreError> {
        match self.tenant_of_domain(domain).await? {
            Some(owner) if owner == tenant => Ok(()),
            _ => Err(StoreError::invalid(format!(
                "{domain} is not an accepted domain of tenant {tenant}"
            ))),
        }
    }

    pub async fn account(&self, address: &str) -> Result<Option<Account>, StoreError> {
        let address = address.trim().to_lowercase();
        let row =
            sqlx::query("SELECT address, tenant, created_at FROM accounts WHERE address = $1")
                .bind(&address)
                .fetch_optional(self.r())
                .await?;
        let Some(row) = row else { return Ok(None) };
        let send_as = self.send_as_of(&address).await?;
        account_row(&row, send_as).map(Some)
    }

    async fn send_as_of(&self, address: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT target FROM send_as WHERE address = $1 ORDER BY target")
                .bind(address)
                .fetch_all(self.r())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn list_accounts(&self, tenant: Option<&str>) -> Result<Vec<Account>, StoreError> {
        let (accounts, grants) = match tenant {
            Some(t) => (
                sqlx::query(
                    "SELECT address, tenant, created_at FROM accounts WHERE tenant = $1 ORDER BY address",
                )
                .bind(t)
                .fetch_all(self.r())
                .await?,
                sqlx::query_as::<_, (String, String)>(
                    "SELECT s.address, s.target FROM send_as s JOIN accounts a ON a.address = s.address \
                     WHERE a.tenant = $1 ORDER BY s.target",
                )
                .bind(t)
                .fetch_all(self.r())
                .await?,
            ),
            None => (
                sqlx::query("SELECT address, tenant, created_at FROM accounts ORDER BY tenant, address")
                    .fetch_all(self.r())
                    .await?,
                sqlx::query_as::<_, (String, String)>(
                    "SELECT address, target FROM send_as ORDER BY target",
                )
                .fetch_all(self.r())
                .await?,
            ),
        };
        let mut by_addr: HashMap<String, Vec<String>> = HashMap::new();
        for (addr, target) in grants {
            by_addr.entry(addr).or_default().push(target);
        }
        accounts
            .iter()
            .map(|row| {
                let addr: String = row.try_get("address")?;
                account_row(row, by_addr.remove(&addr).unwrap_or_default())
            })
            .collect()
    }

    pub async fn remove_account(&self, address: &str) -> Result<(), StoreError> {
        let address = address.trim().to_lowercase();
        let mut tx = self.w().begin().await?;
        sqlx::query("DELETE FROM send_as WHERE address = $1")
            .bind(&address)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM accounts WHERE address = $1")
            .bind(&address)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("account {address}")));
        }
        tx.commit().await?;
        self.inner.creds.forget(&address);
        Ok(())
    }

    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), StoreError> {
        let address = address.trim().to_lowercase();
        let hash = hash_password(password).await?;
        let done = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE address = $2")
            .bind(&hash)
            .bind(&address)
            .execute(self.w())
            .await?;
        self.inner.creds.forget(&address);
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("account {address}")));
        }
        Ok(())
    }

    /// The account when `password` is right; `None` for a wrong password or unknown account.
    pub async fn verify_password(
        &self,
        address: &str,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let Ok((address, _)) = names::address(address) else {
            return Ok(None);
        };
        if password.len() > MAX_PASSWORD {
            return Ok(None);
        }
        // One round trip: the account, its hash and its send-as grants (one row per grant).
        let rows = sqlx::query(
            "SELECT a.address, a.tenant, a.created_at, a.password_hash, s.target \
             FROM accounts a LEFT JOIN send_as s ON s.address = a.address \
             WHERE a.address = $1 ORDER BY s.target",
        )
        .bind(&address)
        .fetch_all(self.r())
        .await?;
        let stored: Option<String> = rows
            .first()
            .map(|r| r.try_get("password_hash"))
            .transpose()?;
        let tag = self.inner.creds.tag(&address, password);
        let cached = self.inner.creds.get(&tag, Instant::now());
        let hit = matches!((&cached, &stored), (Some(c), Some(s)) if bool::from(c.as_bytes().ct_eq(s.as_bytes())));
        if !hit {
            let ok = check_password(password, stored.as_deref().unwrap_or(DUMMY_HASH)).await?;
            if !ok {
                return Ok(None);
            }
        }
        let (Some(row), Some(hash)) = (rows.first(), stored) else {
            return Ok(None);
        };
        if !hit {
            self.inner.creds.put(tag, &address, &hash, Instant::now());
        }
        let send_as = rows
            .iter()
            .filter_map(|r| r.try_get::<Option<String>, _>("target").transpose())
            .collect::<Result<Vec<String>, _>>()?;
        account_row(row, send_as).map(Some)
    }

    /// Lets `address` send as `target` (`user@dom` or `@dom`, in the same tenant's domains).
    pub async fn send_as_add(&self, address: &str, target: &str) -> Result<(), StoreError> {
        let address = address.trim().to_lowercase();
        let (target, domain) = names::send_as_target(target)?;
        let account = self
            .account(&address)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("account {address}")))?;
        self.require_own_domain(&account.tenant, &domain).await?;
        sqlx::query(
            "INSERT INTO send_as (address, target) VALUES ($1, $2) ON CONFLICT (address, target) DO NOTHING",
        )
        .bind(&address)
        .bind(&target)
        .execute(self.w())
        .await?;
        Ok(())
    }

    pub async fn send_as_remove(&self, address: &str, target: &str) -> Result<(), StoreError> {
        let address = address.trim().to_lowercase();
        let (target, _) = names::send_as_target(target)?;
        let done = sqlx::query("DELETE FROM send_as WHERE address = $1 AND target = $2")
            .bind(&address)
            .bind(&target)
            .execute(self.w())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!(
                "send-as {target} for {address}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_is_a_real_argon2id_hash() {
        // Parses and verifies (to "wrong password"), so unknown accounts cost a full argon2 run.
        let e = Argon2::default()
            .verify_password(b"x", DUMMY_HASH)
            .unwrap_err();
        assert_eq!(e, argon2::password_hash::Error::PasswordInvalid);
        assert!(
            Argon2::default()
                .verify_password(b"x", NO_PASSWORD)
                .is_err()
        );
    }
}

//! Web UI sessions (SPEC §5): a login exchanges an API token for a random session id that the
//! browser keeps in a cookie. Kept here rather than in memory so a server restart (or another
//! cluster node) does not log anyone out.
//!
//! - Only the SHA-256 of the session id is stored (like API tokens: a high-entropy secret needs
//!   no slow hash, and the lookup by digest does not leak it through timing).
//! - A session names its token by id and [`Store::ui_session`] joins `api_tokens` on every
//!   lookup, so the role and tenant are always the token's current ones and a revoked token's
//!   sessions stop working at once (the foreign key also deletes them).
//! - Expiry is enforced by the lookup itself (`expires_at > now`); expired rows are swept by
//!   [`Store::prune_ui_sessions`].

use outguard_types::model::{Millis, Role, TokenInfo};
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::{StoreError, bad_column};

/// A live UI session as the UI needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// The API token behind the session (its current role and tenant).
    pub token: TokenInfo,
    /// The session's CSRF token, which every form posts back.
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub last_seen: Millis,
}

fn digest(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

type Row = (String, String, Option<String>, i64, String, i64, i64, i64);

impl Store {
    /// Records a new session `id` (the cookie value, never stored as such) for token `token_id`.
    pub async fn create_ui_session(
        &self,
        id: &str,
        token_id: &str,
        csrf: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ui_sessions (id_sha, token_id, csrf, created_at, expires_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(digest(id))
        .bind(token_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// The live session `id` at `now`: `None` when unknown, expired, or its token was revoked.
    pub async fn ui_session(&self, id: &str, now: Millis) -> Result<Option<UiSession>, StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT t.id, t.role, t.tenant, t.created_at, s.csrf, s.created_at, s.expires_at, s.last_seen \
             FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id \
             WHERE s.id_sha = $1 AND s.expires_at > $2",
        )
        .bind(digest(id))
        .bind(now)
        .fetch_optional(self.r())
        .await?;
        let Some((tid, role, tenant, token_created, csrf, created_at, expires_at, last_seen)) = row
        else {
            return Ok(None);
        };
        let role = Role::parse(&role).ok_or_else(|| bad_column("api_tokens.role", &role))?;
        Ok(Some(UiSession {
            token: TokenInfo {
                id: tid,
                role,
                tenant,
                created_at: token_created,
            },
            csrf,
            created_at,
            expires_at,
            last_seen,
        }))
    }

    /// Records that session `id` was used at `now`.
    pub async fn touch_ui_session(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE ui_sessions SET last_seen = $1 WHERE id_sha = $2")
            .bind(now)
            .bind(digest(id))
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// Ends session `id` (logout); unknown ids are fine.
    pub async fn delete_ui_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ui_sessions WHERE id_sha = $1")
            .bind(digest(id))
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// Deletes sessions expired at `now`; returns how many.
    pub async fn prune_ui_sessions(&self, now: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.w())
            .await?;
        Ok(done.rows_affected())
    }
}

//! Admin API bearer tokens. A token is `og_` + base64url(32 random bytes); only its SHA-256 is
//! stored and lookups go by that digest (a high-entropy secret needs no slow hash, and the
//! database lookup by digest does not leak the secret through timing). `operator` tokens have no
//! tenant; `tenant_admin` / `tenant_reader` tokens name an existing tenant.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use outguard_types::model::{Millis, Role, TokenInfo};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::Store;
use crate::error::{StoreError, bad_column};

pub const TOKEN_PREFIX: &str = "og_";

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

type TokenTuple = (String, String, Option<String>, i64);

fn token_from((id, role, tenant, created_at): TokenTuple) -> Result<TokenInfo, StoreError> {
    let role = Role::parse(&role).ok_or_else(|| bad_column("api_tokens.role", &role))?;
    Ok(TokenInfo {
        id,
        role,
        tenant,
        created_at,
    })
}

impl Store {
    /// Makes a token; returns its description and the secret, which is never retrievable again.
    pub async fn create_token(
        &self,
        role: Role,
        tenant: Option<&str>,
        now: Millis,
    ) -> Result<(TokenInfo, String), StoreError> {
        match (role, tenant) {
            (Role::Operator, Some(_)) => {
                return Err(StoreError::invalid(
                    "an operator token is not bound to a tenant",
                ));
            }
            (Role::TenantAdmin | Role::TenantReader, None) => {
                return Err(StoreError::invalid(format!(
                    "a {} token needs a tenant",
                    role.as_str()
                )));
            }
            (_, Some(t)) => self.require_tenant(t).await?,
            (Role::Operator, None) => {}
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let id = uuid::Uuid::now_v7().simple().to_string();
        sqlx::query(
            "INSERT INTO api_tokens (id, secret_sha, role, tenant, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(digest(&secret))
        .bind(role.as_str())
        .bind(tenant)
        .bind(now)
        .execute(self.w())
        .await?;
        let info = TokenInfo {
            id,
            role,
            tenant: tenant.map(str::to_string),
            created_at: now,
        };
        Ok((info, secret))
    }

    /// What `secret` stands for, or `None` (unknown, revoked, or not a token at all).
    pub async fn token_by_secret(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let row: Option<TokenTuple> = sqlx::query_as(
            "SELECT id, role, tenant, created_at FROM api_tokens WHERE secret_sha = $1",
        )
        .bind(digest(secret))
        .fetch_optional(self.r())
        .await?;
        row.map(token_from).transpose()
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(self.w())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format!("token {id}")));
        }
        Ok(())
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<TokenTuple> = sqlx::query_as(
            "SELECT id, role, tenant, created_at FROM api_tokens ORDER BY created_at, id",
        )
        .fetch_all(self.r())
        .await?;
        rows.into_iter().map(token_from).collect()
    }

    /// True once any operator token exists (the server mints and prints one on first start).
    pub async fn has_any_operator_token(&self) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE role = $1")
            .bind(Role::Operator.as_str())
            .fetch_one(self.r())
            .await?;
        Ok(n > 0)
    }
}

//! Named binary values shared by every node (e.g. the spam model's learned overlay).
//! Last write wins.

use crate::Store;
use crate::error::StoreError;

impl Store {
    pub async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM blobs WHERE key = $1")
            .bind(key)
            .fetch_optional(self.r())
            .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn put_blob(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blobs (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value.to_vec())
        .execute(self.w())
        .await?;
        Ok(())
    }
}

//! The one error type of the records store. Callers map the variants, never the text:
//! `NotFound` → HTTP 404 / exit 1, `Conflict` → 409, `Invalid` → 400 / exit 64, `Backend` → 500.

use sqlx::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist (e.g. `tenant acme`, `account a@b.example`).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The change collides with existing records (duplicate, owned by another tenant, still in use).
    #[error("{what}")]
    Conflict { what: String },
    /// The input is malformed or breaks a rule (bad domain, address outside the tenant's domains).
    #[error("{what}")]
    Invalid { what: String },
    /// The database failed (unreachable, I/O, migration).
    #[error("store backend: {0}")]
    Backend(#[from] sqlx::Error),
    /// The database was migrated by a newer Outguard: it has migration `applied`, which this
    /// binary does not have (it knows migrations 1 to `known`). Migrations are forward-only and
    /// this binary changes nothing then (README "Upgrade and rollback").
    #[error(
        "the database schema is newer than this binary: migration {applied} is applied, this \
         binary knows migrations 1 to {known}; run the newer version, or restore the backup taken \
         before the upgrade"
    )]
    SchemaNewer { applied: i64, known: usize },
}

impl StoreError {
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        StoreError::Invalid { what: what.into() }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(sqlx::Error::Migrate(Box::new(e)))
    }
}

impl StoreError {
    /// A failed migration run; a database a newer binary migrated is named as such.
    pub(crate) fn migration(e: sqlx::migrate::MigrateError, known: usize) -> Self {
        match e {
            sqlx::migrate::MigrateError::VersionMissing(applied) => {
                StoreError::SchemaNewer { applied, known }
            }
            e => e.into(),
        }
    }
}

/// Turns a unique-key violation into `Conflict { what }` (a concurrent insert lost the race after
/// our existence check), anything else into `Backend`.
pub(crate) fn unique_as_conflict(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            StoreError::conflict(what)
        }
        _ => StoreError::Backend(e),
    }
}

/// A column held a value this version does not understand (a corrupt or newer database).
pub(crate) fn bad_column(column: &str, value: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(
        format!("unexpected value {value:?} in column {column}").into(),
    ))
}

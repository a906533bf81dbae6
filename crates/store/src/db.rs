//! Opening the records database: URL parsing, connection setup per backend, and migrations.
//!
//! One SQL text runs on both backends through `sqlx::AnyPool` (`$N` placeholders, runtime
//! queries, i64/f64/String/`Vec<u8>` columns only); the DDL differs, so each backend has its
//! own migration directory (`migrations/sqlite`, `migrations/postgres`) compiled into the binary.
//!
//! SQLite: WAL, `busy_timeout`, `synchronous=NORMAL`, foreign keys on. Writes go through a
//! one-connection pool so writers queue in-process (fair, no `SQLITE_BUSY` upgrade failures)
//! while reads use a separate pool of readers that WAL lets run beside the writer.
//! PostgreSQL: one pool for both; an optional `schema=NAME` URL parameter (stripped before
//! connecting) selects and creates a schema, so each test or deployment can have its own.
//! Migrations run at open under `pg_advisory_lock`, so two nodes starting together are safe.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr};

use crate::error::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pools behind a [`crate::Store`]: `write` for statements that change data, `read` for
/// the rest. On PostgreSQL they are the same pool.
pub(crate) struct Pools {
    pub read: AnyPool,
    pub write: AnyPool,
    pub backend: Backend,
}

const SQLITE_READERS: u32 = 4;
const PG_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn connect(url: &str) -> Result<Pools, StoreError> {
    sqlx::any::install_default_drivers();
    if url.starts_with("sqlite:") {
        connect_sqlite(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        connect_postgres(url).await
    } else {
        Err(StoreError::invalid(format!(
            "store URL must start with sqlite: or postgres:// (got {url:?})"
        )))
    }
}

/// `sqlite://PATH?…`, `sqlite:PATH` or `sqlite::memory:`; `mode=rwc` is added when no mode is set.
fn sqlite_path(url: &str) -> (&str, &str) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split_once('?').unwrap_or((rest, ""))
}

async fn connect_sqlite(url: &str) -> Result<Pools, StoreError> {
    let (path, query) = sqlite_path(url);
    let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    let url = if memory {
        url.to_string()
    } else {
        file_url(path, query)?
    };
    let parent = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty());
    if let (false, Some(parent)) = (memory, parent) {
        crate::files::create_private_dir_all(parent)
            .map_err(|e| StoreError::invalid(format!("cannot create {}: {e}", parent.display())))?;
    }
    if !memory {
        // Only where SQLite itself would create the file (`mode=rwc`, the default).
        let creates = !query.contains("mode=") || query.contains("mode=rwc");
        private_database_file(path, creates)?;
    }
    let opts = || {
        AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
    };
    // Every connection to `:memory:` is its own empty database: keep exactly one, forever.
    let write = opts()
        .max_connections(1)
        .min_connections(if memory { 1 } else { 0 })
        .idle_timeout(if memory {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if memory {
            None
        } else {
            Some(Duration::from_secs(3600))
        })
        .connect(&url)
        .await?;
    // sqlx takes no lock for SQLite migrations: serialise processes (a CLI command run while
    // the server starts) on a lock file beside the database.
    let _lock = if memory {
        None
    } else {
        Some(lock_file(&format!("{path}.migrate-lock")).await?)
    };
    run_migrations(&write, Backend::Sqlite).await?;
    let read = if memory {
        write.clone()
    } else {
        opts().max_connections(SQLITE_READERS).connect(&url).await?
    };
    Ok(Pools {
        read,
        write,
        backend: Backend::Sqlite,
    })
}

/// A canonical `sqlite:///ABSOLUTE/PATH?…mode=rwc` URL. The Any driver round-trips the URL through
/// a URL parser, which would take the first segment of `sqlite://rel/x.db` for a host name and
/// lowercase it, so relative paths are made absolute first.
fn file_url(path: &str, query: &str) -> Result<String, StoreError> {
    let abs = std::path::absolute(path)
        .map_err(|e| StoreError::invalid(format!("store path {path:?}: {e}")))?;
    let mut encoded = String::new();
    for c in abs.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => encoded.push_str(&format!("%{:02X}", c as u32)),
            c => encoded.push(c),
        }
    }
    let mode = if query.contains("mode=") {
        ""
    } else if query.is_empty() {
        "mode=rwc"
    } else {
        "&mode=rwc"
    };
    Ok(format!("sqlite://{encoded}?{query}{mode}"))
}

/// Removes `schema=NAME` from the URL's query and returns it (validated as a plain identifier).
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) => schema = Some(name.to_string()),
            None => kept.push(pair),
        }
    }
    if let Some(name) = &schema {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(StoreError::invalid(format!(
                "schema {name:?}: use lowercase letters, digits and _"
            )));
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

async fn connect_postgres(url: &str) -> Result<Pools, StoreError> {
    let (url, schema) = split_schema(url)?;
    let mut opts = AnyPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT);
    if let Some(schema) = schema.clone() {
        opts = opts.after_connect(move |conn, _meta| {
            let set = format!("SET search_path TO \"{schema}\"");
            Box::pin(async move {
                conn.execute(AssertSqlSafe(set)).await?;
                Ok(())
            })
        });
    }
    let pool = opts.connect(&url).await?;
    migrate_postgres(&pool, schema.as_deref()).await?;
    Ok(Pools {
        read: pool.clone(),
        write: pool,
        backend: Backend::Postgres,
    })
}

/// Lock key for the migration advisory lock: stable per schema ("outguard" + schema name).
fn advisory_key(schema: Option<&str>) -> i64 {
    // FNV-1a, so the key is the same on every node and every build.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "outguard-migrate:"
        .bytes()
        .chain(schema.unwrap_or("").bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

async fn migrate_postgres(pool: &AnyPool, schema: Option<&str>) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let key = advisory_key(schema);
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    let result = async {
        if let Some(schema) = schema {
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            conn.execute(AssertSqlSafe(create)).await?;
        }
        let migrator = migrator(Backend::Postgres);
        let known = migrator.iter().count();
        migrator
            .run(&mut *conn)
            .await
            .map_err(|e| StoreError::migration(e, known))?;
        Ok::<(), StoreError>(())
    }
    .await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    result?;
    unlock?;
    Ok(())
}

/// The database file exists `0600` before SQLite opens it — SQLite gives its `-wal` and
/// `-shm` the database file's mode — and an older, wider one is tightened (SPEC §9 "Files").
fn private_database_file(path: &str, create: bool) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::invalid(format!("cannot create {path}: {e}"));
    if create {
        crate::files::private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
    }
    for p in [
        path.to_string(),
        format!("{path}-wal"),
        format!("{path}-shm"),
    ] {
        crate::files::tighten(Path::new(&p)).map_err(io)?;
    }
    Ok(())
}

/// Opens `path` and takes an exclusive lock on it (released when the file is dropped).
async fn lock_file(path: &str) -> Result<std::fs::File, StoreError> {
    let path = path.to_string();
    let locked = tokio::task::spawn_blocking(move || {
        let f = crate::files::private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        f.lock()?;
        Ok::<_, std::io::Error>(f)
    })
    .await
    .map_err(|_| StoreError::Backend(sqlx::Error::WorkerCrashed))?;
    locked.map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))
}

async fn run_migrations(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let migrator = migrator(backend);
    let known = migrator.iter().count();
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::migration(e, known))?;
    Ok(())
}

/// The migrations, in order. A shipped migration is never edited: a change is a new file.
fn migrator(backend: Backend) -> Migrator {
    let files: [(&str, &str); 11] = match backend {
        Backend::Sqlite => [
            (
                "records",
                include_str!("../migrations/sqlite/0001_records.sql"),
            ),
            (
                "ui_sessions",
                include_str!("../migrations/sqlite/0002_ui_sessions.sql"),
            ),
            (
                "dnsbl_state",
                include_str!("../migrations/sqlite/0003_dnsbl_state.sql"),
            ),
            (
                "webhooks",
                include_str!("../migrations/sqlite/0004_webhooks.sql"),
            ),
            (
                "fbl_trust",
                include_str!("../migrations/sqlite/0005_fbl_trust.sql"),
            ),
            (
                "domain_verification",
                include_str!("../migrations/sqlite/0006_domain_verification.sql"),
            ),
            (
                "retention",
                include_str!("../migrations/sqlite/0007_retention.sql"),
            ),
            (
                "dnsbl_retention",
                include_str!("../migrations/sqlite/0008_dnsbl_retention.sql"),
            ),
            (
                "suppressions",
                include_str!("../migrations/sqlite/0009_suppressions.sql"),
            ),
            (
                "policy_refusals",
                include_str!("../migrations/sqlite/0010_policy_refusals.sql"),
            ),
            (
                "bulk_streams",
                include_str!("../migrations/sqlite/0011_bulk_streams.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                "records",
                include_str!("../migrations/postgres/0001_records.sql"),
            ),
            (
                "ui_sessions",
                include_str!("../migrations/postgres/0002_ui_sessions.sql"),
            ),
            (
                "dnsbl_state",
                include_str!("../migrations/postgres/0003_dnsbl_state.sql"),
            ),
            (
                "webhooks",
                include_str!("../migrations/postgres/0004_webhooks.sql"),
            ),
            (
                "fbl_trust",
                include_str!("../migrations/postgres/0005_fbl_trust.sql"),
            ),
            (
                "domain_verification",
                include_str!("../migrations/postgres/0006_domain_verification.sql"),
            ),
            (
                "retention",
                include_str!("../migrations/postgres/0007_retention.sql"),
            ),
            (
                "dnsbl_retention",
                include_str!("../migrations/postgres/0008_dnsbl_retention.sql"),
            ),
            (
                "suppressions",
                include_str!("../migrations/postgres/0009_suppressions.sql"),
            ),
            (
                "policy_refusals",
                include_str!("../migrations/postgres/0010_policy_refusals.sql"),
            ),
            (
                "bulk_streams",
                include_str!("../migrations/postgres/0011_bulk_streams.sql"),
            ),
        ],
    };
    let migrations = files
        .into_iter()
        .zip(1..)
        .map(|((name, sql), version)| {
            Migration::new(
                version,
                Cow::Borrowed(name),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_stripped_and_checked() {
        let (u, s) = split_schema("postgres://u@h/db?schema=t_1&sslmode=disable").unwrap();
        assert_eq!(u, "postgres://u@h/db?sslmode=disable");
        assert_eq!(s.as_deref(), Some("t_1"));
        let (u, s) = split_schema("postgres://u@h/db").unwrap();
        assert_eq!((u.as_str(), s), ("postgres://u@h/db", None));
        assert!(split_schema("postgres://h/db?schema=a\";drop").is_err());
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///var/x.db?mode=rwc"),
            ("/var/x.db", "mode=rwc")
        );
        assert_eq!(sqlite_path("sqlite://data/x.db"), ("data/x.db", ""));
        assert_eq!(sqlite_path("sqlite::memory:"), (":memory:", ""));
        assert_eq!(
            file_url("/a b/x.db", "").unwrap(),
            "sqlite:///a%20b/x.db?mode=rwc"
        );
        assert_eq!(
            file_url("/x.db", "mode=ro").unwrap(),
            "sqlite:///x.db?mode=ro"
        );
        let rel = file_url("Data/x.db", "cache=private").unwrap();
        assert!(
            rel.starts_with("sqlite:///") && rel.ends_with("/Data/x.db?cache=private&mode=rwc"),
            "{rel}"
        );
    }
}

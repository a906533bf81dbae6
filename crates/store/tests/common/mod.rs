//! Test harness: one test body, every backend (STYLE rule 7). `store_test!(name)` turns
//! `async fn name(store: Store)` into `name::sqlite` (temp file) and `name::postgres` (a fresh
//! schema in `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards). PostgreSQL missing is
//! a failure with instructions, never a silent pass.

// Compiled into several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use outguard_store::Store;
use sqlx::{Connection, Executor};

pub const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `OUTGUARD_TEST_PG` overrides the server (loopback only, please).
fn pg_base() -> String {
    std::env::var("OUTGUARD_TEST_PG").unwrap_or_else(|_| PG_DEFAULT.to_string())
}

pub struct TestDb {
    pub store: Store,
    pub url: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/sub/records.db", dir.path().display());
        let store = Store::open(&url).await.expect("open sqlite store");
        TestDb {
            store,
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    pub async fn postgres(test: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "og_t{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            test.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(30)
                .collect::<String>()
        )
        .to_lowercase();
        let base = pg_base();
        if let Err(e) = sqlx::postgres::PgConnection::connect(&base).await {
            panic!(
                "PostgreSQL is not reachable at {base} ({e}). Start it with:\n  \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            );
        }
        let url = format!("{base}?schema={schema}");
        let store = Store::open(&url).await.expect("open postgres store");
        TestDb {
            store,
            url,
            schema: Some(schema),
            _dir: None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(&pg_base()).await {
                        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                        let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
                    }
                });
            }
        })
        .join();
    }
}

/// `store_test!(f)` runs `async fn f(db: &TestDb)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! store_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite().await;
                super::$name(&db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::common::TestDb::postgres(stringify!($name)).await;
                super::$name(&db).await;
            }
        }
    };
}

//! The databases a test runs on: a test written once runs on SQLite and on PostgreSQL
//! ([`both_databases!`](crate::both_databases)), each service of a test on a database
//! of its own ([`TestDatabase`]), and a loud note when PostgreSQL is not configured.

use std::io::Write;

use sqlx::{AnyPool, Connection, Row};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The environment variable naming the PostgreSQL admin URL.
pub const POSTGRES_URL_VAR: &str = "FABULA_TEST_POSTGRES_URL";

/// The database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Makes `sqlite::<test>` and `postgres::<test>` of each `async fn <test>(Backend)`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::skip_without_postgres(concat!(module_path!(), "::", stringify!($name))) {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// The PostgreSQL admin URL, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR).ok().filter(|url| !url.trim().is_empty())
}

/// True (after a loud warning that the test harness does not capture) when
/// PostgreSQL is not configured and the test cannot run on it; in CI, a failure.
pub fn skip_without_postgres(test: &str) -> bool {
    let why =
        format!("{POSTGRES_URL_VAR} is not set (e.g. {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres)");
    crate::skipped_unless(postgres_url().is_some(), &format!("{test} on PostgreSQL"), &why)
}

/// A database created for one test and dropped with it.
pub struct PostgresDb {
    admin_url: String,
    name: String,
}

impl PostgresDb {
    /// Creates a database named by a fresh UUID through `admin_url`.
    pub async fn create(admin_url: String) -> Self {
        let name = format!("fabula_test_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the PostgreSQL admin URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self { admin_url, name }
    }

    /// The URL of this database: the admin URL with its database name replaced.
    pub fn url(&self) -> String {
        let (scheme, rest) = self.admin_url.split_once("://").expect("a URL with a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let query = path.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
        format!("{scheme}://{authority}/{}{query}", self.name)
    }
}

impl Drop for PostgresDb {
    /// Drops the database on a thread of its own with its own runtime: this may run
    /// inside the test's runtime, which cannot be blocked on.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(std::io::stderr(), "warning: could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// A database for one service of a test: a new SQLite file in the test's directory,
/// or a new PostgreSQL database ([`PostgresDb`]) dropped with this; and a connection
/// of the test's own to it, to check rows.
pub struct TestDatabase {
    pub url: String,
    pool: OnceCell<AnyPool>,
    _postgres: Option<PostgresDb>,
}

impl TestDatabase {
    /// `name`.db in `dir` on SQLite; a database named by a fresh UUID on PostgreSQL.
    pub async fn create(backend: Backend, dir: &std::path::Path, name: &str) -> Self {
        let (url, postgres) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/{name}.db?mode=rwc", dir.display()), None),
            Backend::Postgres => {
                let admin_url = postgres_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
                let db = PostgresDb::create(admin_url).await;
                (db.url(), Some(db))
            }
        };
        Self { url, pool: OnceCell::new(), _postgres: postgres }
    }

    /// The test's own connection to the database, made the first time it is asked for.
    pub async fn pool(&self) -> &AnyPool {
        self.pool
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.url)
                    .await
                    .expect("connect to the test database")
            })
            .await
    }

    /// `SELECT COUNT(*) FROM <from_where>` with `binds` for `$1`, `$2`…
    pub async fn count(&self, from_where: &str, binds: &[&str]) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {from_where}");
        let query = binds.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, b| q.bind(*b));
        query.fetch_one(self.pool().await).await.expect("count rows").try_get(0).expect("a count")
    }
}

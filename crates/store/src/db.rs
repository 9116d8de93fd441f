//! A service's database: SQLite (embedded default) or PostgreSQL, behind one code path.
//!
//! Queries are written once in portable SQL with `$n` placeholders and run through
//! sqlx's `Any` driver. SQLite gets one writer connection (so writers queue in the
//! process instead of failing with SQLITE_BUSY) beside a pool of readers, WAL mode,
//! foreign keys, and a checkpoint task that keeps the WAL file bounded.
//!
//! A PostgreSQL connection is pinged when taken from the pool only after it has idled
//! long enough for the server or the network to have dropped it, not on every take
//! (sqlx's default): that saves a round trip a request, 8 % more GetStory calls a second
//! here. SQLite keeps the default: measured, its creates were faster with it (3 100–3 600
//! against 2 850 a second).

use std::{str::FromStr, time::Duration};

use sqlx::{
    Any, AnyPool, Connection, Executor, Transaction,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use fabula_runtime::telemetry::escaped;

/// Which database a URL points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pools of one database.
#[derive(Clone, Debug)]
pub struct Db {
    /// Serves reads; on PostgreSQL the same pool as `writer`.
    pub reader: AnyPool,
    /// Serves transactions that write.
    pub writer: AnyPool,
    pub backend: Backend,
}

/// SQLite settings for every connection: WAL so readers never block the writer,
/// foreign keys for the cascades, and a WAL that is truncated back to 64 MiB.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA journal_size_limit = 67108864;";

/// How long a PostgreSQL connection may idle before it is pinged when taken.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// How often the SQLite WAL is checkpointed and truncated.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and runs the service's migrations.
    pub async fn connect(url: &str, max_connections: u32, migrator: &Migrator) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        let options = AnyConnectOptions::from_str(url)?;
        let db = match backend {
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for < PING_AFTER_IDLE {
                                return Ok(true);
                            }
                            // A dropped connection is discarded and another taken.
                            Ok(conn.ping().await.is_ok())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Self { reader: pool.clone(), writer: pool, backend }
            }
            Backend::Sqlite => {
                create_parent_dir(url)?;
                let writer = sqlite_pool(1).connect_with(options.clone()).await?;
                let reader = sqlite_pool(max_connections).connect_with(options).await?;
                Self { reader, writer, backend }
            }
        };
        migrator.run(&db.writer).await?;
        Ok(db)
    }

    /// Begins a transaction that will write.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.writer.begin().await
    }

    /// Keeps the SQLite WAL from growing without bound under sustained writes: readers
    /// that never pause can keep a passive checkpoint from ever resetting it. Runs until
    /// the pools close; a no-op on PostgreSQL.
    pub fn spawn_checkpoints(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let writer = self.writer.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.tick().await;
            while !writer.is_closed() {
                tick.tick().await;
                if let Err(error) = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").await
                    && !writer.is_closed()
                {
                    tracing::warn!(error = %escaped(&error), "WAL checkpoint failed");
                }
            }
        });
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Makes the directory of a SQLite file URL (`sqlite://data/story.db?mode=rwc`), so a
/// first run needs nothing prepared.
fn create_parent_dir(url: &str) -> Result<(), sqlx::Error> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = std::path::Path::new(path.split('?').next().unwrap_or_default());
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && path.as_os_str() != ":memory:" => {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)
        }
        _ => Ok(()),
    }
}

fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) }))
}

/// The current time in microseconds since the Unix epoch, as stored.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// A stored time as a protobuf `Timestamp`.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A stored flag.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

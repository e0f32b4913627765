//! The PostgreSQL store, for many workers or a database that outlives any one machine: the
//! same tables and queries as SQLite (see [`super::sql`]), migrations embedded in the binary
//! and applied under sqlx's advisory lock, so workers starting together migrate once.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::Connection;

use super::sql::migration;
use super::{GradingLock, StoreError};

/// The schema's migrations, embedded in the binary.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("migrations/postgres/0001_init.sql")),
        migration(2, "jobs", include_str!("migrations/postgres/0002_jobs.sql")),
        migration(
            3,
            "claim tokens",
            include_str!("migrations/postgres/0003_claim_tokens.sql"),
        ),
    ])
}

/// A [`Store`](super::Store) in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    opts: PgConnectOptions,
}

/// The advisory lock key of the grading lock ("assay" in ASCII); PostgreSQL scopes advisory
/// locks to the database, so two databases of one server do not share it.
const GRADING_LOCK: i64 = 0x61_73_73_61_79;

/// How long opening waits for a connection (a server that is down or unreachable) before it
/// fails with the database named.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, or
    /// `?host=/run/postgresql` for a socket directory) and applies pending migrations. The
    /// database must exist; its tables are created here.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let opts = url.parse::<PgConnectOptions>()?.application_name("assay");
        // One connection first, so that a server that refuses, a name that does not resolve or a
        // database that does not exist is named at once with its cause (the pool would retry
        // until its timeout and then say only that it timed out).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
            .await
            .map_err(|_| {
                StoreError::Db(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                )))
            })??;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts.clone())
            .await?;
        migrator().run(&pool).await?;
        Ok(PostgresStore { pool, opts })
    }

    /// The grading lock: a session advisory lock on a connection of its own (not the pool's,
    /// which could hand the session to other work or close it). The server releases it when
    /// the connection ends, also when the process holding it is killed.
    pub async fn lock(&self) -> Result<Option<GradingLock>, StoreError> {
        let mut conn = PgConnection::connect_with(&self.opts).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(GRADING_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(taken.then_some(GradingLock(super::Guard::Postgres(conn, GRADING_LOCK))))
    }
}

super::sql::sql_store!(
    PostgresStore,
    sqlx::Postgres,
    PgRow,
    now_ms = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    skip_locked = " FOR UPDATE OF j SKIP LOCKED",
    // One rescuer at a time across every worker ("a-rescue" in ASCII); released when the
    // transaction ends.
    rescue_lock = "SELECT pg_try_advisory_xact_lock(7002378775684150629)",
    lock = lock
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = migrator()
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_")))
            .collect();
        assert_eq!(embedded, files);
    }
}

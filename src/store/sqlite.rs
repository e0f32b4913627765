//! The SQLite store: one file, WAL with `synchronous = FULL` so a finished
//! stage survives a crash or power loss, migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};

use super::sql::migration;
use super::StoreError;

/// The schema's migrations, embedded in the binary. Each version, description and checksum
/// (the SQL's SHA-384) is what sqlx's `migrate!` macro derived from the files
/// (`0001_init.sql` → 1, "init"), so databases made by earlier builds migrate on unchanged;
/// building the list here spares the build sqlx's proc-macro crate and the second SQLite and
/// PostgreSQL drivers it compiles for the host.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("migrations/sqlite/0001_init.sql")),
        migration(2, "reviews", include_str!("migrations/sqlite/0002_reviews.sql")),
        migration(3, "jobs", include_str!("migrations/sqlite/0003_jobs.sql")),
        migration(
            4,
            "claim tokens",
            include_str!("migrations/sqlite/0004_claim_tokens.sql"),
        ),
    ])
}

/// A [`Store`](super::Store) in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH`) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(dir) = opts.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
            }
        }
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        migrator().run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

super::sql::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    SqliteRow,
    now_ms = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    skip_locked = "",
    rescue_lock = "SELECT TRUE"
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sqlx::migrate::MigrationType;

    use super::*;
    use crate::review::{CriterionReview, ReviewStatus};
    use crate::store::{ReviewSave, SaveOutcome, Store};

    async fn store_with_submission() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let cohort = store.upsert_cohort("c", &serde_json::json!({})).await.unwrap();
        let sub = store
            .upsert_submission(cohort, "cand", "a-1", "repo", None)
            .await
            .unwrap();
        (dir, store, sub.id)
    }

    fn scores(score: u32) -> BTreeMap<String, CriterionReview> {
        BTreeMap::from([(
            "correctness".to_string(),
            CriterionReview {
                score: Some(score),
                comment: format!("scored {score}"),
                draft_score: Some(3),
                ..Default::default()
            },
        )])
    }

    fn save<'a>(id: i64, actor: &'a str, base: i64, score: u32, finalize: bool) -> ReviewSave<'a> {
        ReviewSave {
            submission_id: id,
            grader: "alice",
            actor,
            base_version: base,
            scores: scores(score),
            comment: String::new(),
            finalize,
        }
    }

    #[test]
    fn every_migration_file_is_embedded_with_the_version_description_and_checksum_sqlx_derives() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        let embedded = migrator();
        let embedded: Vec<_> = embedded.iter().collect();
        assert_eq!(embedded.len(), files.len(), "a migration file is not in migrator()");
        for (file, m) in files.iter().zip(embedded) {
            let name = file.file_name().unwrap().to_str().unwrap();
            let (version, rest) = name.split_once('_').unwrap();
            assert_eq!(m.version, version.parse::<i64>().unwrap(), "{name}");
            assert_eq!(m.description, rest.trim_end_matches(".sql").replace('_', " "), "{name}");
            assert_eq!(m.migration_type, MigrationType::Simple, "{name}");
        }
        // What `_sqlx_migrations` holds in a database made by a build that used `migrate!`:
        // a changed checksum would make every existing database refuse to open.
        let made_by_migrate_macro = [
            (
                1,
                "AE195E4FF7F17873D12F0CEE1D94DF74F6631C36C1D977397BADDB8BDC5379530813340879ABF02112113CB5BC0C3A38",
            ),
            (
                2,
                "8D6FDD8E1F2DBF36D5FAE09CB6C9033584B728EB951A66E8A4F48E2AB4F845FA3A9AF5D5C69343838252907861947098",
            ),
        ];
        for (version, checksum) in made_by_migrate_macro {
            let m = migrator().iter().find(|m| m.version == version).cloned().unwrap();
            assert_eq!(hex::encode_upper(&*m.checksum), checksum, "migration {version}");
        }
    }

    #[tokio::test]
    async fn the_second_of_two_saves_from_the_same_version_is_refused_and_nothing_is_lost() {
        let (_dir, store, id) = store_with_submission().await;
        let SaveOutcome::Saved(first) = store.save_review(&save(id, "alice", 0, 3, false)).await.unwrap() else {
            panic!("first save")
        };
        assert_eq!(first.version, 1);
        // Alice and Bob both opened version 1; Bob saves first, then Alice.
        let SaveOutcome::Saved(bob) = store.save_review(&save(id, "bob", 1, 4, false)).await.unwrap() else {
            panic!("bob's save")
        };
        assert_eq!(bob.version, 2);
        match store.save_review(&save(id, "alice", 1, 2, false)).await.unwrap() {
            SaveOutcome::Conflict(Some(now)) => {
                assert_eq!(now.version, 2);
                assert_eq!(now.scores["correctness"].score, Some(4), "bob's save stands");
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // A save that did not exist yet (base 0) on an existing review is a conflict too.
        assert!(matches!(
            store.save_review(&save(id, "carol", 0, 1, false)).await.unwrap(),
            SaveOutcome::Conflict(Some(_))
        ));
        // Finalize from the current version; afterwards nothing changes it.
        let SaveOutcome::Saved(fin) = store.save_review(&save(id, "alice", 2, 4, true)).await.unwrap() else {
            panic!("finalize")
        };
        assert_eq!(fin.status, ReviewStatus::Final);
        assert!(fin.finalized_at.is_some());
        assert_eq!(
            store.reviews(id).await.unwrap(),
            std::slice::from_ref(&fin),
            "what a save returns is what is stored"
        );
        assert!(matches!(
            store.save_review(&save(id, "alice", 3, 1, false)).await.unwrap(),
            SaveOutcome::AlreadyFinal(_)
        ));
        // The audit trail has every accepted change, by whom, with the score moves.
        let trail = store.events(id).await.unwrap();
        let kinds: Vec<(&str, &str)> = trail.iter().map(|e| (e.actor.as_str(), e.kind.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("alice", "review_saved"),
                ("bob", "review_saved"),
                ("alice", "review_finalized")
            ]
        );
        assert_eq!(trail[1].detail["changed"][0]["from"], 3);
        assert_eq!(trail[1].detail["changed"][0]["to"], 4);
        assert_eq!(store.reviews(id).await.unwrap().len(), 1);
    }
}

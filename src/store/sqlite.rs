//! The SQLite store: one file, WAL with `synchronous = FULL` so a finished
//! stage survives a crash or power loss, migrations embedded in the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};

use super::{CohortRecord, Event, ReviewSave, RunStatus, SaveOutcome, Stage, StageResult, StageRun, Store, StoreError};
use crate::evidence::EvidenceItem;
use crate::outcome::OutcomeKind;
use crate::review::{review_changes, Review, ReviewStatus};
use crate::submission::{SubmissionRecord, SubmissionStatus};

/// The schema's migrations, embedded in the binary. Each version, description and checksum
/// (the SQL's SHA-384) is what sqlx's `migrate!` macro derived from the files
/// (`0001_init.sql` → 1, "init"), so databases made by earlier builds migrate on unchanged;
/// building the list here spares the build sqlx's proc-macro crate and the second SQLite and
/// PostgreSQL drivers it compiles for the host.
fn migrator() -> Migrator {
    let migration = |version, description: &'static str, sql: &'static str| {
        Migration::new(
            version,
            description.into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    Migrator::with_migrations(vec![
        migration(1, "init", include_str!("migrations/sqlite/0001_init.sql")),
        migration(2, "reviews", include_str!("migrations/sqlite/0002_reviews.sql")),
    ])
}

/// A [`Store`] in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// `SELECT <every review column> FROM reviews <rest>`, as a literal (sqlx takes only literals).
macro_rules! review_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, submission_id, grader, status, version, scores_json, comment, updated_at, finalized_at FROM reviews ",
            $rest
        )
    };
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(table: &'static str, column: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            table,
            column,
            value: s.to_string(),
        })
}

fn parse_outcome(table: &'static str, s: Option<String>) -> Result<Option<OutcomeKind>, StoreError> {
    match s {
        None => Ok(None),
        Some(s) => OutcomeKind::parse(&s).map(Some).ok_or(StoreError::Corrupt {
            table,
            column: "outcome",
            value: s,
        }),
    }
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

    fn submission(row: &SqliteRow) -> Result<SubmissionRecord, StoreError> {
        let status: String = row.try_get("status")?;
        Ok(SubmissionRecord {
            id: row.try_get("id")?,
            cohort_id: row.try_get("cohort_id")?,
            candidate: row.try_get("candidate")?,
            anon_id: row.try_get("anon_id")?,
            repo: row.try_get("repo")?,
            git_ref: row.try_get("git_ref")?,
            commit: row.try_get("commit_sha")?,
            status: SubmissionStatus::parse(&status).ok_or(StoreError::Corrupt {
                table: "submissions",
                column: "status",
                value: status.clone(),
            })?,
            outcome: parse_outcome("submissions", row.try_get("outcome")?)?,
        })
    }

    fn run(row: &SqliteRow) -> Result<StageRun, StoreError> {
        let stage: String = row.try_get("stage")?;
        let status: String = row.try_get("status")?;
        let output: Option<String> = row.try_get("output_json")?;
        let started: String = row.try_get("started_at")?;
        let finished: Option<String> = row.try_get("finished_at")?;
        Ok(StageRun {
            id: row.try_get("id")?,
            submission_id: row.try_get("submission_id")?,
            stage: Stage::parse(&stage).ok_or(StoreError::Corrupt {
                table: "stage_runs",
                column: "stage",
                value: stage.clone(),
            })?,
            stage_version: row.try_get("stage_version")?,
            input_key: row.try_get("input_key")?,
            attempt: row.try_get("attempt")?,
            status: RunStatus::parse(&status).ok_or(StoreError::Corrupt {
                table: "stage_runs",
                column: "status",
                value: status.clone(),
            })?,
            outcome: parse_outcome("stage_runs", row.try_get("outcome")?)?,
            error: row.try_get("error")?,
            output: match output {
                None => None,
                Some(s) => Some(serde_json::from_str(&s).map_err(|_| StoreError::Corrupt {
                    table: "stage_runs",
                    column: "output_json",
                    value: s.chars().take(80).collect(),
                })?),
            },
            started_at: parse_time("stage_runs", "started_at", &started)?,
            finished_at: finished
                .map(|f| parse_time("stage_runs", "finished_at", &f))
                .transpose()?,
            duration_ms: row.try_get("duration_ms")?,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_cohort(&self, name: &str, spec: &serde_json::Value) -> Result<i64, StoreError> {
        let t = now();
        let row = sqlx::query(
            "INSERT INTO cohorts (name, spec_json, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET spec_json = excluded.spec_json, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(name)
        .bind(spec.to_string())
        .bind(&t)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn upsert_submission(
        &self,
        cohort_id: i64,
        candidate: &str,
        anon_id: &str,
        repo: &str,
        git_ref: Option<&str>,
    ) -> Result<SubmissionRecord, StoreError> {
        let t = now();
        let row = sqlx::query(
            "INSERT INTO submissions (cohort_id, candidate, anon_id, repo, git_ref, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (cohort_id, candidate) DO UPDATE SET
                repo = excluded.repo, git_ref = excluded.git_ref, anon_id = excluded.anon_id,
                updated_at = CASE WHEN submissions.repo IS excluded.repo AND submissions.git_ref IS excluded.git_ref
                                  THEN submissions.updated_at ELSE excluded.updated_at END
             RETURNING *",
        )
        .bind(cohort_id)
        .bind(candidate)
        .bind(anon_id)
        .bind(repo)
        .bind(git_ref)
        .bind(&t)
        .fetch_one(&self.pool)
        .await?;
        SqliteStore::submission(&row)
    }

    async fn submissions(&self, cohort_id: i64) -> Result<Vec<SubmissionRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM submissions WHERE cohort_id = ?1 ORDER BY id")
            .bind(cohort_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(SqliteStore::submission).collect()
    }

    async fn cohort_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT id FROM cohorts WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    async fn cohorts(&self) -> Result<Vec<CohortRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, name, spec_json FROM cohorts ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CohortRecord {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    spec: json_column(r, "cohorts", "spec_json")?,
                })
            })
            .collect()
    }

    async fn find_submissions(
        &self,
        candidate: &str,
        cohort: Option<&str>,
    ) -> Result<Vec<(String, SubmissionRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.*, c.name AS cohort_name FROM submissions s JOIN cohorts c ON c.id = s.cohort_id
             WHERE s.candidate = ?1 AND (?2 IS NULL OR c.name = ?2) ORDER BY s.id",
        )
        .bind(candidate)
        .bind(cohort)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("cohort_name")?, SqliteStore::submission(r)?)))
            .collect()
    }

    async fn reap_running(&self) -> Result<u64, StoreError> {
        let t = now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE stage_runs SET status = 'interrupted', outcome = 'interrupted',
                error = 'abandoned: the process running it stopped', finished_at = ?1
             WHERE status = 'running'",
        )
        .bind(&t)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE submissions SET status = 'interrupted', outcome = 'interrupted', updated_at = ?1 WHERE status = 'running'")
            .bind(&t)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn final_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
    ) -> Result<Option<StageRun>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM stage_runs
             WHERE submission_id = ?1 AND stage = ?2 AND stage_version = ?3 AND input_key = ?4
               AND (status = 'done'
                    OR (status = 'failed' AND outcome NOT IN ('infra_error', 'unreachable', 'internal_error', 'interrupted')))
             ORDER BY (status = 'done') DESC, id DESC LIMIT 1",
        )
        .bind(submission_id)
        .bind(stage.as_str())
        .bind(stage.version())
        .bind(input_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(SqliteStore::run).transpose()
    }

    async fn start_run(
        &self,
        submission_id: i64,
        stage: Stage,
        input_key: &str,
        worker: &str,
    ) -> Result<StageRun, StoreError> {
        let t = now();
        let row = sqlx::query(
            "INSERT INTO stage_runs (submission_id, stage, stage_version, input_key, attempt, status, worker, started_at, heartbeat_at)
             VALUES (?1, ?2, ?3, ?4,
                     (SELECT COUNT(*) + 1 FROM stage_runs
                      WHERE submission_id = ?1 AND stage = ?2 AND stage_version = ?3 AND input_key = ?4),
                     'running', ?5, ?6, ?6)
             RETURNING *",
        )
        .bind(submission_id)
        .bind(stage.as_str())
        .bind(stage.version())
        .bind(input_key)
        .bind(worker)
        .bind(&t)
        .fetch_one(&self.pool)
        .await?;
        SqliteStore::run(&row)
    }

    async fn finish_run(&self, run: &StageRun, result: &StageResult) -> Result<(), StoreError> {
        let finished = Utc::now();
        let duration = (finished - run.started_at).num_milliseconds();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE stage_runs SET status = ?1, outcome = ?2, error = ?3, output_json = ?4, finished_at = ?5, duration_ms = ?6
             WHERE id = ?7",
        )
        .bind(result.status.as_str())
        .bind(result.outcome.as_str())
        .bind(&result.error)
        .bind(result.output.as_ref().map(|v| v.to_string()))
        .bind(finished.to_rfc3339_opts(SecondsFormat::Millis, true))
        .bind(duration)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        if result.status == RunStatus::Done {
            sqlx::query("DELETE FROM evidence_items WHERE submission_id = ?1 AND stage = ?2")
                .bind(run.submission_id)
                .bind(run.stage.as_str())
                .execute(&mut *tx)
                .await?;
            for item in &result.evidence {
                sqlx::query(
                    // An id another stage held is taken over: ids move between stages when
                    // assay changes which stage finds them (`I` items: draft, then screen).
                    "INSERT INTO evidence_items (submission_id, commit_sha, stage, item_id, kind, source, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (submission_id, item_id) DO UPDATE SET commit_sha = excluded.commit_sha,
                       stage = excluded.stage, kind = excluded.kind, source = excluded.source, text = excluded.text",
                )
                .bind(run.submission_id)
                .bind(result.commit.as_deref().unwrap_or(""))
                .bind(run.stage.as_str())
                .bind(&item.id)
                .bind(&item.kind)
                .bind(&item.source)
                .bind(&item.text)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn runs(&self, submission_id: i64) -> Result<Vec<StageRun>, StoreError> {
        let rows = sqlx::query("SELECT * FROM stage_runs WHERE submission_id = ?1 ORDER BY id")
            .bind(submission_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(SqliteStore::run).collect()
    }

    async fn set_submission(
        &self,
        submission_id: i64,
        status: SubmissionStatus,
        outcome: Option<OutcomeKind>,
        commit: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE submissions SET status = ?1, outcome = ?2, commit_sha = COALESCE(?3, commit_sha), updated_at = ?4 WHERE id = ?5",
        )
        .bind(status.as_str())
        .bind(outcome.map(OutcomeKind::as_str))
        .bind(commit)
        .bind(now())
        .bind(submission_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn evidence(&self, submission_id: i64) -> Result<Vec<EvidenceItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT item_id, kind, source, text FROM evidence_items WHERE submission_id = ?1
             ORDER BY substr(item_id, 1, 1), CAST(substr(item_id, 2) AS INTEGER)",
        )
        .bind(submission_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EvidenceItem {
                    id: r.try_get("item_id")?,
                    kind: r.try_get("kind")?,
                    source: r.try_get("source")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }

    async fn event(
        &self,
        cohort_id: Option<i64>,
        submission_id: Option<i64>,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO events (at, cohort_id, submission_id, actor, kind, detail_json) VALUES (?1, ?2, ?3, 'assay', ?4, ?5)")
            .bind(now())
            .bind(cohort_id)
            .bind(submission_id)
            .bind(kind)
            .bind(detail.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn events(&self, submission_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT at, actor, kind, detail_json FROM events WHERE submission_id = ?1 ORDER BY id")
            .bind(submission_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    kind: r.try_get("kind")?,
                    detail: json_column(r, "events", "detail_json")?,
                })
            })
            .collect()
    }

    async fn reviews(&self, submission_id: i64) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(review_select!("WHERE submission_id = ?1 ORDER BY id"))
            .bind(submission_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(review_from_row).collect()
    }

    async fn cohort_reviews(&self, cohort_id: i64) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(review_select!(
            "WHERE submission_id IN (SELECT id FROM submissions WHERE cohort_id = ?1) ORDER BY id"
        ))
        .bind(cohort_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(review_from_row).collect()
    }

    async fn cohort_stamp(&self, cohort_id: i64) -> Result<String, StoreError> {
        // Only columns stored before `output_json`: reading `finished_at` would walk every run's
        // overflow pages (tens of MB for a large cohort). A run that finishes changes `status`.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) || ':' || COALESCE(MAX(updated_at), '') FROM submissions WHERE cohort_id = ?1) \
             || '/' || (SELECT COUNT(*) || ':' || COALESCE(MAX(r.id), 0) || ':' || SUM(r.status = 'running') \
                || ':' || SUM(r.status = 'done') \
                FROM stage_runs r JOIN submissions s ON s.id = r.submission_id WHERE s.cohort_id = ?1) \
             || '/' || (SELECT updated_at FROM cohorts WHERE id = ?1)",
        )
        .bind(cohort_id)
        .fetch_one(&self.pool)
        .await?;
        let stamp: Option<String> = row.try_get(0)?;
        Ok(stamp.unwrap_or_default())
    }

    async fn save_review(&self, save: &ReviewSave<'_>) -> Result<SaveOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let current = sqlx::query(review_select!("WHERE submission_id = ?1 AND grader = ?2"))
            .bind(save.submission_id)
            .bind(save.grader)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(review_from_row)
            .transpose()?;
        let stored_version = current.as_ref().map_or(0, |r| r.version);
        if let Some(r) = current.as_ref().filter(|r| r.status == ReviewStatus::Final) {
            return Ok(SaveOutcome::AlreadyFinal(r.clone()));
        }
        if stored_version != save.base_version {
            return Ok(SaveOutcome::Conflict(current));
        }
        let at = now();
        let status = if save.finalize {
            ReviewStatus::Final
        } else {
            ReviewStatus::Open
        };
        let scores = serde_json::to_string(&save.scores).expect("scores serialise");
        let version = stored_version + 1;
        let finalized_at = save.finalize.then(|| at.clone());
        // The version check above and this write are one transaction; the WHERE clause makes a
        // concurrent writer that slipped in between update nothing.
        let written = match &current {
            None => sqlx::query(
                "INSERT INTO reviews (submission_id, grader, status, version, scores_json, comment, created_at, updated_at, finalized_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) ON CONFLICT (submission_id, grader) DO NOTHING",
            )
            .bind(save.submission_id)
            .bind(save.grader)
            .bind(status.as_str())
            .bind(version)
            .bind(&scores)
            .bind(&save.comment)
            .bind(&at)
            .bind(&finalized_at)
            .execute(&mut *tx)
            .await?,
            Some(r) => sqlx::query(
                "UPDATE reviews SET status = ?1, version = ?2, scores_json = ?3, comment = ?4, updated_at = ?5, finalized_at = ?6
                 WHERE id = ?7 AND version = ?8",
            )
            .bind(status.as_str())
            .bind(version)
            .bind(&scores)
            .bind(&save.comment)
            .bind(&at)
            .bind(&finalized_at)
            .bind(r.id)
            .bind(stored_version)
            .execute(&mut *tx)
            .await?,
        };
        if written.rows_affected() != 1 {
            tx.rollback().await?;
            let now_stored = self
                .reviews(save.submission_id)
                .await?
                .into_iter()
                .find(|r| r.grader == save.grader);
            return Ok(SaveOutcome::Conflict(now_stored));
        }
        let changed = review_changes(current.as_ref().map(|r| &r.scores), &save.scores);
        let kind = if save.finalize {
            "review_finalized"
        } else {
            "review_saved"
        };
        sqlx::query(
            "INSERT INTO events (at, cohort_id, submission_id, actor, kind, detail_json)
             VALUES (?1, (SELECT cohort_id FROM submissions WHERE id = ?2), ?2, ?3, ?4, ?5)",
        )
        .bind(&at)
        .bind(save.submission_id)
        .bind(save.actor)
        .bind(kind)
        .bind(
            serde_json::json!({
                "review_of": save.grader,
                "version": version,
                "changed": changed,
                "comment_changed": current.as_ref().map(|r| r.comment.as_str()) != Some(save.comment.as_str()),
            })
            .to_string(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // What was just written; no need to read it back.
        Ok(SaveOutcome::Saved(Review {
            id: current.as_ref().map_or(written.last_insert_rowid(), |r| r.id),
            submission_id: save.submission_id,
            grader: save.grader.to_string(),
            status,
            version,
            scores: save.scores.clone(),
            comment: save.comment.clone(),
            updated_at: at,
            finalized_at,
        }))
    }
}

/// A JSON text column, parsed; unparseable text is [`StoreError::Corrupt`].
fn json_column<T: serde::de::DeserializeOwned>(
    r: &sqlx::sqlite::SqliteRow,
    table: &'static str,
    column: &'static str,
) -> Result<T, StoreError> {
    let text: String = r.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: text,
    })
}

fn review_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Review, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(Review {
        id: r.try_get("id")?,
        submission_id: r.try_get("submission_id")?,
        grader: r.try_get("grader")?,
        status: match status.as_str() {
            "open" => ReviewStatus::Open,
            "final" => ReviewStatus::Final,
            _ => {
                return Err(StoreError::Corrupt {
                    table: "reviews",
                    column: "status",
                    value: status,
                })
            }
        },
        version: r.try_get("version")?,
        scores: json_column(r, "reviews", "scores_json")?,
        comment: r.try_get("comment")?,
        updated_at: r.try_get("updated_at")?,
        finalized_at: r.try_get("finalized_at")?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::review::CriterionReview;

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

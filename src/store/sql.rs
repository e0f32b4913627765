//! The queries of the SQL stores, written once: SQLite and PostgreSQL accept the same text
//! (`$N` parameters, `RETURNING`, `ON CONFLICT`, `IS NOT DISTINCT FROM`, `CASE` sums, no
//! `last_insert_rowid()`), so [`sql_store!`] expands the one [`Store`](super::Store)
//! implementation for each backend's pool and row types. A generic implementation over
//! `sqlx::Database` would need a bound per type, executor and column index for every query;
//! the expansion keeps the SQL in one place instead, and each backend's own file keeps only
//! how it connects and migrates.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{Migration, MigrationType};
use sqlx::SqlSafeStr;

use super::StoreError;
use crate::outcome::OutcomeKind;

/// One embedded migration, as sqlx's `migrate!` macro would make it from the file
/// `NNNN_DESCRIPTION.sql` (the same version, description and checksum).
pub(super) fn migration(version: i64, description: &'static str, sql: &'static str) -> Migration {
    Migration::new(
        version,
        description.into(),
        MigrationType::Simple,
        sql.into_sql_str(),
        false,
    )
}

/// Text as the stores keep it: PostgreSQL's `text` cannot hold a NUL character, which a
/// candidate's README or test output may carry, so both backends keep U+FFFD in its place (the
/// same text whichever database holds it; the JSON columns escape it and need nothing).
pub(super) fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// [`text`] of an optional value.
pub(super) fn opt_text(s: Option<&str>) -> Option<String> {
    s.map(text)
}

/// Now, as the stores keep times: RFC 3339 text in UTC, milliseconds.
pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn parse_time(table: &'static str, column: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            table,
            column,
            value: s.to_string(),
        })
}

pub(super) fn parse_outcome(table: &'static str, s: Option<String>) -> Result<Option<OutcomeKind>, StoreError> {
    match s {
        None => Ok(None),
        Some(s) => OutcomeKind::parse(&s).map(Some).ok_or(StoreError::Corrupt {
            table,
            column: "outcome",
            value: s,
        }),
    }
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
pub(super) use review_select;

/// The [`Store`](super::Store) and [`Queue`](super::Queue) implementations for `$store`, whose
/// `pool` field is a pool of database `$db`, whose rows are `$row`. The few places the two
/// dialects differ are literals: `now_ms`, the database clock in milliseconds since the Unix
/// epoch; `skip_locked`, what a claim's subquery ends with (PostgreSQL's `FOR UPDATE SKIP
/// LOCKED`; SQLite runs one writer at a time); `rescue_lock`, a query that answers whether this
/// transaction may rescue (PostgreSQL's transaction-scoped advisory lock). With `lock`, the
/// store's inherent method of that name is its grading lock (the default otherwise).
macro_rules! sql_store {
    ($store:ty, $db:ty, $row:ty, now_ms = $now:literal, skip_locked = $skip:literal, rescue_lock = $rescue:literal $(, lock = $lock:ident)?) => {
        const _: () = {
            use chrono::{SecondsFormat, Utc};
            use sqlx::Row;

            use $crate::evidence::EvidenceItem;
            use $crate::outcome::OutcomeKind;
            use $crate::review::{review_changes, Review, ReviewStatus};
            use $crate::store::sql::{now, opt_text, parse_outcome, parse_time, review_select, text};
            use $crate::store::{
                CohortRecord, Event, ReviewSave, RunStatus, SaveOutcome, Stage, StageResult, StageRun, Store, StoreError,
            };
            use $crate::submission::{SubmissionRecord, SubmissionStatus};

            impl $store {
                fn cohort_record(row: &$row) -> Result<CohortRecord, StoreError> {
                    Ok(CohortRecord {
                        id: row.try_get("id")?,
                        name: row.try_get("name")?,
                        spec: json_column(row, "cohorts", "spec_json")?,
                    })
                }

                fn submission(row: &$row) -> Result<SubmissionRecord, StoreError> {
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

                fn run(row: &$row) -> Result<StageRun, StoreError> {
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

                async fn upsert_cohort_on(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    name: &str,
                    spec: &serde_json::Value,
                ) -> Result<i64, StoreError> {
                    let t = now();
                    let row = sqlx::query(
                        "INSERT INTO cohorts (name, spec_json, created_at, updated_at) VALUES ($1, $2, $3, $3)
                         ON CONFLICT (name) DO UPDATE SET spec_json = excluded.spec_json, updated_at = excluded.updated_at
                         RETURNING id",
                    )
                    .bind(text(name))
                    .bind(spec.to_string())
                    .bind(&t)
                    .fetch_one(&mut *conn)
                    .await?;
                    Ok(row.try_get("id")?)
                }

                async fn upsert_submission_on(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    cohort_id: i64,
                    candidate: &str,
                    anon_id: &str,
                    repo: &str,
                    git_ref: Option<&str>,
                ) -> Result<SubmissionRecord, StoreError> {
                    let t = now();
                    let row = sqlx::query(
                        "INSERT INTO submissions (cohort_id, candidate, anon_id, repo, git_ref, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6)
                         ON CONFLICT (cohort_id, candidate) DO UPDATE SET
                            repo = excluded.repo, git_ref = excluded.git_ref, anon_id = excluded.anon_id,
                            updated_at = CASE WHEN submissions.repo IS NOT DISTINCT FROM excluded.repo
                                           AND submissions.git_ref IS NOT DISTINCT FROM excluded.git_ref
                                              THEN submissions.updated_at ELSE excluded.updated_at END
                         RETURNING *",
                    )
                    .bind(cohort_id)
                    .bind(text(candidate))
                    .bind(anon_id)
                    .bind(text(repo))
                    .bind(opt_text(git_ref))
                    .bind(&t)
                    .fetch_one(&mut *conn)
                    .await?;
                    Self::submission(&row)
                }

                /// How a stage attempt ended, with its evidence: written in the caller's transaction.
                async fn write_run(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    run: &StageRun,
                    result: &StageResult,
                ) -> Result<(), StoreError> {
                    let finished = Utc::now();
                    let duration = (finished - run.started_at).num_milliseconds();
                    sqlx::query(
                        "UPDATE stage_runs SET status = $1, outcome = $2, error = $3, output_json = $4, finished_at = $5, duration_ms = $6
                         WHERE id = $7",
                    )
                    .bind(result.status.as_str())
                    .bind(result.outcome.as_str())
                    .bind(opt_text(result.error.as_deref()))
                    .bind(result.output.as_ref().map(|v| v.to_string()))
                    .bind(finished.to_rfc3339_opts(SecondsFormat::Millis, true))
                    .bind(duration)
                    .bind(run.id)
                    .execute(&mut *conn)
                    .await?;
                    if result.status == RunStatus::Done {
                        sqlx::query("DELETE FROM evidence_items WHERE submission_id = $1 AND stage = $2")
                            .bind(run.submission_id)
                            .bind(run.stage.as_str())
                            .execute(&mut *conn)
                            .await?;
                        for item in &result.evidence {
                            sqlx::query(
                                // An id another stage held is taken over: ids move between stages when
                                // assay changes which stage finds them (`I` items: draft, then screen).
                                "INSERT INTO evidence_items (submission_id, commit_sha, stage, item_id, kind, source, text)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                                 ON CONFLICT (submission_id, item_id) DO UPDATE SET commit_sha = excluded.commit_sha,
                                   stage = excluded.stage, kind = excluded.kind, source = excluded.source, text = excluded.text",
                            )
                            .bind(run.submission_id)
                            .bind(result.commit.as_deref().unwrap_or(""))
                            .bind(run.stage.as_str())
                            .bind(&item.id)
                            .bind(text(&item.kind))
                            .bind(text(&item.source))
                            .bind(text(&item.text))
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    Ok(())
                }
            }

            /// A JSON text column, parsed; unparseable text is [`StoreError::Corrupt`].
            fn json_column<T: serde::de::DeserializeOwned>(
                r: &$row,
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

            fn review_from_row(r: &$row) -> Result<Review, StoreError> {
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

            #[async_trait::async_trait]
            impl Store for $store {
                async fn upsert_cohort(&self, name: &str, spec: &serde_json::Value) -> Result<i64, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::upsert_cohort_on(&mut conn, name, spec).await
                }

                async fn upsert_submission(
                    &self,
                    cohort_id: i64,
                    candidate: &str,
                    anon_id: &str,
                    repo: &str,
                    git_ref: Option<&str>,
                ) -> Result<SubmissionRecord, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    Self::upsert_submission_on(&mut conn, cohort_id, candidate, anon_id, repo, git_ref).await
                }

                async fn submissions(&self, cohort_id: i64) -> Result<Vec<SubmissionRecord>, StoreError> {
                    let rows = sqlx::query("SELECT * FROM submissions WHERE cohort_id = $1 ORDER BY id")
                        .bind(cohort_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(Self::submission).collect()
                }

                async fn cohort_id(&self, name: &str) -> Result<Option<i64>, StoreError> {
                    let row = sqlx::query("SELECT id FROM cohorts WHERE name = $1")
                        .bind(text(name))
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(row.map(|r| r.try_get("id")).transpose()?)
                }

                async fn cohorts(&self) -> Result<Vec<CohortRecord>, StoreError> {
                    let rows = sqlx::query("SELECT id, name, spec_json FROM cohorts ORDER BY name")
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(Self::cohort_record).collect()
                }

                async fn find_submissions(
                    &self,
                    candidate: &str,
                    cohort: Option<&str>,
                ) -> Result<Vec<(String, SubmissionRecord)>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT s.*, c.name AS cohort_name FROM submissions s JOIN cohorts c ON c.id = s.cohort_id
                         WHERE s.candidate = $1 AND (CAST($2 AS TEXT) IS NULL OR c.name = $2) ORDER BY s.id",
                    )
                    .bind(text(candidate))
                    .bind(opt_text(cohort))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| Ok((r.try_get("cohort_name")?, Self::submission(r)?)))
                        .collect()
                }

                async fn reap_running(&self) -> Result<u64, StoreError> {
                    let t = now();
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        // A queue job's runs are the rescuer's: their workers may be alive on other
                        // machines, and only an expired lease says otherwise.
                        "UPDATE stage_runs SET status = 'interrupted', outcome = 'interrupted',
                            error = 'abandoned: the process running it stopped', finished_at = $1
                         WHERE status = 'running' AND job_token IS NULL",
                    )
                    .bind(&t)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE submissions SET status = 'interrupted', outcome = 'interrupted', updated_at = $1
                         WHERE status = 'running' AND id NOT IN (SELECT submission_id FROM jobs WHERE status = 'running')",
                    )
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
                         WHERE submission_id = $1 AND stage = $2 AND stage_version = $3 AND input_key = $4
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
                    row.as_ref().map(Self::run).transpose()
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
                         VALUES ($1, $2, $3, $4,
                                 (SELECT COUNT(*) + 1 FROM stage_runs
                                  WHERE submission_id = $1 AND stage = $2 AND stage_version = $3 AND input_key = $4),
                                 'running', $5, $6, $6)
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
                    Self::run(&row)
                }

                async fn finish_run(&self, run: &StageRun, result: &StageResult) -> Result<(), StoreError> {
                    let mut tx = self.pool.begin().await?;
                    Self::write_run(&mut tx, run, result).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn runs(&self, submission_id: i64) -> Result<Vec<StageRun>, StoreError> {
                    let rows = sqlx::query("SELECT * FROM stage_runs WHERE submission_id = $1 ORDER BY id")
                        .bind(submission_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(Self::run).collect()
                }

                async fn set_submission(
                    &self,
                    submission_id: i64,
                    status: SubmissionStatus,
                    outcome: Option<OutcomeKind>,
                    commit: Option<&str>,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE submissions SET status = $1, outcome = $2, commit_sha = COALESCE($3, commit_sha), updated_at = $4 WHERE id = $5",
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
                        "SELECT item_id, kind, source, text FROM evidence_items WHERE submission_id = $1
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
                    sqlx::query("INSERT INTO events (at, cohort_id, submission_id, actor, kind, detail_json) VALUES ($1, $2, $3, 'assay', $4, $5)")
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
                    let rows = sqlx::query("SELECT at, actor, kind, detail_json FROM events WHERE submission_id = $1 ORDER BY id")
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
                    let rows = sqlx::query(review_select!("WHERE submission_id = $1 ORDER BY id"))
                        .bind(submission_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(review_from_row).collect()
                }

                async fn cohort_reviews(&self, cohort_id: i64) -> Result<Vec<Review>, StoreError> {
                    let rows = sqlx::query(review_select!(
                        "WHERE submission_id IN (SELECT id FROM submissions WHERE cohort_id = $1) ORDER BY id"
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
                        "SELECT (SELECT COUNT(*) || ':' || COALESCE(MAX(updated_at), '') FROM submissions WHERE cohort_id = $1) \
                         || '/' || (SELECT COUNT(*) || ':' || COALESCE(MAX(r.id), 0) || ':' || SUM(CASE WHEN r.status = 'running' THEN 1 ELSE 0 END) \
                            || ':' || SUM(CASE WHEN r.status = 'done' THEN 1 ELSE 0 END) \
                            FROM stage_runs r JOIN submissions s ON s.id = r.submission_id WHERE s.cohort_id = $1) \
                         || '/' || (SELECT updated_at FROM cohorts WHERE id = $1)",
                    )
                    .bind(cohort_id)
                    .fetch_one(&self.pool)
                    .await?;
                    let stamp: Option<String> = row.try_get(0)?;
                    Ok(stamp.unwrap_or_default())
                }

                async fn save_review(&self, save: &ReviewSave<'_>) -> Result<SaveOutcome, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let current = sqlx::query(review_select!("WHERE submission_id = $1 AND grader = $2"))
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
                    // The id written: none when a concurrent writer got there first.
                    let written: Option<i64> = match &current {
                        None => sqlx::query(
                            "INSERT INTO reviews (submission_id, grader, status, version, scores_json, comment, created_at, updated_at, finalized_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (submission_id, grader) DO NOTHING
                             RETURNING id",
                        )
                        .bind(save.submission_id)
                        .bind(save.grader)
                        .bind(status.as_str())
                        .bind(version)
                        .bind(&scores)
                        .bind(text(&save.comment))
                        .bind(&at)
                        .bind(&finalized_at)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|row| row.try_get("id"))
                        .transpose()?,
                        Some(r) => {
                            let updated = sqlx::query(
                                "UPDATE reviews SET status = $1, version = $2, scores_json = $3, comment = $4, updated_at = $5, finalized_at = $6
                                 WHERE id = $7 AND version = $8",
                            )
                            .bind(status.as_str())
                            .bind(version)
                            .bind(&scores)
                            .bind(text(&save.comment))
                            .bind(&at)
                            .bind(&finalized_at)
                            .bind(r.id)
                            .bind(stored_version)
                            .execute(&mut *tx)
                            .await?;
                            (updated.rows_affected() == 1).then_some(r.id)
                        }
                    };
                    let Some(id) = written else {
                        tx.rollback().await?;
                        let now_stored = self
                            .reviews(save.submission_id)
                            .await?
                            .into_iter()
                            .find(|r| r.grader == save.grader);
                        return Ok(SaveOutcome::Conflict(now_stored));
                    };
                    let changed = review_changes(current.as_ref().map(|r| &r.scores), &save.scores);
                    let kind = if save.finalize {
                        "review_finalized"
                    } else {
                        "review_saved"
                    };
                    sqlx::query(
                        "INSERT INTO events (at, cohort_id, submission_id, actor, kind, detail_json)
                         VALUES ($1, (SELECT cohort_id FROM submissions WHERE id = $2), $2, $3, $4, $5)",
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
                            "comment_changed": current.as_ref().map(|r| r.comment.clone()) != Some(text(&save.comment)),
                        })
                        .to_string(),
                    )
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    // What was just written; no need to read it back.
                    Ok(SaveOutcome::Saved(Review {
                        id,
                        submission_id: save.submission_id,
                        grader: save.grader.to_string(),
                        status,
                        version,
                        scores: save.scores.clone(),
                        comment: text(&save.comment),
                        updated_at: at,
                        finalized_at,
                    }))
                }

                $(
                    async fn grading_lock(&self) -> Result<Option<$crate::store::GradingLock>, StoreError> {
                        self.$lock().await
                    }
                )?

                fn queue(&self) -> Option<&dyn $crate::store::Queue> {
                    Some(self)
                }
            }

            $crate::store::sql::queue_impl!($store, $db, $row, $now, $skip, $rescue);
        };
    };
}
pub(super) use sql_store;

/// The [`Queue`](super::Queue) implementation for `$store` (see [`sql_store!`] for the literals).
macro_rules! queue_impl {
    ($store:ty, $db:ty, $row:ty, $now:literal, $skip:literal, $rescue:literal) => {
        const _: () = {
            use sqlx::Row;

            use $crate::store::queue::{
                stage_list, EndedJob, Enqueued, JobEnd, JobStatus, Lease, NewSubmission, Queue, QueueStatus, Rescued,
                RunningJob, StageCounts, WorkerInfo,
            };
            use $crate::store::sql::{now, opt_text, text};
            use $crate::store::{Stage, StageResult, StageRun, StoreError};

            fn stage_of(table: &'static str, s: String) -> Result<Stage, StoreError> {
                Stage::parse(&s).ok_or(StoreError::Corrupt {
                    table,
                    column: "stage",
                    value: s,
                })
            }

            fn status_of(s: String) -> Result<JobStatus, StoreError> {
                JobStatus::parse(&s).ok_or(StoreError::Corrupt {
                    table: "jobs",
                    column: "status",
                    value: s,
                })
            }

            /// A fresh claim token: 128 random bits, hex.
            fn token() -> String {
                let mut b = [0u8; 16];
                getrandom::fill(&mut b).expect("the system's random source");
                hex::encode(b)
            }

            impl $store {
                /// Fails the queued jobs after `seq` of a submission whose job ended for good, saying `why`.
                async fn fail_later_jobs(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    submission_id: i64,
                    seq: i64,
                    why: &str,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE jobs SET status = 'failed', last_error = $3, updated_at = $4
                         WHERE submission_id = $1 AND seq > $2 AND status = 'queued'",
                    )
                    .bind(submission_id)
                    .bind(seq)
                    .bind(text(why))
                    .bind(now())
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                }

                /// A dead job's submission: failed with `infra_error`, never an outcome of the candidate's.
                async fn submission_died(
                    conn: &mut <$db as sqlx::Database>::Connection,
                    submission_id: i64,
                ) -> Result<(), StoreError> {
                    sqlx::query("UPDATE submissions SET status = 'failed', outcome = 'infra_error', updated_at = $2 WHERE id = $1")
                        .bind(submission_id)
                        .bind(now())
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                }
            }

            #[async_trait::async_trait]
            impl Queue for $store {
                async fn enqueue(
                    &self,
                    name: &str,
                    spec: &serde_json::Value,
                    submissions: &[NewSubmission],
                    stages: &[Stage],
                    max_attempts: i64,
                ) -> Result<Enqueued, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let cohort_id = Self::upsert_cohort_on(&mut tx, name, spec).await?;
                    let t = now();
                    // Jobs of stages this run does not queue (drafts off, say) are not its work.
                    sqlx::query(
                        "DELETE FROM jobs WHERE cohort_id = $1 AND status <> 'running'
                           AND NOT ((',' || $2 || ',') LIKE ('%,' || stage || ',%'))",
                    )
                    .bind(cohort_id)
                    .bind(stage_list(stages))
                    .execute(&mut *tx)
                    .await?;
                    let mut records = Vec::with_capacity(submissions.len());
                    for s in submissions {
                        let rec = Self::upsert_submission_on(
                            &mut tx,
                            cohort_id,
                            &s.candidate,
                            &s.anon_id,
                            &s.repo,
                            s.git_ref.as_deref(),
                        )
                        .await?;
                        for (seq, stage) in stages.iter().enumerate() {
                            // A job that exists is queued again unless a worker holds it: a stage whose
                            // inputs did not change is skipped by its key, one whose inputs changed
                            // (a new commit, a changed rubric) runs again.
                            sqlx::query(
                                "INSERT INTO jobs (cohort_id, submission_id, stage, seq, status, attempts, max_attempts,
                                                   run_after_ms, created_at, updated_at)
                                 VALUES ($1, $2, $3, $4, 'queued', 0, $5, 0, $6, $6)
                                 ON CONFLICT (submission_id, stage) DO UPDATE SET
                                    seq = excluded.seq, max_attempts = excluded.max_attempts,
                                    status = CASE WHEN jobs.status = 'running' THEN jobs.status ELSE 'queued' END,
                                    attempts = CASE WHEN jobs.status = 'running' THEN jobs.attempts ELSE 0 END,
                                    run_after_ms = CASE WHEN jobs.status = 'running' THEN jobs.run_after_ms ELSE 0 END,
                                    last_error = CASE WHEN jobs.status = 'running' THEN jobs.last_error ELSE NULL END,
                                    updated_at = excluded.updated_at",
                            )
                            .bind(cohort_id)
                            .bind(rec.id)
                            .bind(stage.as_str())
                            .bind(seq as i64)
                            .bind(max_attempts)
                            .bind(&t)
                            .execute(&mut *tx)
                            .await?;
                        }
                        records.push(rec);
                    }
                    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE cohort_id = $1 AND status = 'queued'")
                        .bind(cohort_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    // Fresh statistics for the claims' planner: with a large cohort's jobs just
                    // added and none counted yet, it fetched and sorted all of them for each claim
                    // (17 ms with 10,000 queued) instead of walking the queued index to the first
                    // (0.2 ms).
                    sqlx::query("ANALYZE jobs").execute(&self.pool).await?;
                    Ok(Enqueued {
                        cohort_id,
                        submissions: records,
                        queued: queued as u64,
                    })
                }

                async fn claim(
                    &self,
                    worker: &str,
                    stages: &[Stage],
                    lease_ms: i64,
                    cohort: Option<i64>,
                ) -> Result<Option<Lease>, StoreError> {
                    let token = token();
                    let row = sqlx::query(concat!(
                        "UPDATE jobs SET status = 'running', attempts = attempts + 1, token = $1, worker = $2,
                            claimed_at_ms = ", $now, ", lease_until_ms = ", $now, " + $3, updated_at = $4
                         WHERE id = (
                            SELECT j.id FROM jobs j
                            WHERE j.status = 'queued' AND j.run_after_ms <= ", $now, "
                              AND (',' || $5 || ',') LIKE ('%,' || j.stage || ',%')
                              AND (CAST($6 AS BIGINT) IS NULL OR j.cohort_id = $6)
                              AND NOT EXISTS (SELECT 1 FROM jobs p
                                              WHERE p.submission_id = j.submission_id AND p.seq < j.seq AND p.status <> 'done')
                            ORDER BY j.id LIMIT 1", $skip, ")
                         RETURNING id, cohort_id, submission_id, stage, attempts, max_attempts"
                    ))
                    .bind(&token)
                    .bind(text(worker))
                    .bind(lease_ms)
                    .bind(now())
                    .bind(stage_list(stages))
                    .bind(cohort)
                    .fetch_optional(&self.pool)
                    .await?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    Ok(Some(Lease {
                        job_id: row.try_get("id")?,
                        cohort_id: row.try_get("cohort_id")?,
                        submission_id: row.try_get("submission_id")?,
                        stage: stage_of("jobs", row.try_get("stage")?)?,
                        attempt: row.try_get("attempts")?,
                        max_attempts: row.try_get("max_attempts")?,
                        token,
                    }))
                }

                async fn heartbeat(&self, lease: &Lease, lease_ms: i64) -> Result<bool, StoreError> {
                    let done = sqlx::query(concat!(
                        "UPDATE jobs SET lease_until_ms = ", $now, " + $3, updated_at = $4
                         WHERE id = $1 AND token = $2 AND status = 'running'"
                    ))
                    .bind(lease.job_id)
                    .bind(&lease.token)
                    .bind(lease_ms)
                    .bind(now())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                }

                async fn finish_job(
                    &self,
                    lease: &Lease,
                    end: &JobEnd,
                    run: Option<(&StageRun, &StageResult)>,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let (status, error, backoff) = match end {
                        JobEnd::Done => ("done", None, 0),
                        JobEnd::Failed(e) => ("failed", Some(e.as_str()), 0),
                        JobEnd::Retry { error, backoff_ms } => ("retry", Some(error.as_str()), *backoff_ms),
                        JobEnd::Release(why) => ("release", Some(why.as_str()), 0),
                    };
                    let row = sqlx::query(concat!(
                        "UPDATE jobs SET
                            status = CASE WHEN $3 = 'release' THEN 'queued' WHEN $3 <> 'retry' THEN $3
                                          WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                            attempts = CASE WHEN $3 = 'release' THEN attempts - 1 ELSE attempts END,
                            token = NULL, lease_until_ms = NULL, last_error = $4,
                            run_after_ms = ", $now, " + $5, updated_at = $6
                         WHERE id = $1 AND token = $2 AND status = 'running'
                         RETURNING status, seq"
                    ))
                    .bind(lease.job_id)
                    .bind(&lease.token)
                    .bind(status)
                    .bind(opt_text(error))
                    .bind(backoff)
                    .bind(now())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        tx.rollback().await?;
                        return Ok(false);
                    };
                    let ended = status_of(row.try_get("status")?)?;
                    let seq: i64 = row.try_get("seq")?;
                    if matches!(ended, JobStatus::Failed | JobStatus::Dead) {
                        let why = format!(
                            "the {} job {}: {}",
                            lease.stage.as_str(),
                            if ended == JobStatus::Dead { "died" } else { "failed" },
                            error.unwrap_or("")
                        );
                        Self::fail_later_jobs(&mut tx, lease.submission_id, seq, &why).await?;
                    }
                    if ended == JobStatus::Dead {
                        Self::submission_died(&mut tx, lease.submission_id).await?;
                    }
                    if let Some((run, result)) = run {
                        Self::write_run(&mut tx, run, result).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn finish_leased_run(&self, lease: &Lease, run: &StageRun, result: &StageResult) -> Result<bool, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    // Touching the job's row holds it (PostgreSQL locks it until the commit): the
                    // rescuer cannot requeue it between this check and the write.
                    let held = sqlx::query("UPDATE jobs SET updated_at = $3 WHERE id = $1 AND token = $2 AND status = 'running'")
                        .bind(lease.job_id)
                        .bind(&lease.token)
                        .bind(now())
                        .execute(&mut *tx)
                        .await?;
                    if held.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    Self::write_run(&mut tx, run, result).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn start_leased_run(
                    &self,
                    lease: &Lease,
                    stage: Stage,
                    input_key: &str,
                    worker: &str,
                ) -> Result<Option<StageRun>, StoreError> {
                    let t = now();
                    let row = sqlx::query(
                        "INSERT INTO stage_runs (submission_id, stage, stage_version, input_key, attempt, status, worker,
                                                 started_at, heartbeat_at, job_token)
                         SELECT $1, $2, $3, $4,
                                (SELECT COUNT(*) + 1 FROM stage_runs
                                 WHERE submission_id = $1 AND stage = $2 AND stage_version = $3 AND input_key = $4),
                                'running', $5, $6, $6, $7
                         WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $8 AND token = $7 AND status = 'running')
                         RETURNING *",
                    )
                    .bind(lease.submission_id)
                    .bind(stage.as_str())
                    .bind(stage.version())
                    .bind(input_key)
                    .bind(text(worker))
                    .bind(&t)
                    .bind(&lease.token)
                    .bind(lease.job_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.as_ref().map(Self::run).transpose()
                }

                async fn rescue(&self, backoff_ms: i64) -> Result<Vec<Rescued>, StoreError> {
                    let mut tx = self.pool.begin().await?;
                    let mine: bool = sqlx::query_scalar($rescue).fetch_one(&mut *tx).await?;
                    if !mine {
                        tx.rollback().await?;
                        return Ok(Vec::new());
                    }
                    let expired = sqlx::query(concat!(
                        "SELECT id, submission_id, stage, seq, worker, token, attempts, max_attempts FROM jobs
                         WHERE status = 'running' AND lease_until_ms < ", $now, " ORDER BY id"
                    ))
                    .fetch_all(&mut *tx)
                    .await?;
                    let t = now();
                    let mut out = Vec::with_capacity(expired.len());
                    for row in &expired {
                        let id: i64 = row.try_get("id")?;
                        let submission_id: i64 = row.try_get("submission_id")?;
                        let stage = stage_of("jobs", row.try_get("stage")?)?;
                        let seq: i64 = row.try_get("seq")?;
                        let worker: Option<String> = row.try_get("worker")?;
                        let token: Option<String> = row.try_get("token")?;
                        let attempts: i64 = row.try_get("attempts")?;
                        let max_attempts: i64 = row.try_get("max_attempts")?;
                        let error = format!(
                            "lease expired: worker {} stopped renewing it (attempt {attempts} of {max_attempts})",
                            worker.as_deref().unwrap_or("?")
                        );
                        let row = sqlx::query(concat!(
                            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                                token = NULL, lease_until_ms = NULL, last_error = $2,
                                run_after_ms = ", $now, " + $3, updated_at = $4
                             WHERE id = $1 AND status = 'running'
                             RETURNING status"
                        ))
                        .bind(id)
                        .bind(&error)
                        .bind(backoff_ms)
                        .bind(&t)
                        .fetch_one(&mut *tx)
                        .await?;
                        let status = status_of(row.try_get("status")?)?;
                        if let Some(token) = &token {
                            sqlx::query(
                                "UPDATE stage_runs SET status = 'interrupted', outcome = 'interrupted', error = $2, finished_at = $3
                                 WHERE job_token = $1 AND status = 'running'",
                            )
                            .bind(token)
                            .bind(&error)
                            .bind(&t)
                            .execute(&mut *tx)
                            .await?;
                        }
                        if status == JobStatus::Dead {
                            let why = format!("the {} job died: {error}", stage.as_str());
                            Self::fail_later_jobs(&mut tx, submission_id, seq, &why).await?;
                            Self::submission_died(&mut tx, submission_id).await?;
                        }
                        out.push(Rescued {
                            job_id: id,
                            submission_id,
                            stage,
                            worker,
                            status,
                        });
                    }
                    tx.commit().await?;
                    Ok(out)
                }

                async fn token_current(&self, job_id: i64, token: &str) -> Result<bool, StoreError> {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE id = $1 AND token = $2 AND status = 'running'")
                        .bind(job_id)
                        .bind(token)
                        .fetch_one(&self.pool)
                        .await?;
                    Ok(n == 1)
                }

                async fn claim_stale(&self, job_id: i64, token: &str) -> Result<bool, StoreError> {
                    let ours: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM stage_runs r JOIN jobs j ON j.submission_id = r.submission_id
                         WHERE r.job_token = $2 AND j.id = $1",
                    )
                    .bind(job_id)
                    .bind(token)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(ours > 0 && !self.token_current(job_id, token).await?)
                }

                async fn worker_seen(&self, id: &str, host: &str, stages: &[Stage]) -> Result<(), StoreError> {
                    sqlx::query(concat!(
                        "INSERT INTO workers (id, host, stages, started_at, last_seen_ms) VALUES ($1, $2, $3, $4, ", $now, ")
                         ON CONFLICT (id) DO UPDATE SET stages = excluded.stages, last_seen_ms = excluded.last_seen_ms"
                    ))
                    .bind(text(id))
                    .bind(text(host))
                    .bind(stage_list(stages))
                    .bind(now())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn queue_status(&self, cohort_id: i64) -> Result<QueueStatus, StoreError> {
                    let submissions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE cohort_id = $1")
                        .bind(cohort_id)
                        .fetch_one(&self.pool)
                        .await?;
                    let mut stages: Vec<(Stage, StageCounts)> = Vec::new();
                    for row in sqlx::query("SELECT stage, status, COUNT(*) AS n FROM jobs WHERE cohort_id = $1 GROUP BY stage, status")
                        .bind(cohort_id)
                        .fetch_all(&self.pool)
                        .await?
                    {
                        let stage = stage_of("jobs", row.try_get("stage")?)?;
                        let status = status_of(row.try_get("status")?)?;
                        let n: i64 = row.try_get("n")?;
                        match stages.iter_mut().find(|(s, _)| *s == stage) {
                            Some((_, c)) => c.add(status, n as u64),
                            None => {
                                let mut c = StageCounts::default();
                                c.add(status, n as u64);
                                stages.push((stage, c));
                            }
                        }
                    }
                    stages.sort_by_key(|(s, _)| *s);
                    let mut running = Vec::new();
                    let mut ended = Vec::new();
                    for row in sqlx::query(
                        "SELECT j.id, s.candidate, j.stage, j.status, j.worker, j.attempts, j.claimed_at_ms, j.lease_until_ms, j.last_error
                         FROM jobs j JOIN submissions s ON s.id = j.submission_id
                         WHERE j.cohort_id = $1 AND j.status IN ('running', 'failed', 'dead') ORDER BY j.id",
                    )
                    .bind(cohort_id)
                    .fetch_all(&self.pool)
                    .await?
                    {
                        let status = status_of(row.try_get("status")?)?;
                        let (job_id, candidate, stage) = (
                            row.try_get("id")?,
                            row.try_get("candidate")?,
                            stage_of("jobs", row.try_get("stage")?)?,
                        );
                        if status == JobStatus::Running {
                            running.push(RunningJob {
                                job_id,
                                candidate,
                                stage,
                                worker: row.try_get("worker")?,
                                attempt: row.try_get("attempts")?,
                                claimed_at_ms: row.try_get("claimed_at_ms")?,
                                lease_until_ms: row.try_get("lease_until_ms")?,
                            });
                        } else {
                            ended.push(EndedJob {
                                job_id,
                                candidate,
                                stage,
                                status,
                                attempts: row.try_get("attempts")?,
                                last_error: row.try_get("last_error")?,
                            });
                        }
                    }
                    let now_ms: i64 = sqlx::query_scalar(concat!("SELECT ", $now)).fetch_one(&self.pool).await?;
                    Ok(QueueStatus {
                        submissions: submissions as u64,
                        stages,
                        running,
                        ended,
                        now_ms,
                    })
                }

                async fn pending(&self, cohort: Option<i64>, stages: &[Stage]) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')
                           AND (CAST($1 AS BIGINT) IS NULL OR cohort_id = $1)
                           AND (',' || $2 || ',') LIKE ('%,' || stage || ',%')",
                    )
                    .bind(cohort)
                    .bind(stage_list(stages))
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(n as u64)
                }

                async fn holders(&self) -> Result<Vec<String>, StoreError> {
                    let rows: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT worker FROM jobs WHERE status = 'running' AND worker IS NOT NULL ORDER BY worker",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows)
                }

                async fn expire_leases(&self, worker: &str) -> Result<u64, StoreError> {
                    let done = sqlx::query(concat!(
                        "UPDATE jobs SET lease_until_ms = ", $now, " - 1, updated_at = $2
                         WHERE status = 'running' AND worker = $1"
                    ))
                    .bind(text(worker))
                    .bind(now())
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                }

                async fn job_records(&self, lease: &Lease) -> Result<Option<(CohortRecord, SubmissionRecord)>, StoreError> {
                    let cohort = sqlx::query("SELECT id, name, spec_json FROM cohorts WHERE id = $1")
                        .bind(lease.cohort_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    let sub = sqlx::query("SELECT * FROM submissions WHERE id = $1")
                        .bind(lease.submission_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    let (Some(c), Some(s)) = (cohort, sub) else {
                        return Ok(None);
                    };
                    Ok(Some((Self::cohort_record(&c)?, Self::submission(&s)?)))
                }

                async fn workers(&self, within_ms: i64) -> Result<Vec<WorkerInfo>, StoreError> {
                    let rows = sqlx::query(concat!(
                        "SELECT id, host, stages, last_seen_ms FROM workers WHERE last_seen_ms >= ", $now, " - $1
                         ORDER BY last_seen_ms DESC, id"
                    ))
                    .bind(within_ms)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            let stages: String = r.try_get("stages")?;
                            Ok(WorkerInfo {
                                id: r.try_get("id")?,
                                host: r.try_get("host")?,
                                stages: stages.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                                last_seen_ms: r.try_get("last_seen_ms")?,
                            })
                        })
                        .collect()
                }
            }
        };
    };
}
pub(super) use queue_impl;

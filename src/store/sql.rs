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

/// The [`Store`](super::Store) implementation for `$store`, whose `pool` field is a pool of the
/// backend whose rows are `$row`; with `$lock`, the store's inherent method of that name is its
/// grading lock (the default otherwise).
macro_rules! sql_store {
    ($store:ty, $row:ty, $lock:ident) => {
        $crate::store::sql::sql_store!(@impl $store, $row, {
            async fn grading_lock(&self) -> Result<Option<$crate::store::GradingLock>, StoreError> {
                self.$lock().await
            }
        });
    };
    ($store:ty, $row:ty) => {
        $crate::store::sql::sql_store!(@impl $store, $row, {});
    };
    (@impl $store:ty, $row:ty, { $($extra:tt)* }) => {
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
                    let t = now();
                    let row = sqlx::query(
                        "INSERT INTO cohorts (name, spec_json, created_at, updated_at) VALUES ($1, $2, $3, $3)
                         ON CONFLICT (name) DO UPDATE SET spec_json = excluded.spec_json, updated_at = excluded.updated_at
                         RETURNING id",
                    )
                    .bind(text(name))
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
                    .fetch_one(&self.pool)
                    .await?;
                    Self::submission(&row)
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
                        "UPDATE stage_runs SET status = 'interrupted', outcome = 'interrupted',
                            error = 'abandoned: the process running it stopped', finished_at = $1
                         WHERE status = 'running'",
                    )
                    .bind(&t)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE submissions SET status = 'interrupted', outcome = 'interrupted', updated_at = $1 WHERE status = 'running'")
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
                    let finished = Utc::now();
                    let duration = (finished - run.started_at).num_milliseconds();
                    let mut tx = self.pool.begin().await?;
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
                    .execute(&mut *tx)
                    .await?;
                    if result.status == RunStatus::Done {
                        sqlx::query("DELETE FROM evidence_items WHERE submission_id = $1 AND stage = $2")
                            .bind(run.submission_id)
                            .bind(run.stage.as_str())
                            .execute(&mut *tx)
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
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
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

                $($extra)*
            }
        };
    };
}
pub(super) use sql_store;

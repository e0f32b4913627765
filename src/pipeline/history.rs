//! The history stage: how the candidate worked, read from the commits.

use std::sync::Arc;

use chrono::Utc;

use super::stage::{blocking, key, StageOk};
use super::{Fetched, Pipeline};
use crate::evidence;
use crate::git;
use crate::outcome::{Failure, OutcomeKind};
use crate::store::{Stage, StoreError};

/// The version of what the history stage concludes (pytest's configured test paths count as
/// tests; a partial copy's missing objects are listed and read around; an early baseline, CI and
/// linter configuration are signals; terse messages, and tests that came with the dump, are
/// signals; notebooks count their cells' source lines; blobs over limits.file_bytes are not
/// diffed; the template's tests deleted or cut down are signals); part of its stage key.
const HISTORY_EVIDENCE: &str =
    "notebooks-1+fixtures-data+kept-lines+rendered-pages+one-person+placeholder-tests+blob-cap+template-tests";

impl Pipeline {
    /// Reads the history of the fetched commit.
    pub(super) async fn history_stage(&self, f: &Arc<Fetched>) -> Result<Result<(), Failure>, StoreError> {
        let fetched = &f.out.fetched;
        // The commits after the deadline are evidence too: a new deadline on the same commit
        // reads the history again, as does an assay that reads it differently (HISTORY_EVIDENCE).
        let history_key = key(&[&fetched.commit, &fetched.after_deadline.join(","), HISTORY_EVIDENCE]);
        let slots = &self.cpu_slots;
        let out = self
            .run_stage(&f.sub.rec, Stage::History, &history_key, || {
                let f = Arc::clone(f);
                async move {
                    let _permit = slots.acquire().await.map_err(|_| Failure::infra("cpu slots closed"))?;
                    blocking(move || {
                        let fetched = &f.out.fetched;
                        let report = git::analyze(&git::HistoryInput {
                            repo: &fetched.mirror,
                            commit: &fetched.commit,
                            now: Utc::now(),
                            max_commits: f.sub.settings.limits.commits,
                            after_deadline: &fetched.after_deadline,
                            salt: &f.sub.cohort.name,
                            max_blob: f.sub.settings.limits.file_bytes,
                        })?;
                        Ok(StageOk {
                            evidence: evidence::from_history(&report),
                            output: serde_json::to_value(&report).expect("history report serialises"),
                            commit: Some(fetched.commit.clone()),
                            outcome: OutcomeKind::Ok,
                        })
                    })
                    .await
                }
            })
            .await?;
        Ok(out.map(|_| ()))
    }
}

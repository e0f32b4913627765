//! The draft stage: the evidence so far plus the README's sections, drafted by the [`Drafter`]
//! (checklist questions, holistic criteria, feedback), and what it reads from the store.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::fetch::ensure_export;
use super::stage::{blocking, key, StageOk};
use super::{Fetched, Pipeline};
use crate::draft::{self, Drafter};
use crate::evidence::EvidenceItem;
use crate::git::HistoryReport;
use crate::outcome::{Failure, OutcomeKind};
use crate::repro;
use crate::results::{read_latest, FetchOutput, SandboxOutput};
use crate::store::{Stage, Store, StoreError};

impl Pipeline {
    /// Drafts the submission; a submission whose prompt (evidence, rubric, model, options) is
    /// unchanged is not drafted again, and unchanged questions keep their answers.
    pub(super) async fn draft_stage(
        &self,
        f: &Arc<Fetched>,
        drafter: &Arc<dyn Drafter>,
    ) -> Result<Result<(), Failure>, StoreError> {
        let (cohort, rec) = (&f.sub.cohort, &f.sub.rec);
        let DraftEvidence {
            items,
            flags,
            facts,
            commits,
            previous,
        } = draft_evidence(self.store.as_ref(), rec.id).await?;
        // Questions (and feedback) whose prompt has not changed keep the answers of the last draft.
        let (previous, previous_feedback) = previous
            .filter(|r| r.model == drafter.model_id())
            .map(|r| (r.answers, r.feedback))
            .unwrap_or_default();
        let evidence_hash = {
            let mut h = Sha256::new();
            h.update(serde_json::to_vec(&items).expect("evidence serialises"));
            h.update(serde_json::to_vec(&flags).expect("evidence serialises"));
            hex::encode(h.finalize())
        };
        let options = serde_json::to_string(drafter.options()).expect("options serialise");
        let reading = format!("{} {}", crate::ask::reading_key(), draft::readme_key());
        let draft_key = key(&[
            &f.out.fetched.commit,
            drafter.model_id(),
            &cohort.rubric_hash,
            draft::PROMPT_VERSION,
            crate::ask::fingerprint(),
            &reading,
            crate::rubric::checks::VERSION,
            &options,
            &evidence_hash,
        ]);
        let out = self
            .run_stage(rec, Stage::Draft, &draft_key, || {
                let (f, mut facts) = (Arc::clone(f), facts.clone());
                let (items, commits, previous) = (items.clone(), commits.clone(), previous.clone());
                let previous_feedback = previous_feedback.clone();
                let flags = flags.clone();
                async move {
                    let rubric = Arc::clone(&f.sub.cohort.rubric);
                    let (readme, readme_lines) =
                        blocking(move || readme_evidence(&f.out, &f.sub.settings.limits)).await?;
                    facts.readme_lines = Some(readme_lines);
                    let (record, extra) = drafter
                        .draft(draft::DraftInput {
                            rubric: &rubric,
                            band_above: rubric.band_above,
                            stage_items: items,
                            readme,
                            commits,
                            flags,
                            facts,
                            options: drafter.options(),
                            previous,
                            previous_feedback,
                        })
                        .await
                        .map_err(|e| Failure::new(OutcomeKind::InternalError, format!("draft: {e:#}")))?;
                    Ok(StageOk {
                        output: serde_json::to_value(&record).expect("draft record serialises"),
                        evidence: extra,
                        commit: None,
                        outcome: OutcomeKind::Ok,
                    })
                }
            })
            .await?;
        Ok(out.map(|_| ()))
    }
}

/// What the draft stage reads of a submission besides its README.
pub struct DraftEvidence {
    /// The stored evidence without the draft stage's own items (D, C: rebuilt each time) and
    /// the screen stage's.
    pub items: Vec<EvidenceItem>,
    /// The screen stage's `I` items.
    pub flags: Vec<EvidenceItem>,
    pub facts: draft::Facts,
    /// The candidate's commit messages as `C` items.
    pub commits: Vec<EvidenceItem>,
    /// The submission's last draft, when there is one.
    pub previous: Option<draft::DraftRecord>,
}

/// Reads what the draft stage drafts from (the README aside, see [`readme_evidence`]): the
/// evidence and the submission's runs, each read once.
pub async fn draft_evidence(store: &dyn Store, submission_id: i64) -> Result<DraftEvidence, StoreError> {
    let (flags, items): (Vec<EvidenceItem>, Vec<EvidenceItem>) = store
        .evidence(submission_id)
        .await?
        .into_iter()
        .filter(|i| !i.id.starts_with('D') && !i.id.starts_with('C'))
        .partition(|i| i.id.starts_with('I'));
    let runs = store.runs(submission_id).await?;
    let sandbox_report = read_latest::<SandboxOutput>(&runs, submission_id, Stage::Sandbox)?.and_then(|o| o.report);
    let repro_report: Option<repro::ReproReport> = read_latest(&runs, submission_id, Stage::Repro)?;
    let history: Option<HistoryReport> = read_latest(&runs, submission_id, Stage::History)?;
    let facts = draft::Facts::from_reports(history.as_ref(), sandbox_report.as_ref(), repro_report.as_ref(), None);
    Ok(DraftEvidence {
        items,
        flags,
        facts,
        // Questions read the messages that can say something (ids as screening numbers them).
        commits: crate::ask::commit_items(history.as_ref())
            .into_iter()
            .filter(|c| crate::ask::says_something(&c.text))
            .collect(),
        previous: read_latest(&runs, submission_id, Stage::Draft)?,
    })
}

/// The README's `D` items and line count from the graded tree (re-exported from the mirror
/// when the export was cleaned). Blocking: run it off the async runtime.
pub fn readme_evidence(
    fetch: &FetchOutput,
    limits: &crate::config::Limits,
) -> Result<(Vec<EvidenceItem>, usize), Failure> {
    ensure_export(fetch, limits)?;
    Ok(draft::readme_evidence(&fetch.export.dir))
}

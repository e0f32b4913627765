//! The screen stage: every candidate-written item the earlier stages stored (history, test
//! output, findings), the README's sections and the commit messages, screened for text aimed
//! at the grader or the model. Its `I` items are evidence whether or not the model drafts:
//! graders see them and triage doubts the submission; the draft stage reads them.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::draft::readme_evidence;
use super::stage::{blocking, key, StageOk};
use super::{Fetched, Pipeline};
use crate::evidence::EvidenceItem;
use crate::git::HistoryReport;
use crate::outcome::OutcomeKind;
use crate::results::read_latest;
use crate::store::{Stage, StoreError};

impl Pipeline {
    /// Screens the submission's text; done again only when what it reads or the patterns change.
    pub(super) async fn screen_stage(
        &self,
        f: &Arc<Fetched>,
    ) -> Result<Result<(), crate::outcome::Failure>, StoreError> {
        let rec = &f.sub.rec;
        let items: Vec<EvidenceItem> = self
            .store
            .evidence(rec.id)
            .await?
            .into_iter()
            .filter(|i| !matches!(i.id.chars().next(), Some('D' | 'C' | 'I')))
            .collect();
        let history: Option<HistoryReport> = read_latest(&self.store.runs(rec.id).await?, rec.id, Stage::History)?;
        let commits = crate::ask::commit_items(history.as_ref());
        let read = {
            let mut h = Sha256::new();
            h.update(serde_json::to_vec(&items).expect("evidence serialises"));
            h.update(serde_json::to_vec(&commits).expect("evidence serialises"));
            hex::encode(h.finalize())
        };
        let screen_key = key(&[&f.out.fetched.commit, &crate::untrusted::fingerprint(), &read]);
        let out = self
            .run_stage(rec, Stage::Screen, &screen_key, || {
                let (f, items, commits) = (Arc::clone(f), items.clone(), commits.clone());
                async move {
                    blocking(move || {
                        let (readme, _) = readme_evidence(&f.out, &f.sub.settings.limits)?;
                        let flags = crate::untrusted::screen_items(items.iter().chain(&readme).chain(&commits));
                        Ok(StageOk {
                            output: serde_json::json!({ "screened": items.len() + readme.len() + commits.len(), "flags": flags.len() }),
                            evidence: flags,
                            commit: None,
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

//! The fetch stage: the repository's mirror fetched (or refreshed) within the limits and the
//! graded commit exported.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::stage::{blocking, key, StageOk};
use super::{Pipeline, Sub};
use crate::cohort::SubmissionSpec;
use crate::config::Settings;
use crate::git::{self, RepoSource, SourcePolicy};
use crate::outcome::{Failure, OutcomeKind};
use crate::results::FetchOutput;
use crate::store::{Stage, StoreError};

/// The version of what the fetch stage's export writes (a partial copy exports what it has and
/// lists what it lacks, where it used to fail); part of its stage key.
const EXPORT_VERSION: &str = "partial-copies-1";

impl Pipeline {
    /// Fetches and exports `sub`'s repository.
    pub(super) async fn fetch_stage(&self, sub: &Arc<Sub>) -> Result<Result<FetchOutput, Failure>, StoreError> {
        let rec = &sub.rec;
        let fetch_key = key(&[
            &rec.repo,
            rec.git_ref.as_deref().unwrap_or("HEAD"),
            &sub.cohort.deadline.map(|d| d.to_rfc3339()).unwrap_or_default(),
            EXPORT_VERSION,
        ]);
        let slots = &self.fetch_slots;
        let out = self
            .run_stage(rec, Stage::Fetch, &fetch_key, || {
                let sub = Arc::clone(sub);
                async move {
                    let _permit = slots
                        .acquire()
                        .await
                        .map_err(|_| Failure::infra("fetch slots closed"))?;
                    blocking(move || {
                        let export_root = sub
                            .settings
                            .data_dir
                            .join("exports")
                            .join(&sub.cohort.name)
                            .join(&sub.spec.candidate);
                        fetch_and_export(&sub.settings, &sub.spec, sub.policy, sub.cohort.deadline, &export_root)
                    })
                    .await
                }
            })
            .await?;
        Ok(match out {
            Ok(v) => Ok(crate::results::read_output(rec.id, Stage::Fetch, v)?),
            Err(f) => Err(f),
        })
    }
}

fn fetch_and_export(
    settings: &Settings,
    spec: &SubmissionSpec,
    policy: SourcePolicy,
    deadline: Option<chrono::DateTime<Utc>>,
    export_root: &Path,
) -> Result<StageOk, Failure> {
    let source = RepoSource::parse(&spec.repo, &spec.base_dir, policy)?;
    source.check_host(policy)?;
    let fetched = git::fetch(&git::FetchRequest {
        git_ref: spec.git_ref.as_deref(),
        deadline,
        ..git::FetchRequest::new(&source, settings)
    })?;
    let repo = git2::Repository::open_bare(&fetched.mirror).map_err(|e| {
        Failure::infra(format!(
            "cannot open mirror {}: {}",
            fetched.mirror.display(),
            e.message()
        ))
    })?;
    let dest: PathBuf = export_root.join(&fetched.commit);
    let export = git::export_tree(&repo, &fetched.commit, &dest, &settings.limits)?;
    let commit = fetched.commit.clone();
    let output = FetchOutput { fetched, export };
    Ok(StageOk {
        output: serde_json::to_value(&output).expect("fetch output serialises"),
        evidence: Vec::new(),
        commit: Some(commit),
        outcome: OutcomeKind::Ok,
    })
}

/// (Re)builds the export of `commit` from the mirror; a finished export is reused.
pub(super) fn ensure_export(
    mirror: &Path,
    commit: &str,
    dir: &Path,
    limits: &crate::config::Limits,
) -> Result<(), Failure> {
    let repo = git2::Repository::open_bare(mirror)
        .map_err(|e| Failure::infra(format!("cannot open mirror: {}", e.message())))?;
    git::export_tree(&repo, commit, dir, limits).map(|_| ())
}

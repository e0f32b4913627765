//! The fetch stage: the repository's mirror fetched (or refreshed) within the limits and the
//! graded commit exported.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::stage::{blocking, key, StageOk};
use super::{Pipeline, Sub};
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
                    let job = FetchJob::of(&sub);
                    let remote = matches!(
                        RepoSource::parse(&job.repo, &job.base_dir, job.policy),
                        Ok(RepoSource::Remote(_))
                    );
                    let output = if remote {
                        fetch_in_child(&job).await?
                    } else {
                        blocking(move || job.run()).await?
                    };
                    let commit = output.fetched.commit.clone();
                    Ok(StageOk {
                        output: serde_json::to_value(&output).expect("fetch output serialises"),
                        evidence: Vec::new(),
                        commit: Some(commit),
                        outcome: OutcomeKind::Ok,
                    })
                }
            })
            .await?;
        let out = match out {
            Ok(v) => crate::results::read_output::<FetchOutput>(rec.id, Stage::Fetch, v)?,
            Err(f) => return Ok(Err(f)),
        };
        Ok(self.local_copy(sub, out).await)
    }

    /// `out` with its mirror here: a fetch done on another machine (a queue worker's), or whose
    /// mirror was deleted since, is fetched again into this machine's mirror at the commit it
    /// recorded, and exported here.
    async fn local_copy(&self, sub: &Arc<Sub>, out: FetchOutput) -> Result<FetchOutput, Failure> {
        let commit = out.fetched.commit.clone();
        let mirror = out.fetched.mirror.clone();
        let has_commit = blocking(move || {
            Ok(git2::Repository::open_bare(&mirror)
                .ok()
                .and_then(|r| git2::Oid::from_str(&commit).ok().map(|oid| r.find_commit(oid).is_ok()))
                .unwrap_or(false))
        })
        .await?;
        if has_commit {
            return Ok(out);
        }
        let _permit = self
            .fetch_slots
            .acquire()
            .await
            .map_err(|_| Failure::infra("fetch slots closed"))?;
        let job = FetchJob {
            git_ref: Some(out.fetched.commit.clone()),
            deadline: None,
            ..FetchJob::of(sub)
        };
        let remote = matches!(
            RepoSource::parse(&job.repo, &job.base_dir, job.policy),
            Ok(RepoSource::Remote(_))
        );
        let mut here = if remote {
            fetch_in_child(&job).await?
        } else {
            blocking(move || job.run()).await?
        };
        if here.fetched.commit != out.fetched.commit {
            return Err(Failure::infra(format!(
                "fetched again here, {} gave commit {} where {} was recorded",
                git::redact(&sub.rec.repo),
                here.fetched.commit,
                out.fetched.commit
            )));
        }
        // What the recorded fetch found stays what the later stages read (the commits after the
        // deadline, which a fetch of the commit alone does not see).
        here.fetched.after_deadline = out.fetched.after_deadline;
        Ok(here)
    }
}

impl FetchJob {
    /// The fetch and export of `sub`'s repository as its cohort gives it.
    fn of(sub: &Sub) -> FetchJob {
        FetchJob {
            settings: (*sub.settings).clone(),
            repo: sub.spec.repo.clone(),
            base_dir: sub.spec.base_dir.clone(),
            git_ref: sub.spec.git_ref.clone(),
            policy: sub.policy,
            deadline: sub.cohort.deadline,
            export_root: sub
                .settings
                .data_dir
                .join("exports")
                .join(&sub.cohort.name)
                .join(&sub.spec.candidate),
        }
    }
}

/// One submission's fetch and export, owned: what the fetch child reads on its stdin (the
/// repository's URL may hold credentials: it goes over the pipe, never the command line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchJob {
    settings: Settings,
    repo: String,
    base_dir: PathBuf,
    git_ref: Option<String>,
    policy: SourcePolicy,
    deadline: Option<chrono::DateTime<Utc>>,
    export_root: PathBuf,
}

/// The fetch child's answer on its stdout.
#[derive(Debug, Serialize, Deserialize)]
enum FetchReply {
    Done(Box<FetchOutput>),
    Failed { kind: OutcomeKind, message: String },
}

/// How long past `limits.fetch_seconds` the fetch child may run before it is killed: a quarter
/// of it, between 2 and 30 seconds. libgit2's own check (in its progress callbacks) reports a
/// slow fetch first; this deadline holds when the server sends nothing and no callback runs.
fn fetch_grace(fetch_seconds: u64) -> Duration {
    Duration::from_secs((fetch_seconds / 4).clamp(2, 30))
}

impl FetchJob {
    /// Fetches and exports, in this process.
    fn run(&self) -> Result<FetchOutput, Failure> {
        let source = RepoSource::parse(&self.repo, &self.base_dir, self.policy)?;
        source.check_host(self.policy)?;
        let fetched = git::fetch(&git::FetchRequest {
            git_ref: self.git_ref.as_deref(),
            deadline: self.deadline,
            ..git::FetchRequest::new(&source, &self.settings)
        })?;
        let repo = git2::Repository::open_bare(&fetched.mirror).map_err(|e| {
            Failure::infra(format!(
                "cannot open mirror {}: {}",
                fetched.mirror.display(),
                e.message()
            ))
        })?;
        let dest = self.export_root.join(&fetched.commit);
        let export = git::export_tree(&repo, &fetched.commit, &dest, &self.settings.limits)?;
        Ok(FetchOutput { fetched, export })
    }
}

/// `assay internal-fetch`: reads a `FetchJob` (JSON) from stdin, runs it, writes the reply.
pub fn fetch_child_main() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)?;
    let job: FetchJob = serde_json::from_str(&input)?;
    let reply = match job.run() {
        Ok(output) => FetchReply::Done(Box::new(output)),
        Err(f) => FetchReply::Failed {
            kind: f.kind,
            message: f.message,
        },
    };
    println!("{}", serde_json::to_string(&reply)?);
    Ok(())
}

/// Runs `job` in a child process (`assay internal-fetch`) under a wall deadline of
/// `limits.fetch_seconds` + [`fetch_grace`]: past it, or when the stage is dropped (Ctrl-C),
/// the child is killed, its connection closed and its mirror lock released.
async fn fetch_in_child(job: &FetchJob) -> Result<FetchOutput, Failure> {
    use tokio::io::AsyncWriteExt;
    let exe = std::env::current_exe().map_err(|e| Failure::infra(format!("cannot find assay's own binary: {e}")))?;
    let mut child = tokio::process::Command::new(&exe)
        .arg("internal-fetch")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::infra(format!("cannot start the fetch process {}: {e}", exe.display())))?;
    let request = serde_json::to_vec(job).expect("fetch job serialises");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(&request)
        .await
        .map_err(|e| Failure::infra(format!("cannot hand the fetch process its job: {e}")))?;
    drop(stdin);
    let grace = fetch_grace(job.settings.limits.fetch_seconds);
    let wall = Duration::from_secs(job.settings.limits.fetch_seconds) + grace;
    let out = match tokio::time::timeout(wall, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| Failure::infra(format!("the fetch process failed: {e}")))?,
        Err(_) => {
            let url = git::redact(&job.repo);
            return Err(Failure::new(
                OutcomeKind::FetchTimeout,
                format!(
                    "{url}: no answer within limits.fetch_seconds ({}s) and {}s of grace: the fetch was stopped",
                    job.settings.limits.fetch_seconds,
                    grace.as_secs()
                ),
            ));
        }
    };
    match serde_json::from_slice::<FetchReply>(&out.stdout) {
        Ok(FetchReply::Done(output)) => Ok(*output),
        Ok(FetchReply::Failed { kind, message }) => Err(Failure::new(kind, message)),
        Err(_) => Err(Failure::infra(format!(
            "the fetch process ended without a reply ({}): {}",
            out.status,
            git::redact(String::from_utf8_lossy(&out.stderr).trim())
        ))),
    }
}

/// (Re)builds the fetch's export of its commit from the mirror (it may have been cleaned since);
/// a finished export is reused. Every stage that reads the exported tree calls it first.
/// Blocking: run it off the async runtime.
pub(super) fn ensure_export(fetch: &FetchOutput, limits: &crate::config::Limits) -> Result<(), Failure> {
    let repo = git2::Repository::open_bare(&fetch.fetched.mirror)
        .map_err(|e| Failure::infra(format!("cannot open mirror: {}", e.message())))?;
    git::export_tree(&repo, &fetch.fetched.commit, &fetch.export.dir, limits).map(|_| ())
}

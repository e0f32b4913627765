//! Outcome kinds: the stable, snake_case names of how a stage ended.
//!
//! Stored in the database and printed in JSON as strings; free text (an error
//! message) always goes *beside* a kind, never instead of one. New kinds may be
//! added; existing names never change meaning.

use serde::{Deserialize, Serialize};

/// How a stage (and so a submission) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The stage did its work.
    Ok,
    /// The repository URL uses a refused scheme or host (file://, ext::, a
    /// private address, a local path where only remotes are allowed).
    BlockedUrl,
    /// The repository could not be reached (DNS, connection, HTTP error).
    Unreachable,
    /// The repository does not exist (a local path that is not a repository,
    /// or a remote that answers "not found").
    RepoNotFound,
    /// The remote refused our credentials.
    AuthFailed,
    /// The named branch, tag or commit does not exist.
    RefNotFound,
    /// The repository has no commits.
    EmptyRepository,
    /// An object the graded history needs is missing or damaged (a partial
    /// copy, a broken pack): the message names the object and the commit.
    RepoCorrupt,
    /// Every commit of the ref is after the cohort deadline.
    NoCommitBeforeDeadline,
    /// The fetch received more bytes than `limits.fetch_bytes`.
    FetchTooLarge,
    /// The fetch took longer than `limits.fetch_seconds`.
    FetchTimeout,
    /// The graded tree is larger than `limits.export_bytes`.
    ExportTooLarge,
    /// The graded tree has more files than `limits.export_files`.
    TooManyFiles,
    /// A single file is larger than `limits.file_bytes`.
    FileTooLarge,
    /// The tree holds a path with `..`, a `.git` component or another name
    /// that could escape the export directory.
    UnsafePath,
    /// The graded tree nests a path deeper (or longer) than assay exports
    /// (see `git::export::MAX_DEPTH`).
    TreeTooDeep,
    /// The history has more commits than `limits.commits`.
    TooManyCommits,
    /// The repository has more branches and tags than `limits.refs`.
    TooManyRefs,
    /// The tests ran and passed.
    Passed,
    /// The tests ran and some failed.
    TestsFailed,
    /// The candidate's tests passed, but the assignment's hidden tests did not (failed, timed
    /// out, ran out of memory or printed past the cap).
    HiddenFailed,
    /// Installing the project's dependencies failed.
    InstallFailed,
    /// A sandbox phase ran past its wall time and was killed.
    Timeout,
    /// A sandbox phase ran out of memory.
    Oom,
    /// The tests printed more than the output cap.
    OutputTruncated,
    /// No tests were found or none ran.
    NoTests,
    /// No runner recognises the repository (and none was forced).
    NoRunner,
    /// Something on our side failed (disk, database, Docker); retried.
    InfraError,
    /// A bug in assay (a panic); not retried, reported.
    InternalError,
    /// The run was cancelled while the stage was in flight.
    Interrupted,
}

impl OutcomeKind {
    /// The stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Ok => "ok",
            OutcomeKind::BlockedUrl => "blocked_url",
            OutcomeKind::Unreachable => "unreachable",
            OutcomeKind::RepoNotFound => "repo_not_found",
            OutcomeKind::AuthFailed => "auth_failed",
            OutcomeKind::RefNotFound => "ref_not_found",
            OutcomeKind::EmptyRepository => "empty_repository",
            OutcomeKind::RepoCorrupt => "repo_corrupt",
            OutcomeKind::NoCommitBeforeDeadline => "no_commit_before_deadline",
            OutcomeKind::FetchTooLarge => "fetch_too_large",
            OutcomeKind::FetchTimeout => "fetch_timeout",
            OutcomeKind::ExportTooLarge => "export_too_large",
            OutcomeKind::TooManyFiles => "too_many_files",
            OutcomeKind::FileTooLarge => "file_too_large",
            OutcomeKind::UnsafePath => "unsafe_path",
            OutcomeKind::TreeTooDeep => "tree_too_deep",
            OutcomeKind::TooManyCommits => "too_many_commits",
            OutcomeKind::TooManyRefs => "too_many_refs",
            OutcomeKind::Passed => "passed",
            OutcomeKind::TestsFailed => "tests_failed",
            OutcomeKind::HiddenFailed => "hidden_failed",
            OutcomeKind::InstallFailed => "install_failed",
            OutcomeKind::Timeout => "timeout",
            OutcomeKind::Oom => "oom",
            OutcomeKind::OutputTruncated => "output_truncated",
            OutcomeKind::NoTests => "no_tests",
            OutcomeKind::NoRunner => "no_runner",
            OutcomeKind::InfraError => "infra_error",
            OutcomeKind::InternalError => "internal_error",
            OutcomeKind::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<OutcomeKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Whether a stage that ended this way is worth running again in the same
    /// run: only failures on our side or of the network are, never what the
    /// candidate's repository caused.
    pub fn is_retryable(self) -> bool {
        matches!(self, OutcomeKind::InfraError | OutcomeKind::Unreachable)
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage failure: a kind plus a message for humans (already free of credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: OutcomeKind,
    /// What happened, lowercase, naming the path or URL involved.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: OutcomeKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: crate::redact::redact(&message.into()),
        }
    }

    /// An infrastructure failure (retried).
    pub fn infra(message: impl Into<String>) -> Self {
        Failure::new(OutcomeKind::InfraError, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [
            OutcomeKind::Ok,
            OutcomeKind::NoCommitBeforeDeadline,
            OutcomeKind::UnsafePath,
        ] {
            assert_eq!(OutcomeKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
        }
    }
}

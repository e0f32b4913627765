//! Cohort files: one assignment and the submissions to grade (intake).
//!
//! The format is documented in README.md and shared/DESIGN.md. Unknown keys are
//! errors; every error carries file:line:col. Whether a submission's repository
//! can actually be fetched is *not* decided here: an unreachable or hostile URL
//! is a per-submission outcome, recorded by the fetch stage, so one bad entry
//! never stops a cohort.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::InputError;
use crate::ids::is_plain_id;
use crate::rubric::Rubric;

/// A validated cohort.
#[derive(Debug, Clone, Serialize)]
pub struct Cohort {
    /// The cohort file.
    pub file: PathBuf,
    /// The assignment's name; also the cohort's name in the store.
    pub name: String,
    /// The rubric file, resolved against the cohort file's directory.
    pub rubric_path: PathBuf,
    /// The loaded rubric.
    #[serde(skip)]
    pub rubric: Rubric,
    /// Grade the newest commit at or before this instant.
    pub deadline: Option<DateTime<Utc>>,
    /// `auto` or a runner name.
    pub runner: String,
    /// Hidden tests directory, resolved against the cohort file's directory.
    pub hidden_tests: Option<PathBuf>,
    /// How many submissions go to human review.
    pub top: u32,
    /// Lowered sandbox limits (`[limits]`).
    pub limits: CohortLimits,
    /// Submissions in file order.
    pub submissions: Vec<SubmissionSpec>,
}

/// The cohort's `[limits]` table: sandbox limits lowered for this assignment
/// (they can only be lowered; settings raise them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CohortLimits {
    /// Test phase wall time, seconds.
    pub test_seconds: Option<u64>,
    /// Install phase wall time, seconds.
    pub install_seconds: Option<u64>,
}

/// One `[[submission]]` entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubmissionSpec {
    /// Candidate id (an opaque id is best; it appears in file names).
    pub candidate: String,
    /// Repository URL or local path, exactly as written (may hold credentials:
    /// never store or show it; use [`crate::git::RepoSource`]).
    #[serde(skip)]
    pub repo: String,
    /// Branch, tag or commit; `None` means the remote's HEAD.
    pub git_ref: Option<String>,
    /// Directory the cohort file is in, for resolving local paths.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCohort {
    assignment: RawAssignment,
    #[serde(default)]
    limits: CohortLimits,
    #[serde(rename = "submission", default)]
    submissions: Vec<Spanned<RawSubmission>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssignment {
    name: Spanned<String>,
    rubric: Spanned<String>,
    deadline: Option<Spanned<toml::Value>>,
    runner: Option<Spanned<String>>,
    hidden_tests: Option<Spanned<String>>,
    top: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubmission {
    candidate: Spanned<String>,
    repo: Spanned<String>,
    #[serde(rename = "ref")]
    git_ref: Option<Spanned<String>>,
}

impl Cohort {
    /// Reads and validates a cohort file, and the rubric it names.
    pub fn load(path: &Path) -> Result<Cohort, InputError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read cohort: {e}")))?;
        Cohort::parse(path, &text)
    }

    /// Parses and validates cohort text; relative paths resolve against `path`'s directory.
    pub fn parse(path: &Path, text: &str) -> Result<Cohort, InputError> {
        let raw: RawCohort = toml::from_str(text).map_err(|e| {
            InputError::from_toml(path, text, &e)
                .with_hint("a cohort has one [assignment] table and [[submission]] tables; see README.md")
        })?;
        let at = |span: std::ops::Range<usize>, msg: String| InputError::at(path, text, span, msg);
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        let a = raw.assignment;

        let name = a.name.get_ref().clone();
        if !is_plain_id(&name) {
            return Err(at(
                a.name.span(),
                format!("assignment name {name:?} must be 1-64 letters, digits, '-', '_' or '.'"),
            ));
        }

        let rubric_path = base_dir.join(a.rubric.get_ref());
        if !rubric_path.is_file() {
            return Err(at(
                a.rubric.span(),
                format!("rubric file {} does not exist", rubric_path.display()),
            )
            .with_hint("paths are relative to the cohort file; the default rubric is rubrics/trial-project.toml"));
        }
        let rubric = Rubric::load(&rubric_path)?;

        let deadline = match &a.deadline {
            None => None,
            Some(d) => {
                let text_value = match d.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Datetime(dt) => dt.to_string(),
                    other => {
                        return Err(at(
                            d.span(),
                            format!("deadline must be a date-time, found {}", other.type_str()),
                        ))
                    }
                };
                let parsed = DateTime::parse_from_rfc3339(&text_value).map_err(|e| {
                    at(
                        d.span(),
                        format!("deadline {text_value:?} is not an RFC 3339 date-time with offset: {e}"),
                    )
                    .with_hint("write it like \"2026-11-20T23:59:00Z\"")
                })?;
                Some(parsed.with_timezone(&Utc))
            }
        };

        let runner = match &a.runner {
            None => "auto".to_string(),
            Some(r) if r.get_ref() == "auto" => "auto".to_string(),
            Some(r) => match crate::runner::by_name(r.get_ref()) {
                Ok(spec) => spec.name,
                Err(e) => return Err(at(r.span(), e).with_hint("use \"auto\" to detect the runner")),
            },
        };

        let hidden_tests = match &a.hidden_tests {
            None => None,
            Some(h) => {
                let p = base_dir.join(h.get_ref());
                if !p.is_dir() {
                    return Err(at(
                        h.span(),
                        format!("hidden tests directory {} does not exist", p.display()),
                    ));
                }
                Some(p)
            }
        };

        let top = match &a.top {
            None => 5,
            Some(t) if (0..=100_000).contains(t.get_ref()) => *t.get_ref() as u32,
            Some(t) => return Err(at(t.span(), format!("top must be 0 or more, found {}", t.get_ref()))),
        };

        if raw.submissions.is_empty() {
            return Err(InputError::file(path, "cohort has no [[submission]]")
                .with_hint("add [[submission]] tables with candidate and repo"));
        }
        let mut submissions: Vec<SubmissionSpec> = Vec::with_capacity(raw.submissions.len());
        for s in raw.submissions {
            let s = s.into_inner();
            let candidate = s.candidate.get_ref().clone();
            if !is_plain_id(&candidate) {
                return Err(at(
                    s.candidate.span(),
                    format!("candidate {candidate:?} must be 1-64 letters, digits, '-', '_' or '.'"),
                )
                .with_hint("use an opaque id such as \"c-017\"; names are not needed"));
            }
            if submissions.iter().any(|k| k.candidate == candidate) {
                return Err(at(s.candidate.span(), format!("candidate {candidate:?} appears twice")));
            }
            if s.repo.get_ref().trim().is_empty() {
                return Err(at(s.repo.span(), "repo is empty".into()));
            }
            let git_ref = match s.git_ref {
                Some(r) if r.get_ref().trim().is_empty() => return Err(at(r.span(), "ref is empty".into())),
                Some(r) => Some(r.into_inner()),
                None => None,
            };
            submissions.push(SubmissionSpec {
                candidate,
                repo: s.repo.into_inner(),
                git_ref,
                base_dir: base_dir.clone(),
            });
        }

        Ok(Cohort {
            file: path.to_path_buf(),
            name,
            rubric_path,
            rubric,
            deadline,
            runner,
            hidden_tests,
            top,
            limits: raw.limits,
            submissions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Cohort, InputError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.toml"),
            "name = \"r\"\n[[criterion]]\nid = \"a\"\ntitle = \"A\"\ndescription = \"d\"\nweight = 1\n\
             level = [{ score = 0, descriptor = \"no\" }, { score = 1, descriptor = \"yes\" }]\n",
        )
        .unwrap();
        Cohort::parse(&dir.path().join("cohort.toml"), text)
    }

    fn check_err(text: &str, line: usize, col: usize, needle: &str) {
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.col), (Some(line), Some(col)), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }

    #[test]
    fn valid_cohort_parses() {
        let c = parse(
            "[assignment]\nname = \"churn\"\nrubric = \"r.toml\"\ndeadline = 2026-11-20T23:59:00Z\n\
             [[submission]]\ncandidate = \"c-1\"\nrepo = \"https://example.org/x.git\"\nref = \"main\"\n",
        )
        .unwrap();
        assert_eq!(c.name, "churn");
        assert_eq!(c.deadline.unwrap().to_rfc3339(), "2026-11-20T23:59:00+00:00");
        assert_eq!(c.submissions[0].git_ref.as_deref(), Some("main"));
        assert_eq!(c.top, 5);
    }

    #[test]
    fn errors_point_at_the_offending_value() {
        let head = "[assignment]\nname = \"churn\"\nrubric = \"r.toml\"\n";
        check_err(&format!("{head}colour = 1\n"), 4, 1, "colour");
        check_err(
            &format!("{head}deadline = \"tomorrow\"\n[[submission]]\ncandidate = \"a\"\nrepo = \"x\"\n"),
            4,
            12,
            "RFC 3339",
        );
        check_err(
            &format!("{head}[[submission]]\ncandidate = \"a\"\nrepo = \"x\"\n[[submission]]\ncandidate = \"a\"\nrepo = \"y\"\n"),
            8,
            13,
            "twice",
        );
        check_err(
            &format!("{head}[[submission]]\ncandidate = \"../etc\"\nrepo = \"x\"\n"),
            5,
            13,
            "candidate",
        );
        check_err(
            "[assignment]\nname = \"c\"\nrubric = \"missing.toml\"\n",
            3,
            10,
            "does not exist",
        );
    }
}

//! `assay bench corpus MANIFEST --repos DIR`: `assay check` on real public take-home repositories
//! whose truth was recorded by hand, and how often assay is right.
//!
//! The manifest (TOML, `[[repo]]` tables) names each repository and commit and what is true of
//! it: its sandbox outcome here, whose fault a failed install is, how many tests pass, which
//! finding kinds assay may truly state of it and which would be false, and how its documented
//! README commands go. The repositories themselves are never in assay's tree: DIR holds them as
//! git directories, `DIR/OWNER+NAME/repo` (what the search tool's fetch leaves) or
//! `DIR/OWNER+NAME` (a bare clone or a checkout).
//!
//! Measured: outcome accuracy, install-cause accuracy (and every install counted against the
//! candidate whose failure was assay's), finding precision overall and per kind (a finding kind
//! the truth does not judge is listed as unjudged, never counted right), README-step agreement,
//! and the list of disagreements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::CheckReport;
use crate::diag::InputError;

/// The manifest file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The repositories.
    #[serde(rename = "repo")]
    pub repos: Vec<Entry>,
}

/// One repository and what is true of it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `owner/name` on GitHub.
    pub repo: String,
    /// The commit graded (40 hex digits).
    pub commit: String,
    /// What kind of take-home it is (`rust`, `python-ml`, `node-ts`, `go`, `notebooks`…).
    pub kind: String,
    /// The true sandbox outcome here (`passed`, `tests_failed`, `no_tests`, `no_runner`,
    /// `install_failed`, …).
    pub outcome: String,
    /// Other outcomes that are as true (a flaky test passes on some runs).
    #[serde(default)]
    pub outcome_also: Vec<String>,
    /// For a failed install: whose fault it truly is (`candidate`, `environment`, `resource_limit`).
    #[serde(default)]
    pub install_cause: Option<String>,
    /// Tests that truly pass, when known.
    #[serde(default)]
    pub tests_passed: Option<u64>,
    /// Finding kinds that are true of this repository.
    #[serde(default)]
    pub findings_true: Vec<String>,
    /// Finding kinds that would be false of it.
    #[serde(default)]
    pub findings_false: Vec<String>,
    /// Documented README commands and how they truly go here (`works`, `fails`, `cannot_run`).
    #[serde(default)]
    pub readme_steps: BTreeMap<String, String>,
    /// How the truth was established.
    #[serde(default)]
    pub notes: String,
}

impl Manifest {
    /// Reads and checks a manifest.
    pub fn load(path: &Path) -> Result<Manifest, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
        let m: Manifest = toml::from_str(&text).map_err(|e| InputError::from_toml(path, &text, &e))?;
        for e in &m.repos {
            if e.commit.len() != 40 || !e.commit.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(InputError::file(
                    path,
                    format!("{}: commit must be 40 hex digits", e.repo),
                ));
            }
            if e.repo.split('/').count() != 2 {
                return Err(InputError::file(path, format!("{}: repo must be owner/name", e.repo)));
            }
            if crate::outcome::OutcomeKind::parse(&e.outcome).is_none() {
                return Err(InputError::file(
                    path,
                    format!("{}: unknown outcome {:?}", e.repo, e.outcome),
                ));
            }
        }
        Ok(m)
    }
}

/// Where `entry`'s git directory is under `repos`, if it is there.
pub fn git_dir(repos: &Path, entry: &Entry) -> Option<PathBuf> {
    let base = repos.join(entry.repo.replace('/', "+"));
    [base.join("repo/.git"), base.join("repo"), base.join(".git"), base]
        .into_iter()
        .find(|p| git2::Repository::open(p).is_ok())
}

/// What assay said of one repository, judged against the truth.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// `owner/name`.
    pub repo: String,
    /// The take-home's kind.
    pub kind: String,
    /// The true outcome.
    pub truth: String,
    /// Other outcomes as true.
    pub truth_also: Vec<String>,
    /// assay's outcome (`error: …` when assay could not check it).
    pub outcome: String,
    /// assay's install cause, when the install failed.
    pub install_cause: Option<String>,
    /// The true install cause.
    pub truth_cause: Option<String>,
    /// Tests assay saw pass, and the truth.
    pub tests_passed: (u64, Option<u64>),
    /// Finding kinds assay stated: true, false, unjudged.
    pub findings: Vec<(String, Verdict)>,
    /// README steps: command, assay's status, the truth (when recorded).
    pub readme_steps: Vec<(String, String, Option<String>)>,
}

/// A stated finding against the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The truth says it is true.
    True,
    /// The truth says it is false.
    False,
    /// The truth does not say.
    Unjudged,
}

/// Judges `report` (or the error that stopped the check) against `entry`.
pub fn judge(entry: &Entry, report: Result<&CheckReport, String>) -> Judged {
    let verdict = |k: &str| {
        if entry.findings_true.iter().any(|t| t == k) {
            Verdict::True
        } else if entry.findings_false.iter().any(|t| t == k) {
            Verdict::False
        } else {
            Verdict::Unjudged
        }
    };
    match report {
        Ok(r) => {
            let mut kinds: Vec<String> = r.findings.iter().map(|f| f.kind.clone()).collect();
            kinds.dedup();
            Judged {
                repo: entry.repo.clone(),
                kind: entry.kind.clone(),
                truth: entry.outcome.clone(),
                truth_also: entry.outcome_also.clone(),
                outcome: r.outcome.as_str().to_string(),
                install_cause: r.install.as_ref().and_then(|d| d.cause).map(|c| c.as_str().to_string()),
                truth_cause: entry.install_cause.clone(),
                tests_passed: (r.tests.passed, entry.tests_passed),
                findings: kinds.into_iter().map(|k| (k.clone(), verdict(&k))).collect(),
                readme_steps: r
                    .readme_steps
                    .iter()
                    .map(|s| {
                        (
                            s.command.clone(),
                            s.status.as_str().to_string(),
                            entry.readme_steps.get(&s.command).cloned(),
                        )
                    })
                    .collect(),
            }
        }
        Err(e) => Judged {
            repo: entry.repo.clone(),
            kind: entry.kind.clone(),
            truth: entry.outcome.clone(),
            truth_also: entry.outcome_also.clone(),
            // A stage failure reads "kind: message": its kind is the outcome.
            outcome: match e.split_once(':') {
                Some((k, _)) if crate::outcome::OutcomeKind::parse(k.trim()).is_some() => k.trim().to_string(),
                _ => format!("error: {e}"),
            },
            install_cause: None,
            truth_cause: entry.install_cause.clone(),
            tests_passed: (0, entry.tests_passed),
            findings: Vec::new(),
            readme_steps: Vec::new(),
        },
    }
}

/// The corpus's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Repositories judged.
    pub repos: usize,
    /// Outcomes equal to the truth.
    pub outcomes_right: usize,
    /// Failed installs (in truth or in assay's view) whose cause assay got right, of all of them.
    pub causes_right: (usize, usize),
    /// Installs assay counted against the candidate whose failure truly was not theirs.
    pub false_candidate_installs: usize,
    /// Stated findings: true, false, unjudged.
    pub findings: (usize, usize, usize),
    /// Per kind: true, false, unjudged.
    pub per_kind: BTreeMap<String, (usize, usize, usize)>,
    /// README steps with a recorded truth: agreeing, of all.
    pub steps_right: (usize, usize),
    /// Every disagreement, one line each.
    pub disagreements: Vec<String>,
}

impl Summary {
    /// Outcome accuracy, 0–1.
    pub fn outcome_accuracy(&self) -> f64 {
        ratio(self.outcomes_right, self.repos)
    }

    /// Finding precision over the judged findings, 0–1.
    pub fn precision(&self) -> f64 {
        ratio(self.findings.0, self.findings.0 + self.findings.1)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Sums judged repositories up.
pub fn summarize(judged: &[Judged]) -> Summary {
    let mut s = Summary {
        repos: judged.len(),
        outcomes_right: 0,
        causes_right: (0, 0),
        false_candidate_installs: 0,
        findings: (0, 0, 0),
        per_kind: BTreeMap::new(),
        steps_right: (0, 0),
        disagreements: Vec::new(),
    };
    for j in judged {
        if j.outcome == j.truth || j.truth_also.contains(&j.outcome) {
            s.outcomes_right += 1;
        } else {
            s.disagreements
                .push(format!("{}: outcome {} (truth {})", j.repo, j.outcome, j.truth));
        }
        if j.install_cause.is_some() || j.truth_cause.is_some() {
            s.causes_right.1 += 1;
            if j.install_cause == j.truth_cause {
                s.causes_right.0 += 1;
            } else {
                s.disagreements.push(format!(
                    "{}: install cause {} (truth {})",
                    j.repo,
                    j.install_cause.as_deref().unwrap_or("none"),
                    j.truth_cause.as_deref().unwrap_or("none")
                ));
            }
            if j.install_cause.as_deref() == Some("candidate") && j.truth_cause.as_deref() != Some("candidate") {
                s.false_candidate_installs += 1;
            }
        }
        if let (seen, Some(truth)) = j.tests_passed {
            if seen != truth && j.outcome == j.truth && j.truth_also.is_empty() {
                s.disagreements
                    .push(format!("{}: {seen} tests passed (truth {truth})", j.repo));
            }
        }
        for (kind, v) in &j.findings {
            let k = s.per_kind.entry(kind.clone()).or_default();
            match v {
                Verdict::True => {
                    s.findings.0 += 1;
                    k.0 += 1;
                }
                Verdict::False => {
                    s.findings.1 += 1;
                    k.1 += 1;
                    s.disagreements.push(format!("{}: false finding {kind}", j.repo));
                }
                Verdict::Unjudged => {
                    s.findings.2 += 1;
                    k.2 += 1;
                    s.disagreements.push(format!("{}: unjudged finding {kind}", j.repo));
                }
            }
        }
        for (cmd, status, truth) in &j.readme_steps {
            if let Some(t) = truth {
                s.steps_right.1 += 1;
                if t == status {
                    s.steps_right.0 += 1;
                } else {
                    s.disagreements
                        .push(format!("{}: README step `{cmd}` {status} (truth {t})", j.repo));
                }
            }
        }
    }
    s
}

/// The table a person reads.
pub fn render(judged: &[Judged], s: &Summary) -> String {
    use std::fmt::Write;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| repository | kind | truth | assay | cause (truth) | tests (truth) | findings ✓/✗/? |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for j in judged {
        let count = |v: Verdict| j.findings.iter().filter(|(_, x)| *x == v).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | {} ({}) | {} ({}) | {}/{}/{} |",
            j.repo,
            j.kind,
            j.truth,
            j.outcome,
            if j.outcome == j.truth || j.truth_also.contains(&j.outcome) {
                ""
            } else {
                " ✗"
            },
            j.install_cause.as_deref().unwrap_or("—"),
            j.truth_cause.as_deref().unwrap_or("—"),
            j.tests_passed.0,
            j.tests_passed.1.map_or("?".to_string(), |t| t.to_string()),
            count(Verdict::True),
            count(Verdict::False),
            count(Verdict::Unjudged)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "outcome accuracy: {}/{} = {}",
        s.outcomes_right,
        s.repos,
        pct(s.outcome_accuracy())
    );
    let _ = writeln!(
        out,
        "install-cause accuracy: {}/{}; installs counted against the candidate that were assay's: {}",
        s.causes_right.0, s.causes_right.1, s.false_candidate_installs
    );
    let _ = writeln!(
        out,
        "finding precision: {}/{} = {} ({} unjudged)",
        s.findings.0,
        s.findings.0 + s.findings.1,
        pct(s.precision()),
        s.findings.2
    );
    for (kind, (t, f, u)) in &s.per_kind {
        let _ = writeln!(out, "  {kind}: {t} true, {f} false, {u} unjudged");
    }
    let _ = writeln!(
        out,
        "README steps agreeing with the truth: {}/{}",
        s.steps_right.0, s.steps_right.1
    );
    if !s.disagreements.is_empty() {
        let _ = writeln!(out, "\ndisagreements:");
        for d in &s.disagreements {
            let _ = writeln!(out, "- {d}");
        }
    }
    out
}

/// Checks every repository of `manifest` (those named in `only`, when it is not empty) found
/// under `repos`, two at a time, and judges each; with `save`, each check's JSON is written
/// there as `OWNER+NAME.json` for adjudicating findings by hand.
pub async fn run(
    sandbox: &dyn crate::sandbox::Sandbox,
    manifest: &Manifest,
    repos: &Path,
    settings: &crate::config::Settings,
    only: &[String],
    save: Option<&Path>,
) -> anyhow::Result<Vec<Judged>> {
    use futures_util::StreamExt;
    if let Some(dir) = save {
        std::fs::create_dir_all(dir)?;
    }
    let limits = crate::sandbox::SandboxLimits::from_settings(settings);
    let entries: Vec<(usize, &Entry)> = manifest
        .repos
        .iter()
        .filter(|e| only.is_empty() || only.contains(&e.repo))
        .enumerate()
        .collect();
    let total = entries.len();
    let judged = futures_util::stream::iter(entries)
        .map(|(i, entry)| {
            let limits = limits.clone();
            async move {
                let started = std::time::Instant::now();
                let result = check_one(sandbox, repos, entry, settings, limits, i).await;
                eprintln!(
                    "[{}/{total}] {}: {} ({:.0} s)",
                    i + 1,
                    entry.repo,
                    result
                        .as_ref()
                        .map_or_else(|e| format!("error: {e}"), |r| r.outcome.to_string()),
                    started.elapsed().as_secs_f64()
                );
                if let (Some(dir), Ok(r)) = (save, &result) {
                    let path = dir.join(format!("{}.json", entry.repo.replace('/', "+")));
                    if let Err(e) = std::fs::write(&path, serde_json::to_vec_pretty(r).unwrap_or_default()) {
                        eprintln!("cannot write {}: {e}", path.display());
                    }
                }
                judge(entry, result.as_ref().map_err(|e| e.clone()))
            }
        })
        .buffered(2)
        .collect::<Vec<_>>()
        .await;
    Ok(judged)
}

async fn check_one(
    sandbox: &dyn crate::sandbox::Sandbox,
    repos: &Path,
    entry: &Entry,
    settings: &crate::config::Settings,
    limits: crate::sandbox::SandboxLimits,
    index: usize,
) -> Result<CheckReport, String> {
    let git = git_dir(repos, entry).ok_or_else(|| {
        format!(
            "{} is not under {} (as {}/repo)",
            entry.repo,
            repos.display(),
            entry.repo.replace('/', "+")
        )
    })?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tree = tmp.path().join("tree");
    let (commit, file_limits, dest) = (entry.commit.clone(), settings.limits.clone(), tree.clone());
    let exported = tokio::task::spawn_blocking(move || {
        let repo = git2::Repository::open(&git).map_err(|e| e.message().to_string())?;
        crate::git::export_tree(&repo, &commit, &dest, &file_limits).map_err(|f| f.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    let job = format!("corpus-{}-{index}", std::process::id());
    let run = crate::check::CheckRun {
        job: &job,
        hidden_tests: None,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    crate::check::check_tree(sandbox, &tree, None, limits, &exported, run)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeKind;

    fn entry() -> Entry {
        toml::from_str::<Manifest>(
            r#"
[[repo]]
repo = "someone/payments"
commit = "49ddf6604bcb0000000000000000000000000000"
kind = "rust"
outcome = "passed"
tests_passed = 28
findings_true = ["no_lockfile"]
findings_false = ["readme_no_setup"]
readme_steps = { "cargo test" = "works" }
"#,
        )
        .unwrap()
        .repos
        .remove(0)
    }

    fn report(outcome: OutcomeKind, kinds: &[&str]) -> CheckReport {
        let v = serde_json::json!({
            "outcome": outcome,
            "runner": "rust",
            "tests": {"passed": 27, "failed": 0, "skipped": 0, "errors": 0, "cases": []},
            "badge": {"level": "functional", "reason": "x"},
            "findings": kinds.iter().enumerate().map(|(i, k)| serde_json::json!({
                "id": format!("R{}", i + 1), "kind": k, "severity": "warning", "message": "m", "fix": "f"
            })).collect::<Vec<_>>(),
            "flaky": [],
            "hidden": null,
            "install": null,
            "readme_steps": [{"command": "cargo test", "line": 3, "phase": "test", "status": "fails", "detail": "exit 101"}],
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn findings_are_judged_true_false_or_unjudged_and_disagreements_listed() {
        let e = entry();
        let j = judge(
            &e,
            Ok(&report(
                OutcomeKind::Passed,
                &["no_lockfile", "readme_no_setup", "large_files"],
            )),
        );
        let s = summarize(std::slice::from_ref(&j));
        assert_eq!(s.outcomes_right, 1);
        assert_eq!(s.findings, (1, 1, 1));
        assert!((s.precision() - 0.5).abs() < 1e-9);
        assert_eq!(s.steps_right, (0, 1));
        let text = render(&[j], &s);
        for line in [
            "someone/payments: false finding readme_no_setup",
            "someone/payments: unjudged finding large_files",
            "someone/payments: 27 tests passed (truth 28)",
            "README step `cargo test` fails (truth works)",
            "outcome accuracy: 1/1 = 100.0%",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        // An install assay blamed on the candidate that was its own environment is counted.
        let mut e = entry();
        e.outcome = "install_failed".into();
        e.install_cause = Some("environment".into());
        let mut r = report(OutcomeKind::InstallFailed, &[]);
        r.install = Some(crate::sandbox::diagnose::InstallDiagnosis {
            ok: false,
            cause: Some(crate::sandbox::diagnose::InstallCause::Candidate),
            step: None,
            diagnosis: None,
            fix: None,
        });
        let s = summarize(&[judge(&e, Ok(&r))]);
        assert_eq!((s.false_candidate_installs, s.causes_right), (1, (0, 1)));
        let s = summarize(&[judge(&e, Err("cannot export".into()))]);
        assert_eq!(s.outcomes_right, 0);
        let j = judge(&e, Err("repo_corrupt: object 1234 is missing".into()));
        assert_eq!(j.outcome, "repo_corrupt");
    }
}

//! Reproducibility: would a teammate get this project running from a clean
//! checkout, and get the same results?
//!
//! Pure over the exported tree (read only) and the sandbox report: static
//! checks (dependencies declared and pinned, README instructions that match
//! the project, absolute paths, committed secrets, large or binary artefacts,
//! notebooks with outputs, LFS pointers) plus what the sandbox saw (install,
//! tests, a second run that disagrees). Every finding is an evidence item
//! `R1`, `R2`, … with how to fix it; a badge in the spirit of the ACM artifact
//! badges sums it up.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::git::Exported;
use crate::outcome::OutcomeKind;
use crate::readme::{Purpose, Readme};
use crate::sandbox::diagnose::InstallCause;
use crate::sandbox::job::SandboxReport;
use crate::sandbox::steps::StepStatus;

/// Files above this size are "large data".
const LARGE_FILE: u64 = 10 << 20;
/// Model binaries above this size are flagged.
const MODEL_FILE: u64 = 1 << 20;
/// Text files above this size are not scanned for paths and secrets.
const MAX_SCANNED: u64 = 1 << 20;
/// Findings of one kind listed at most.
const MAX_PER_KIND: usize = 10;

/// One finding, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `R1`, `R2`, …
    pub id: String,
    /// Stable snake_case kind.
    pub kind: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// What is wrong (and where).
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// The badge level, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadgeLevel {
    /// Not even the source could be had.
    None,
    /// The source is there.
    Available,
    /// It installs and its tests run and pass from a clean checkout.
    Functional,
    /// …twice, identically, with declared and pinned dependencies and no errors.
    Reproduced,
}

/// A badge with the reason for its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Badge {
    /// The level.
    pub level: BadgeLevel,
    /// Why this level and not the next.
    pub reason: String,
}

/// Findings and badge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReproReport {
    /// The badge.
    pub badge: Badge,
    /// Findings in a fixed order of kinds.
    pub findings: Vec<Finding>,
}

struct Draft {
    kind: &'static str,
    severity: &'static str,
    message: String,
    fix: &'static str,
}

fn draft(kind: &'static str, severity: &'static str, message: String, fix: &'static str) -> Draft {
    Draft {
        kind,
        severity,
        message,
        fix,
    }
}

/// Assesses `tree` (as `export` wrote it) with the sandbox's report (absent when no runner matched).
pub fn assess(tree: &Path, sandbox: Option<&SandboxReport>, export: &Exported) -> ReproReport {
    let files = list_files(tree);
    let runner = sandbox.map(|s| s.runner.as_str());
    let mut out: Vec<Draft> = Vec::new();

    // A partial copy first: what follows was measured without these files.
    if !export.missing.is_empty() {
        let shown: Vec<String> = export
            .missing
            .iter()
            .take(MAX_PER_KIND)
            .map(|m| format!("{} (object {})", m.path, m.object))
            .collect();
        out.push(draft(
            "copy_incomplete",
            "warning",
            format!(
                "assay's copy of the repository lacks {} file(s) the graded commit names (objects missing: a partial copy): {}{}; the results below were measured without them, so a failure may be the copy's rather than the candidate's",
                export.missing.len(),
                shown.join(", "),
                if export.missing.len() > shown.len() { ", …" } else { "" }
            ),
            "grade a complete clone (`git fsck --full` lists what is missing) and re-run",
        ));
    }

    // What the sandbox saw.
    match sandbox {
        None => out.push(draft(
            "no_runner",
            "error",
            "no pyproject.toml, requirements*.txt, setup.py, Cargo.toml, package.json or go.mod at the top level"
                .into(),
            "declare the project's dependencies at the repository root",
        )),
        Some(s) => sandbox_findings(s, &files, &mut out),
    }

    // Dependencies declared and pinned.
    dependency_findings(tree, &files, runner, &mut out);

    // README instructions.
    readme_findings(tree, &files, &mut out);

    // Content that should not be in the repository.
    content_findings(tree, &files, &export.lfs_pointers, &mut out);

    let findings: Vec<Finding> = out
        .into_iter()
        .enumerate()
        .map(|(i, d)| Finding {
            id: format!("R{}", i + 1),
            kind: d.kind.to_string(),
            severity: d.severity.to_string(),
            message: d.message,
            fix: d.fix.to_string(),
        })
        .collect();
    let badge = badge(sandbox, &findings);
    ReproReport { badge, findings }
}

fn sandbox_findings(s: &SandboxReport, files: &[(String, u64)], out: &mut Vec<Draft>) {
    let first = s.runs.first();
    if !s.install.egress_refused.is_empty() {
        // The proxy's record of the install, whether or not the install then worked.
        out.push(draft(
            "install_egress_refused",
            "warning",
            format!(
                "the install asked for host(s) that are not package registries, and the sandbox refused them: {}",
                s.install.egress_refused.join(", ")
            ),
            "install every dependency from a package registry (PyPI, npm, crates.io, the Go proxy) or vendor it; \
             an install that downloads from elsewhere does not reproduce where the network is locked down",
        ));
    }
    // Tests that did not pass for a reason of assay's (a browser the image lacks, the test
    // disk limit) are not the project's failure: said so, and no failure finding follows.
    let ours = s.tests_diagnosis.as_ref().and_then(|d| d.cause.map(|c| (c, d)));
    if let Some((cause, d)) = ours {
        out.push(draft(
            "tests_not_assessed",
            "info",
            format!(
                "the tests did not pass for a reason of assay's ({}): {}; this says nothing about the project",
                cause.as_str(),
                d.diagnosis.as_deref().unwrap_or("see the output")
            ),
            "nothing for the candidate to do: the operator re-runs it after the fix in the tests diagnosis",
        ));
    }
    let outcome = if ours.is_some() { OutcomeKind::Ok } else { s.outcome };
    match outcome {
        OutcomeKind::InstallFailed => match s
            .install_diagnosis
            .as_ref()
            .filter(|d| d.cause != Some(InstallCause::Candidate) && d.cause.is_some())
        {
            // assay's environment or a sandbox limit: true, and not the candidate's doing.
            Some(d) => out.push(draft(
                "install_not_assessed",
                "info",
                format!(
                    "the install failed for a reason of assay's ({}): {}; this says nothing about the project",
                    d.cause.map_or("", InstallCause::as_str),
                    d.diagnosis.as_deref().unwrap_or("see the output")
                ),
                "nothing for the candidate to do: the operator re-runs it after the fix in the install diagnosis",
            )),
            None => out.push(draft(
                "install_failed",
                "error",
                format!(
                    "installing dependencies failed: {}",
                    last_lines(&s.install.stderr, &s.install.stdout)
                ),
                "run the install from a clean checkout and declare every dependency",
            )),
        },
        OutcomeKind::NoTests => {
            // Test files that never reported: the command died first (a database it needs, a
            // setup step), which is not the same as having no tests.
            let test_files = files
                .iter()
                .filter(|(p, _)| crate::git::classify::classify(p) == crate::git::classify::FileClass::Tests)
                .count();
            let died = first.filter(|r| r.phase.exit_code.is_some_and(|c| c != 0));
            match died {
                Some(r) if test_files > 0 => out.push(draft(
                    "tests_did_not_run",
                    "error",
                    format!(
                        "the repository has {test_files} test file(s), but the test command ended with exit {} before any test reported: {}",
                        r.phase.exit_code.unwrap_or_default(),
                        error_line(&r.phase.stdout, &r.phase.stderr)
                    ),
                    "make the tests run from a clean checkout with the documented commands (start or mock what they need, e.g. a database)",
                )),
                _ => out.push(draft(
                    "no_tests",
                    "error",
                    "no tests ran".into(),
                    "add tests that the runner's default command finds (e.g. tests/test_*.py for pytest)",
                )),
            }
        }
        OutcomeKind::TestsFailed => {
            let failing: Vec<&str> = first
                .map(|r| {
                    r.report
                        .cases
                        .iter()
                        .filter(|c| {
                            matches!(
                                c.status,
                                crate::runner::CaseStatus::Failed | crate::runner::CaseStatus::Error
                            )
                        })
                        .map(|c| c.id.as_str())
                        .take(5)
                        .collect()
                })
                .unwrap_or_default();
            out.push(draft(
                "tests_failed",
                "error",
                format!(
                    "tests fail in a clean environment: {}",
                    if failing.is_empty() {
                        "see the output".to_string()
                    } else {
                        failing.join(", ")
                    }
                ),
                "run the tests from a fresh clone with only the declared dependencies",
            ))
        }
        OutcomeKind::Timeout => out.push(draft(
            "timeout",
            "error",
            "a phase ran past its time limit and was stopped".into(),
            "make the tests finish within the limit; look for endless loops or waits on the network",
        )),
        OutcomeKind::Oom => out.push(draft(
            "oom",
            "error",
            "a phase ran out of memory".into(),
            "reduce the memory the tests need, e.g. smaller fixtures",
        )),
        OutcomeKind::OutputTruncated => out.push(draft(
            "output_truncated",
            "warning",
            "the tests printed more than the output cap".into(),
            "print less from tests",
        )),
        _ => {}
    }
    if let Some(h) = &s.hidden {
        if h.outcome != OutcomeKind::Passed {
            out.push(draft(
                "hidden_tests_failed",
                "error",
                format!(
                    "the assignment's hidden tests did not pass ({}): {} passed, {} failed, {} errors",
                    h.outcome, h.report.passed, h.report.failed, h.report.errors
                ),
                "make the solution meet the assignment's specification, not only the candidate's own tests",
            ));
        }
    }
    // A documented test command fails for the same reason of assay's as the tests did.
    let failing: Vec<String> = s
        .readme_steps
        .iter()
        .filter(|st| st.status == StepStatus::Fails)
        .filter(|st| ours.is_none() || st.phase != crate::sandbox::Phase::Test)
        .map(|st| format!("`{}` (README line {}): {}", st.command, st.line, st.detail))
        .collect();
    if !failing.is_empty() {
        out.push(draft(
            "readme_step_fails",
            "warning",
            format!(
                "{} of the README's documented commands fail{} in a clean checkout: {}",
                failing.len(),
                if failing.len() == 1 { "s" } else { "" },
                failing.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
            "run the README's commands from a fresh clone and correct the ones that fail",
        ));
    }
    if !s.flaky.is_empty() {
        out.push(draft(
            "flaky_tests",
            "warning",
            format!(
                "{} test(s) gave different results in two clean runs: {}",
                s.flaky.len(),
                s.flaky.join(", ")
            ),
            "remove dependence on time, randomness, test order or leftover state",
        ));
    }
}

fn dependency_findings(tree: &Path, files: &[(String, u64)], runner: Option<&str>, out: &mut Vec<Draft>) {
    let has = |name: &str| tree.join(name).is_file();
    match runner {
        Some("python") => {
            let is_reqs = |p: &str| {
                let name = p.rsplit('/').next().unwrap_or(p);
                name.starts_with("requirements") && name.ends_with(".txt")
            };
            // Pinning is judged on what the runner installs (the top level); what is declared,
            // on every requirements file (src/requirements.txt in Kedro's layout, a service's
            // own in a subdirectory).
            let reqs: Vec<&String> = files
                .iter()
                .map(|(p, _)| p)
                .filter(|p| !p.contains('/') && is_reqs(p))
                .collect();
            let nested: Vec<&String> = files
                .iter()
                .map(|(p, _)| p)
                .filter(|p| p.contains('/') && p.matches('/').count() <= 2 && is_reqs(p))
                .collect();
            let lock = has("poetry.lock") || has("uv.lock") || has("Pipfile.lock") || has("pdm.lock");
            let mut declared: BTreeSet<String> = BTreeSet::new();
            let mut unpinned: Vec<String> = Vec::new();
            for r in &reqs {
                let text = std::fs::read_to_string(tree.join(r)).unwrap_or_default();
                for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()) {
                    if line.is_empty() || line.starts_with('-') {
                        continue;
                    }
                    let name: String = line
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                        .collect();
                    declared.insert(normalise(&name));
                    if !line.contains("==") && !line.contains(" @ ") {
                        unpinned.push(name);
                    }
                }
            }
            let manifests = files.iter().map(|(p, _)| p.as_str()).filter(|p| {
                p.matches('/').count() <= 2
                    && matches!(
                        p.rsplit('/').next().unwrap_or(p),
                        "pyproject.toml" | "setup.py" | "setup.cfg" | "Pipfile"
                    )
            });
            for f in nested.iter().map(|p| p.as_str()).chain(manifests) {
                if let Ok(text) = std::fs::read_to_string(tree.join(f)) {
                    for word in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
                        declared.insert(normalise(word));
                        // Extras name packages too: kedro[pandas.CSVDataSet] brings pandas.
                        if let Some((head, _)) = word.split_once('.') {
                            declared.insert(normalise(head));
                        }
                    }
                }
            }
            // Tests alone selected the runner (or it was forced): nothing to install at the top
            // level, not even the test runner.
            let manifest = files.iter().any(|(p, _)| {
                !p.contains('/') && (is_reqs(p) || matches!(p.as_str(), "pyproject.toml" | "setup.py" | "setup.cfg" | "Pipfile"))
            });
            if !manifest {
                out.push(draft(
                    "no_manifest",
                    "warning",
                    "Python tests but no requirements.txt, pyproject.toml, setup.py or Pipfile at the top level: the install had nothing to install, not even the test runner (assay ran the tests with its image's pytest)".into(),
                    "declare the dependencies, pytest included, with exact versions (requirements.txt: pytest==8.3.3)",
                ));
            }
            if !unpinned.is_empty() && !lock {
                unpinned.truncate(MAX_PER_KIND);
                out.push(draft(
                    "unpinned_dependencies",
                    "warning",
                    format!("dependencies without an exact version: {}", unpinned.join(", ")),
                    "pin versions (name==1.2.3) or commit a lockfile, so a rerun installs the same code",
                ));
            }
            let missing = undeclared_imports(tree, files, &declared);
            if !missing.is_empty() {
                out.push(draft(
                    "undeclared_imports",
                    "error",
                    format!("imported but not declared: {}", missing.join(", ")),
                    "add them to requirements.txt or pyproject.toml",
                ));
            }
        }
        Some("rust") if !has("Cargo.lock") => out.push(draft(
            "no_lockfile",
            "warning",
            "Cargo.toml without Cargo.lock: dependency versions are resolved anew each time".into(),
            "commit Cargo.lock",
        )),
        Some("node") if !has("package-lock.json") && !has("npm-shrinkwrap.json") => out.push(draft(
            "no_lockfile",
            "warning",
            "package.json without package-lock.json: npm install resolves versions anew each time".into(),
            "commit package-lock.json (npm install writes it)",
        )),
        Some("go") if !has("go.mod") => out.push(draft(
            "go_no_module",
            "warning",
            "Go files but no go.mod: `go test ./...` needs a module (assay ran the tests in GOPATH mode, GO111MODULE=off, where only standard-library imports resolve)".into(),
            "run `go mod init <module path>` and `go mod tidy`, and commit go.mod and go.sum",
        )),
        Some("go") => {
            let text = std::fs::read_to_string(tree.join("go.mod")).unwrap_or_default();
            if text.contains("require") && !has("go.sum") {
                out.push(draft(
                    "no_lockfile",
                    "warning",
                    "go.mod requires modules but go.sum is missing".into(),
                    "commit go.sum (go mod tidy writes it)",
                ));
            }
        }
        None => nested_findings(tree, files, out),
        _ => {}
    }
}

/// Directories deep a project in a subdirectory is looked for (`services/api/go.mod`,
/// `airflow/images/trainer/requirements.txt`).
const NESTED_DEPTH: usize = 3;

/// No runner at the top level: the projects in subdirectories (an API in api/ and a web app in
/// web/, three exercises side by side) and whether each pins what it declares. Said either
/// way, so the pinned check can tell a monorepo that pins from one that does not.
fn nested_findings(tree: &Path, files: &[(String, u64)], out: &mut Vec<Draft>) {
    let present: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let beside = |manifest: &str, names: &[&str]| -> Option<String> {
        let dir = manifest.rsplit_once('/').map_or("", |(d, _)| d);
        names
            .iter()
            .map(|n| {
                if dir.is_empty() {
                    n.to_string()
                } else {
                    format!("{dir}/{n}")
                }
            })
            .find(|p| present.contains(p.as_str()))
    };
    let mut pinned: Vec<String> = Vec::new();
    let mut unpinned: Vec<String> = Vec::new();
    for (path, _) in files {
        let depth = path.matches('/').count();
        if depth == 0
            || depth > NESTED_DEPTH
            || crate::git::classify::classify(path) == crate::git::classify::FileClass::Generated
        {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let lock: Option<(&[&str], &str)> = match name {
            "package.json" => Some((
                &[
                    "package-lock.json",
                    "npm-shrinkwrap.json",
                    "yarn.lock",
                    "pnpm-lock.yaml",
                ],
                "lockfile",
            )),
            "Cargo.toml" => Some((&["Cargo.lock"], "Cargo.lock")),
            "Gopkg.toml" => Some((&["Gopkg.lock"], "Gopkg.lock")),
            "Pipfile" => Some((&["Pipfile.lock"], "Pipfile.lock")),
            "pyproject.toml" => Some((&["poetry.lock", "uv.lock", "pdm.lock"], "lockfile")),
            _ => None,
        };
        if let Some((locks, what)) = lock {
            // A Rust workspace member's lockfile is the workspace's, one level up at most.
            let found = beside(path, locks).or_else(|| {
                (name == "Cargo.toml")
                    .then(|| path.rsplit_once('/').and_then(|(d, _)| beside(d, locks)))
                    .flatten()
            });
            // A manifest that only configures tools (a pyproject.toml for ruff, a package.json
            // for scripts) declares nothing to pin.
            let declares = matches!(name, "Gopkg.toml" | "Pipfile")
                || std::fs::read_to_string(tree.join(path)).is_ok_and(|t| t.contains("ependencies"));
            match found {
                Some(l) => pinned.push(format!("{path} ({})", l.rsplit('/').next().unwrap_or(&l))),
                None if declares => unpinned.push(format!("{path} (no {what})")),
                None => {}
            }
        } else if name == "go.mod" {
            let text = std::fs::read_to_string(tree.join(path)).unwrap_or_default();
            match beside(path, &["go.sum"]) {
                Some(_) => pinned.push(format!("{path} (go.sum)")),
                None if text.contains("require") => unpinned.push(format!("{path} (no go.sum)")),
                None => pinned.push(format!("{path} (no requirements)")),
            }
        } else if name.starts_with("requirements") && name.ends_with(".txt") {
            let text = std::fs::read_to_string(tree.join(path)).unwrap_or_default();
            let loose: Vec<&str> = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty() && !l.starts_with('-'))
                .filter(|l| !l.contains("==") && !l.contains(" @ "))
                .collect();
            match loose.first() {
                None if !text.trim().is_empty() => pinned.push(format!("{path} (exact versions)")),
                None => {}
                Some(first) => unpinned.push(format!("{path} ({first} has no exact version)")),
            }
        }
    }
    let listed = |v: &[String]| -> String {
        let shown: Vec<&str> = v.iter().take(MAX_PER_KIND).map(String::as_str).collect();
        format!("{}{}", shown.join(", "), if v.len() > shown.len() { ", …" } else { "" })
    };
    if !unpinned.is_empty() {
        out.push(draft(
            "unpinned_dependencies",
            "warning",
            format!(
                "projects in subdirectories whose dependencies are not pinned: {}",
                listed(&unpinned)
            ),
            "commit each project's lockfile (or pin exact versions), so a rerun installs the same code",
        ));
    } else if !pinned.is_empty() {
        out.push(draft(
            "nested_projects",
            "info",
            format!(
                "no runner at the top level; {} dependency manifest(s) in subdirectories, each pinned: {}",
                pinned.len(),
                listed(&pinned)
            ),
            "nothing to fix: assay does not run projects in subdirectories yet",
        ));
    }
}

/// PyPI names compare case-insensitively with `-`, `_` and `.` alike.
fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Import names whose distribution has another name.
const IMPORT_ALIASES: &[(&str, &str)] = &[
    ("sklearn", "scikit-learn"),
    ("cv2", "opencv-python"),
    ("pil", "pillow"),
    ("yaml", "pyyaml"),
    ("bs4", "beautifulsoup4"),
    ("dateutil", "python-dateutil"),
    ("dotenv", "python-dotenv"),
    ("jwt", "pyjwt"),
    ("skimage", "scikit-image"),
    ("attr", "attrs"),
    ("google", "protobuf"),
    ("serial", "pyserial"),
    ("magic", "python-magic"),
];

/// Standard library modules (CPython 3.11) commonly imported.
const STDLIB: &[&str] = &[
    "__future__",
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "builtins",
    "bz2",
    "calendar",
    "cmath",
    "collections",
    "concurrent",
    "configparser",
    "contextlib",
    "contextvars",
    "copy",
    "csv",
    "ctypes",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "dis",
    "email",
    "enum",
    "errno",
    "faulthandler",
    "fnmatch",
    "fractions",
    "functools",
    "gc",
    "getpass",
    "gettext",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "http",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "logging",
    "lzma",
    "math",
    "mimetypes",
    "multiprocessing",
    "numbers",
    "operator",
    "os",
    "pathlib",
    "pdb",
    "pickle",
    "platform",
    "pprint",
    "queue",
    "random",
    "re",
    "secrets",
    "select",
    "shlex",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "stat",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "sys",
    "sysconfig",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "tkinter",
    "token",
    "tokenize",
    "tomllib",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib",
    "uuid",
    "venv",
    "warnings",
    "weakref",
    "xml",
    "zipfile",
    "zlib",
    "zoneinfo",
    "codecs",
    "locale",
    "atexit",
    "binascii",
    "cProfile",
    "profile",
    "pstats",
    "copyreg",
    "graphlib",
    "selectors",
    "socketserver",
    "wsgiref",
    "xmlrpc",
    "optparse",
    "readline",
    "resource",
    "grp",
    "pwd",
    "termios",
];

/// Top-level modules imported by the project's Python files that are neither
/// standard library, nor the project's own, nor declared.
fn undeclared_imports(tree: &Path, files: &[(String, u64)], declared: &BTreeSet<String>) -> Vec<String> {
    let re =
        Regex::new(r"(?m)^\s*(?:from\s+([A-Za-z_][A-Za-z0-9_]*)[\w.]*\s+import|import\s+([A-Za-z_][A-Za-z0-9_]*))")
            .expect("valid regex");
    // The project's own modules: top-level names of files and directories,
    // and any directory holding Python files (src/ layouts, packages).
    let mut local: BTreeSet<String> = BTreeSet::new();
    for (p, _) in files {
        for part in p.split('/') {
            local.insert(part.trim_end_matches(".py").to_ascii_lowercase());
        }
    }
    let mut missing: BTreeSet<String> = BTreeSet::new();
    for (p, size) in files {
        if !p.ends_with(".py") || *size > MAX_SCANNED {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(tree.join(p)) else {
            continue;
        };
        for cap in re.captures_iter(&text) {
            let Some(m) = cap.get(1).or_else(|| cap.get(2)) else {
                continue;
            };
            let name = m.as_str();
            let lower = name.to_ascii_lowercase();
            if STDLIB.contains(&name) || local.contains(&lower) || matches!(lower.as_str(), "pytest" | "setuptools") {
                continue;
            }
            let dist = IMPORT_ALIASES
                .iter()
                .find(|(i, _)| *i == lower)
                .map(|(_, d)| *d)
                .unwrap_or(&lower);
            // Namespace packages: `import google.cloud` comes from google-cloud-storage & co.
            let namespace = matches!(lower.as_str(), "google" | "azure" | "zope" | "jaraco")
                && declared.iter().any(|d| d.starts_with(&format!("{lower}-")));
            if !namespace && !declared.contains(&normalise(dist)) && !declared.contains(&normalise(&lower)) {
                missing.insert(name.to_string());
            }
        }
    }
    missing.into_iter().take(MAX_PER_KIND).collect()
}

fn readme_findings(tree: &Path, files: &[(String, u64)], out: &mut Vec<Draft>) {
    let Some(readme) = Readme::find(tree) else {
        out.push(draft(
            "no_readme",
            "error",
            "there is no README at the top level".into(),
            "add a README.md with how to install, how to run the tests, and what the results are",
        ));
        return;
    };
    let name = &readme.name;
    if !readme.documents_setup() {
        out.push(draft(
            "readme_no_setup",
            "warning",
            format!("{name} does not say how to install the project"),
            "add the install command (e.g. pip install -r requirements.txt)",
        ));
    }
    if !readme.documents_tests() {
        out.push(draft(
            "readme_no_test_command",
            "warning",
            format!("{name} does not say how to run the tests"),
            "add the test command (e.g. pytest)",
        ));
    }
    // A documented test command that cannot work in this repository.
    let project = Project::read(tree, files);
    let mut mismatched: Vec<String> = Vec::new();
    for c in readme.recognised().filter(|c| c.purpose == Some(Purpose::Test)) {
        let shown = shell_words::join(&c.argv);
        if mismatched.iter().any(|m| m.contains(&format!("`{shown}`"))) {
            continue;
        }
        if let Some(why) = project.cannot_run(c) {
            mismatched.push(format!("{name}:{} documents `{shown}`, but {why}", c.line));
        }
    }
    if !mismatched.is_empty() {
        mismatched.truncate(3);
        out.push(draft(
            "readme_test_command_mismatch",
            "warning",
            mismatched.join("; "),
            "document the test command that actually runs the tests",
        ));
    }
}

/// What a repository has that documented commands need.
struct Project {
    python: bool,
    rust: bool,
    go: bool,
    /// Script names of every package.json.
    node_scripts: Option<BTreeSet<String>>,
    /// Targets of every Makefile.
    make_targets: Option<BTreeSet<String>>,
}

impl Project {
    fn read(tree: &Path, files: &[(String, u64)]) -> Project {
        let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let any = |f: &dyn Fn(&str) -> bool| files.iter().any(|(p, _)| f(p));
        let mut node_scripts: Option<BTreeSet<String>> = None;
        let mut make_targets: Option<BTreeSet<String>> = None;
        for (p, _) in files.iter().filter(|(_, size)| *size <= MAX_SCANNED) {
            match base(p).as_str() {
                "package.json" if !p.contains("node_modules/") => {
                    let scripts = node_scripts.get_or_insert_with(BTreeSet::new);
                    let v: serde_json::Value = std::fs::read_to_string(tree.join(p))
                        .ok()
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_default();
                    if let Some(m) = v["scripts"].as_object() {
                        scripts.extend(m.keys().cloned());
                    }
                }
                "Makefile" | "makefile" | "GNUmakefile" => {
                    let targets = make_targets.get_or_insert_with(BTreeSet::new);
                    let text = std::fs::read_to_string(tree.join(p)).unwrap_or_default();
                    for line in text.lines() {
                        if let Some((head, _)) = line.split_once(':') {
                            if !line.starts_with(char::is_whitespace) && !head.contains('=') {
                                targets.extend(head.split_whitespace().map(String::from));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Project {
            python: any(&|p| p.ends_with(".py") || p.ends_with(".ipynb")),
            rust: any(&|p| base(p) == "Cargo.toml"),
            go: any(&|p| p.ends_with(".go") || base(p) == "go.mod"),
            node_scripts,
            make_targets,
        }
    }

    /// Why the documented command `c` cannot run in this repository, if it cannot.
    fn cannot_run(&self, c: &crate::readme::Command) -> Option<String> {
        let words: Vec<&str> = c.argv.iter().map(String::as_str).collect();
        match c.ecosystem {
            Some("python") if !self.python => Some("the repository has no Python code".into()),
            Some("rust") if !self.rust => Some("the repository has no Cargo.toml".into()),
            Some("go") if !self.go => Some("the repository has no Go code".into()),
            Some("node") => {
                let Some(scripts) = &self.node_scripts else {
                    return Some("the repository has no package.json".into());
                };
                let script = match words.as_slice() {
                    [_, "test" | "t", ..] => Some("test"),
                    [_, "run", s, ..] => Some(*s),
                    ["yarn" | "pnpm", s, ..] => Some(*s),
                    _ => None,
                };
                script
                    .filter(|s| !scripts.contains(*s))
                    .map(|s| format!("no package.json has a \"{s}\" script"))
            }
            None if words.first() == Some(&"make") => {
                let target = words.get(1).copied().unwrap_or("");
                match &self.make_targets {
                    None => Some("the repository has no Makefile".into()),
                    Some(t) if !t.contains(target) => Some(format!("no Makefile has a `{target}` target")),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

fn content_findings(tree: &Path, files: &[(String, u64)], lfs: &[String], out: &mut Vec<Draft>) {
    let abs = Regex::new(r#"(/home/[A-Za-z0-9._-]+/|/Users/[A-Za-z0-9._-]+/|[A-Za-z]:\\\\?Users\\\\?[A-Za-z0-9._-]+)"#)
        .expect("valid regex");
    let secrets: Vec<(&str, Regex)> = [
        ("an AWS access key", r"AKIA[0-9A-Z]{16}"),
        (
            "a private key",
            r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----",
        ),
        (
            "a GitHub token",
            r"(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{40,}",
        ),
        ("an OpenAI-style API key", r"sk-[A-Za-z0-9_-]{32,}"),
        ("a Slack token", r"xox[baprs]-[A-Za-z0-9-]{10,}"),
        ("a Google API key", r"AIza[0-9A-Za-z_-]{35}"),
    ]
    .into_iter()
    .map(|(n, r)| (n, Regex::new(r).expect("valid regex")))
    .collect();

    let mut abs_hits: Vec<String> = Vec::new();
    let mut secret_hits: Vec<String> = Vec::new();
    let mut large: Vec<String> = Vec::new();
    let mut models: Vec<String> = Vec::new();
    let mut notebooks: Vec<String> = Vec::new();
    for (p, size) in files {
        let lower = p.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        if matches!(
            ext,
            "pt" | "pth" | "onnx" | "h5" | "pkl" | "pickle" | "joblib" | "safetensors" | "gguf" | "ckpt"
        ) && *size > MODEL_FILE
        {
            models.push(format!("{p} ({} MB)", size >> 20));
        } else if *size > LARGE_FILE {
            large.push(format!("{p} ({} MB)", size >> 20));
        }
        if *size > MAX_SCANNED {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(tree.join(p)) else {
            continue;
        };
        if ext == "ipynb" && notebook_has_outputs(&text) {
            notebooks.push(p.clone());
        }
        let is_doc = matches!(ext, "md" | "rst" | "txt");
        for (n, line) in text.lines().enumerate() {
            if !is_doc && abs_hits.len() < MAX_PER_KIND && abs.is_match(line) {
                abs_hits.push(format!("{p}:{}", n + 1));
            }
            if secret_hits.len() < MAX_PER_KIND {
                if let Some((what, _)) = secrets.iter().find(|(_, re)| re.is_match(line)) {
                    // Where, never the secret itself.
                    secret_hits.push(format!("{what} at {p}:{}", n + 1));
                }
            }
        }
    }
    if !secret_hits.is_empty() {
        out.push(draft(
            "committed_secret",
            "error",
            format!("committed secrets: {}", secret_hits.join("; ")),
            "revoke the credential now, remove it from the history, and read it from the environment instead",
        ));
    }
    if !abs_hits.is_empty() {
        out.push(draft(
            "absolute_paths",
            "warning",
            format!("paths to the author's machine: {}", abs_hits.join(", ")),
            "use paths relative to the repository (pathlib.Path(__file__).parent) or a setting",
        ));
    }
    if !large.is_empty() {
        out.push(draft(
            "large_files",
            "warning",
            format!("large files committed: {}", large.join(", ")),
            "keep data out of git: document where to download it, or use a small sample",
        ));
    }
    if !models.is_empty() {
        out.push(draft(
            "model_binaries",
            "warning",
            format!("model binaries committed: {}", models.join(", ")),
            "publish trained models as release artefacts and document how to get or rebuild them",
        ));
    }
    if !notebooks.is_empty() {
        out.push(draft(
            "notebook_outputs",
            "info",
            format!("notebooks committed with outputs: {}", notebooks.join(", ")),
            "clear outputs before committing (jupyter nbconvert --clear-output) and put results in the README",
        ));
    }
    if !lfs.is_empty() {
        out.push(draft(
            "lfs_pointers",
            "error",
            format!(
                "Git LFS pointers instead of content: {}",
                lfs.iter().take(MAX_PER_KIND).cloned().collect::<Vec<_>>().join(", ")
            ),
            "commit the files themselves (if small) or document how to fetch them; graders do not run git lfs",
        ));
    }
}

fn notebook_has_outputs(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).ok().is_some_and(|v| {
        v["cells"].as_array().is_some_and(|cells| {
            cells
                .iter()
                .any(|c| c["outputs"].as_array().is_some_and(|o| !o.is_empty()))
        })
    })
}

fn badge(sandbox: Option<&SandboxReport>, findings: &[Finding]) -> Badge {
    let Some(s) = sandbox else {
        return Badge {
            level: BadgeLevel::Available,
            reason: "the source is available, but no runner could install it".into(),
        };
    };
    let passed_runs = s.runs.iter().filter(|r| r.outcome == OutcomeKind::Passed).count();
    // Reproducibility is of the candidate's own tests; failing hidden tests are a finding.
    let own = s.runs.first().map_or(s.outcome, |r| r.outcome);
    if own != OutcomeKind::Passed {
        return Badge {
            level: BadgeLevel::Available,
            reason: format!(
                "the source is available, but in a clean environment the result was {}",
                s.outcome
            ),
        };
    }
    let blocking: Vec<&str> = findings
        .iter()
        .filter(|f| {
            f.severity == "error"
                || matches!(
                    f.kind.as_str(),
                    "flaky_tests" | "unpinned_dependencies" | "no_lockfile" | "no_manifest" | "readme_step_fails"
                )
        })
        .map(|f| f.kind.as_str())
        .collect();
    if passed_runs == s.runs.len() && s.runs.len() >= 2 && blocking.is_empty() {
        return Badge {
            level: BadgeLevel::Reproduced,
            reason: format!(
                "installed and passed {} clean runs with identical results and pinned dependencies",
                s.runs.len()
            ),
        };
    }
    Badge {
        level: BadgeLevel::Functional,
        reason: format!(
            "installs and its tests pass from a clean checkout; not reproduced because of: {}",
            if blocking.is_empty() {
                "a run that did not pass".to_string()
            } else {
                blocking.join(", ")
            }
        ),
    }
}

/// The last line of a phase's output that names an error (ANSI colours removed), else its last
/// lines.
fn error_line(stdout: &str, stderr: &str) -> String {
    let plain = |t: &str| {
        Regex::new(r"\x1b\[[0-9;]*m")
            .expect("valid regex")
            .replace_all(t, "")
            .into_owned()
    };
    let text = plain(&format!("{stdout}\n{stderr}"));
    text.lines()
        .map(str::trim)
        .rfind(|l| l.to_ascii_lowercase().contains("error"))
        .map(|l| l.chars().take(300).collect())
        .unwrap_or_else(|| last_lines(&text, ""))
}

fn last_lines(a: &str, b: &str) -> String {
    let text = if a.trim().is_empty() { b } else { a };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..]
        .join(" / ")
        .chars()
        .take(400)
        .collect()
}

/// Regular files under `root` (relative paths, sizes), skipping what the
/// sandbox itself writes.
fn list_files(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if rel == crate::git::export::EXPORT_MARKER || rel.starts_with(".assay") {
                continue;
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push((rel, meta.len()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        dir
    }

    fn kinds(r: &ReproReport) -> Vec<&str> {
        r.findings.iter().map(|f| f.kind.as_str()).collect()
    }

    fn python_sandbox() -> SandboxReport {
        SandboxReport {
            runner: "python".into(),
            outcome: OutcomeKind::Passed,
            install: Default::default(),
            install_diagnosis: None,
            runs: vec![
                crate::sandbox::job::TestRun {
                    outcome: OutcomeKind::Passed,
                    report: Default::default(),
                    phase: Default::default(),
                },
                crate::sandbox::job::TestRun {
                    outcome: OutcomeKind::Passed,
                    report: Default::default(),
                    phase: Default::default(),
                },
            ],
            flaky: vec![],
            hidden: None,
            readme_steps: vec![],
            tests_diagnosis: None,
        }
    }

    /// Regression (corpus: a TypeScript API whose tests need PostgreSQL): a test command that
    /// died before reporting was "no tests ran, add tests".
    #[test]
    fn tests_that_died_before_reporting_are_not_no_tests() {
        let mut s = python_sandbox();
        s.outcome = OutcomeKind::NoTests;
        s.runs[0].outcome = OutcomeKind::NoTests;
        s.runs[0].phase.exit_code = Some(1);
        s.runs[0].phase.stderr = "\x1b[31mError: Can't reach database server at `localhost:5432`\x1b[39m\n".into();
        let t = tree(&[
            ("requirements.txt", "x==1\n"),
            ("tests/test_api.py", "def test_a(): pass\n"),
        ]);
        let r = assess(t.path(), Some(&s), &Exported::default());
        let f = r.findings.iter().find(|f| f.kind == "tests_did_not_run").unwrap();
        assert!(
            f.message.contains("1 test file(s)")
                && f.message
                    .ends_with("Error: Can't reach database server at `localhost:5432`"),
            "{}",
            f.message
        );
        assert!(!kinds(&r).contains(&"no_tests"));
        let t = tree(&[("requirements.txt", "x==1\n"), ("app.py", "x = 1\n")]);
        assert!(kinds(&assess(t.path(), Some(&s), &Exported::default())).contains(&"no_tests"));
    }

    #[test]
    fn tests_that_failed_for_assays_reasons_are_not_assessed_and_a_partial_copy_says_what_it_lacks() {
        use crate::sandbox::diagnose::{InstallCause, InstallDiagnosis};
        let t = tree(&[("README.md", "npm install\nnpm test\n"), ("package.json", "{}")]);
        let mut s = python_sandbox();
        s.outcome = OutcomeKind::Timeout;
        let r = assess(t.path(), Some(&s), &Exported::default());
        assert!(kinds(&r).contains(&"timeout"), "{:?}", kinds(&r));
        s.tests_diagnosis = Some(InstallDiagnosis {
            ok: false,
            cause: Some(InstallCause::Environment),
            step: Some("tests".into()),
            diagnosis: Some("karma needs Chrome: No binary for Chrome browser".into()),
            fix: None,
        });
        let r = assess(t.path(), Some(&s), &Exported::default());
        let k = kinds(&r);
        assert!(k.contains(&"tests_not_assessed") && !k.contains(&"timeout"), "{k:?}");
        // The documented test command failed for the same reason (a browser, or a database
        // server the tests need): not held against the project either; an install step is.
        let step = |phase| crate::sandbox::steps::ReadmeStep {
            command: "npm test".into(),
            line: 2,
            phase,
            status: StepStatus::Fails,
            detail: "exit 4".into(),
        };
        s.outcome = OutcomeKind::TestsFailed;
        s.readme_steps = vec![step(crate::sandbox::Phase::Test)];
        let r = assess(t.path(), Some(&s), &Exported::default());
        let k = kinds(&r);
        assert!(k.contains(&"tests_not_assessed"), "{k:?}");
        assert!(
            !k.contains(&"readme_step_fails") && !k.contains(&"tests_failed"),
            "{k:?}"
        );
        s.readme_steps = vec![step(crate::sandbox::Phase::Install)];
        let r = assess(t.path(), Some(&s), &Exported::default());
        assert!(kinds(&r).contains(&"readme_step_fails"), "{:?}", kinds(&r));
        s.readme_steps.clear();
        s.outcome = OutcomeKind::Timeout;
        let export = Exported {
            missing: vec![crate::git::MissingFile {
                path: "data/big.csv".into(),
                object: "3ff3deb87ebb1923651f272d2c9b8b8250f5761d".into(),
            }],
            ..Exported::default()
        };
        let r = assess(t.path(), Some(&s), &export);
        assert_eq!(r.findings[0].kind, "copy_incomplete");
        assert!(
            r.findings[0].message.contains("data/big.csv (object 3ff3deb8"),
            "{}",
            r.findings[0].message
        );
    }

    #[test]
    fn a_failing_readme_step_is_a_finding_and_an_environment_install_is_not_the_candidates() {
        use crate::sandbox::diagnose::InstallDiagnosis;
        use crate::sandbox::steps::ReadmeStep;
        let t = tree(&[
            ("README.md", "pip install -r requirements.txt\npytest\n"),
            ("requirements.txt", "numpy==1.26.4\n"),
        ]);
        let mut s = python_sandbox();
        let step = |status, detail: &str| ReadmeStep {
            command: "pip install -r requirements-gpu.txt".into(),
            line: 4,
            phase: crate::sandbox::Phase::Install,
            status,
            detail: detail.into(),
        };
        s.readme_steps = vec![
            step(StepStatus::Works, "exit 0"),
            step(StepStatus::CannotRun, "needs a GPU"),
        ];
        let r = assess(t.path(), Some(&s), &Exported::default());
        assert!(!kinds(&r).contains(&"readme_step_fails"), "{:?}", kinds(&r));
        s.readme_steps
            .push(step(StepStatus::Fails, "exit 1: ERROR: no such file"));
        let r = assess(t.path(), Some(&s), &Exported::default());
        let f = r.findings.iter().find(|f| f.kind == "readme_step_fails").unwrap();
        assert!(
            f.message.starts_with("1 of the README's documented commands fails"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("(README line 4): exit 1: ERROR: no such file"),
            "{}",
            f.message
        );
        assert_eq!(r.badge.level, BadgeLevel::Functional);
        assert!(r.badge.reason.contains("readme_step_fails"), "{}", r.badge.reason);

        // An install that failed for assay's reasons is not reported as the candidate's failure.
        let mut s = python_sandbox();
        s.outcome = OutcomeKind::InstallFailed;
        s.runs.clear();
        s.install_diagnosis = Some(InstallDiagnosis {
            ok: false,
            cause: Some(InstallCause::ResourceLimit),
            step: Some("pip install -r requirements.txt".into()),
            diagnosis: Some("the install filled its 8.0 GiB of disk under /work".into()),
            fix: Some("raise limits.install_disk".into()),
        });
        let k = kinds(&assess(t.path(), Some(&s), &Exported::default()))
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>();
        assert!(
            k.contains(&"install_not_assessed".to_string()) && !k.contains(&"install_failed".to_string()),
            "{k:?}"
        );
    }

    #[test]
    fn a_tidy_python_project_is_reproduced() {
        let t = tree(&[
            ("README.md", "# X\n\npip install -r requirements.txt\n\npytest\n"),
            ("requirements.txt", "numpy==1.26.4\nscikit-learn==1.5.0\n"),
            ("app/model.py", "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\nimport os\nfrom app import util\n"),
            ("app/util.py", "x = 1\n"),
        ]);
        let r = assess(t.path(), Some(&python_sandbox()), &Exported::default());
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.badge.level, BadgeLevel::Reproduced, "{}", r.badge.reason);
    }

    #[test]
    fn readme_commands_are_whole_commands_of_the_project() {
        // A Rust crate: `cargo test` is not `go test`, and `cargo run` says how to set it up.
        let t = tree(&[
            (
                "README.md",
                "# Engine\n\n```\ncargo run -- transactions.csv > accounts.csv\n```\n\nTests: `cargo test`.\n",
            ),
            ("Cargo.toml", "[package]\nname = \"e\"\n"),
            ("src/main.rs", "fn main() {}\n"),
        ]);
        let r = assess(t.path(), None, &Exported::default());
        let k = kinds(&r);
        assert!(!k.iter().any(|k| k.starts_with("readme")), "{k:?}");
        // `npm test` needs a test script, `make test` a test target, `go test` Go code.
        let t = tree(&[
            (
                "README.md",
                "Install: `npm ci`. Test: `npm test`, `make test` and `go test ./...`.\n",
            ),
            ("package.json", "{\"scripts\": {\"start\": \"node x.js\"}}"),
            ("Makefile", "build:\n\tcc x.c\n"),
        ]);
        let r = assess(t.path(), None, &Exported::default());
        let m = r
            .findings
            .iter()
            .find(|f| f.kind == "readme_test_command_mismatch")
            .unwrap();
        for part in [
            "README.md:1 documents `npm test`, but no package.json has a \"test\" script",
            "`make test`, but no Makefile has a `test` target",
            "`go test ./...`, but the repository has no Go code",
        ] {
            assert!(m.message.contains(part), "{}", m.message);
        }
    }

    #[test]
    fn undeclared_imports_unpinned_deps_and_readme_gaps_are_found() {
        let t = tree(&[
            ("README.md", "# X\n\nRun `cargo test`.\n"),
            ("requirements.txt", "numpy\n"),
            ("main.py", "import numpy\nimport pandas as pd\nimport yaml\n"),
        ]);
        let r = assess(t.path(), Some(&python_sandbox()), &Exported::default());
        let k = kinds(&r);
        assert!(k.contains(&"unpinned_dependencies"), "{k:?}");
        let missing = r.findings.iter().find(|f| f.kind == "undeclared_imports").unwrap();
        assert!(
            missing.message.contains("pandas") && missing.message.contains("yaml"),
            "{}",
            missing.message
        );
        assert!(
            k.contains(&"readme_no_setup") && k.contains(&"readme_test_command_mismatch"),
            "{k:?}"
        );
        assert_eq!(r.badge.level, BadgeLevel::Functional);
        // Ids are R1.. in order.
        assert!(r
            .findings
            .iter()
            .enumerate()
            .all(|(i, f)| f.id == format!("R{}", i + 1)));
    }

    #[test]
    fn projects_in_subdirectories_are_judged_on_their_own_pins() {
        // Regression (corpus: a Go API in api/ with go.sum and a web app in web/ with its
        // lockfile; three Go exercises with Gopkg.lock): nothing at the top level, all pinned.
        let t = tree(&[
            ("README.md", "# Workflow\n"),
            ("api/go.mod", "module x\n\nrequire github.com/go-chi/chi v1.5.4\n"),
            ("api/go.sum", "github.com/go-chi/chi v1.5.4 h1:x\n"),
            ("web/package.json", "{\"dependencies\": {\"react\": \"^18.0.0\"}}\n"),
            ("web/package-lock.json", "{}\n"),
            (
                "ml/images/trainer/requirements.txt",
                "pandas==2.2.0\nscikit-learn==1.4.0\n",
            ),
            ("web/node_modules/left-pad/package.json", "{}\n"),
        ]);
        let r = assess(t.path(), None, &Exported::default());
        let nested = r
            .findings
            .iter()
            .find(|f| f.kind == "nested_projects")
            .expect("nested_projects");
        assert!(
            nested.message.contains("3 dependency manifest(s)"),
            "{}",
            nested.message
        );
        assert!(nested.message.contains("api/go.mod (go.sum)"), "{}", nested.message);
        assert!(!kinds(&r).contains(&"unpinned_dependencies"));
        // One project without its lockfile: not pinned, and it is named.
        let t = tree(&[
            ("api/go.mod", "module x\n\nrequire github.com/go-chi/chi v1.5.4\n"),
            ("web/package.json", "{\"devDependencies\": {\"vite\": \"^5\"}}\n"),
            ("docs/package.json", "{\"scripts\": {}}\n"),
            ("tools/requirements.txt", "numpy>=1.0\n"),
        ]);
        let r = assess(t.path(), None, &Exported::default());
        let f = r
            .findings
            .iter()
            .find(|f| f.kind == "unpinned_dependencies")
            .expect("unpinned");
        assert!(
            f.message.contains("api/go.mod (no go.sum)")
                && f.message.contains("web/package.json (no lockfile)")
                && !f.message.contains("docs/package.json")
                && f.message
                    .contains("tools/requirements.txt (numpy>=1.0 has no exact version)"),
            "{}",
            f.message
        );
        assert!(!kinds(&r).contains(&"nested_projects"));
    }

    #[test]
    fn secrets_paths_notebooks_and_binaries_are_found_without_echoing_secrets() {
        let key = format!("AKIA{}", "ABCDEFGHIJKLMNOP");
        let t = tree(&[
            ("README.md", "pip install -r requirements.txt\npytest\n"),
            ("requirements.txt", "pytest==8.0.0\n"),
            (
                "config.py",
                &format!("KEY = '{key}'\nDATA = '/home/sam/data/train.csv'\n"),
            ),
            (
                "analysis.ipynb",
                r#"{"cells":[{"cell_type":"code","outputs":[{"text":"42"}],"source":[]}]}"#,
            ),
        ]);
        std::fs::write(t.path().join("model.pkl"), vec![0u8; 2 << 20]).unwrap();
        let r = assess(
            t.path(),
            Some(&python_sandbox()),
            &Exported {
                lfs_pointers: vec!["data/big.csv".to_string()],
                ..Exported::default()
            },
        );
        let k = kinds(&r);
        for want in [
            "committed_secret",
            "absolute_paths",
            "model_binaries",
            "notebook_outputs",
            "lfs_pointers",
        ] {
            assert!(k.contains(&want), "{want} missing from {k:?}");
        }
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains(&key), "the secret itself was echoed");
        assert!(text.contains("config.py:1") && text.contains("config.py:2"));
    }
}

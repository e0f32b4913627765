//! Runners: how to install and test a project of one ecosystem.
//!
//! A runner is a TOML spec (`runners/NAME.toml`, compiled into the binary so a
//! release build needs no files beside it): the image, which files detect it,
//! the install script (network on), the test script (network off), how results
//! are collected, and dependency cache directories.

pub mod parse;

use std::path::Path;

use serde::Deserialize;

use crate::diag::InputError;

pub use parse::{CaseStatus, TestCase, TestReport};

/// How a runner's results are read.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResultsSpec {
    /// A JUnit XML file written by the test command, relative to the work dir.
    pub junit: Option<String>,
    /// A named parser for the test output: `libtest`, `go-json`, `counts`.
    pub parser: Option<String>,
}

/// One runner spec.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunnerSpec {
    /// Runner name.
    pub name: String,
    /// Image name (tagged with the assay version when built).
    pub image: String,
    /// Higher wins when several runners detect a repository.
    pub priority: i32,
    /// File globs at the repository root that select this runner.
    pub detect: Vec<String>,
    /// Dependency cache directories (named volumes, writable only during install).
    #[serde(default)]
    pub cache: Vec<String>,
    /// Environment for both phases, `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Install script (bash), network on.
    pub install: String,
    /// Test script (bash), network off.
    pub test: String,
    /// Hidden-test script (bash), network off; writes JUnit XML to
    /// `.assay/hidden.xml`. Runners without one cannot run hidden tests.
    pub hidden: Option<String>,
    /// Result collection.
    pub results: ResultsSpec,
    /// How the README's documented steps run.
    #[serde(default)]
    pub steps: StepsSpec,
}

/// How a README's documented commands run in this runner's sandbox: in the environment the
/// runner's own install made (a user who followed the README would be in it).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StepsSpec {
    /// Shell run before each step (e.g. activating the runner's virtualenv).
    pub activate: Option<String>,
    /// Extra environment of the test-phase steps, `KEY=VALUE` (e.g. offline flags, since the
    /// test phase has no network).
    #[serde(default)]
    pub test_env: Vec<String>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("runners/python.toml", include_str!("../../runners/python.toml")),
    ("runners/rust.toml", include_str!("../../runners/rust.toml")),
    ("runners/node.toml", include_str!("../../runners/node.toml")),
    ("runners/go.toml", include_str!("../../runners/go.toml")),
];

/// The runners compiled into assay.
pub fn builtin() -> Vec<RunnerSpec> {
    BUILTIN
        .iter()
        .map(|(path, text)| RunnerSpec::parse(Path::new(path), text).expect("built-in runner specs are valid"))
        .collect()
}

/// A built-in runner by name; `Err` lists the names there are.
pub fn by_name(name: &str) -> Result<RunnerSpec, String> {
    let all = builtin();
    let names: Vec<String> = all.iter().map(|r| r.name.clone()).collect();
    all.into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| format!("no runner named {name:?}; runners: {}", names.join(", ")))
}

impl RunnerSpec {
    /// Parses and validates a spec; `path` is used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<RunnerSpec, InputError> {
        let spec: RunnerSpec = toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e))?;
        if spec.results.junit.is_none() && spec.results.parser.is_none() {
            return Err(InputError::file(
                path,
                "[results] needs junit = \"PATH\" or parser = \"NAME\"",
            ));
        }
        if let Some(p) = &spec.results.parser {
            if !matches!(p.as_str(), "libtest" | "go-json" | "counts") {
                return Err(InputError::file(path, format!("unknown results parser {p:?}"))
                    .with_hint("use libtest, go-json or counts"));
            }
        }
        if spec.detect.is_empty() {
            return Err(InputError::file(path, "detect must list at least one file glob"));
        }
        Ok(spec)
    }

    /// Whether the repository at `root` has a file this runner detects.
    pub fn detects(&self, root: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(root) else {
            return false;
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        self.detect.iter().any(|g| names.iter().any(|n| glob_match(g, n)))
    }
}

/// Picks the runner for the repository at `root`: the highest-priority one
/// that detects it.
pub fn detect(root: &Path) -> Option<RunnerSpec> {
    let mut all: Vec<RunnerSpec> = builtin().into_iter().filter(|r| r.detects(root)).collect();
    all.sort_by_key(|r| std::cmp::Reverse(r.priority));
    all.into_iter().next()
}

/// Matches a file name against a glob with `*` (any run) and `?` (one char).
pub fn glob_match(glob: &str, name: &str) -> bool {
    fn go(g: &[char], n: &[char]) -> bool {
        match (g.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&g[1..], n) || (!n.is_empty() && go(g, &n[1..])),
            (Some('?'), Some(_)) => go(&g[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&g[1..], &n[1..]),
            _ => false,
        }
    }
    let g: Vec<char> = glob.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&g, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_specs_parse() {
        let names: Vec<String> = builtin().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["python", "rust", "node", "go"]);
    }

    #[test]
    fn globs() {
        assert!(glob_match("requirements*.txt", "requirements-dev.txt"));
        assert!(glob_match("requirements*.txt", "requirements.txt"));
        assert!(!glob_match("requirements*.txt", "requirements.in"));
        assert!(glob_match("Cargo.toml", "Cargo.toml"));
        assert!(glob_match("?o.mod", "go.mod"));
    }

    fn check_detect(files: &[&str], expected: Option<&str>) {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(
            detect(dir.path()).map(|r| r.name),
            expected.map(String::from),
            "{files:?}"
        );
    }

    #[test]
    fn detection_follows_priority() {
        check_detect(&["requirements.txt"], Some("python"));
        check_detect(&["Cargo.toml"], Some("rust"));
        check_detect(&["package.json"], Some("node"));
        check_detect(&["go.mod"], Some("go"));
        // The GOPATH layout: Go files without go.mod.
        check_detect(&["main.go"], Some("go"));
        // A Python project with a package.json for its docs is still Python.
        check_detect(&["package.json", "pyproject.toml"], Some("python"));
        check_detect(&["README.md"], None);
    }
}

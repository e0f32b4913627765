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
    /// A jest `--json --outputFile` results file, relative to the work dir (read when there is
    /// no JUnit file).
    pub jest_json: Option<String>,
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
    /// Globs that select this runner only when no runner's `detect` does: tests with no
    /// manifest (`tests/test_*.py` and nothing to install). A glob may name one directory
    /// (`tests/test_*.py`).
    #[serde(default)]
    pub detect_fallback: Vec<String>,
    /// File names that, anywhere up to [`FALLBACK_DEPTH`] directories deep, keep
    /// `detect_fallback` from applying: dependencies declared where the runner does not read
    /// them (a conda environment.yml, a service's own requirements.txt) would be missing, and
    /// the tests would fail for want of what the candidate did declare.
    #[serde(default)]
    pub fallback_unless: Vec<String>,
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
    /// Directories under /work the install writes the environment into (a virtualenv): when
    /// hidden tests are to run, they are made root-owned and read-only once the install is
    /// done, so nothing the candidate's own test runs do (a `.pth` file, a plugin dropped into
    /// site-packages) is in the interpreter the hidden tests run in.
    #[serde(default)]
    pub seal: Vec<String>,
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

/// A fingerprint of the built-in runner specs (detection, install and test scripts): part of
/// the sandbox stage's key, so a changed runner measures again instead of serving a result it
/// would no longer give ("no runner" for tests it now runs).
pub fn fingerprint() -> String {
    fingerprint_of(BUILTIN)
}

fn fingerprint_of(specs: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (path, text) in specs {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
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
        let r = &spec.results;
        if r.junit.is_none() && r.jest_json.is_none() && r.parser.is_none() {
            return Err(InputError::file(
                path,
                "[results] needs junit = \"PATH\", jest_json = \"PATH\" or parser = \"NAME\"",
            ));
        }
        if let Some(p) = &spec.results.parser {
            if !matches!(p.as_str(), "libtest" | "go-json" | "counts") {
                return Err(InputError::file(path, format!("unknown results parser {p:?}"))
                    .with_hint("use libtest, go-json or counts"));
            }
        }
        if let Some(d) = spec
            .seal
            .iter()
            .find(|d| d.is_empty() || d.starts_with('/') || d.split('/').any(|p| p == ".." || p.is_empty()))
        {
            return Err(InputError::file(
                path,
                format!("seal {d:?} must be a directory inside /work, relative (.assay-venv)"),
            ));
        }
        if spec.detect.is_empty() {
            return Err(InputError::file(path, "detect must list at least one file glob"));
        }
        if let Some(g) = spec
            .detect
            .iter()
            .chain(&spec.detect_fallback)
            .find(|g| g.matches('/').count() > 1 || g.starts_with('/') || g.split('/').any(|p| p == ".."))
        {
            return Err(InputError::file(
                path,
                format!("detect glob {g:?} must be a file name or DIR/NAME inside the repository"),
            ));
        }
        if let Some(g) = spec.fallback_unless.iter().find(|g| g.contains('/')) {
            return Err(InputError::file(
                path,
                format!(
                    "fallback_unless {g:?} must be a file name (it is looked for at any depth up to {FALLBACK_DEPTH})"
                ),
            ));
        }
        Ok(spec)
    }

    /// Whether the repository at `root` has a file this runner detects.
    pub fn detects(&self, root: &Path) -> bool {
        any_file(root, &self.detect)
    }

    /// Whether the repository at `root` has a file this runner's `detect_fallback` names and
    /// none its `fallback_unless` names.
    pub fn detects_fallback(&self, root: &Path) -> bool {
        any_file(root, &self.detect_fallback) && !any_file_below(root, &self.fallback_unless, FALLBACK_DEPTH)
    }
}

/// Directories deep `fallback_unless` looks (`services/api/requirements.txt`).
pub const FALLBACK_DEPTH: usize = 3;

/// Whether a regular file at most `depth` directories below `root` has a name matching one of
/// `globs`. Symlinks are not followed.
fn any_file_below(root: &Path, globs: &[String], depth: usize) -> bool {
    if globs.is_empty() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    entries.flatten().any(|e| match e.file_type() {
        Ok(t) if t.is_file() => {
            let name = e.file_name().to_string_lossy().into_owned();
            globs.iter().any(|g| glob_match(g, &name))
        }
        Ok(t) if t.is_dir() && depth > 0 && e.file_name() != ".git" => any_file_below(&e.path(), globs, depth - 1),
        _ => false,
    })
}

/// Whether a regular file under `root` matches one of `globs` (a file name, or one directory
/// and a file name: `tests/test_*.py`). Directories are not followed through symlinks.
fn any_file(root: &Path, globs: &[String]) -> bool {
    let names = |dir: &Path| -> Vec<String> {
        let real_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        let Some(entries) = real_dir.then(|| std::fs::read_dir(dir).ok()).flatten() else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let top = names(root);
    globs.iter().any(|g| match g.split_once('/') {
        Some((dir, glob)) => names(&root.join(dir)).iter().any(|n| glob_match(glob, n)),
        None => top.iter().any(|n| glob_match(g, n)),
    })
}

/// Picks the runner for the repository at `root`: the highest-priority one that detects it,
/// else the highest-priority one whose fallback globs match.
pub fn detect(root: &Path) -> Option<RunnerSpec> {
    let all = builtin();
    // The first of equal priorities, as the specs are listed.
    let pick = |hit: &dyn Fn(&RunnerSpec) -> bool| {
        all.iter()
            .filter(|r| hit(r))
            .min_by_key(|r| std::cmp::Reverse(r.priority))
            .cloned()
    };
    pick(&|r| r.detects(root)).or_else(|| pick(&|r| r.detects_fallback(root)))
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
    fn the_fingerprint_follows_the_specs() {
        assert_eq!(fingerprint(), fingerprint_of(BUILTIN));
        assert_eq!(fingerprint().len(), 16);
        // One changed line of one spec (a new detection glob) is another fingerprint.
        let (path, text) = BUILTIN[0];
        let changed = text.replacen("detect_fallback = [", "detect_fallback = [\"check_*.py\", ", 1);
        assert_ne!(changed, text);
        let mut specs = BUILTIN.to_vec();
        specs[0] = (path, &changed);
        assert_ne!(fingerprint_of(&specs), fingerprint());
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
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
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

    #[test]
    fn tests_with_no_manifest_fall_back_to_their_runner() {
        // pytest-style tests and nothing to install (corpus: lisatitshall, whose README says
        // `pip3 install pytest` then `python3 -m pytest`).
        check_detect(
            &["README.md", "programs/challenges.py", "tests/test_challenges.py"],
            Some("python"),
        );
        check_detect(&["test_solution.py", "solution.py"], Some("python"));
        check_detect(&["pytest.ini", "app.py"], Some("python"));
        // A manifest's runner wins over another's fallback.
        check_detect(&["package.json", "tests/test_api.py"], Some("node"));
        check_detect(&["go.mod", "conftest.py"], Some("go"));
        // Python files with no tests are no test suite.
        check_detect(&["main.py", "tests/helpers.py"], None);
        // Dependencies declared where the runner does not read them: the tests would fail for
        // want of them, so no runner rather than a failure that is assay's.
        check_detect(&["environment.yml", "tests/test_model.py"], None);
        check_detect(&["service/requirements.txt", "tests/test_api.py"], None);
        check_detect(&["a/b/c/pyproject.toml", "test_x.py"], None);
        // Deeper than that is another project's business.
        check_detect(&["a/b/c/d/pyproject.toml", "test_x.py"], Some("python"));
    }

    #[test]
    #[cfg(unix)]
    fn a_symlinked_tests_directory_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("test_x.py"), "").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("tests")).unwrap();
        assert!(detect(dir.path()).is_none());
    }

    #[test]
    fn detect_globs_stay_inside_the_repository() {
        let spec = |g: &str| {
            format!(
                "name = \"x\"\nimage = \"i\"\npriority = 1\ndetect = [\"a\"]\ndetect_fallback = [{g:?}]\n\
                 install = \"\"\ntest = \"\"\n[results]\nparser = \"counts\"\n"
            )
        };
        assert!(RunnerSpec::parse(Path::new("x.toml"), &spec("tests/test_*.py")).is_ok());
        for bad in ["../test_*.py", "/etc/passwd", "a/b/test_*.py"] {
            let e = RunnerSpec::parse(Path::new("x.toml"), &spec(bad)).unwrap_err();
            assert!(e.to_string().contains("inside the repository"), "{bad}: {e}");
        }
        let unless = spec("x.py").replace("[results]", "fallback_unless = [\"a/b.txt\"]\n[results]");
        let e = RunnerSpec::parse(Path::new("x.toml"), &unless).unwrap_err();
        assert!(e.to_string().contains("must be a file name"), "{e}");
        // What the install sealed is a directory under /work, nothing else.
        let sealed = |d: &str| spec("x.py").replace("[results]", &format!("seal = [{d:?}]\n[results]"));
        assert!(RunnerSpec::parse(Path::new("x.toml"), &sealed(".assay-venv")).is_ok());
        for bad in ["/usr", "../x", "", "a//b"] {
            let e = RunnerSpec::parse(Path::new("x.toml"), &sealed(bad)).unwrap_err();
            assert!(e.to_string().contains("inside /work"), "{bad}: {e}");
        }
    }
}

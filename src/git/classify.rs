//! File classes: what a path in a candidate's repository is for.
//!
//! A path-only heuristic (no content is read): cheap enough to run on every
//! file of every commit. The order of the checks matters and is documented in
//! [`classify`].

use serde::{Deserialize, Serialize};

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileClass {
    /// Program source.
    Source,
    /// Tests and their fixtures.
    Tests,
    /// Documentation (README, docs/, Markdown).
    Docs,
    /// Build configuration and dependency declarations (config+deps).
    Config,
    /// Jupyter notebooks.
    Notebooks,
    /// Data, models and other binary assets.
    Data,
    /// Generated or vendored files (build output, node_modules, vendor/).
    Generated,
    /// Anything else.
    Other,
}

impl FileClass {
    /// Every class, in display order.
    pub const ALL: [FileClass; 8] = [
        FileClass::Source,
        FileClass::Tests,
        FileClass::Docs,
        FileClass::Config,
        FileClass::Notebooks,
        FileClass::Data,
        FileClass::Generated,
        FileClass::Other,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileClass::Source => "source",
            FileClass::Tests => "tests",
            FileClass::Docs => "docs",
            FileClass::Config => "config",
            FileClass::Notebooks => "notebooks",
            FileClass::Data => "data",
            FileClass::Generated => "generated",
            FileClass::Other => "other",
        }
    }

    /// Index into [`FileClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

const GENERATED_DIRS: &[&str] = &[
    "node_modules",
    "vendor",
    "third_party",
    "third-party",
    "dist",
    "build",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    "env",
    "site-packages",
    ".tox",
    ".pytest_cache",
    ".mypy_cache",
    ".ipynb_checkpoints",
    "coverage",
    "htmlcov",
    ".next",
    "out",
];
/// Lockfiles are written by tools, not people: counting their lines as work
/// would make any first commit with a lockfile look like a dump.
const LOCKFILES: &[&str] = &[
    "cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "pipfile.lock",
    "go.sum",
    "composer.lock",
    "gemfile.lock",
    "npm-shrinkwrap.json",
];
const GENERATED_EXT: &[&str] = &["pyc", "pyo", "class", "o", "so", "dylib", "dll", "exe", "a", "map"];
const DOC_EXT: &[&str] = &["md", "markdown", "rst", "adoc", "txt", "pdf", "org"];
const CONFIG_NAMES: &[&str] = &[
    "requirements.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "pipfile",
    "environment.yml",
    "environment.yaml",
    "cargo.toml",
    "package.json",
    "tsconfig.json",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "makefile",
    "dockerfile",
    "docker-compose.yml",
    "docker-compose.yaml",
    ".gitignore",
    ".gitattributes",
    ".dockerignore",
    "tox.ini",
    "pytest.ini",
    "noxfile.py",
    ".editorconfig",
    ".pre-commit-config.yaml",
    "manifest.in",
    "justfile",
    ".python-version",
    "rust-toolchain.toml",
    "jest.config.js",
    "vitest.config.ts",
    "vite.config.ts",
    "vite.config.js",
    "babel.config.js",
    ".eslintrc.json",
    ".eslintrc.js",
    ".prettierrc",
    "mypy.ini",
    ".flake8",
    "ruff.toml",
];
const CONFIG_EXT: &[&str] = &["toml", "yaml", "yml", "ini", "cfg", "conf", "lock"];
const DATA_EXT: &[&str] = &[
    "csv",
    "tsv",
    "json",
    "jsonl",
    "ndjson",
    "parquet",
    "feather",
    "arrow",
    "xlsx",
    "xls",
    "pkl",
    "pickle",
    "joblib",
    "h5",
    "hdf5",
    "npy",
    "npz",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "safetensors",
    "gguf",
    "bin",
    "zip",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "tar",
    "7z",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "tif",
    "tiff",
    "webp",
    "svg",
    "ico",
    "mp3",
    "wav",
    "mp4",
    "avi",
    "mov",
    "sqlite",
    "db",
    "xml",
    "dat",
    "model",
    "weights",
    "tfrecord",
];
const SOURCE_EXT: &[&str] = &[
    "py", "pyx", "rs", "js", "mjs", "cjs", "ts", "tsx", "jsx", "go", "java", "kt", "kts", "scala", "c", "h", "cc",
    "cpp", "cxx", "hpp", "hh", "cs", "fs", "rb", "php", "swift", "m", "mm", "r", "jl", "lua", "pl", "pm", "sh", "bash",
    "zsh", "ps1", "sql", "html", "htm", "css", "scss", "sass", "less", "vue", "svelte", "ex", "exs", "erl", "hs", "ml",
    "mli", "clj", "dart", "zig", "nim", "proto", "graphql", "sol", "tf",
];
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "__tests__",
    "spec",
    "specs",
    "testing",
    "test_data",
    "testdata",
];

/// Classifies a repository path (with `/` separators). Checks, in order:
/// generated/vendored directories and artefacts; notebooks; documentation by
/// name or extension; configuration and dependency files; tests (by directory
/// data by extension (in a test directory too: a fixture's bulk is no test code);
/// tests (by directory or by the naming conventions of pytest, Go, Jest and
/// friends); data in a `data/` directory; source by extension; otherwise other.
pub fn classify(path: &str) -> FileClass {
    let lower = path.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('/').collect();
    let name = parts.pop().unwrap_or("");
    let dirs = parts;
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");

    if dirs
        .iter()
        .any(|d| GENERATED_DIRS.contains(d) || d.ends_with(".egg-info"))
        || GENERATED_EXT.contains(&ext)
        || name.ends_with(".min.js")
        || name.ends_with(".min.css")
        || LOCKFILES.contains(&name)
    {
        return FileClass::Generated;
    }
    // A page in a reports or outputs directory is a tool's rendering (pandas-profiling,
    // folium, plotly, coverage): a 23,494-line profiling report is no one's work.
    if matches!(ext, "html" | "htm")
        && dirs.iter().any(|d| {
            matches!(
                *d,
                "reports" | "report" | "outputs" | "output" | "results" | "figures" | "plots" | "artifacts"
            )
        })
    {
        return FileClass::Generated;
    }
    if ext == "ipynb" {
        return FileClass::Notebooks;
    }
    let is_requirements = name.starts_with("requirements") && ext == "txt";
    if CONFIG_NAMES.contains(&name) || is_requirements || dirs.first() == Some(&".github") {
        return FileClass::Config;
    }
    let stem = name.split('.').next().unwrap_or("");
    if (DOC_EXT.contains(&ext) && !is_requirements)
        || matches!(
            stem,
            "readme" | "license" | "licence" | "changelog" | "contributing" | "authors" | "notice" | "copying"
        )
        || dirs.first().is_some_and(|d| *d == "docs" || *d == "doc")
    {
        return FileClass::Docs;
    }
    // A data file is data wherever it lies: a 50,000-line CSV under tests/resources is a
    // fixture, not test code (it made a commit adding two tests "98% of the final lines").
    if DATA_EXT.contains(&ext) {
        return FileClass::Data;
    }
    let test_name = name.starts_with("test_")
        || name == "conftest.py"
        || stem.ends_with("_test")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("_spec.rb")
        || ((stem.ends_with("test") || stem.ends_with("tests"))
            && matches!(ext, "java" | "kt" | "cs" | "scala" | "swift"));
    if test_name || dirs.iter().any(|d| TEST_DIRS.contains(d)) {
        return FileClass::Tests;
    }
    if CONFIG_EXT.contains(&ext) {
        return FileClass::Config;
    }
    if DATA_EXT.contains(&ext)
        || dirs
            .iter()
            .any(|d| matches!(*d, "data" | "datasets" | "models" | "assets"))
    {
        return FileClass::Data;
    }
    if SOURCE_EXT.contains(&ext) || (ext.is_empty() && dirs.first() == Some(&"bin")) {
        return FileClass::Source;
    }
    FileClass::Other
}

/// Where a project's pytest configuration says its tests are, beyond pytest's defaults:
/// `testpaths` (directories) and `python_files` (name globs), from pytest.ini, tox.ini
/// (`[pytest]`), setup.cfg (`[tool:pytest]`) or pyproject.toml (`[tool.pytest.ini_options]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestLayout {
    /// Test directories, relative to the root, without a trailing `/`.
    pub testpaths: Vec<String>,
    /// File name globs (`check_*.py`).
    pub python_files: Vec<String>,
}

impl TestLayout {
    /// The layout the root files `files` (name, text) configure; the first file pytest would
    /// read wins, as pytest picks one configuration file.
    pub fn from_config(files: &[(&str, &str)]) -> TestLayout {
        for name in ["pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"] {
            let Some((_, text)) = files.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let layout = match name {
                "pyproject.toml" => from_pyproject(text),
                "pytest.ini" => from_ini(text, &["pytest"]),
                "tox.ini" => from_ini(text, &["pytest"]),
                _ => from_ini(text, &["tool:pytest"]),
            };
            if let Some(layout) = layout {
                return layout;
            }
        }
        TestLayout::default()
    }

    /// `path` classified, with Python files the configuration names counted as tests.
    pub fn classify(&self, path: &str) -> FileClass {
        let class = classify(path);
        if class == FileClass::Tests
            || !path.ends_with(".py")
            || matches!(class, FileClass::Generated | FileClass::Config)
        {
            return class;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let under = |dir: &String| dir.is_empty() || dir == "." || path.starts_with(&format!("{dir}/"));
        let named = self.python_files.iter().any(|g| crate::runner::glob_match(g, name));
        if named && (self.testpaths.is_empty() || self.testpaths.iter().any(under)) {
            return FileClass::Tests;
        }
        // Under a configured test directory, pytest's default names are tests (handled by
        // `classify`) and so are the configured ones; helpers there are test code too.
        if self.testpaths.iter().any(|d| !d.is_empty() && d != "." && under(d)) {
            return FileClass::Tests;
        }
        class
    }
}

fn split_values(v: &str) -> Vec<String> {
    v.split(|c: char| c.is_whitespace() || c == ',')
        .map(|w| w.trim().trim_end_matches('/').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// An INI file's pytest section (`None` when it has none: pytest would not use this file).
fn from_ini(text: &str, sections: &[&str]) -> Option<TestLayout> {
    let mut in_section = false;
    let mut found = false;
    let mut key: Option<String> = None;
    let mut layout = TestLayout::default();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            in_section = sections.contains(&t[1..t.len() - 1].trim());
            found |= in_section;
            key = None;
            continue;
        }
        if !in_section || t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let continued = line.starts_with(char::is_whitespace) && key.is_some();
        let (k, v) = if continued {
            (key.clone().unwrap_or_default(), t)
        } else if let Some((k, v)) = t.split_once('=') {
            key = Some(k.trim().to_string());
            (k.trim().to_string(), v.trim())
        } else {
            continue;
        };
        match k.as_str() {
            "testpaths" => layout.testpaths.extend(split_values(v)),
            "python_files" => layout.python_files.extend(split_values(v)),
            _ => {}
        }
    }
    found.then_some(layout)
}

fn from_pyproject(text: &str) -> Option<TestLayout> {
    let doc: toml::Value = toml::from_str(text).ok()?;
    let opts = doc.get("tool")?.get("pytest")?.get("ini_options")?;
    let list = |k: &str| -> Vec<String> {
        match opts.get(k) {
            Some(toml::Value::String(s)) => split_values(s),
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str())
                .map(|s| s.trim_end_matches('/').to_string())
                .collect(),
            _ => Vec::new(),
        }
    };
    Some(TestLayout {
        testpaths: list("testpaths"),
        python_files: list("python_files"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: FileClass) {
        assert_eq!(classify(path), expected, "{path}");
    }

    #[test]
    fn classifies_common_layouts() {
        check("src/main.rs", FileClass::Source);
        check("churn/model.py", FileClass::Source);
        check("tests/test_model.py", FileClass::Tests);
        check("test_model.py", FileClass::Tests);
        check("pkg/handler_test.go", FileClass::Tests);
        check("web/app.test.ts", FileClass::Tests);
        // Regression (corpus: a Rust CLI): a generated 53,064-line CSV under tests/resources
        // made the commit that added two tests a dump of "98% of the final lines".
        check("tests/fixtures/input.csv", FileClass::Data);
        check("tests/resources/stress_with_errors.csv", FileClass::Data);
        check("tests/test_data.json", FileClass::Data);
        check("tests/fixtures/conftest.py", FileClass::Tests);
        check("README.md", FileClass::Docs);
        check("docs/design.rst", FileClass::Docs);
        check("LICENSE", FileClass::Docs);
        check("requirements-dev.txt", FileClass::Config);
        check("pyproject.toml", FileClass::Config);
        check("Cargo.lock", FileClass::Generated);
        check("Cargo.toml", FileClass::Config);
        check(".github/workflows/ci.yml", FileClass::Config);
        check("analysis.ipynb", FileClass::Notebooks);
        check("data/train.csv", FileClass::Data);
        check("model.pkl", FileClass::Data);
        check("node_modules/left-pad/index.js", FileClass::Generated);
        check("pkg/__pycache__/x.cpython-311.pyc", FileClass::Generated);
        check("static/app.min.js", FileClass::Generated);
        // Regression (corpus: an ML course project): a 23,494-line pandas-profiling page in
        // reports/ made the EDA commit "89% of the final lines". A page elsewhere is source.
        check("ml_project/reports/pandas_profiling.html", FileClass::Generated);
        check("notebooks/eda/outputs/heatmap.html", FileClass::Generated);
        check("templates/index.html", FileClass::Source);
        check("internal/output/format.go", FileClass::Source);
        check("src/test/java/FooTest.java", FileClass::Tests);
        check("app/FooTest.kt", FileClass::Tests);
        check("Procfile", FileClass::Other);
    }

    #[test]
    fn pytest_configuration_names_more_tests() {
        let ini = TestLayout::from_config(&[("setup.cfg", "[metadata]\nname = x\n\n[tool:pytest]\ntestpaths =\n    checks\n    integration/\npython_files = check_*.py\n")]);
        assert_eq!(ini.testpaths, ["checks", "integration"]);
        assert_eq!(ini.python_files, ["check_*.py"]);
        assert_eq!(ini.classify("checks/check_model.py"), FileClass::Tests);
        assert_eq!(ini.classify("checks/helpers.py"), FileClass::Tests);
        assert_eq!(ini.classify("integration/run_all.py"), FileClass::Tests);
        assert_eq!(
            ini.classify("src/check_input.py"),
            FileClass::Source,
            "outside testpaths"
        );
        assert_eq!(ini.classify("tests/test_x.py"), FileClass::Tests, "defaults still hold");
        let py = TestLayout::from_config(&[(
            "pyproject.toml",
            "[tool.pytest.ini_options]\npython_files = [\"*_checks.py\"]\n",
        )]);
        assert_eq!(py.classify("pkg/model_checks.py"), FileClass::Tests);
        assert_eq!(py.classify("pkg/model.py"), FileClass::Source);
        // pytest.ini wins over pyproject.toml; a tox.ini without [pytest] configures nothing.
        let both = TestLayout::from_config(&[
            ("pyproject.toml", "[tool.pytest.ini_options]\ntestpaths = [\"a\"]\n"),
            ("pytest.ini", "[pytest]\ntestpaths = b\n"),
        ]);
        assert_eq!(both.testpaths, ["b"]);
        assert_eq!(
            TestLayout::from_config(&[("tox.ini", "[tox]\nenvlist = py311\n")]),
            TestLayout::default()
        );
    }
}

//! Settings: `assay.toml` < `ASSAY_*` environment variables < command-line flags.
//!
//! Settings are validated when loaded; a bad file fails with file:line:col, a bad
//! environment variable names the variable. Secrets (an ssh key path is not one,
//! but credentials in URLs are) never pass through here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::InputError;

/// Hard limits on what one submission may cost us. Each, when hit, becomes a
/// recorded outcome kind on the submission (see [`crate::outcome::OutcomeKind`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes received while fetching one repository.
    pub fetch_bytes: u64,
    /// Wall-clock seconds for fetching one repository.
    pub fetch_seconds: u64,
    /// Total bytes written when exporting the graded tree.
    pub export_bytes: u64,
    /// Number of files written when exporting the graded tree.
    pub export_files: u64,
    /// Size of the largest single file in the graded tree.
    pub file_bytes: u64,
    /// Commits read when extracting the history.
    pub commits: u64,
    /// Branches and tags a fetch writes into the mirror.
    pub refs: u64,
    /// Bytes the sandbox's install phase may write under /work (its own
    /// filesystem; 0: a plain Docker volume with no size limit).
    pub install_disk: u64,
    /// Bytes each test phase may add under /work.
    pub test_disk: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fetch_bytes: 1 << 30,
            fetch_seconds: 600,
            export_bytes: 512 << 20,
            export_files: 20_000,
            file_bytes: 50 << 20,
            commits: 50_000,
            refs: 10_000,
            install_disk: 8 << 30,
            test_disk: 2 << 30,
        }
    }
}

/// The host names installs may reach unless settings say otherwise: the registries pip, npm,
/// yarn, cargo and Go download from, and where the tools and packages they install fetch their
/// own pieces (node-gyp's Node headers, prebuilt native modules' GitHub releases, engines and
/// browsers that packages download in their install scripts).
pub const DEFAULT_INSTALL_HOSTS: &[&str] = &[
    // pip
    "pypi.org",
    "files.pythonhosted.org",
    // npm, yarn, corepack
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "repo.yarnpkg.com",
    // node-gyp's headers
    "nodejs.org",
    // cargo
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    // Go
    "proxy.golang.org",
    "sum.golang.org",
    // git dependencies and prebuilt binaries released on GitHub
    "github.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
    // what common packages download when installed: PyTorch's CPU wheels (an extra index),
    // Prisma's query engines (its postinstall; corpus: a Prisma API's install asked for it),
    // the browsers of Cypress, Playwright and Puppeteer
    "download.pytorch.org",
    "binaries.prisma.sh",
    "download.cypress.io",
    "cdn.playwright.dev",
    "playwright.azureedge.net",
    "storage.googleapis.com",
];

/// Whether `host` can stand in the allow-list: a DNS name of letters, digits and hyphens in
/// dot-separated labels, or `*.` and such a name (its subdomains, not itself). Addresses are not
/// names: an allow-list of names cannot be turned toward the host or a private network by an
/// entry that is an IP.
pub fn valid_host(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Everything that configures a run of assay.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where mirrors, exports and the default SQLite database live.
    pub data_dir: PathBuf,
    /// Database URL; defaults to `sqlite://DATA_DIR/assay.db`.
    pub db: Option<String>,
    /// Submissions processed at once.
    pub jobs: usize,
    /// Refuse local paths in cohorts (remote URLs only).
    pub remote_only: bool,
    /// Allow repository hosts that resolve to loopback, private or link-local
    /// addresses (off by default: server-side request forgery).
    pub allow_private_hosts: bool,
    /// Private key for ssh URLs; without it the ssh agent is asked.
    pub ssh_key: Option<PathBuf>,
    /// OpenSSH known_hosts file that ssh host keys are checked against
    /// (default: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`, plus
    /// GitHub's published keys).
    pub known_hosts: Option<PathBuf>,
    /// PEM file of certificate authorities https servers may be signed by, in
    /// addition to the system's store (a private CA).
    pub ca_file: Option<PathBuf>,
    /// How many times an infrastructure error is retried (with backoff).
    pub retries: u32,
    /// Per-submission limits.
    pub limits: Limits,
    /// Lowers the sandbox's test-phase wall time, seconds (`--test-timeout`).
    pub test_timeout: Option<u64>,
    /// The model that drafts and answers the checklist: a manifest name or a .gguf path
    /// (`--model`; default: the default model when it has been fetched).
    pub model: Option<String>,
    /// Tokens the evidence may take in a holistic draft's prompt (`--draft-budget`).
    pub draft_budget: usize,
    /// Host names the sandbox's install phase may reach, through its proxy; everything else is
    /// refused and recorded (`ASSAY_INSTALL_HOSTS`: comma-separated). `*.example.com` allows
    /// the subdomains of example.com. Default: the package registries (see README, Sandbox).
    pub install_hosts: Vec<String>,
    /// Who may review in `assay serve` (`[[grader]]` tables).
    #[serde(rename = "grader")]
    pub graders: Vec<Grader>,
}

/// A grader of `assay serve`: a name and the sha256 of their token (the token itself is
/// never stored; `assay grader add` prints it once).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Grader {
    pub name: String,
    /// Lower-case hex sha256 of the token.
    pub token_sha256: String,
}

/// Whether `name` can name a grader: 1–64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_grader_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: default_data_dir(),
            db: None,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            remote_only: false,
            allow_private_hosts: false,
            ssh_key: None,
            known_hosts: None,
            ca_file: None,
            retries: 2,
            limits: Limits::default(),
            test_timeout: None,
            model: None,
            draft_budget: 1200,
            install_hosts: DEFAULT_INSTALL_HOSTS.iter().map(|h| h.to_string()).collect(),
            graders: Vec::new(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("assay");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/assay");
    }
    PathBuf::from(".assay")
}

/// Flags that override settings; `None` leaves the setting alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--db`
    pub db: Option<String>,
    /// `--jobs`
    pub jobs: Option<usize>,
    /// `--test-timeout`
    pub test_timeout: Option<u64>,
    /// `--model`
    pub model: Option<String>,
    /// `--draft-budget`
    pub draft_budget: Option<usize>,
}

impl Settings {
    /// Loads settings from `file` (or `./assay.toml` when it exists), then the
    /// environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, InputError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let default_file = Path::new("assay.toml");
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None if default_file.is_file() => Some(default_file.to_path_buf()),
            None => None,
        };
        Settings::load_from(file.as_deref(), &env, overrides)
    }

    /// [`Settings::load`] with the environment passed in, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Settings, InputError> {
        let settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| InputError::file(path, format!("cannot read settings: {e}")))?;
                toml::from_str::<Settings>(&text).map_err(|e| {
                    InputError::from_toml(path, &text, &e)
                        .with_hint("see README.md, section Settings, for the keys assay.toml takes")
                })?
            }
            None => Settings::default(),
        };
        let mut settings = settings.with_env(env)?;
        let o = overrides.clone();
        settings.data_dir = o.data_dir.unwrap_or(settings.data_dir);
        settings.db = o.db.or(settings.db);
        settings.jobs = o.jobs.unwrap_or(settings.jobs);
        settings.test_timeout = o.test_timeout.or(settings.test_timeout);
        settings.model = o.model.or(settings.model);
        settings.draft_budget = o.draft_budget.unwrap_or(settings.draft_budget);
        settings.validate(file)?;
        Ok(settings)
    }

    /// These settings with the environment's `ASSAY_*` variables over them. The variables are
    /// the settings' own keys, upper-cased, a table's name before its keys (`ASSAY_JOBS`,
    /// `ASSAY_LIMITS_FETCH_BYTES`): derived from the struct, so every setting has one and no
    /// list is kept by hand. A list of names is comma-separated (`ASSAY_INSTALL_HOSTS`). Tables
    /// of many (`[[grader]]`) are set in the file only.
    fn with_env(self, env: &[(String, String)]) -> Result<Settings, InputError> {
        let mut doc = serde_json::to_value(&self).expect("settings serialise");
        let mut leaves = Vec::new();
        // The variables and their types come from the defaults: a list the file emptied
        // (`install_hosts = []`) is still a list a variable may set.
        let defaults = serde_json::to_value(Settings::default()).expect("settings serialise");
        env_leaves(&defaults, "ASSAY_", &mut Vec::new(), &mut leaves);
        // A setting unset by default has no type to read: a whole number is taken as one where
        // the setting takes a number (tried on the defaults alone), as text otherwise.
        let takes_number = |path: &[String], n: u64| {
            let mut probe = serde_json::to_value(Settings::default()).expect("settings serialise");
            set(&mut probe, path, serde_json::Value::from(n));
            serde_json::from_value::<Settings>(probe).is_ok()
        };
        for (key, value) in env {
            let Some((path, current)) = leaves.iter().find(|(name, _, _)| name == key).map(|(_, p, c)| (p, c)) else {
                continue;
            };
            let bad = |what: &str| {
                InputError::file(Path::new(key), format!("expected {what}, found {value:?}"))
                    .with_hint(format!("set {key} to {what} or unset it"))
            };
            let parsed = match current {
                serde_json::Value::Bool(_) => serde_json::Value::Bool(match value.trim() {
                    "1" | "true" | "yes" => true,
                    "0" | "false" | "no" | "" => false,
                    _ => return Err(bad("true or false")),
                }),
                serde_json::Value::Number(_) => {
                    serde_json::Value::from(value.trim().parse::<u64>().map_err(|_| bad("a whole number"))?)
                }
                serde_json::Value::Null => match value.trim().parse::<u64>() {
                    Ok(n) if takes_number(path, n) => serde_json::Value::from(n),
                    _ => serde_json::Value::String(value.clone()),
                },
                serde_json::Value::Array(_) => serde_json::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| serde_json::Value::String(v.to_string()))
                        .collect(),
                ),
                _ => serde_json::Value::String(value.clone()),
            };
            set(&mut doc, path, parsed);
        }
        serde_json::from_value::<Settings>(doc).map_err(|e| {
            InputError::file(
                Path::new("environment"),
                format!("an ASSAY_* variable does not fit: {e}"),
            )
            .with_hint("see README.md, section Settings, for each variable's type")
        })
    }

    fn validate(&self, file: Option<&Path>) -> Result<(), InputError> {
        let origin = file.unwrap_or(Path::new("settings"));
        if self.jobs == 0 || self.jobs > 256 {
            return Err(
                InputError::file(origin, format!("jobs must be 1..=256, found {}", self.jobs))
                    .with_hint("set jobs in assay.toml, ASSAY_JOBS or --jobs"),
            );
        }
        if !(100..=100_000).contains(&self.draft_budget) {
            return Err(InputError::file(
                origin,
                format!("draft_budget must be 100..=100000 tokens, found {}", self.draft_budget),
            )
            .with_hint("set draft_budget in assay.toml, ASSAY_DRAFT_BUDGET or --draft-budget"));
        }
        if self.test_timeout == Some(0) {
            return Err(InputError::file(origin, "test_timeout must be at least 1 second")
                .with_hint("remove test_timeout to keep the sandbox's own limit"));
        }
        let l = &self.limits;
        for (name, v) in [
            ("fetch_bytes", l.fetch_bytes),
            ("fetch_seconds", l.fetch_seconds),
            ("export_bytes", l.export_bytes),
            ("export_files", l.export_files),
            ("file_bytes", l.file_bytes),
            ("commits", l.commits),
        ] {
            if v == 0 {
                return Err(InputError::file(origin, format!("limits.{name} must be above 0"))
                    .with_hint("remove the key to use the default"));
            }
        }
        for (name, path) in [
            ("ssh_key", &self.ssh_key),
            ("known_hosts", &self.known_hosts),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(p) = path.as_deref().filter(|p| !p.is_file()) {
                return Err(
                    InputError::file(origin, format!("{name} names {}, which is not a file", p.display())).with_hint(
                        format!("fix {name} (or ASSAY_{}) or remove it", name.to_ascii_uppercase()),
                    ),
                );
            }
        }
        if let Some(bad) = self.install_hosts.iter().find(|h| !valid_host(h)) {
            return Err(InputError::file(
                origin,
                format!("install_hosts: {bad:?} is not a host name (letters, digits, hyphens and dots, or *.name for its subdomains; no addresses, ports or URLs)"),
            )
            .with_hint("fix install_hosts in assay.toml or ASSAY_INSTALL_HOSTS"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for g in &self.graders {
            if !valid_grader_name(&g.name) {
                return Err(InputError::file(
                    origin,
                    format!("grader name {:?} is not 1-64 of A-Z a-z 0-9 . _ -", g.name),
                )
                .with_hint("rename the [[grader]]"));
            }
            if !seen.insert(g.name.as_str()) {
                return Err(InputError::file(origin, format!("grader {:?} is listed twice", g.name))
                    .with_hint("keep one [[grader]] per name"));
            }
            if g.token_sha256.len() != 64 || !g.token_sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(InputError::file(
                    origin,
                    format!("grader {:?}: token_sha256 must be 64 lower-case hex digits", g.name),
                )
                .with_hint("create graders with `assay grader add NAME`"));
            }
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn db_url(&self) -> String {
        match &self.db {
            Some(db) => db.clone(),
            None => format!("sqlite://{}", self.data_dir.join("assay.db").display()),
        }
    }
}

/// Every setting a variable can set: (variable name, path of keys, current value).
fn env_leaves(
    v: &serde_json::Value,
    prefix: &str,
    path: &mut Vec<String>,
    out: &mut Vec<(String, Vec<String>, serde_json::Value)>,
) {
    let Some(table) = v.as_object() else { return };
    for (key, value) in table {
        let name = format!("{prefix}{}", key.to_ascii_uppercase());
        path.push(key.clone());
        match value {
            serde_json::Value::Object(_) => env_leaves(value, &format!("{name}_"), path, out),
            // A list of names; not a list of tables, nor one whose element type is unknown.
            serde_json::Value::Array(a) if !a.is_empty() && a.iter().all(serde_json::Value::is_string) => {
                out.push((name, path.clone(), value.clone()))
            }
            serde_json::Value::Array(_) => {}
            _ => out.push((name, path.clone(), value.clone())),
        }
        path.pop();
    }
}

/// Sets the value at `path` in `doc`.
fn set(doc: &mut serde_json::Value, path: &[String], value: serde_json::Value) {
    let mut at = doc;
    for key in &path[..path.len() - 1] {
        at = &mut at[key.as_str()];
    }
    at[path[path.len() - 1].as_str()] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assay.toml");
        std::fs::write(&file, "jobs = 3\n[limits]\ncommits = 10\n").unwrap();
        let s = Settings::load_from(
            Some(&file),
            &env(&[("ASSAY_JOBS", "4"), ("ASSAY_LIMITS_FILE_BYTES", "99")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.jobs, s.limits.commits, s.limits.file_bytes), (4, 10, 99));
        let s = Settings::load_from(
            Some(&file),
            &env(&[("ASSAY_JOBS", "4")]),
            &Overrides {
                jobs: Some(1),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.jobs, 1);
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assay.toml");
        std::fs::write(&file, "jobs = 2\n[limits]\ncommitz = 10\n").unwrap();
        let e = Settings::load_from(Some(&file), &[], &Overrides::default()).unwrap_err();
        assert_eq!((e.line, e.col), (Some(3), Some(1)), "{e}");
        assert!(e.message.contains("commitz"), "{e}");
    }

    #[test]
    fn trust_files_that_do_not_exist_are_bad_input() {
        for var in ["ASSAY_CA_FILE", "ASSAY_KNOWN_HOSTS", "ASSAY_SSH_KEY"] {
            let e = Settings::load_from(None, &env(&[(var, "/no/such/file")]), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("/no/such/file"), "{e}");
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let e = Settings::load_from(None, &env(&[("ASSAY_JOBS", "many")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("ASSAY_JOBS"), "{e}");
    }

    #[test]
    fn every_setting_has_a_variable_named_after_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let s = Settings::load_from(
            None,
            &env(&[
                ("ASSAY_LIMITS_TEST_DISK", "5"),
                ("ASSAY_REMOTE_ONLY", "yes"),
                ("ASSAY_SSH_KEY", key.to_str().unwrap()),
                // Unset by default, so untyped: a number where a number fits…
                ("ASSAY_TEST_TIMEOUT", "30"),
                // …and text where only text does.
                ("ASSAY_DB", "123"),
                ("ASSAY_MODEL", "smollm2-135m-instruct"),
                ("ASSAY_DRAFT_BUDGET", "800"),
                // Not settings: read elsewhere, left alone here.
                ("ASSAY_CONFIG", "elsewhere.toml"),
                ("ASSAY_LOG", "debug"),
                ("ASSAY_MODEL_DIR", "/models"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.limits.test_disk, 5);
        assert!(s.remote_only);
        assert_eq!(s.ssh_key.as_deref(), Some(key.as_path()));
        assert_eq!(s.test_timeout, Some(30));
        assert_eq!(s.db.as_deref(), Some("123"));
        assert_eq!(s.model.as_deref(), Some("smollm2-135m-instruct"));
        assert_eq!(s.draft_budget, 800);
        // Every leaf of the settings is reachable: none is left to a hand-kept list.
        let mut leaves = Vec::new();
        env_leaves(
            &serde_json::to_value(Settings::default()).unwrap(),
            "ASSAY_",
            &mut Vec::new(),
            &mut leaves,
        );
        let names: Vec<&str> = leaves.iter().map(|(n, _, _)| n.as_str()).collect();
        for n in [
            "ASSAY_DATA_DIR",
            "ASSAY_JOBS",
            "ASSAY_LIMITS_FETCH_BYTES",
            "ASSAY_LIMITS_REFS",
            "ASSAY_MODEL",
            "ASSAY_TEST_TIMEOUT",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert_eq!(names.len(), 13 + 9, "13 settings and 9 limits: {names:?}");
    }

    #[test]
    fn the_install_hosts_are_names_from_the_file_or_a_comma_separated_variable() {
        let s = Settings::load_from(None, &[], &Overrides::default()).unwrap();
        assert!(s.install_hosts.iter().any(|h| h == "pypi.org"), "{:?}", s.install_hosts);
        let s = Settings::load_from(
            None,
            &env(&[(
                "ASSAY_INSTALL_HOSTS",
                " pypi.org, files.pythonhosted.org ,*.corp.example,",
            )]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            s.install_hosts,
            ["pypi.org", "files.pythonhosted.org", "*.corp.example"]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assay.toml");
        std::fs::write(&file, "jobs = 2\ninstall_hosts = [\"pypi.org\", \"10.0.0.5\"]\n").unwrap();
        let e = Settings::load_from(Some(&file), &[], &Overrides::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("assay.toml") && msg.contains("\"10.0.0.5\" is not a host name"),
            "{msg}"
        );
        std::fs::write(&file, "install_hosts = []\n").unwrap();
        let s = Settings::load_from(Some(&file), &[], &Overrides::default()).unwrap();
        assert!(s.install_hosts.is_empty(), "an empty list: the install reaches nothing");
        let s = Settings::load_from(
            Some(&file),
            &env(&[("ASSAY_INSTALL_HOSTS", "pypi.org")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            s.install_hosts,
            ["pypi.org"],
            "the variable sets a list the file emptied"
        );
        let e = Settings::load_from(
            None,
            &env(&[("ASSAY_INSTALL_HOSTS", "localhost")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("install_hosts"), "{e}");
    }

    #[test]
    fn the_model_budget_and_timeout_layer_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("assay.toml");
        std::fs::write(&file, "model = \"a\"\ndraft_budget = 900\ntest_timeout = 60\n").unwrap();
        let load = |vars: &[(&str, &str)], o: Overrides| Settings::load_from(Some(&file), &env(vars), &o).unwrap();
        let s = load(&[], Overrides::default());
        assert_eq!(
            (s.model.as_deref(), s.draft_budget, s.test_timeout),
            (Some("a"), 900, Some(60))
        );
        let s = load(
            &[("ASSAY_MODEL", "b"), ("ASSAY_TEST_TIMEOUT", "20")],
            Overrides::default(),
        );
        assert_eq!((s.model.as_deref(), s.test_timeout), (Some("b"), Some(20)));
        let flags = Overrides {
            model: Some("c".into()),
            draft_budget: Some(700),
            test_timeout: Some(5),
            ..Overrides::default()
        };
        let s = load(&[("ASSAY_MODEL", "b"), ("ASSAY_DRAFT_BUDGET", "800")], flags);
        assert_eq!(
            (s.model.as_deref(), s.draft_budget, s.test_timeout),
            (Some("c"), 700, Some(5))
        );
    }

    #[test]
    fn bad_values_of_the_new_knobs_say_which() {
        let e = Settings::load_from(None, &env(&[("ASSAY_DRAFT_BUDGET", "lots")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("ASSAY_DRAFT_BUDGET"), "{e}");
        let e = Settings::load_from(None, &env(&[("ASSAY_TEST_TIMEOUT", "0")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("test_timeout must be at least 1"), "{e}");
        let e = Settings::load_from(None, &env(&[("ASSAY_TEST_TIMEOUT", "soon")]), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("ASSAY_* variable does not fit"), "{e}");
    }
}

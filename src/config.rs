//! Settings: `assay.toml` < `ASSAY_*` environment variables < command-line flags.
//!
//! Settings are validated when loaded; a bad file fails with file:line:col, a bad
//! environment variable names the variable. Secrets (an ssh key path is not one,
//! but credentials in URLs are) never pass through here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::InputError;

/// Hard limits on what one submission may cost us. Each, when hit, becomes a
/// recorded outcome kind on the submission (see [`crate::outcome::OutcomeKind`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
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
            install_disk: 8 << 30,
            test_disk: 2 << 30,
        }
    }
}

/// Everything that configures a run of assay.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
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
    /// Who may review in `assay serve` (`[[grader]]` tables).
    #[serde(rename = "grader")]
    pub graders: Vec<Grader>,
}

/// A grader of `assay serve`: a name and the sha256 of their token (the token itself is
/// never stored; `assay grader add` prints it once).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
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
        let mut settings = match file {
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
        settings.apply_env(env)?;
        if let Some(d) = &overrides.data_dir {
            settings.data_dir = d.clone();
        }
        if let Some(db) = &overrides.db {
            settings.db = Some(db.clone());
        }
        if let Some(j) = overrides.jobs {
            settings.jobs = j;
        }
        settings.validate(file)?;
        Ok(settings)
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), InputError> {
        for (key, value) in env {
            let Some(name) = key.strip_prefix("ASSAY_") else {
                continue;
            };
            let bad = |what: &str| {
                InputError::file(Path::new(key), format!("expected {what}, found {value:?}"))
                    .with_hint(format!("set {key} to {what} or unset it"))
            };
            let num = || value.trim().parse::<u64>().map_err(|_| bad("a whole number"));
            let flag = || match value.trim() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" | "" => Ok(false),
                _ => Err(bad("true or false")),
            };
            match name {
                "DATA_DIR" => self.data_dir = PathBuf::from(value),
                "DB" => self.db = Some(value.clone()),
                "JOBS" => self.jobs = num()? as usize,
                "REMOTE_ONLY" => self.remote_only = flag()?,
                "ALLOW_PRIVATE_HOSTS" => self.allow_private_hosts = flag()?,
                "SSH_KEY" => self.ssh_key = Some(PathBuf::from(value)),
                "KNOWN_HOSTS" => self.known_hosts = Some(PathBuf::from(value)),
                "CA_FILE" => self.ca_file = Some(PathBuf::from(value)),
                "RETRIES" => self.retries = num()? as u32,
                "LIMITS_FETCH_BYTES" => self.limits.fetch_bytes = num()?,
                "LIMITS_FETCH_SECONDS" => self.limits.fetch_seconds = num()?,
                "LIMITS_EXPORT_BYTES" => self.limits.export_bytes = num()?,
                "LIMITS_EXPORT_FILES" => self.limits.export_files = num()?,
                "LIMITS_FILE_BYTES" => self.limits.file_bytes = num()?,
                "LIMITS_COMMITS" => self.limits.commits = num()?,
                "LIMITS_INSTALL_DISK" => self.limits.install_disk = num()?,
                "LIMITS_TEST_DISK" => self.limits.test_disk = num()?,
                // Other ASSAY_* variables (ASSAY_CONFIG, ASSAY_LOG) are read elsewhere.
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self, file: Option<&Path>) -> Result<(), InputError> {
        let origin = file.unwrap_or(Path::new("settings"));
        if self.jobs == 0 || self.jobs > 256 {
            return Err(
                InputError::file(origin, format!("jobs must be 1..=256, found {}", self.jobs))
                    .with_hint("set jobs in assay.toml, ASSAY_JOBS or --jobs"),
            );
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
}

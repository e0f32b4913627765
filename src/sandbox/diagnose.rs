//! Why an install failed, and whose fault it was: the candidate's (a pin that
//! does not exist, code that does not compile), assay's environment (a tool or
//! library the image lacks, a download from outside the package registries),
//! or a resource limit (disk, memory, time). Only the first counts against the
//! candidate; the others are set apart with the fix an operator can apply.
//!
//! Pure: reads a finished install phase. Resource limits come from what the
//! sandbox measured (the timer, the OOM flag, a full /work), never from text;
//! environment causes from signatures of each ecosystem's tools.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{PhaseResult, SandboxLimits};

/// Whose fault a failed install is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallCause {
    /// The candidate's project: counts against them.
    Candidate,
    /// assay's image or network: never counts against them.
    Environment,
    /// A sandbox limit: never counts against them.
    ResourceLimit,
}

impl InstallCause {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallCause::Candidate => "candidate",
            InstallCause::Environment => "environment",
            InstallCause::ResourceLimit => "resource_limit",
        }
    }
}

/// The install phase, diagnosed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallDiagnosis {
    /// The install finished with exit status 0.
    pub ok: bool,
    /// Whose fault the failure is (`None` when it worked).
    pub cause: Option<InstallCause>,
    /// The step that failed (the runner's last `assay-step:` line).
    pub step: Option<String>,
    /// What went wrong, quoting the line that shows it.
    pub diagnosis: Option<String>,
    /// What to do about it (an operator's fix for environment and resource limits).
    pub fix: Option<String>,
}

/// A signature: text in the output, the cause, and what to say.
struct Signature {
    needle: &'static str,
    cause: InstallCause,
    what: &'static str,
    fix: &'static str,
}

const fn sig(needle: &'static str, cause: InstallCause, what: &'static str, fix: &'static str) -> Signature {
    Signature {
        needle,
        cause,
        what,
        fix,
    }
}

use InstallCause::{Candidate, Environment};

const IMAGE_FIX: &str = "add the missing tool or -dev package to docker/RUNNER.Dockerfile and rebuild with `assay images build --runner RUNNER`, then grade again";
const PYTHON_FIX: &str = "grade it with a python runner image whose Python the project supports (docker/python.Dockerfile), then grade again";
const NETWORK_FIX: &str = "the install needed a host outside the package registries (or the registries were unreachable); make it reachable from the Docker engine's bridge network, or vendor the dependency, then grade again";

/// Checked in order; the first that occurs in the output decides. assay's side
/// comes first: a tool that could not reach the registry also reports the
/// version "missing", and a crate whose system library is absent also "could
/// not compile" — in doubt, the failure is not held against the candidate.
const SIGNATURES: &[Signature] = &[
    // The project's own Requires-Python (or a pinned package's) names a Python the image lacks:
    // it targets a newer Python, which the candidate's machine has.
    sig(
        "requires a different Python: ",
        Environment,
        "the project requires another Python than the runner image's",
        PYTHON_FIX,
    ),
    // assay's image lacks a tool or library.
    sig(
        "command 'gcc' failed",
        Environment,
        "a package needed a C compiler the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "command 'x86_64-linux-gnu-gcc' failed",
        Environment,
        "a package needed a C compiler the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "pg_config executable not found",
        Environment,
        "psycopg2 needed pg_config (libpq-dev), which the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "gyp ERR! find Python",
        Environment,
        "node-gyp needed Python, which the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "not found: make",
        Environment,
        "node-gyp needed make, which the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "linker `cc` not found",
        Environment,
        "cargo needed a C linker the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "could not find system library",
        Environment,
        "a crate needed a system library the image lacks",
        IMAGE_FIX,
    ),
    sig(
        "Package requirements",
        Environment,
        "pkg-config could not find a library the image lacks",
        IMAGE_FIX,
    ),
    // A download from outside the registries, or no network at all. tinyproxy answers a host
    // off the allow-list with "403 Filtered", which pip ("Tunnel connection failed: 403
    // Filtered"), npm and git print.
    sig(
        "403 Filtered",
        Environment,
        "a download from a host outside the allowed package registries, refused by assay's install proxy",
        EGRESS_FIX,
    ),
    sig(
        "gyp ERR! stack Error: connect",
        Environment,
        "node-gyp tried to download Node's headers from outside the registries",
        NETWORK_FIX,
    ),
    sig(
        "node-pre-gyp WARN Tried to download",
        Environment,
        "a native module tried to download a prebuilt binary from outside the registries",
        NETWORK_FIX,
    ),
    sig(
        "invalid go version",
        Environment,
        "go.mod names a Go release newer than the runner image's Go 1.19 (Debian's), which cannot even read it",
        "build the go runner image with a newer Go, then grade again",
    ),
    sig(
        "go.mod requires go >=",
        Environment,
        "go.mod requires a newer Go than the runner image's Go 1.19 (Debian's)",
        "build the go runner image with a newer Go, then grade again",
    ),
    sig(
        "module lookup disabled by GOPROXY=off",
        Environment,
        "the Go project needs modules, and the Go module proxy is not reachable here",
        NETWORK_FIX,
    ),
    sig(
        "Temporary failure in name resolution",
        Environment,
        "a host could not be resolved during the install",
        NETWORK_FIX,
    ),
    sig(
        "getaddrinfo ENOTFOUND",
        Environment,
        "a host could not be resolved during the install",
        NETWORK_FIX,
    ),
    sig(
        "Could not resolve host",
        Environment,
        "a host could not be resolved during the install",
        NETWORK_FIX,
    ),
    sig(
        "spurious network error",
        Environment,
        "cargo could not reach a registry or a git host",
        NETWORK_FIX,
    ),
    // The candidate's project.
    sig(
        "No matching distribution found for",
        Candidate,
        "a requirement names a version that does not exist on PyPI",
        "",
    ),
    sig(
        "ResolutionImpossible",
        Candidate,
        "the project's requirements conflict",
        "",
    ),
    sig(
        "npm ERR! code ETARGET",
        Candidate,
        "package.json names a version that does not exist on the npm registry",
        "",
    ),
    sig(
        "npm error code ETARGET",
        Candidate,
        "package.json names a version that does not exist on the npm registry",
        "",
    ),
    sig(
        "npm ERR! code ERESOLVE",
        Candidate,
        "the project's dependencies conflict",
        "",
    ),
    sig(
        "npm error code ERESOLVE",
        Candidate,
        "the project's dependencies conflict",
        "",
    ),
    sig(
        "package.json and package-lock.json",
        Candidate,
        "package-lock.json does not match package.json",
        "",
    ),
    sig(
        "failed to select a version for",
        Candidate,
        "Cargo.toml names versions that do not exist or conflict",
        "",
    ),
    sig("could not compile", Candidate, "the project does not compile", ""),
    sig(
        "does not contain package",
        Candidate,
        "go.mod does not match the project's imports",
        "",
    ),
];

/// What in `output` shows a failure of assay's environment rather than the project's (a tool
/// the image lacks, a download from outside the registries), quoting the line.
pub fn environment_cause(output: &str) -> Option<String> {
    SIGNATURES.iter().filter(|s| s.cause == Environment).find_map(|s| {
        output
            .lines()
            .find(|l| l.contains(s.needle))
            .map(|line| format!("{}: {}", s.what, clip(line.trim(), 240)))
    })
}

/// A pin that exists on PyPI but not for the image's Python: pip says "No matching
/// distribution found for NAME==V" and lists V among the versions it "Ignored … that require a
/// different python version". The project targets another Python; that is the image's age.
fn python_version_mismatch(output: &str) -> Option<String> {
    let wanted = output.lines().find_map(|l| {
        l.split_once("No matching distribution found for ")
            .map(|(_, r)| r.trim().to_string())
    })?;
    let (name, version) = wanted.split_once("==")?;
    let ignored = output
        .lines()
        .find(|l| l.contains("require a different python version"))?;
    let spec = ignored
        .split("; ")
        .map(|p| p.rsplit(": ").next().unwrap_or(p).trim())
        .find_map(|p| p.strip_prefix(&format!("{version} Requires-Python ")))?;
    Some(format!(
        "{name}=={version} exists on PyPI but requires Python {spec}, and the runner image has another Python"
    ))
}

/// What a test suite needs that no sandbox has: a browser to drive, or a database server
/// beside it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lacks {
    Browser,
    Service,
}

/// What a test suite needs that no sandbox has, by the line a tool or client prints: the line,
/// the package that prints it (the project must declare it, so text the candidate's own code
/// prints cannot set a failure apart), what to say, and what is lacking.
const TEST_ENVIRONMENT: &[(&str, &str, &str, Lacks)] = &[
    (
        "No binary for Chrome browser",
        "karma-chrome-launcher",
        "karma needs Chrome",
        Lacks::Browser,
    ),
    (
        "No binary for ChromeHeadless browser",
        "karma-chrome-launcher",
        "karma needs Chrome",
        Lacks::Browser,
    ),
    (
        "Could not find Chrome (ver",
        "puppeteer",
        "puppeteer needs its Chrome",
        Lacks::Browser,
    ),
    (
        "Could not find expected browser",
        "puppeteer",
        "puppeteer needs its browser",
        Lacks::Browser,
    ),
    (
        "Looks like Playwright Test or Playwright was just installed",
        "playwright",
        "Playwright needs its browsers",
        Lacks::Browser,
    ),
    (
        "Please run the following command to download new browsers",
        "playwright",
        "Playwright needs its browsers",
        Lacks::Browser,
    ),
    (
        "Cypress failed to start",
        "cypress",
        "Cypress needs its binary and a display",
        Lacks::Browser,
    ),
    (
        "Your system is missing the dependency: Xvfb",
        "cypress",
        "Cypress needs Xvfb",
        Lacks::Browser,
    ),
    // A database client's own name for a refused connection, which may not name the port
    // (Node 20 tries `localhost`'s IPv6 and IPv4 addresses, and an AggregateError of both has no
    // message).
    (
        "SequelizeConnectionRefusedError",
        "sequelize",
        "the database server Sequelize connects to",
        Lacks::Service,
    ),
    (
        "Can't reach database server at",
        "prisma",
        "the database server Prisma connects to",
        Lacks::Service,
    ),
    (
        "MongooseServerSelectionError",
        "mongoose",
        "a MongoDB server",
        Lacks::Service,
    ),
    (
        "MongoServerSelectionError",
        "mongodb",
        "a MongoDB server",
        Lacks::Service,
    ),
];

const BROWSER_FIX: &str = "the tests drive a browser the runner image does not have (and cannot download): add chromium to docker/RUNNER.Dockerfile (with CHROME_BIN=/usr/bin/chromium), rebuild with `assay images build --runner RUNNER`, then grade again";

/// Why a test run that did not pass says nothing about the candidate, when that is so: the
/// test phase filled its disk limit (measured), or the suite needs what no sandbox has (a
/// browser, by the signature of the tool that says so; a database or other service on the
/// loopback, by a refused connection to its port or the client's name for one), when `manifest`
/// — the project's package.json — declares that tool or client. `None` for a run the project
/// decided.
pub fn diagnose_tests(
    runner: &str,
    run: &PhaseResult,
    limits: &SandboxLimits,
    manifest: &str,
) -> Option<InstallDiagnosis> {
    if run.disk_full {
        return Some(InstallDiagnosis {
            ok: false,
            cause: Some(InstallCause::ResourceLimit),
            step: Some("tests".into()),
            diagnosis: Some(format!(
                "the tests filled their {:.1} GiB of disk under /work",
                limits.test_disk as f64 / f64::from(1u32 << 30)
            )),
            fix: Some(format!(
                "raise limits.test_disk (now {} bytes) in assay.toml or ASSAY_LIMITS_TEST_DISK, then grade again",
                limits.test_disk
            )),
        });
    }
    let output = format!("{}\n{}", run.stdout, run.stderr);
    let words: BTreeSet<String> = if runner == "python" {
        manifest
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_lowercase().replace('_', "-"))
            .collect()
    } else {
        BTreeSet::new()
    };
    let declared = |package: &str| {
        if runner == "python" {
            // A requirement's name, or one with a suffix (psycopg2-binary), in any manifest.
            words.contains(package) || words.iter().any(|w| w.starts_with(&format!("{package}-")))
        } else {
            manifest.contains(&format!("\"{package}\"")) || manifest.contains(&format!("\"@{package}/"))
        }
    };
    let signed = |lacks: Lacks| {
        TEST_ENVIRONMENT
            .iter()
            .filter(|(_, package, _, l)| *l == lacks && declared(package))
            .find_map(|(needle, _, what, _)| {
                let line = output.lines().find(|l| l.contains(needle))?;
                Some(format!("{what}: {}", clip(line.trim(), 240)))
            })
    };
    if let Some(says) = signed(Lacks::Browser) {
        return Some(not_ours(says, BROWSER_FIX.replace("RUNNER", runner)));
    }
    let service = refused_service(&output, &declared).or_else(|| signed(Lacks::Service))?;
    Some(not_ours(
        format!("the tests need {service}; the sandbox runs no services"),
        SERVICE_FIX.into(),
    ))
}

/// A test run that did not pass for a reason of assay's: what it lacked, and the fix.
fn not_ours(diagnosis: String, fix: String) -> InstallDiagnosis {
    InstallDiagnosis {
        ok: false,
        cause: Some(Environment),
        step: Some("tests".into()),
        diagnosis: Some(diagnosis),
        fix: Some(fix),
    }
}

/// The service on the loopback a line of `output` says refused a connection, when the project
/// declares one of its clients: what listens there, its port, and the line. Node's clients say
/// `ECONNREFUSED 127.0.0.1:5432`; Python's say it their own ways — libpq's `connection to server
/// at "localhost" (127.0.0.1), port 5432 failed: Connection refused` (or, older, `Connection
/// refused … on port 5432?` over two lines), asyncpg's `Connect call failed ('127.0.0.1', 5432)`,
/// redis-py's `Error 111 connecting to localhost:6379` (or `Error 99 … Cannot assign requested
/// address`, its last try on ::1), PyMySQL's `Can't connect to MySQL server
/// on 'localhost'` (the default port), pymongo's `localhost:27017: [Errno 111] Connection
/// refused`.
fn refused_service(output: &str, declared: &dyn Fn(&str) -> bool) -> Option<String> {
    const REFUSED: &[&str] = &[
        "ECONNREFUSED",
        "Connection refused",
        "Errno 111",
        "Error 111",
        "Connect call failed",
        // `localhost` tried on ::1 last, in a sandbox whose loopback has no IPv6 address:
        // redis-py's "Error 99 connecting to localhost:6379. Cannot assign requested address."
        "Cannot assign requested address",
    ];
    const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "::1"];
    let lines: Vec<&str> = output.lines().collect();
    SERVICES
        .iter()
        .filter(|(_, _, clients)| clients.iter().any(|c| declared(c)))
        .find_map(|(port, what, _)| {
            let names_port = |l: &str| {
                l.match_indices(&port.to_string()).any(|(i, m)| {
                    let before = l[..i].chars().next_back();
                    let after = l[i + m.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
                })
            };
            let line = (0..lines.len()).find_map(|k| {
                let l = lines[k];
                // MySQL's clients name the host alone when they tried the default port.
                let mysql = *port == 3306
                    && (l.contains("Can't connect to MySQL server on")
                        || l.contains("Can't connect to local MySQL server"));
                if !mysql && !REFUSED.iter().any(|r| l.contains(r)) {
                    return None;
                }
                // The refusal's line and the two after it (libpq's older message spreads the
                // host and the port over them).
                let near = lines[k..(k + 3).min(lines.len())].join("\n");
                let loopback = LOOPBACK.iter().any(|h| near.contains(h)) || l.contains("local MySQL server");
                (loopback && (mysql || names_port(&near))).then_some(l)
            })?;
            Some(format!("{what} on port {port}: {}", clip(line.trim(), 240)))
        })
}

/// Services a test suite may expect on the loopback, which no sandbox runs: the port, what
/// listens there, and the client packages of which the project must declare one (so that a
/// refused connection the candidate's own code prints cannot set a failure apart).
/// npm's names first, then PyPI's (normalised: lower case, `-`).
const SERVICES: &[(u16, &str, &[&str])] = &[
    (
        3306,
        "a MySQL server",
        &[
            "mysql",
            "mysql2",
            "sequelize",
            "typeorm",
            "knex",
            "prisma", // npm
            "pymysql",
            "mysqlclient",
            "mysql-connector-python",
            "aiomysql",
            "sqlalchemy",
            "django",
        ],
    ),
    (
        5432,
        "a PostgreSQL server",
        &[
            "pg",
            "postgres",
            "pg-promise",
            "sequelize",
            "typeorm",
            "knex",
            "prisma", // npm
            "psycopg2",
            "psycopg",
            "asyncpg",
            "pg8000",
            "sqlalchemy",
            "django",
        ],
    ),
    (
        27017,
        "a MongoDB server",
        &["mongodb", "mongoose", "prisma", "pymongo", "motor", "mongoengine"],
    ),
    (
        6379,
        "a Redis server",
        &["redis", "ioredis", "bull", "bullmq", "aioredis", "celery", "rq"],
    ),
];

const EGRESS_FIX: &str = "if the project truly needs these hosts and you trust them, add them to install_hosts in assay.toml (or ASSAY_INSTALL_HOSTS), then grade again; otherwise the dependency belongs in a package registry or in the repository";

const SERVICE_FIX: &str = "nothing in the project to fix for this: its tests expect a database or other \
service running beside them, which assay's sandbox does not provide; a grader runs them with the service \
(the README's setup), or judges the tests by reading them";

/// Diagnoses a finished install phase of `runner`.
pub fn diagnose(runner: &str, install: &PhaseResult, limits: &SandboxLimits) -> InstallDiagnosis {
    let step = last_step(&install.stderr).or_else(|| last_step(&install.stdout));
    let failed = install.timed_out || install.oom_killed || install.exit_code != Some(0);
    if !failed {
        return InstallDiagnosis {
            ok: true,
            cause: None,
            step: None,
            diagnosis: None,
            fix: None,
        };
    }
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30));
    let resource = |what: String, fix: String| InstallDiagnosis {
        ok: false,
        cause: Some(InstallCause::ResourceLimit),
        step: step.clone(),
        diagnosis: Some(what),
        fix: Some(fix),
    };
    if install.timed_out {
        return resource(
            format!("the install ran past its {} s limit", limits.install_seconds),
            "raise the install time limit (the cohort's [limits] install_seconds lowers it only; the policy default is 600 s) or grade again when the registries are faster".into(),
        );
    }
    if install.oom_killed {
        return resource(
            format!(
                "the install ran out of its {} of memory",
                gib(limits.install_memory.max(0) as u64)
            ),
            "the install needs more memory than the sandbox gives; raise the install memory limit".into(),
        );
    }
    if install.disk_full {
        return resource(
            format!(
                "the install filled its {} of disk under /work",
                gib(limits.install_disk)
            ),
            format!(
                "raise limits.install_disk (now {} bytes) in assay.toml or ASSAY_LIMITS_INSTALL_DISK, then grade again",
                limits.install_disk
            ),
        );
    }
    if !install.egress_refused.is_empty() {
        // The proxy's own record, not text the install printed: it asked for a host that is not
        // a package registry, and the install then failed.
        return InstallDiagnosis {
            ok: false,
            cause: Some(Environment),
            step: step.clone(),
            diagnosis: Some(format!(
                "the install asked for host(s) outside the allowed package registries, which assay's install proxy refused: {}",
                install.egress_refused.join(", ")
            )),
            fix: Some(EGRESS_FIX.into()),
        };
    }
    let output = format!("{}\n{}", install.stdout, install.stderr);
    if let Some(why) = python_version_mismatch(&output) {
        return InstallDiagnosis {
            ok: false,
            cause: Some(Environment),
            step: step.clone(),
            diagnosis: Some(why),
            fix: Some(PYTHON_FIX.into()),
        };
    }
    for s in SIGNATURES {
        if let Some(line) = output.lines().find(|l| l.contains(s.needle)) {
            return InstallDiagnosis {
                ok: false,
                cause: Some(s.cause),
                step: step.clone(),
                diagnosis: Some(format!("{}: {}", s.what, clip(line.trim(), 240))),
                fix: (!s.fix.is_empty()).then(|| s.fix.replace("RUNNER", runner)),
            };
        }
    }
    // Nothing says it was us: the project's own install failed.
    let last = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("assay-step:"))
        .map(|l| clip(l, 240));
    InstallDiagnosis {
        ok: false,
        cause: Some(InstallCause::Candidate),
        step: step.clone(),
        diagnosis: Some(match (&step, last) {
            (Some(step), Some(last)) => format!("`{step}` failed: {last}"),
            (Some(step), None) => format!("`{step}` failed"),
            (None, Some(last)) => format!("the install failed: {last}"),
            (None, None) => "the install failed without output".into(),
        }),
        fix: None,
    }
}

fn last_step(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("assay-step:"))
        .map(|s| s.trim().to_string())
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> PhaseResult {
        PhaseResult {
            exit_code: Some(1),
            stderr: stderr.to_string(),
            ..PhaseResult::default()
        }
    }

    fn check(runner: &str, p: PhaseResult, cause: Option<InstallCause>, step: Option<&str>, says: &str) {
        let d = diagnose(runner, &p, &SandboxLimits::default());
        assert_eq!((d.cause, d.step.as_deref()), (cause, step), "{d:?}");
        assert!(d.diagnosis.as_deref().unwrap_or("").contains(says), "{d:?}");
    }

    #[test]
    fn a_project_that_requires_a_newer_python_is_the_images_age() {
        // Corpus: jon-robbins/amenitiz-takehome declares requires-python >=3.13; the image has 3.11.
        check(
            "python",
            failed("assay-step: pip install .\nProcessing /work/src\nERROR: Package 'amenitiz-price-recommender' requires a different Python: 3.11.2 not in '<4.0.0,>=3.13.0'\n"),
            Some(InstallCause::Environment),
            Some("pip install ."),
            "requires a different Python: 3.11.2",
        );
    }

    #[test]
    fn an_install_that_failed_after_the_proxy_refused_a_host_is_not_the_candidates() {
        // What the install printed reads like the project's own failure; the proxy's record says
        // it asked for a host the allow-list does not hold.
        let mut p = failed("assay-step: npm ci\nnpm ERR! 403 Forbidden - GET https://npm.corp.example/left-pad\n");
        p.egress_refused = vec!["npm.corp.example".into()];
        check(
            "node",
            p,
            Some(InstallCause::Environment),
            Some("npm ci"),
            "assay's install proxy refused: npm.corp.example",
        );
        let d = diagnose("node", &p_refused_ok(), &SandboxLimits::default());
        assert!(
            d.ok && d.cause.is_none(),
            "a refusal the install did without is no failure: {d:?}"
        );
    }

    fn p_refused_ok() -> PhaseResult {
        PhaseResult {
            exit_code: Some(0),
            egress_refused: vec!["telemetry.example".into()],
            ..PhaseResult::default()
        }
    }

    #[test]
    fn a_missing_pin_is_the_candidates_and_names_the_step() {
        check(
            "python",
            failed("assay-step: python3 -m venv /work/.venv\nassay-step: pip install -r requirements.txt\nERROR: Could not find a version that satisfies the requirement numpy==99.0\nERROR: No matching distribution found for numpy==99.0\n"),
            Some(InstallCause::Candidate),
            Some("pip install -r requirements.txt"),
            "numpy==99.0",
        );
    }

    #[test]
    fn tests_that_need_a_browser_the_image_lacks_are_not_the_candidates() {
        let karma = "12 01 2026 ERROR [launcher]: No binary for Chrome browser on your platform.\n  Please, set \"CHROME_BIN\" env variable.\n";
        let pkg = r#"{"devDependencies": {"karma": "~6.3.0", "karma-chrome-launcher": "~3.1.0"}}"#;
        let l = SandboxLimits::default();
        let d = diagnose_tests("node", &failed(karma), &l, pkg).expect("diagnosed");
        assert_eq!(d.cause, Some(InstallCause::Environment));
        assert!(d.diagnosis.unwrap().contains("karma needs Chrome"));
        assert!(d.fix.unwrap().contains("docker/node.Dockerfile"));
        // The same line from a project that does not use the tool is the project's output.
        assert_eq!(
            diagnose_tests("node", &failed(karma), &l, r#"{"devDependencies": {"jest": "29"}}"#),
            None
        );
        // An ordinary failure is the project's.
        assert_eq!(
            diagnose_tests("node", &failed("Tests: 1 failed, 1 total\n"), &l, pkg),
            None
        );
        // A full test disk is measured, whatever was printed.
        let mut p = failed("");
        p.disk_full = true;
        let d = diagnose_tests("python", &p, &l, "").expect("diagnosed");
        assert_eq!(d.cause, Some(InstallCause::ResourceLimit));
        assert!(d.fix.unwrap().contains("limits.test_disk"));
    }

    #[test]
    fn tests_that_need_a_database_server_are_not_the_candidates() {
        // MythicWrath/tech_assessment: mocha tests against MySQL through sequelize.
        let out = "  Suspend student\nerror1SequelizeConnectionRefusedError: connect ECONNREFUSED 127.0.0.1:3306\n    \
                   1) \"before all\" hook for \"should return error\"\n";
        let pkg =
            r#"{"dependencies": {"mysql2": "^1.6.5", "sequelize": "^5.10.1"}, "devDependencies": {"mocha": "^6.1.4"}}"#;
        let l = SandboxLimits::default();
        let d = diagnose_tests("node", &failed(out), &l, pkg).expect("diagnosed");
        assert_eq!(d.cause, Some(InstallCause::Environment));
        let says = d.diagnosis.unwrap();
        assert!(
            says.starts_with("the tests need a MySQL server on port 3306: "),
            "{says}"
        );
        assert!(says.contains("ECONNREFUSED 127.0.0.1:3306"), "{says}");
        // The same run in the sandbox, where `localhost` is both loopbacks: Sequelize's error
        // has no message, only its name.
        let bare =
            failed("error1SequelizeConnectionRefusedError\nUnhandled rejection SequelizeConnectionRefusedError\n");
        let d = diagnose_tests("node", &bare, &l, pkg).expect("diagnosed");
        let says = d.diagnosis.unwrap();
        assert!(
            says.starts_with("the tests need the database server Sequelize connects to: "),
            "{says}"
        );
        assert_eq!(
            diagnose_tests("node", &bare, &l, r#"{"dependencies": {"mysql2": "1"}}"#),
            None
        );
        // Postgres on the IPv6 loopback, through pg.
        let pg = failed("Error: connect ECONNREFUSED ::1:5432\n");
        let d = diagnose_tests("node", &pg, &l, r#"{"dependencies": {"pg": "8"}}"#).expect("diagnosed");
        assert!(d.diagnosis.unwrap().contains("a PostgreSQL server on port 5432"));
        // A project that declares no client for it: the line is the project's own output.
        assert_eq!(
            diagnose_tests("node", &failed(out), &l, r#"{"devDependencies": {"mocha": "6"}}"#),
            None
        );
        // A refused connection to another port (the project's own server) is the project's.
        let own = failed("Error: connect ECONNREFUSED 127.0.0.1:8080\n");
        assert_eq!(diagnose_tests("node", &own, &l, pkg), None);
        // A remote host is not a service the sandbox was expected to run.
        let remote = failed("Error: connect ECONNREFUSED 10.0.0.5:3306\n");
        assert_eq!(diagnose_tests("node", &remote, &l, pkg), None);
    }

    #[test]
    fn python_tests_that_need_a_database_server_are_not_the_candidates() {
        let l = SandboxLimits::default();
        let reqs = "Django==4.2\npsycopg2-binary==2.9.9\npytest==8.0\n";
        let cases = [
            // libpq through Django and SQLAlchemy, new and old wording.
            (
                "E   django.db.utils.OperationalError: connection to server at \"localhost\" (127.0.0.1), port 5432 failed: Connection refused\n",
                "a PostgreSQL server on port 5432",
            ),
            (
                "E   psycopg2.OperationalError: could not connect to server: Connection refused\nE   \tIs the server running on host \"localhost\" (127.0.0.1) and accepting\nE   \tTCP/IP connections on port 5432?\n",
                "a PostgreSQL server on port 5432",
            ),
        ];
        for (out, says) in cases {
            let d = diagnose_tests("python", &failed(out), &l, reqs).expect(out);
            assert_eq!(d.cause, Some(InstallCause::Environment));
            assert!(d.diagnosis.as_deref().unwrap().contains(says), "{d:?}");
        }
        let others = [
            (
                "OSError: Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432), [Errno 99] Cannot assign requested address\n",
                "asyncpg==0.29\n",
                "PostgreSQL server on port 5432",
            ),
            (
                // What redis-py prints in the sandbox (measured).
                "redis.exceptions.ConnectionError: Error 99 connecting to localhost:6379. Cannot assign requested address.\n",
                "redis==5.0.8\n",
                "Redis server on port 6379",
            ),
            (
                "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.\n",
                "[project]\ndependencies = [\"redis>=5\"]\n",
                "Redis server on port 6379",
            ),
            (
                "pymysql.err.OperationalError: (2003, \"Can't connect to MySQL server on 'localhost' ([Errno 111] Connection refused)\")\n",
                "PyMySQL==1.1\n",
                "MySQL server on port 3306",
            ),
            (
                "MySQLdb.OperationalError: (2002, \"Can't connect to local MySQL server through socket '/run/mysqld/mysqld.sock' (2)\")\n",
                "mysqlclient==2.2\n",
                "MySQL server on port 3306",
            ),
            (
                "pymongo.errors.ServerSelectionTimeoutError: localhost:27017: [Errno 111] Connection refused\n",
                "pymongo\n",
                "MongoDB server on port 27017",
            ),
        ];
        for (out, manifest, says) in others {
            let d = diagnose_tests("python", &failed(out), &l, manifest).expect(out);
            assert!(d.diagnosis.as_deref().unwrap().contains(says), "{d:?}");
        }
        let refused = cases[0].0;
        // Without a declared client, the line is the project's own output.
        assert_eq!(diagnose_tests("python", &failed(refused), &l, "pytest==8.0\n"), None);
        // Port 54320 is not 5432; a remote host is not the sandbox's to run.
        let other = "connection to server at \"localhost\" (127.0.0.1), port 54320 failed: Connection refused\n";
        assert_eq!(diagnose_tests("python", &failed(other), &l, reqs), None);
        let remote = "connection to server at \"db.internal\" (10.0.0.5), port 5432 failed: Connection refused\n";
        assert_eq!(diagnose_tests("python", &failed(remote), &l, reqs), None);
    }

    #[test]
    fn measured_limits_are_resource_limits_whatever_the_output_says() {
        let mut p =
            failed("assay-step: pip install -r requirements.txt\nOSError: [Errno 28] No space left on device\n");
        p.disk_full = true;
        let d = diagnose("python", &p, &SandboxLimits::default());
        assert_eq!(d.cause, Some(InstallCause::ResourceLimit));
        assert!(d.fix.unwrap().contains("limits.install_disk"));
        // The same text without a full disk is not a resource limit: text a
        // candidate prints cannot set their failure apart.
        let d = diagnose(
            "python",
            &failed("OSError: [Errno 28] No space left on device\n"),
            &SandboxLimits::default(),
        );
        assert_eq!(d.cause, Some(InstallCause::Candidate));
        let mut p = failed("");
        p.exit_code = None;
        p.timed_out = true;
        check("node", p, Some(InstallCause::ResourceLimit), None, "600 s");
        let mut p = failed("");
        p.oom_killed = true;
        check("rust", p, Some(InstallCause::ResourceLimit), None, "memory");
    }

    #[test]
    fn tools_the_image_lacks_and_downloads_outside_the_registries_are_the_environments() {
        let d = diagnose(
            "node",
            &failed("assay-step: npm ci\nnpm ERR! gyp ERR! stack Error: not found: make\n"),
            &SandboxLimits::default(),
        );
        assert_eq!(d.cause, Some(InstallCause::Environment));
        assert!(d.fix.unwrap().contains("docker/node.Dockerfile"));
        check(
            "go",
            failed("assay-step: go test -run '^$' ./...\ngo: github.com/x/y@v1.2.3: module lookup disabled by GOPROXY=off\n"),
            Some(InstallCause::Environment),
            Some("go test -run '^$' ./..."),
            "module proxy",
        );
        // The install proxy's refusal as pip prints it, even without the proxy's own record.
        check(
            "python",
            failed("assay-step: pip install -r requirements.txt\nERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pkgs.corp.example', port=443): Max retries exceeded (Caused by ProxyError('Unable to connect to proxy', OSError('Tunnel connection failed: 403 Filtered')))\n"),
            Some(InstallCause::Environment),
            Some("pip install -r requirements.txt"),
            "refused by assay's install proxy",
        );
        // Regression (corpus: a Kedro project): kedro==0.17.7 exists, but for Python < 3.9.
        check(
            "python",
            failed("assay-step: pip install -r src/requirements.txt\nERROR: Ignored the following versions that require a different python version: 0.16.0 Requires-Python >=3.6, <3.9; 0.17.7 Requires-Python >=3.6, <3.9; 9.12.0 Requires-Python >=3.12\nERROR: Could not find a version that satisfies the requirement kedro[pandas.CSVDataSet]==0.17.7 (from versions: 0.18.12)\nERROR: No matching distribution found for kedro[pandas.CSVDataSet]==0.17.7\n"),
            Some(InstallCause::Environment),
            Some("pip install -r src/requirements.txt"),
            "requires Python >=3.6, <3.9",
        );
        // Regression (corpus: a Go service): `go 1.21.6` in go.mod is unreadable to Go 1.19;
        // that is the image's age, not the candidate's project.
        check(
            "go",
            failed("assay-step: go test -run '^$' ./...\ngo: errors parsing go.mod:\n/work/go.mod:3: invalid go version '1.21.6': must match format 1.23\n"),
            Some(InstallCause::Environment),
            Some("go test -run '^$' ./..."),
            "newer than the runner image",
        );
    }

    #[test]
    fn a_version_missing_because_the_registry_was_unreachable_is_not_the_candidates() {
        check(
            "python",
            failed("assay-step: pip install -r requirements.txt\nWARNING: Retrying ... NewConnectionError: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution\nERROR: No matching distribution found for pandas==2.2.2\n"),
            Some(InstallCause::Environment),
            Some("pip install -r requirements.txt"),
            "could not be resolved",
        );
    }

    #[test]
    fn an_unexplained_failure_is_the_candidates_with_the_last_line() {
        check(
            "python",
            failed("assay-step: pip install -e .\nerror: subprocess-exited-with-error\n  setup.py: broken\n"),
            Some(InstallCause::Candidate),
            Some("pip install -e ."),
            "setup.py: broken",
        );
        let ok = PhaseResult {
            exit_code: Some(0),
            ..PhaseResult::default()
        };
        assert!(diagnose("python", &ok, &SandboxLimits::default()).ok);
    }
}

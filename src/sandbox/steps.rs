//! The README's documented install and test commands, run in the job's sandbox after the
//! runner's own phases and reported step by step: does the README work?
//!
//! Install steps run in one install-phase container (network on, the install limits), test
//! steps in one test-phase container (no network, the test limits), each step in its own shell
//! with the runner's environment (its virtualenv) and the `cd`/`source`/`export` lines the
//! README puts before it. Steps run after the runner's tests and hidden tests, so nothing they
//! do changes those results. Commands that cannot run here (conda, a GPU, a secret, another
//! ecosystem's toolchain) are reported as such and not run.

use std::fmt::Write as _;

use base64::Engine as _;

use serde::{Deserialize, Serialize};

use super::diagnose::environment_cause;
use super::{Phase, PhaseResult, PhaseSpec};
use crate::readme::{Purpose, Step};

/// Where step scripts and their logs are written, under /work.
pub const STEPS_DIR: &str = ".assay-readme";
/// Output of a step kept for its report, bytes (its end).
const TAIL_BYTES: usize = 1500;

/// How a documented step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Exit status 0.
    Works,
    /// It ran and failed (the detail has the end of its output).
    Fails,
    /// It could not run here (the detail says why); says nothing about the project.
    CannotRun,
}

impl StepStatus {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Works => "works",
            StepStatus::Fails => "fails",
            StepStatus::CannotRun => "cannot_run",
        }
    }
}

/// One documented step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadmeStep {
    /// The command, as shell words joined.
    pub command: String,
    /// The README line it is on.
    pub line: usize,
    /// The phase it ran in.
    pub phase: Phase,
    /// How it went.
    pub status: StepStatus,
    /// Exit status and the end of its output, or why it could not run.
    pub detail: String,
}

/// The phase a step runs in.
pub fn phase_of(step: &Step) -> Phase {
    match step.purpose {
        Purpose::Test => Phase::Test,
        _ => Phase::Install,
    }
}

/// The script of one step's container: the step's own script is written from base64 (no
/// README text is ever spliced into a shell line) and run with its output on stdout. Each step
/// runs in a container of its own, so its result is the container's exit status as the engine
/// recorded it: nothing the step prints or writes can pass for a result (a shared container
/// framed by printed markers could be forged by a step that read them from /proc).
pub fn script(activate: Option<&str>, step: &Step) -> String {
    let mut body = String::new();
    if let Some(a) = activate {
        let _ = writeln!(body, "{a} 2>/dev/null || true");
    }
    body.push_str("set -e\ncd /work\n");
    for p in &step.prelude {
        let _ = writeln!(body, "{p}");
    }
    let _ = writeln!(body, "{}", step.command);
    let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let dir = format!("/work/{STEPS_DIR}");
    format!(
        "mkdir -p {dir}\n\
         printf '%s' '{b64}' | base64 -d > {dir}/step.sh\n\
         exec bash {dir}/step.sh 2>&1 < /dev/null\n"
    )
}

/// How a step went, from its container's result; `seconds` is the time it was given.
pub fn read(step: &Step, phase: Phase, result: &PhaseResult, seconds: u64) -> ReadmeStep {
    let out = &result.stdout;
    let tail = out[floor_char_boundary(out, out.len().saturating_sub(TAIL_BYTES))..]
        .trim()
        .to_string();
    let killed = result.timed_out || result.oom_killed || result.exit_code.is_none();
    let (status, detail) = match result.exit_code {
        _ if result.disk_full && result.exit_code != Some(0) => (
            StepStatus::CannotRun,
            "filled the sandbox's disk limit under /work".to_string(),
        ),
        _ if result.timed_out => (
            StepStatus::Fails,
            format!("did not finish within the {seconds} s limit: {}", last_lines(&tail)),
        ),
        _ if killed => (
            StepStatus::CannotRun,
            "the sandbox stopped while it ran (memory or output limit)".to_string(),
        ),
        Some(0) => (StepStatus::Works, "exit 0".to_string()),
        // The program is not in the sandbox (pipenv, a tool the README assumes): the user's
        // machine may well have it; this says nothing about the project.
        Some(127) if tail.contains("not found") => (
            StepStatus::CannotRun,
            format!("the sandbox does not have the program it runs: {}", last_lines(&tail)),
        ),
        code => match (environment_cause(&tail), refused_in(&result.egress_refused, &tail)) {
            (Some(env), _) => (StepStatus::CannotRun, format!("assay's environment: {env}")),
            // A host the install's proxy refused, named in what the step printed.
            (None, Some(host)) => (
                StepStatus::CannotRun,
                format!(
                    "needs a host outside the registries the sandbox reaches ({host}, refused by its proxy): {}",
                    last_lines(&tail)
                ),
            ),
            (None, None) => (
                StepStatus::Fails,
                format!(
                    "exit {}: {}",
                    code.map_or("?".to_string(), |c| c.to_string()),
                    last_lines(&tail)
                ),
            ),
        },
    };
    ReadmeStep {
        command: step.command.clone(),
        line: step.line,
        phase,
        status,
        detail,
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A step not reached: the steps before it in its phase used up the phase's time.
pub fn not_reached(step: &Step) -> ReadmeStep {
    blocked(step, "not reached: an earlier step used up the phase's limits")
}

/// The first of the hosts the proxy refused (`host` or `host:port`) that `output` names.
fn refused_in<'a>(refused: &'a [String], output: &str) -> Option<&'a str> {
    let output = output.to_ascii_lowercase();
    refused
        .iter()
        .map(String::as_str)
        .find(|r| output.contains(r.split(':').next().unwrap_or(r)))
}

/// A step that is not run, with the reason.
pub fn blocked(step: &Step, why: &str) -> ReadmeStep {
    ReadmeStep {
        command: step.command.clone(),
        line: step.line,
        phase: phase_of(step),
        status: StepStatus::CannotRun,
        detail: why.to_string(),
    }
}

/// The spec of a steps phase: the runner's phase with the steps' script (and, for tests, the
/// steps' extra environment); nothing is collected.
pub fn spec(base: PhaseSpec, script: String, test_env: &[String]) -> PhaseSpec {
    let mut spec = base;
    spec.script = script;
    spec.collect = None;
    if spec.phase == Phase::Test {
        spec.env.extend(test_env.iter().cloned());
    }
    spec
}

/// The end of a step's output: its last error line (where tools say what went wrong) and its
/// last line, or its last three lines.
fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // "ModuleNotFoundError: No module named 'x'" says more than "1 error in 0.1s".
    let error = lines
        .iter()
        .rposition(|l| l.to_ascii_lowercase().contains("error:"))
        .or_else(|| lines.iter().rposition(|l| l.to_ascii_lowercase().contains("error")));
    let picked: Vec<&str> = match error {
        Some(i) if i + 1 < lines.len() => vec![lines[i], lines[lines.len() - 1]],
        Some(i) => vec![lines[i]],
        None => lines[lines.len().saturating_sub(3)..].to_vec(),
    };
    let joined = picked.join(" / ");
    let n = joined.chars().count();
    if n > 400 {
        format!("…{}", joined.chars().skip(n - 400).collect::<String>())
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(command: &str, purpose: Purpose) -> Step {
        Step {
            line: 3,
            command: command.into(),
            purpose,
            prelude: vec!["cd api".into()],
            blocked: None,
        }
    }

    fn ran(stdout: &str, exit_code: Option<i64>) -> PhaseResult {
        PhaseResult {
            stdout: stdout.into(),
            exit_code,
            ..PhaseResult::default()
        }
    }

    #[test]
    fn a_step_is_its_containers_exit_status_and_its_script_carries_no_readme_text() {
        let a = step("pip install -r requirements.txt'; echo pwned '", Purpose::Install);
        let s = script(Some(". /work/.assay-venv/bin/activate"), &a);
        assert!(!s.contains("pwned") && !s.contains("pip install"), "{s}");
        let failed = read(
            &a,
            Phase::Install,
            &ran("Collecting x\nERROR: No matching distribution found for x\n", Some(1)),
            600,
        );
        assert_eq!(failed.status, StepStatus::Fails);
        assert!(
            failed.detail.starts_with("exit 1: ") && failed.detail.contains("No matching distribution"),
            "{}",
            failed.detail
        );
        // What the step prints says nothing about its result: the engine's exit status does.
        let forged = read(&a, Phase::Install, &ran("\nexit 0\nWorks: exit 0\n", Some(2)), 600);
        assert_eq!(forged.status, StepStatus::Fails);
        let works = read(&a, Phase::Install, &ran("3 passed\n", Some(0)), 600);
        assert_eq!((works.status, works.detail.as_str()), (StepStatus::Works, "exit 0"));
        let slow = PhaseResult {
            timed_out: true,
            ..ran("building\n", None)
        };
        let slow = read(&a, Phase::Install, &slow, 321);
        assert_eq!(slow.status, StepStatus::Fails);
        assert!(slow.detail.contains("321 s"), "{}", slow.detail);
        // Killed at a limit of the sandbox's (memory, output): not the project's failure.
        let oom = PhaseResult {
            oom_killed: true,
            ..ran("", Some(137))
        };
        assert_eq!(read(&a, Phase::Install, &oom, 600).status, StepStatus::CannotRun);
        assert_eq!(not_reached(&a).status, StepStatus::CannotRun);
        // A missing program is the sandbox's.
        let missing = read(
            &a,
            Phase::Install,
            &ran("bash: line 3: pipenv: command not found\n", Some(127)),
            600,
        );
        assert_eq!(missing.status, StepStatus::CannotRun, "{missing:?}");
    }

    #[test]
    fn a_step_that_failed_on_a_host_the_proxy_refused_cannot_run_here() {
        let a = step("pip install -r requirements.txt", Purpose::Install);
        let b = step("npm ci", Purpose::Install);
        let refused = |stdout: &str| PhaseResult {
            egress_refused: vec!["pkgs.corp.example".into()],
            ..ran(stdout, Some(1))
        };
        let got = read(
            &a,
            Phase::Install,
            &refused("ERROR: Could not install packages: HTTPSConnectionPool(host='pkgs.corp.example', port=443)\n"),
            600,
        );
        assert_eq!(got.status, StepStatus::CannotRun, "{got:?}");
        assert!(
            got.detail.contains("pkgs.corp.example, refused by its proxy"),
            "{}",
            got.detail
        );
        // A step whose own failure names no refused host is the project's.
        let got = read(
            &b,
            Phase::Install,
            &refused("npm ERR! 404 Not Found - GET https://registry.npmjs.org/nope\n"),
            600,
        );
        assert_eq!(got.status, StepStatus::Fails, "{got:?}");
    }
}

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
use super::{Phase, PhaseResult, PhaseSpec, SandboxLimits};
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

/// The bash script of one phase's steps: each step's own script is written from base64 (no
/// README text is ever spliced into this script), run with its output in a log, and framed by
/// lines carrying `nonce` so that a step's output cannot pass for another's result.
pub fn script(activate: Option<&str>, steps: &[&Step], nonce: &str) -> String {
    let mut s = format!("mkdir -p /work/{STEPS_DIR}\n");
    for (i, step) in steps.iter().enumerate() {
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
        let _ = write!(
            s,
            "printf '\\n{nonce} start {i}\\n'\n\
             printf '%s' '{b64}' | base64 -d > {dir}/{i}.sh\n\
             bash {dir}/{i}.sh > {dir}/{i}.log 2>&1 < /dev/null\n\
             rc=$?\n\
             tail -c {TAIL_BYTES} {dir}/{i}.log\n\
             printf '\\n{nonce} exit {i} %s\\n' \"$rc\"\n"
        );
    }
    s
}

/// Reads the steps' results out of their phase's output.
pub fn read(
    steps: &[&Step],
    phase: Phase,
    result: &PhaseResult,
    nonce: &str,
    limits: &SandboxLimits,
) -> Vec<ReadmeStep> {
    let out = &result.stdout;
    let start_of = |i: usize| {
        let marker = format!("\n{nonce} start {i}\n");
        out.find(&marker).map(|p| p + marker.len())
    };
    let exit_of = |i: usize| {
        let marker = format!("\n{nonce} exit {i} ");
        out.find(&marker).map(|p| {
            let rest = &out[p + marker.len()..];
            let code = rest.lines().next().unwrap_or("").trim().parse::<i64>().ok();
            (p, code)
        })
    };
    let seconds = match phase {
        Phase::Install => limits.install_seconds,
        Phase::Test => limits.test_seconds,
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let started = start_of(i);
            let ended = exit_of(i);
            let tail = match (started, ended) {
                (Some(a), Some((b, _))) if a <= b => out[a..b].trim().to_string(),
                (Some(a), None) => out[a.min(out.len())..].trim().to_string(),
                _ => String::new(),
            };
            let (status, detail) = match (started, ended) {
                (_, Some((_, Some(0)))) => (StepStatus::Works, "exit 0".to_string()),
                // The program is not in the sandbox (pipenv, a tool the README assumes): the
                // user's machine may well have it; this says nothing about the project.
                (_, Some((_, Some(127)))) if tail.contains("command not found") || tail.contains("not found") => (
                    StepStatus::CannotRun,
                    format!("the sandbox does not have the program it runs: {}", last_lines(&tail)),
                ),
                (_, Some((_, code))) => match (environment_cause(&tail), refused_in(&result.egress_refused, &tail)) {
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
                (Some(_), None) if result.disk_full => (
                    StepStatus::CannotRun,
                    "filled the sandbox's disk limit under /work".to_string(),
                ),
                (Some(_), None) if result.timed_out => (
                    StepStatus::Fails,
                    format!("did not finish within the {seconds} s limit: {}", last_lines(&tail)),
                ),
                (Some(_), None) => (
                    StepStatus::CannotRun,
                    "the sandbox stopped while it ran (memory or output limit)".to_string(),
                ),
                (None, _) => (
                    StepStatus::CannotRun,
                    "not reached: an earlier step used up the phase's limits".to_string(),
                ),
            };
            ReadmeStep {
                command: step.command.clone(),
                line: step.line,
                phase,
                status,
                detail,
            }
        })
        .collect()
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

    #[test]
    fn the_script_carries_no_readme_text_and_results_are_read_by_nonce() {
        let a = step("pip install -r requirements.txt'; echo pwned '", Purpose::Install);
        let b = step("pytest", Purpose::Install);
        let c = step("make", Purpose::Install);
        let steps = [&a, &b, &c];
        let s = script(Some(". /work/.assay-venv/bin/activate"), &steps, "N0NCE");
        assert!(!s.contains("pwned") && !s.contains("pip install"), "{s}");
        // A forged marker without the nonce changes nothing.
        let stdout =
            "\nN0NCE start 0\nCollecting x\nexit 0 1 0\nERROR: No matching distribution found for x\nN0NCE exit 0 1\n\
                      \nN0NCE start 1\n3 passed\nN0NCE exit 1 0\n\nN0NCE start 2\nbuilding\n";
        let result = PhaseResult {
            stdout: stdout.into(),
            timed_out: true,
            ..PhaseResult::default()
        };
        let got = read(&steps, Phase::Install, &result, "N0NCE", &SandboxLimits::default());
        assert_eq!(got[0].status, StepStatus::Fails);
        assert!(
            got[0].detail.starts_with("exit 1: ") && got[0].detail.contains("No matching distribution"),
            "{}",
            got[0].detail
        );
        assert_eq!((got[1].status, got[1].detail.as_str()), (StepStatus::Works, "exit 0"));
        assert_eq!(got[2].status, StepStatus::Fails);
        assert!(got[2].detail.contains("600 s"), "{}", got[2].detail);
        // Nothing printed at all: not reached.
        let none = read(
            &steps,
            Phase::Install,
            &PhaseResult::default(),
            "N0NCE",
            &SandboxLimits::default(),
        );
        assert!(none.iter().all(|s| s.status == StepStatus::CannotRun));
    }

    #[test]
    fn a_step_that_failed_on_a_host_the_proxy_refused_cannot_run_here() {
        let a = step("pip install -r requirements.txt", Purpose::Install);
        let b = step("npm ci", Purpose::Install);
        let steps = [&a, &b];
        let stdout = "\nN0NCE start 0\nERROR: Could not install packages: HTTPSConnectionPool(host='pkgs.corp.example', port=443)\nN0NCE exit 0 1\n\
                      \nN0NCE start 1\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/nope\nN0NCE exit 1 1\n";
        let result = PhaseResult {
            stdout: stdout.into(),
            egress_refused: vec!["pkgs.corp.example".into()],
            ..PhaseResult::default()
        };
        let got = read(&steps, Phase::Install, &result, "N0NCE", &SandboxLimits::default());
        assert_eq!(got[0].status, StepStatus::CannotRun, "{:?}", got[0]);
        assert!(
            got[0].detail.contains("pkgs.corp.example, refused by its proxy"),
            "{}",
            got[0].detail
        );
        // A step whose own failure names no refused host is the project's.
        assert_eq!(got[1].status, StepStatus::Fails, "{:?}", got[1]);
    }
}

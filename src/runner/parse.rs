//! Test result parsers: JUnit XML, libtest output, `go test -json`, and plain
//! counts ("3 passed, 1 failed") for runners that print nothing richer.
//!
//! Pure: text in, [`TestReport`] out. Candidate output is untrusted: parsers
//! never panic on garbage, and case ids are bounded.

use serde::{Deserialize, Serialize};

/// Longest test id kept, in characters.
const MAX_ID: usize = 300;
/// Most cases kept in a report.
const MAX_CASES: usize = 5_000;
/// Longest output line the text parsers read, in bytes: every line they look for (a test's
/// result, a summary, a `go test -json` event) is far shorter, and a longer one (a candidate's
/// test printing megabytes on one line) is skipped unread rather than split into words.
const MAX_LINE: usize = 64 * 1024;

/// The lines of `output` short enough to be a result or a summary.
fn lines(output: &str) -> impl Iterator<Item = &str> {
    output.lines().filter(|l| l.len() <= MAX_LINE)
}

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Passed.
    Passed,
    /// An assertion failed.
    Failed,
    /// Skipped or ignored.
    Skipped,
    /// The test could not run (collection or setup error).
    Error,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    /// A stable id (`tests/test_x.py::test_y`, `module::test`, `pkg/TestX`).
    pub id: String,
    /// How it ended.
    pub status: CaseStatus,
    /// Seconds, when reported.
    pub time_s: Option<f64>,
}

/// Counts and cases of one test run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// Passed tests.
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Skipped tests.
    pub skipped: u64,
    /// Tests that errored.
    pub errors: u64,
    /// Individual cases, when the format has them.
    pub cases: Vec<TestCase>,
    /// Test files that failed to run before any of their tests did (a jest suite that does not
    /// compile): their tests are unknown and counted nowhere else, and the run fails.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unrun: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// "3 passed, 1 failed, 0 skipped, 0 errors", and the suites that failed to run, if any.
pub fn describe_counts(passed: u64, failed: u64, skipped: u64, errors: u64, unrun: u64) -> String {
    let mut s = format!("{passed} passed, {failed} failed, {skipped} skipped, {errors} errors");
    if unrun > 0 {
        s.push_str(&format!(", {unrun} test suite(s) failed to run"));
    }
    s
}

impl TestReport {
    /// Its counts, as [`describe_counts`] writes them.
    pub fn describe(&self) -> String {
        describe_counts(self.passed, self.failed, self.skipped, self.errors, self.unrun)
    }

    /// Tests that ran or were skipped. Saturating, like every sum of counts a candidate's output
    /// gives: a printed "18446744073709551615 passed" makes a large count, never an overflow.
    pub fn total(&self) -> u64 {
        self.passed
            .saturating_add(self.failed)
            .saturating_add(self.skipped)
            .saturating_add(self.errors)
    }

    /// Tests that ran: passed, failed and errored (skipped ones did not run).
    pub fn ran(&self) -> u64 {
        self.passed.saturating_add(self.failed).saturating_add(self.errors)
    }

    /// What makes a run fail: failed and errored tests and suites that failed to run.
    pub fn failing(&self) -> u64 {
        self.failed.saturating_add(self.errors).saturating_add(self.unrun)
    }

    fn push(&mut self, id: &str, status: CaseStatus, time_s: Option<f64>) {
        match status {
            CaseStatus::Passed => self.passed = self.passed.saturating_add(1),
            CaseStatus::Failed => self.failed = self.failed.saturating_add(1),
            CaseStatus::Skipped => self.skipped = self.skipped.saturating_add(1),
            CaseStatus::Error => self.errors = self.errors.saturating_add(1),
        }
        if self.cases.len() < MAX_CASES {
            self.cases.push(TestCase {
                id: id.chars().take(MAX_ID).collect(),
                status,
                time_s,
            });
        }
    }
}

/// Parses JUnit XML (pytest, jest-junit, vitest). `None` when it is not XML
/// with at least one `<testcase>`.
pub fn junit(xml: &str) -> Option<TestReport> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut report = TestReport::default();
    let mut current: Option<(String, Option<f64>, CaseStatus)> = None;
    let mut seen = false;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.local_name().as_ref() {
                    b"testcase" => {
                        seen = true;
                        let mut class = String::new();
                        let mut name = String::new();
                        let mut time = None;
                        for a in e.attributes().flatten() {
                            let v = a.unescape_value().map(|v| v.into_owned()).unwrap_or_default();
                            match a.key.local_name().as_ref() {
                                b"classname" => class = v,
                                b"name" => name = v,
                                b"time" => time = v.parse::<f64>().ok(),
                                _ => {}
                            }
                        }
                        let id = if class.is_empty() {
                            name
                        } else {
                            format!("{class}::{name}")
                        };
                        if empty {
                            report.push(&id, CaseStatus::Passed, time);
                        } else {
                            current = Some((id, time, CaseStatus::Passed));
                        }
                    }
                    b"failure" => set_status(&mut current, CaseStatus::Failed),
                    b"error" => set_status(&mut current, CaseStatus::Error),
                    b"skipped" => set_status(&mut current, CaseStatus::Skipped),
                    _ => {}
                }
            }
            Event::End(ref e) if e.local_name().as_ref() == b"testcase" => {
                if let Some((id, time, status)) = current.take() {
                    report.push(&id, status, time);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    seen.then_some(report)
}

/// Parses jest's `--json` results file: each assertion a case (`FILE::FULL NAME`, the file
/// relative to /work), each suite that failed to run (failed with no assertion results, e.g. one
/// that does not compile) counted `unrun`. `None` when it is not jest's JSON.
pub fn jest_json(text: &str) -> Option<TestReport> {
    #[derive(Deserialize)]
    struct Results {
        #[serde(rename = "testResults")]
        suites: Vec<Suite>,
    }
    #[derive(Deserialize)]
    struct Suite {
        #[serde(default)]
        name: String,
        #[serde(default)]
        status: String,
        #[serde(default, rename = "assertionResults")]
        assertions: Vec<Assertion>,
    }
    #[derive(Deserialize)]
    struct Assertion {
        #[serde(default, rename = "fullName")]
        full_name: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        status: String,
        #[serde(default)]
        duration: Option<f64>,
    }
    let results: Results = serde_json::from_str(text).ok()?;
    let mut report = TestReport::default();
    for suite in results.suites {
        let file = suite.name.strip_prefix("/work/").unwrap_or(&suite.name);
        if suite.assertions.is_empty() && suite.status == "failed" {
            report.unrun = report.unrun.saturating_add(1);
            continue;
        }
        for a in suite.assertions {
            let status = match a.status.as_str() {
                "passed" => CaseStatus::Passed,
                "failed" => CaseStatus::Failed,
                "pending" | "skipped" | "todo" | "disabled" => CaseStatus::Skipped,
                _ => CaseStatus::Error,
            };
            let name = if a.full_name.is_empty() { &a.title } else { &a.full_name };
            let time = a.duration.filter(|d| d.is_finite() && *d >= 0.0).map(|ms| ms / 1000.0);
            report.push(&format!("{file}::{name}"), status, time);
        }
    }
    Some(report)
}

fn set_status(current: &mut Option<(String, Option<f64>, CaseStatus)>, status: CaseStatus) {
    if let Some(c) = current.as_mut() {
        // An error outranks a failure, which outranks a skip.
        let rank = |s: CaseStatus| match s {
            CaseStatus::Passed => 0,
            CaseStatus::Skipped => 1,
            CaseStatus::Failed => 2,
            CaseStatus::Error => 3,
        };
        if rank(status) > rank(c.2) {
            c.2 = status;
        }
    }
}

/// Parses libtest output (`cargo test`): `test path ... ok|FAILED|ignored`.
pub fn libtest(output: &str) -> TestReport {
    let mut report = TestReport::default();
    for line in lines(output) {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((id, outcome)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let status = match outcome.trim() {
            "ok" => CaseStatus::Passed,
            "FAILED" => CaseStatus::Failed,
            o if o.starts_with("ignored") => CaseStatus::Skipped,
            _ => continue,
        };
        report.push(id.trim(), status, None);
    }
    report
}

#[derive(Deserialize)]
struct GoEvent {
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Package", default)]
    package: String,
    #[serde(rename = "Test")]
    test: Option<String>,
    #[serde(rename = "Elapsed")]
    elapsed: Option<f64>,
}

/// Parses `go test -json` output. A package that fails without a test event
/// (a build failure) counts as one error.
pub fn go_json(output: &str) -> TestReport {
    let mut report = TestReport::default();
    let mut failed_packages_with_tests = std::collections::HashSet::new();
    let mut failed_packages = Vec::new();
    for line in lines(output) {
        let Ok(e) = serde_json::from_str::<GoEvent>(line) else {
            continue;
        };
        let status = match e.action.as_str() {
            "pass" => CaseStatus::Passed,
            "fail" => CaseStatus::Failed,
            "skip" => CaseStatus::Skipped,
            _ => continue,
        };
        match e.test {
            Some(t) => {
                if status == CaseStatus::Failed {
                    failed_packages_with_tests.insert(e.package.clone());
                }
                report.push(&format!("{}/{t}", e.package), status, e.elapsed);
            }
            None if status == CaseStatus::Failed => failed_packages.push(e.package),
            None => {}
        }
    }
    for p in failed_packages {
        if !failed_packages_with_tests.contains(&p) {
            report.push(&p, CaseStatus::Error, None);
        }
    }
    report
}

/// Reads summary counts from free-form output: node's test runner (`# pass 3`),
/// jest (`Tests: 1 failed, 3 passed, 4 total`), vitest, mocha, pytest-style
/// lines. The last summary seen wins.
pub fn counts(output: &str) -> TestReport {
    let mut report = TestReport::default();
    for line in lines(output) {
        let l = line.trim().trim_start_matches('#').trim().to_ascii_lowercase();
        // jest's "Test Suites: 2 failed, 2 total" and vitest's "Test Files  1 failed (2)" count
        // files, not tests: two suites that fail to compile are no two failed tests.
        if l.starts_with("test suites:") || l.starts_with("test files") {
            continue;
        }
        // node --test / TAP: "# pass 3", "# fail 1", "# skipped 0"
        for (word, slot) in [("pass ", 0), ("fail ", 1), ("skipped ", 2), ("todo ", 2)] {
            if let Some(n) = l.strip_prefix(word).and_then(|n| n.trim().parse::<u64>().ok()) {
                match slot {
                    0 => report.passed = n,
                    1 => report.failed = n,
                    _ => report.skipped = report.skipped.saturating_add(n),
                }
            }
        }
        // jest/vitest/pytest/mocha-like: "Tests: 1 failed, 3 passed, 4 total",
        // "3 passed, 1 failed", "5 passing". Each field found replaces the
        // one seen before, so the final summary line wins.
        let words: Vec<&str> = l
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut skipped: Option<u64> = None;
        for w in words.windows(2) {
            let Ok(n) = w[0].parse::<u64>() else { continue };
            match w[1] {
                "passed" | "passing" => report.passed = n,
                "failed" | "failing" => report.failed = n,
                "skipped" | "pending" => skipped = Some(skipped.unwrap_or(0).saturating_add(n)),
                _ => {}
            }
        }
        if let Some(n) = skipped {
            report.skipped = n;
        }
    }
    // No summary (jest crashed in a reporter after the tests ran, say): the per-test marks of
    // jest's and mocha's default reporters, `✓ name` and `✕ name` / `✗ name`.
    if report.total() == 0 {
        for line in lines(output).map(str::trim_start) {
            if line.starts_with("✓ ") || line.starts_with("√ ") {
                report.passed = report.passed.saturating_add(1);
            } else if line.starts_with("✕ ") || line.starts_with("✗ ") || line.starts_with("× ") {
                report.failed = report.failed.saturating_add(1);
            }
        }
    }
    // A jest suite that failed to run (a compile error, a missing module) ran none of its
    // tests, which are unknown: counted apart, so the run fails and no test counts as run.
    report.unrun = output
        .lines()
        .filter(|l| l.trim_start().starts_with("● Test suite failed to run"))
        .count() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_from_pytest() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_a" name="test_ok" time="0.001" />
<testcase classname="tests.test_a" name="test_bad" time="0.002"><failure message="assert 1 == 2">x</failure></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.000"><skipped message="later" /></testcase>
<testcase classname="tests.test_b" name="test_err" time="0.000"><error message="fixture">y</error></testcase>
</testsuite></testsuites>"#;
        let r = junit(xml).unwrap();
        assert_eq!((r.passed, r.failed, r.skipped, r.errors), (1, 1, 1, 1));
        assert_eq!(r.cases[1].id, "tests.test_a::test_bad");
        assert_eq!(r.cases[0].time_s, Some(0.001));
        assert!(junit("not xml at all").is_none());
        assert!(junit("<testsuites></testsuites>").is_none());
    }

    #[test]
    fn jest_json_results() {
        let json = r#"{"numPassedTests": 99, "success": true, "testResults": [
            {"name": "/work/src/sum.test.js", "status": "failed", "message": "", "assertionResults": [
                {"ancestorTitles": ["sum"], "fullName": "sum adds", "title": "adds", "status": "passed", "duration": 3, "failureMessages": []},
                {"ancestorTitles": ["sum"], "fullName": "sum subtracts", "title": "subtracts", "status": "failed", "duration": null, "failureMessages": ["Expected 1"]},
                {"fullName": "", "title": "later", "status": "todo"},
                {"fullName": "sum skipped", "status": "pending"}]},
            {"name": "/work/src/broken.test.ts", "status": "failed", "message": "Test suite failed to run", "assertionResults": []}]}"#;
        let r = jest_json(json).unwrap();
        // The cases, not the summary fields: 99 passed is never read.
        assert_eq!((r.passed, r.failed, r.skipped, r.errors, r.unrun), (1, 1, 2, 0, 1));
        assert_eq!(r.cases[0].id, "src/sum.test.js::sum adds");
        assert_eq!(r.cases[0].time_s, Some(0.003));
        assert_eq!(r.cases[2].id, "src/sum.test.js::later");
        assert!(jest_json("Tests: 3 passed, 3 total").is_none());
        assert!(jest_json(r#"{"success": true}"#).is_none());
        // Nesting past serde_json's limit is no results, not a crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(jest_json(&deep).is_none());
    }

    #[test]
    fn libtest_lines() {
        let out = "running 3 tests\ntest a::b ... ok\ntest a::c ... FAILED\ntest d ... ignored, slow\n\ntest result: FAILED. 1 passed; 1 failed; 1 ignored";
        let r = libtest(out);
        assert_eq!((r.passed, r.failed, r.skipped), (1, 1, 1));
        assert_eq!(r.cases[1].id, "a::c");
    }

    #[test]
    fn go_json_events() {
        let out = r#"{"Action":"run","Package":"ex","Test":"TestA"}
{"Action":"pass","Package":"ex","Test":"TestA","Elapsed":0.01}
{"Action":"fail","Package":"ex","Test":"TestB","Elapsed":0}
{"Action":"fail","Package":"ex"}
{"Action":"fail","Package":"broken"}
garbage"#;
        let r = go_json(out);
        assert_eq!((r.passed, r.failed, r.errors), (1, 1, 1));
        assert_eq!(r.cases[0].id, "ex/TestA");
    }

    #[test]
    /// Regression (corpus: a TypeScript API): jest's coverage reporter crashed after the tests
    /// ran (old source-map on a newer Node), no summary was printed, and the run was `no_tests`.
    fn counts_from_jest_marks_when_the_summary_is_missing() {
        let out = "PASS src/routes/index.test.ts\n  Routes\n    ✓ adds the correct ones (5 ms)\n\nFAIL src/routes/health.test.ts\n  Health route\n    ✕ mounts with the correct endpoint (2 ms)\n    ✕ responds with JSON (1 ms)\n\nError: You must provide the URL of lib/mappings.wasm\n";
        let r = counts(out);
        assert_eq!((r.passed, r.failed), (1, 2));
        // A summary, when there is one, wins over the marks.
        let r = counts("    ✓ a\n    ✓ b\nTests:       1 failed, 1 passed, 2 total\n");
        assert_eq!((r.passed, r.failed), (1, 1));
    }

    #[test]
    /// Regression (corpus: a TypeScript API without a lockfile): both jest suites failed to
    /// compile against today's @types/express; "Test Suites: 2 failed" was read as two failed
    /// tests, and the report said two tests ran.
    fn suites_that_fail_to_run_are_counted_apart_from_tests() {
        let out = "FAIL tests/lib/password.test.ts\n  ● Test suite failed to run\n\n    TS2694: Namespace 'global.Express' has no exported member\n\nFAIL tests/App.test.ts\n  ● Test suite failed to run\n\n    TS2339: Property 'listen' does not exist\n\nTest Suites: 2 failed, 2 total\nTests:       0 total\nSnapshots:   0 total\n";
        let r = counts(out);
        assert_eq!((r.passed, r.failed, r.skipped, r.errors, r.unrun), (0, 0, 0, 0, 2));
        assert_eq!(r.total(), 0);
        assert_eq!(
            r.describe(),
            "0 passed, 0 failed, 0 skipped, 0 errors, 2 test suite(s) failed to run"
        );
        // One suite fails to run, the other's tests pass: the suite is an error, not a failed test.
        let out = "FAIL a.test.ts\n  ● Test suite failed to run\n\nPASS b.test.ts\nTest Suites: 1 failed, 1 passed, 2 total\nTests:       5 passed, 5 total\n";
        let r = counts(out);
        assert_eq!((r.passed, r.failed, r.errors, r.unrun), (5, 0, 0, 1));
        // vitest's file line counts files too.
        let r = counts(" Test Files  1 failed | 2 passed (3)\n      Tests  1 failed | 9 passed (10)\n");
        assert_eq!((r.passed, r.failed), (9, 1));
    }

    /// Candidate output is hostile: counts at and past u64's range saturate, a 100 MB line is
    /// skipped unread (the summary after it still counts), nesting and invalid UTF-8 parse.
    #[test]
    fn hostile_output_never_overflows_or_panics() {
        let max = u64::MAX.to_string();
        let r = counts(&format!(
            "{max} passed, {max} skipped, 5 skipped, 3 pending\n# skipped {max}\n# todo 9"
        ));
        assert_eq!((r.passed, r.skipped), (u64::MAX, u64::MAX));
        assert_eq!(r.total(), u64::MAX);
        let r = TestReport {
            failed: u64::MAX,
            errors: u64::MAX,
            skipped: u64::MAX,
            ..Default::default()
        };
        assert_eq!((r.failing(), r.ran(), r.total()), (u64::MAX, u64::MAX, u64::MAX));
        // Past u64: not a number, so not a count.
        assert_eq!(counts("99999999999999999999999 passed").passed, 0);

        let mut long = "1 passed ".repeat(100 * 1024 * 1024 / 9);
        long.push_str("\nTests: 2 failed, 3 passed, 5 total\n");
        let r = counts(&long);
        assert_eq!((r.passed, r.failed), (3, 2));
        let mut long = "test a ... ok".repeat(MAX_LINE);
        long.push_str("\ntest b ... FAILED\n");
        assert_eq!((libtest(&long).passed, libtest(&long).failed), (0, 1));

        let deep = format!(
            "{}<testcase name=\"x\"/>{}",
            "<testsuite>".repeat(100_000),
            "</testsuite>".repeat(100_000)
        );
        assert_eq!(junit(&deep).map(|r| r.passed), Some(1));
        let many = "<testcase name=\"y\"/>".repeat(MAX_CASES + 10);
        let r = junit(&format!("<testsuite>{many}</testsuite>")).unwrap();
        assert_eq!((r.passed, r.cases.len()), ((MAX_CASES + 10) as u64, MAX_CASES));
        let id = "n".repeat(10 * MAX_ID);
        let r = go_json(&format!(
            "{{\"Action\":\"pass\",\"Package\":\"p\",\"Test\":\"{id}\",\"Elapsed\":1e308}}"
        ));
        assert_eq!(r.cases[0].id.chars().count(), MAX_ID);
    }

    /// Random bytes and random mixtures of the parsers' own keywords (seeded, so a failure
    /// repeats): no input panics any parser, and what they keep stays within its caps.
    #[test]
    fn random_output_parses_within_bounds() {
        const PARTS: &[&str] = &[
            "Ran ",
            "tests",
            " passed",
            " failed",
            " skipped",
            " pending",
            " passing",
            "FAILED (",
            "OK (",
            "failures=",
            "errors=",
            "skipped=",
            ")",
            ",",
            "\n",
            "# pass ",
            "# fail ",
            "# todo ",
            "test ",
            " ... ok",
            " ... FAILED",
            " ... ignored",
            "{\"Action\":\"fail\",\"Package\":\"",
            "\"}",
            "<testcase name=\"",
            "\">",
            "<failure/>",
            "</testcase>",
            "<skipped>",
            "<error>",
            "✓ ",
            "✕ ",
            "● Test suite failed to run",
            "Tests: ",
            "18446744073709551615",
            "18446744073709551616",
            "0",
            "7",
            "-3",
            "1e9",
            "\u{0}",
            "\u{1b}[2J",
            "é",
            "\r\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for round in 0..2_000 {
            let len = (next() % 400) as usize;
            let text = if round % 4 == 0 {
                let bytes: Vec<u8> = (0..len * 4).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len).map(|_| PARTS[(next() as usize) % PARTS.len()]).collect()
            };
            for r in [
                Some(counts(&text)),
                Some(libtest(&text)),
                Some(go_json(&text)),
                jest_json(&text),
                junit(&text),
            ]
            .into_iter()
            .flatten()
            {
                assert!(r.cases.len() <= MAX_CASES);
                assert!(r.cases.iter().all(|c| c.id.chars().count() <= MAX_ID));
                assert!(r.total() >= r.passed && r.failing() >= r.failed);
                let _ = r.describe();
            }
        }
    }

    #[test]
    fn counts_from_common_runners() {
        let c = |s: &str| {
            let r = counts(s);
            (r.passed, r.failed, r.skipped)
        };
        assert_eq!(c("# tests 4\n# pass 3\n# fail 1\n# skipped 0"), (3, 1, 0));
        assert_eq!(c("Tests:       1 failed, 3 passed, 4 total"), (3, 1, 0));
        assert_eq!(c(" Tests  2 passed | 1 skipped (3)"), (2, 0, 1));
        assert_eq!(c("  5 passing (12ms)\n  2 failing"), (5, 2, 0));
        assert_eq!(c("nothing here"), (0, 0, 0));
    }
}

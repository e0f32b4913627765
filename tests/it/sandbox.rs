//! The Docker sandbox through `assay check` and the library, against the real
//! engine and the runner images built by .ci/run.

use std::path::Path;

use assay::sandbox::docker::DockerSandbox;
use assay::sandbox::{Phase, PhaseSpec, Sandbox, SandboxLimits};

use crate::helpers::*;

/// A Python project with `files`, committed.
fn python_repo(files: &[(&str, &str)]) -> Scripted {
    let mut r = Scripted::new();
    let owned: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
    r.put(&owned);
    r.commit("Add project", DAY1);
    r
}

fn check(repo: &Path, extra: &[&str]) -> serde_json::Value {
    let assay = Assay::new();
    let mut args = vec!["check", repo.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    json_ok(&assay.run(&args))
}

const CALC: &str = "def add(a, b):\n    return a + b\n";

/// The passed and failed counts of a check's JSON.
fn passed_failed(v: &serde_json::Value) -> (u64, u64) {
    let n = |k: &str| v["tests"][k].as_u64().unwrap_or_else(|| panic!("no tests.{k}: {v}"));
    (n("passed"), n("failed"))
}

/// The test case ids of a check's JSON.
fn case_ids(v: &serde_json::Value) -> Vec<&str> {
    v["tests"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn python_passing_project_passes_with_cases_and_is_reproduced() {
    let r = python_repo(&[
    // `python -m pytest`: bare `pytest` would not find calc.py (the root is not on sys.path
    // without a conftest.py there), and the README step would rightly fail.
        ("README.md", "# Calc\n\n    pip install -r requirements.txt\n    python -m pytest\n"),
        ("requirements.txt", "pytest==7.2.1\n"),
        ("calc.py", CALC),
        ("tests/test_calc.py", "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_add_neg():\n    assert add(-1, 1) == 0\n"),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["runner"], "python");
    assert_eq!(v["tests"]["passed"], 2);
    assert_eq!(v["tests"]["cases"].as_array().unwrap().len(), 2);
    assert!(v["flaky"].as_array().unwrap().is_empty());
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["badge"]["level"], "reproduced", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn python_tests_with_nothing_to_install_run_with_the_images_pytest() {
    // No requirements, pyproject or setup.py: the README asks for pytest and nothing else
    // (corpus: lisatitshall's exercises were "no runner" though their tests run).
    let r = python_repo(&[
        (
            "README.md",
            "# Exercises

Run the tests: `pip3 install pytest`, then `python3 -m pytest`.
",
        ),
        ("programs/__init__.py", ""),
        ("programs/calc.py", CALC),
        ("tests/__init__.py", ""),
        (
            "tests/test_calc.py",
            "from programs.calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["runner"], "python", "{v}");
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["tests"]["passed"], 1, "{v}");
    // Nothing is declared, not even pytest: said, and kept from "reproduced".
    let kinds = finding_kinds(&v);
    assert_eq!(kinds, ["no_manifest"], "{v}");
    assert_ne!(v["badge"]["level"], "reproduced", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn python_failing_test_is_tests_failed_with_a_finding() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        ("calc.py", CALC),
        ("tests/test_calc.py", "from calc import add\n\ndef test_ok():\n    assert add(1, 2) == 3\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let v = check(r.path(), &["--out", out.path().to_str().unwrap()]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    assert_eq!(
        (v["tests"]["passed"].as_u64(), v["tests"]["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "tests_failed");
    assert_eq!(v["badge"]["level"], "available", "{v}");
    assert!(f["message"].as_str().unwrap().contains("test_wrong"), "{f}");
    assert!(!f["fix"].as_str().unwrap().is_empty());
    // The candidate's HTML report: badge, the failing test, the finding with its fix, the output.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("class=\"badge available\""), "{html}");
    assert!(
        html.contains("test_calc::test_wrong</code>"),
        "the failing test is listed: {html}"
    );
    assert!(
        html.contains("how to fix") && html.contains("Output of the failing phase"),
        "{html}"
    );
    assert!(html.contains("assert 4 == 5"), "the pytest output tail: {html}");
    assert!(out.path().join("report.md").is_file());
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn undeclared_dependency_fails_the_tests() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        ("app.py", "import yaml_not_declared_anywhere\n"),
        (
            "tests/test_app.py",
            "import app\n\ndef test_import():\n    assert app\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    assert_eq!(v["tests"]["errors"], 1, "{v}");
    let undeclared = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "undeclared_imports")
        .expect("undeclared_imports");
    assert!(
        undeclared["message"]
            .as_str()
            .unwrap()
            .contains("yaml_not_declared_anywhere"),
        "{undeclared}"
    );
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_project_without_tests_is_no_tests_never_a_pass() {
    let r = python_repo(&[("requirements.txt", "pytest\n"), ("calc.py", CALC)]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "no_tests", "{v}");
}

/// unittest tests pytest does not collect (`tests.py`) run under unittest's discovery, their
/// results read from the JUnit file assay's result class writes; a summary printed before
/// `os._exit(0)` (adversarial catalogue: counted as 12 passing tests) is no results.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn unittest_results_come_from_junit_and_a_printed_summary_is_no_pass() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        ("calc.py", CALC),
        (
            "tests.py",
            "import unittest\nfrom calc import add\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        \
             self.assertEqual(add(1, 2), 3)\n\n    def test_wrong(self):\n        self.assertEqual(add(1, 1), 3)\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    assert_eq!(passed_failed(&v), (1, 1), "{v}");
    let ids = case_ids(&v);
    assert!(ids.contains(&"tests.T::test_add"), "{ids:?}");

    let forged = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests.py",
            "import os, sys\nprint('test_a (tests.T) ... ok')\nsys.stderr.write('Ran 12 tests in 0.004s\\n\\nOK\\n')\n\
             sys.stderr.flush()\nos._exit(0)\n",
        ),
    ]);
    let v = check(forged.path(), &[]);
    assert_eq!(v["outcome"], "no_tests", "{v}");
    assert_eq!(v["tests"]["passed"], 0, "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn an_endless_test_is_killed_as_timeout() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_loop.py",
            "def test_forever():\n    while True:\n        pass\n",
        ),
    ]);
    let v = check(r.path(), &["--test-timeout", "5"]);
    assert_eq!(v["outcome"], "timeout", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn network_access_during_tests_fails() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_net.py",
            "import socket\n\ndef test_reach_the_internet():\n    socket.create_connection(('151.101.0.223', 443), timeout=3)\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_memory_hog_is_oom() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_mem.py",
            "def test_hog():\n    blocks = []\n    while True:\n        blocks.append(bytearray(64 << 20))\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "oom", "{v}");
}

/// Issue 14 (catalogue: inodes): /tmp holds at most `tmpfs_inodes` files, whatever their size
/// (a million empty files were created freely before).
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_million_files_in_tmp_stop_at_the_inode_cap() {
    // The test passes only if /tmp refuses a file (no space: no inode left) before 2^17.
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_files.py",
            "import errno\n\ndef test_files():\n    n = 0\n    try:\n        for n in range(1_000_000):\n            \
open(f'/tmp/f{n}', 'w').close()\n    except OSError as e:\n        assert e.errno == errno.ENOSPC and 1000 < n < 1 << 17, (e, n)\n        \
return\n    raise AssertionError('a million files were created in /tmp')\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn fifty_megabytes_of_output_is_output_truncated() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        // pytest captures output and replays it for a failing test: 50 MB of it.
        (
            "tests/test_noise.py",
            "def test_noise():\n    print('x' * (50 << 20))\n    assert False\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "output_truncated", "{v}");
}

/// Issue 14 (catalogue: output): a test that prints without end, straight to the container's
/// stdout past pytest's capture, is killed once the capture cap is passed — `output_truncated`,
/// not left printing (into the engine's log on the host disk) until its timeout.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn endless_output_is_killed_at_the_capture_cap() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_flood.py",
            "def test_flood():\n    with open('/proc/1/fd/1', 'w') as out:\n        while True:\n            out.write('x' * 65536 + '\\n')\n",
        ),
    ]);
    let v = check(r.path(), &["--test-timeout", "300"]);
    assert_eq!(v["outcome"], "output_truncated", "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_test_failing_every_other_run_is_flaky() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_flip.py",
            "from pathlib import Path\n\ndef test_flip():\n    p = Path('/work/.flip')\n    n = int(p.read_text()) if p.exists() else 0\n    p.write_text(str(n + 1))\n    assert n % 2 == 0\n\ndef test_steady():\n    assert True\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["flaky"], serde_json::json!(["tests.test_flip::test_flip"]), "{v}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "flaky_tests"),
        "{v}"
    );
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_fork_bomb_is_contained_and_the_host_is_fine() {
    let r = python_repo(&[
        ("requirements.txt", "pytest\n"),
        (
            "tests/test_bomb.py",
            "import os\n\ndef test_bomb():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
        ),
    ]);
    let v = check(r.path(), &["--test-timeout", "10"]);
    assert_eq!(v["outcome"], "timeout", "{v}");
    // The host can still start processes.
    assert!(std::process::Command::new("true").status().unwrap().success());
}

/// Issue 14: an install reaches the package registries through assay's proxy and nothing else:
/// not a port the host listens on (through Docker's bridge or its own network's gateway), not
/// another container, not a name off the allow-list or a registry's name on another port; what
/// the proxy refused is recorded. Targets are loopback, a container of the test's own and
/// names under `.invalid` only (the registries themselves are reached by every other install).
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn an_install_reaches_only_the_registries_through_the_proxy() {
    let host = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let label = format!("assay-it-egress={}", std::process::id());
    let peer = docker_lines(&[
        "run",
        "-d",
        "--rm",
        "--label",
        &label,
        "assay-runner-python",
        "python3",
        "-m",
        "http.server",
        "8000",
    ]);
    let peer_ip = docker_lines(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &peer[0]]);
    // Docker's default bridge as its containers see it (the network's IPAM config names no
    // gateway on an engine that has not been restarted since it made the bridge).
    let bridge = docker_lines(&["inspect", "--format", "{{.NetworkSettings.Gateway}}", &peer[0]]);
    assert!(!bridge.is_empty(), "the peer container has a gateway");
    let r = python_repo(&[("requirements.txt", "pytest\n")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (res, left) = rt.block_on(async {
        let sandbox = DockerSandbox::connect().await.unwrap();
        let export = tempfile::tempdir().unwrap();
        let head = r.repo.head().unwrap().target().unwrap().to_string();
        let dest = export.path().join("tree");
        assay::git::export_tree(&r.repo, &head, &dest, &assay::config::Limits::default()).unwrap();
        let job = format!("it-egress-{}", std::process::id());
        let limits = SandboxLimits::default();
        let work = sandbox.prepare(&job, None, "assay-runner-python", &dest, &limits).await.unwrap();
        let gateway = "$(printf '%d.%d.%d.%d' $(awk 'NR==2{print $3}' /proc/net/route | sed 's/../0x& /g' | awk '{print $4, $3, $2, $1}'))";
        const FETCH: &str = r#"
import urllib.request, urllib.error
for url in ['http://refused.invalid/x', 'https://other.invalid/y', 'https://pypi.org:22/']:
    try:
        urllib.request.urlopen(url, timeout=10)
        print(url, 'reached')
    except urllib.error.HTTPError as e:
        print(url, 'refused', e.code)
    except Exception as e:
        print(url, 'refused', type(e).__name__, e)
"#;
        let script = format!(
            "probe() {{ timeout 5 bash -c \"exec 3<>/dev/tcp/$2/$3\" 2>/dev/null && echo \"$1:reached\" || echo \"$1:blocked\"; }}
probe host-bridge {} {port}
probe host-gateway {gateway} {port}
probe peer {} 8000
python3 - <<'PY'{FETCH}PY
",
            bridge[0], peer_ip[0]
        );
        let spec = PhaseSpec {
            phase: Phase::Install,
            image: "assay-runner-python".into(),
            script,
            env: Vec::new(),
            cache_dirs: Vec::new(),
            runner: "python".into(),
            collect: None,
            timeout: std::time::Duration::from_secs(120),
            memory: 256 << 20,
            pids: 64,
        };
        let res = sandbox.run(&work, &spec, &limits).await.unwrap();
        sandbox.cleanup(&work).await.unwrap();
        let left = docker_lines(&["network", "ls", "-q", "--filter", &format!("label=assay.job={job}")]);
        (res, left)
    });
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &peer[0]])
        .output();
    drop(host);
    assert_eq!(res.exit_code, Some(0), "{res:?}");
    for line in ["host-bridge:blocked", "host-gateway:blocked", "peer:blocked"] {
        assert!(res.stdout.lines().any(|l| l == line), "{line} in {}", res.stdout);
    }
    assert!(!res.stdout.contains("reached"), "{}", res.stdout);
    assert!(
        res.stdout.contains("http://refused.invalid/x refused 403"),
        "{}",
        res.stdout
    );
    assert_eq!(
        res.egress_refused,
        ["refused.invalid", "other.invalid", "pypi.org:22"],
        "{res:?}"
    );
    assert!(left.is_empty(), "the install's network is left: {left:?}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn copy_out_keeps_regular_files_and_never_follows_links() {
    let r = python_repo(&[("requirements.txt", "pytest\n")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sandbox = DockerSandbox::connect().await.unwrap();
        let export = tempfile::tempdir().unwrap();
        let head = r.repo.head().unwrap().target().unwrap().to_string();
        let dest = export.path().join("tree");
        assay::git::export_tree(&r.repo, &head, &dest, &assay::config::Limits::default()).unwrap();
        let job = format!("it-copyout-{}", std::process::id());
        let work = sandbox
            .prepare(&job, None, "assay-runner-python", &dest, &SandboxLimits::default())
            .await
            .unwrap();
        let spec = PhaseSpec {
            phase: Phase::Test,
            image: "assay-runner-python".into(),
            script: "echo '<testsuite/>' > /work/.assay/real.xml; ln -s /etc/passwd /work/.assay/results.xml; id -u"
                .into(),
            env: Vec::new(),
            cache_dirs: Vec::new(),
            runner: "python".into(),
            collect: Some(".assay".into()),
            timeout: std::time::Duration::from_secs(60),
            memory: 256 << 20,
            pids: 64,
        };
        let res = sandbox.run(&work, &spec, &SandboxLimits::default()).await.unwrap();
        sandbox.cleanup(&work).await.unwrap();
        assert_eq!(res.exit_code, Some(0), "{res:?}");
        // Non-root inside the container.
        assert_eq!(res.stdout.trim(), "10001");
        let names: Vec<&str> = res.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["real.xml"], "{res:?}");
        assert!(
            res.skipped_files.iter().any(|s| s.starts_with("results.xml")),
            "{res:?}"
        );
        assert!(!res
            .files
            .iter()
            .any(|f| String::from_utf8_lossy(&f.data).contains("root:x:0:0")));
    });
}

fn repo_with(files: &[(&str, &str)]) -> Scripted {
    python_repo(files)
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn rust_passing_project_passes() {
    let r = repo_with(&[
        ("Cargo.toml", "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        ("Cargo.lock", "version = 3\n\n[[package]]\nname = \"calc\"\nversion = \"0.1.0\"\n"),
        (
            "src/lib.rs",
            "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n    #[test]\n    fn adds_negative() { assert_eq!(super::add(-1, 1), 0); }\n}\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["runner"], "rust");
    assert_eq!(v["tests"]["passed"], 2, "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn node_passing_project_passes_and_a_missing_lockfile_is_a_finding() {
    let r = repo_with(&[
        ("package.json", "{\"name\":\"calc\",\"version\":\"1.0.0\",\"scripts\":{\"test\":\"node --test\"}}\n"),
        ("calc.js", "exports.add = (a, b) => a + b;\n"),
        (
            "test/calc.test.js",
            "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add } = require('../calc');\ntest('adds', () => assert.strictEqual(add(1, 2), 3));\ntest('adds again', () => assert.strictEqual(add(2, 2), 4));\n\
             test.after(() => console.log('\\u2139 tests 40\\n\\u2139 pass 40\\n# pass 40'));\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["runner"], "node");
    // Read from the JUnit XML node's test runner writes, not from the summary a test prints.
    assert_eq!(passed_failed(&v), (2, 0), "{v}");
    assert_eq!(case_ids(&v), ["test::adds", "test::adds again"], "{v}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "no_lockfile"),
        "{v}"
    );
}

/// A test script that is jest alone runs with jest's own JSON results: cases by file and name,
/// a suite that does not compile counted apart, and a summary a test prints is not read.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn node_jest_results_come_from_its_json_not_its_printed_summary() {
    let r = repo_with(&[
        (
            "package.json",
            "{\"name\":\"calc\",\"version\":\"1.0.0\",\"scripts\":{\"test\":\"jest\"},\"devDependencies\":{\"jest\":\"29.7.0\"}}\n",
        ),
        ("calc.js", "exports.add = (a, b) => a + b;\n"),
        (
            "calc.test.js",
            "const { add } = require('./calc');\ndescribe('add', () => {\n  test('adds', () => expect(add(1, 2)).toBe(3));\n  \
             test('is wrong', () => expect(add(1, 1)).toBe(3));\n});\nafterAll(() => console.log('Tests: 40 passed, 40 total'));\n",
        ),
        ("broken.test.js", "const x = ;\n"),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    let t = &v["tests"];
    assert_eq!(passed_failed(&v), (1, 1), "{v}");
    assert_eq!(t["unrun"], 1, "{v}");
    let ids = case_ids(&v);
    assert_eq!(ids, ["calc.test.js::add adds", "calc.test.js::add is wrong"], "{v}");
}

/// A test script that is mocha alone runs with mocha's xunit reporter: cases by suite and title,
/// and a summary a test prints is not read.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn node_mocha_results_come_from_its_xunit_report_not_its_printed_summary() {
    let r = repo_with(&[
        (
            "package.json",
            "{\"name\":\"calc\",\"version\":\"1.0.0\",\"scripts\":{\"test\":\"mocha --reporter spec\"},\"devDependencies\":{\"mocha\":\"10.2.0\"}}\n",
        ),
        ("calc.js", "exports.add = (a, b) => a + b;\n"),
        (
            "test/calc.test.js",
            "const assert = require('assert');\nconst { add } = require('../calc');\ndescribe('add', () => {\n  \
             it('adds', () => assert.strictEqual(add(1, 2), 3));\n  it('is wrong', () => assert.strictEqual(add(1, 1), 3));\n  \
             after(() => console.log('  40 passing (3ms)'));\n});\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    assert_eq!(passed_failed(&v), (1, 1), "{v}");
    assert_eq!(case_ids(&v), ["add::adds", "add::is wrong"], "{v}");
}

/// Tests that need a database server, which no sandbox runs: not the candidate's failure, and
/// the README's test command failing the same way is no failing step.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn node_tests_that_need_a_database_server_are_not_assessed() {
    let r = repo_with(&[
        ("README.md", "# Orders\n\nRun the tests:\n\n```\nnpm test\n```\n"),
        (
            "package.json",
            "{\"name\":\"orders\",\"version\":\"1.0.0\",\"scripts\":{\"test\":\"node --test\"},\"dependencies\":{\"pg\":\"8.11.3\"}}\n",
        ),
        (
            "test/db.test.js",
            "const test = require('node:test');\nconst net = require('node:net');\n\
             test('reaches the database', () => new Promise((ok, fail) => \
             net.connect(5432, '127.0.0.1').on('connect', ok).on('error', fail)));\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    let not_assessed = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "tests_not_assessed")
        .unwrap_or_else(|| panic!("{v}"));
    let says = not_assessed["message"].as_str().unwrap();
    assert!(says.contains("a PostgreSQL server on port 5432"), "{says}");
    assert!(
        !kinds.contains(&"tests_failed") && !kinds.contains(&"readme_step_fails"),
        "{v}"
    );
    // The README's command did run, and failed: the fact stays in the report.
    assert_eq!(v["readme_steps"][0]["status"], "fails", "{v}");
}

/// The Python side of the same: redis-py's own refusal, with redis declared.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn python_tests_that_need_a_redis_server_are_not_assessed() {
    let r = python_repo(&[
        ("requirements.txt", "pytest==7.2.1\nredis==5.0.8\n"),
        (
            "tests/test_cache.py",
            "import redis\n\ndef test_cache_answers():\n    assert redis.Redis(host='localhost', port=6379).ping()\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    let finding = |kind: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .cloned()
    };
    let says = finding("tests_not_assessed").unwrap_or_else(|| panic!("{v}"))["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(says.contains("a Redis server on port 6379"), "{says}");
    assert!(finding("tests_failed").is_none(), "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn go_passing_project_passes() {
    let r = repo_with(&[
        ("go.mod", "module example.com/calc\n\ngo 1.19\n"),
        ("calc.go", "package calc\n\nfunc Add(a, b int) int { return a + b }\n"),
        (
            "calc_test.go",
            "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"bad\")\n\t}\n}\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["runner"], "go");
    assert_eq!(v["tests"]["cases"][0]["id"], "example.com/calc/TestAdd", "{v}");
}

/// A Go project in the old GOPATH layout (no go.mod): its tests run with GO111MODULE=off and
/// the missing module is a finding.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_gopath_go_project_without_go_mod_runs_its_tests_and_says_go_mod_is_missing() {
    let r = repo_with(&[
        ("calc.go", "package calc\n\nfunc Add(a, b int) int { return a + b }\n"),
        (
            "calc_test.go",
            "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"bad\")\n\t}\n}\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["runner"], "go");
    assert_eq!(v["tests"]["passed"], 1, "{v}");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "go_no_module")
        .unwrap_or_else(|| panic!("no go_no_module finding: {v}"));
    assert!(f["fix"].as_str().unwrap().contains("go mod init"), "{f}");
}

/// A conftest.py that turns every failure into a pass.
const CHEATING_CONFTEST: &str = "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n";

/// Issue 14: the candidate's own test run plants a `.pth` file and a pytest plugin in the
/// virtualenv's site-packages, which the hidden run's interpreter (`python -I` too) would load
/// and which would pass every hidden test. The environment is sealed (root-owned, read-only)
/// before the candidate's tests run, so the planting fails and the hidden tests still fail.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn hidden_tests_run_in_an_environment_the_candidates_tests_could_not_change() {
    const PLANT: &str = r#"import os, sysconfig

PLUGIN = """import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    out = yield
    out.get_result().outcome = "passed"
"""


def test_plant():
    site = sysconfig.get_paths()["purelib"]
    try:
        with open(os.path.join(site, "evilplugin.py"), "w") as f:
            f.write(PLUGIN)
        with open(os.path.join(site, "zzz_evil.pth"), "w") as f:
            f.write("import os; os.environ['PYTEST_ADDOPTS'] = '-p evilplugin'\n")
        print("PLANTED")
    except OSError as e:
        print("REFUSED", e)
"#;
    let r = python_repo(&[
        ("requirements.txt", "pytest==7.2.1\n"),
        ("calc.py", "def add(a, b):\n    return a - b\n"),
        ("tests/test_plant.py", PLANT),
    ]);
    let hidden = tempfile::tempdir().unwrap();
    std::fs::write(
        hidden.path().join("test_hidden.py"),
        "from calc import add\n\ndef test_add_hidden():\n    assert add(2, 3) == 5\n",
    )
    .unwrap();
    let v = check(r.path(), &["--hidden-tests", hidden.path().to_str().unwrap()]);
    assert_eq!(v["tests"]["passed"].as_u64(), Some(1), "{v}");
    assert_eq!(v["outcome"], "hidden_failed", "{v}");
    assert_eq!(v["hidden"]["tests"]["failed"].as_u64(), Some(1), "{v}");
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn hidden_tests_still_fail_when_a_conftest_forces_every_test_to_pass() {
    let r = python_repo(&[
        ("requirements.txt", "pytest==7.2.1\n"),
        ("conftest.py", CHEATING_CONFTEST),
        ("calc.py", "def add(a, b):\n    return a - b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n",
        ),
    ]);
    let hidden = tempfile::tempdir().unwrap();
    std::fs::write(
        hidden.path().join("test_hidden.py"),
        "from calc import add\n\ndef test_add_hidden():\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n",
    )
    .unwrap();
    let v = check(r.path(), &["--hidden-tests", hidden.path().to_str().unwrap()]);
    // The candidate's own run is fooled by their conftest: its cases all pass…
    assert_eq!(v["tests"]["failed"].as_u64(), Some(0), "{v}");
    // …the hidden tests, run without it, are not, and their failure is the outcome (it was
    // `passed`, with only `hidden.outcome` saying otherwise).
    assert_eq!(v["outcome"], "hidden_failed", "{v}");
    assert_eq!(v["hidden"]["outcome"], "tests_failed", "{v}");
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"hidden_tests_failed"), "{kinds:?}");
    assert_eq!(
        (
            v["hidden"]["tests"]["failed"].as_u64(),
            v["hidden"]["tests"]["passed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{v}"
    );

    // A hidden directory with no tests is a failure, never a pass.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.txt"), "nothing here\n").unwrap();
    let v = check(r.path(), &["--hidden-tests", empty.path().to_str().unwrap()]);
    assert_eq!(v["hidden"]["outcome"], "no_tests", "{v}");
    assert_eq!(
        v["outcome"], "passed",
        "no hidden test ran: the candidate's own result stands"
    );
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn node_vitest_project_reports_cases_from_junit() {
    let r = repo_with(&[
        (
            "package.json",
            "{\"name\":\"calc\",\"version\":\"1.0.0\",\"type\":\"module\",\"scripts\":{\"test\":\"vitest run\"},\"devDependencies\":{\"vitest\":\"^3.2.4\"}}\n",
        ),
        ("calc.js", "export const add = (a, b) => a + b;\n"),
        (
            "calc.test.js",
            "import { test, expect } from 'vitest';\nimport { add } from './calc.js';\ntest('adds', () => expect(add(1, 2)).toBe(3));\ntest('adds wrong', () => expect(add(2, 2)).toBe(5));\n",
        ),
    ]);
    let v = check(r.path(), &[]);
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    assert_eq!(passed_failed(&v), (1, 1), "{v}");
    let ids = case_ids(&v);
    assert!(ids.iter().any(|id| id.ends_with("adds wrong")), "{ids:?}");
}

fn image_id(tag: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", tag])
        .output()
        .unwrap();
    assert!(out.status.success(), "{tag}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// scripts/test.sh builds the runner images with the docker client (no assay binary needed, so
/// it overlaps compilation); `assay images build`, what users run, must make the very same image
/// from the same Dockerfile and BASE: every layer comes from the cache and the id is unchanged.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn assay_images_build_makes_the_image_the_setup_script_made() {
    let before = image_id("assay-runner-go");
    let out = Assay::new().run(&["images", "build", "--runner", "go"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        image_id("assay-runner-go"),
        before,
        "assay images build made a different image (a base image rebuilt since the runner images were?)"
    );
}

/// `docker` with `args`; its stdout's lines.
fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Issue 14: SIGINT mid-install and SIGTERM mid-test stop `assay check` and `assay grade` at
/// once, and no container or volume of their jobs is left behind (before, the stage's future
/// was dropped with its container running and no deadline until a later run reaped it); the
/// grade records the sandbox stage `interrupted`.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_signal_mid_install_or_mid_test_leaves_no_container_or_volume() {
    let mut slow_install = Scripted::new();
    slow_install.put(&[(
        "package.json",
        Some(r#"{"name":"slow","version":"1.0.0","scripts":{"preinstall":"sleep 600","test":"node --test"}}"#),
    )]);
    slow_install.commit("a package whose install never ends", DAY1);
    let slow_test = python_repo(&[(
        "tests/test_slow.py",
        "import time\n\ndef test_slow():\n    time.sleep(600)\n",
    )]);
    let work = tempfile::tempdir().unwrap();
    let cohort = cohort_of(work.path(), "", &[("slow", slow_test.path())]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let cases: [(&[&str], &str, bool); 3] = [
        (&["check", slow_install.path().to_str().unwrap(), "--json"], "INT", true),
        (&["check", slow_test.path().to_str().unwrap(), "--json"], "TERM", false),
        (
            &["grade", "--no-drafts", cohort.to_str().unwrap(), "--json"],
            "TERM",
            false,
        ),
    ];
    for (args, signal, install) in cases {
        let assay = Assay::new();
        let mut child = Running::spawn(assay.cmd().args(args));
        let mine = format!("label=assay.owner={}:{}", host.trim(), child.id());
        // Wait for the phase's container: the install's has TMPDIR on the volume.
        let started = std::time::Instant::now();
        loop {
            assert!(child.running(), "{args:?} ended before the phase ran");
            let running = docker_lines(&["ps", "-q", "--filter", &mine]);
            let in_phase = running.iter().any(|id| {
                // A helper container (the upload, the disk reserve) may be gone by now.
                let out = std::process::Command::new("docker")
                    .args(["inspect", "--format", "{{.Config.Env}} {{.Config.Cmd}}", id])
                    .output()
                    .unwrap();
                let env = String::from_utf8_lossy(&out.stdout);
                out.status.success() && env.contains("timeout") && env.contains(".assay-tmp") == install
            });
            if in_phase {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 300,
                "{args:?}: no phase container appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        child.signal(signal);
        let out = child.output_within(120, &format!("{args:?} did not stop after SIG{signal}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("assay: stopping"), "{stderr}");
        assert_eq!(
            docker_lines(&["ps", "-aq", "--filter", &mine]),
            Vec::<String>::new(),
            "{args:?}: containers left"
        );
        assert_eq!(
            docker_lines(&["volume", "ls", "-q", "--filter", &mine]),
            Vec::<String>::new(),
            "{args:?}: volumes left"
        );
        assert_eq!(
            docker_lines(&["network", "ls", "-q", "--filter", &mine]),
            Vec::<String>::new(),
            "{args:?}: networks left"
        );
        if args[0] == "check" {
            assert!(!out.status.success() && stderr.contains("cancelled"), "{stderr}");
        } else {
            let runs = crate::grade::store_runs(&assay.db());
            let sandbox: Vec<_> = runs[0]
                .1
                .iter()
                .filter(|r| r.stage == assay::store::Stage::Sandbox)
                .collect();
            assert_eq!(sandbox.len(), 1, "{runs:?}");
            assert_eq!(sandbox[0].status, assay::store::RunStatus::Interrupted, "{runs:?}");
        }
    }
}

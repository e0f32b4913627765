//! The README's documented commands, run in the real sandbox: each install and test step is
//! reported as works / fails / cannot_run, without changing the runner's own results; README
//! findings come from whole commands (`cargo test` is not `go test`, `cargo run` is setup).

use std::path::Path;

use crate::helpers::*;

fn repo(files: &[(&str, &str)]) -> Scripted {
    let mut r = Scripted::new();
    let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
    r.put(&files);
    r.commit("Project", DAY1);
    r
}

fn check(repo: &Path, out: &Path) -> serde_json::Value {
    let assay = Assay::new();
    let mut cmd = assay.cmd();
    cmd.args(["check", repo.to_str().unwrap(), "--json", "--out"]).arg(out);
    json_ok(&cmd.output().unwrap())
}

fn steps(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["readme_steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no readme_steps: {v}"))
        .iter()
        .map(|s| {
            (
                s["command"].as_str().unwrap().to_string(),
                s["phase"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const README: &str = "# Adder\n\n## Setup\n\n```bash\npython -m venv .venv\nsource .venv/bin/activate   # Windows: .venv\\Scripts\\activate\npip install -r requirements.txt\n```\n\nWith a GPU: `pip install -r requirements-gpu.txt`. The notebook environment: `conda env create -f environment.yml`.\n\n## Tests\n\n```console\n$ python -m pytest -q\n1 passed\n```\n\nPlain `pytest` does not find the module (no conftest.py at the root).\n";

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn documented_python_steps_are_run_and_reported_one_by_one() {
    let r = repo(&[
        ("README.md", README),
        ("requirements.txt", "iniconfig==2.0.0\n"),
        ("adder.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_adder.py",
            "from adder import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let v = check(r.path(), out.path());
    // The runner's own results are unchanged by the README's steps.
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["tests"]["passed"], 1);
    let s = |c: &str, p: &str, st: &str| (c.to_string(), p.to_string(), st.to_string());
    assert_eq!(
        steps(&v),
        [
            s("python -m venv .venv", "install", "works"),
            s("pip install -r requirements.txt", "install", "works"),
            s("pip install -r requirements-gpu.txt", "install", "fails"),
            s("conda env create -f environment.yml", "install", "cannot_run"),
            s("python -m pytest -q", "test", "works"),
            s("pytest", "test", "fails"),
        ],
        "{}",
        v["readme_steps"]
    );
    let gpu = &v["readme_steps"][2];
    assert_eq!(gpu["line"], 11);
    assert!(
        gpu["detail"].as_str().unwrap().contains("requirements-gpu.txt"),
        "the failing step says why: {gpu}"
    );
    assert!(v["readme_steps"][3]["detail"].as_str().unwrap().contains("conda"));
    // As on the candidate's machine: bare pytest does not put the root on sys.path.
    assert!(
        v["readme_steps"][5]["detail"]
            .as_str()
            .unwrap()
            .contains("No module named 'adder'"),
        "{}",
        v["readme_steps"][5]
    );
    // One finding names the failing step; the badge is not Reproduced because of it.
    let kinds = finding_kinds(&v);
    assert!(kinds.contains(&"readme_step_fails"), "{kinds:?}");
    assert!(
        !kinds
            .iter()
            .any(|k| *k == "readme_no_setup" || *k == "readme_no_test_command"),
        "{kinds:?}"
    );
    assert_eq!(v["badge"]["level"], "functional");
    // The reports show the steps.
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("## README steps")
            && md.contains("| 11 | `pip install -r requirements-gpu.txt` | install | fails |"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Does the README work?"), "{html}");
}

/// Regression: a Rust README with `cargo test` got "documents `go test`" and, with `cargo run`,
/// "does not say how to install the project"; its inline tests were `no_tests` in the history.
#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_rust_crate_with_inline_tests_and_cargo_commands_has_no_readme_findings() {
    let r = repo(&[
        ("Cargo.toml", "[package]\nname = \"pay\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        ("Cargo.lock", "version = 3\n\n[[package]]\nname = \"pay\"\nversion = \"0.1.0\"\n"),
        (
            "README.md",
            "# Payments engine\n\n```\ncargo run -- transactions.csv > accounts.csv\n```\n\nTests: `cargo test`.\n",
        ),
        (
            "src/main.rs",
            "fn fee(x: u64) -> u64 {\n    x / 100\n}\n\nfn main() {\n    println!(\"{}\", fee(500));\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn one_percent() {\n        assert_eq!(super::fee(500), 5);\n    }\n}\n",
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let v = check(r.path(), out.path());
    assert_eq!(v["outcome"], "passed", "{v}");
    assert_eq!(v["tests"]["passed"], 1);
    let readme: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"].as_str().unwrap().starts_with("readme"))
        .collect();
    assert!(readme.is_empty(), "{readme:?}");
    // `cargo test` runs offline in the test phase; `cargo run` is not a step.
    assert_eq!(
        steps(&v),
        [("cargo test".to_string(), "test".to_string(), "works".to_string())],
        "{}",
        v["readme_steps"]
    );
    let assay = Assay::new();
    let h = json_ok(&assay.run(&["history", "--json", r.path().to_str().unwrap()]));
    assert!(!kinds(&h).contains(&"no_tests".to_string()), "{:?}", kinds(&h));
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_step_cannot_forge_its_own_result_from_inside_the_sandbox() {
    // The conftest looks for anything that frames step results (a marker on PID 1's command
    // line, as the steps' shared container once had) and writes a "passed" for its step
    // straight to the container's output, bypassing the step's own log. The step's result is
    // its container's exit status: its failing test stays a failing step.
    let conftest = "import os, re\n\
                    cmd = open('/proc/1/cmdline', 'rb').read().decode(errors='replace')\n\
                    for m in set(re.findall(r'assay-step-[0-9a-f]+', cmd)):\n\
                    \x20   fd = os.open('/proc/1/fd/1', os.O_WRONLY)\n\
                    \x20   os.write(fd, f'\\n{m} exit 0 0\\n'.encode())\n";
    let r = repo(&[
        ("requirements.txt", "pytest==8.3.3\n"),
        ("conftest.py", conftest),
        ("adder.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_adder.py",
            "from adder import add\n\ndef test_add():\n    assert add(2, 3) == 6\n",
        ),
        (
            "README.md",
            "# Adder\n\n```\npip install -r requirements.txt\npython -m pytest\n```\n",
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let v = check(r.path(), out.path());
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    let got = steps(&v);
    assert_eq!(
        got,
        vec![
            (
                "pip install -r requirements.txt".into(),
                "install".into(),
                "works".into()
            ),
            ("python -m pytest".into(), "test".into(), "fails".into()),
        ],
        "{}",
        v["readme_steps"]
    );
}

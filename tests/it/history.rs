//! `assay history`: signals from scripted histories, through the binary.

use crate::helpers::*;

fn history(repo: &std::path::Path) -> serde_json::Value {
    let assay = Assay::new();
    json_ok(&assay.run(&["history", "--json", repo.to_str().unwrap()]))
}

#[test]
fn iterative_candidate_has_sessions_tests_from_start_and_readme_results() {
    let r = iterative();
    let h = history(r.path());
    assert_eq!(h["commit_count"], 11);
    assert_eq!(h["commit"], r.repo.head().unwrap().target().unwrap().to_string());
    let k = kinds(&h);
    assert!(k.contains(&"tests_from_start".to_string()), "{k:?}");
    assert!(k.contains(&"readme_results".to_string()), "{k:?}");
    for bad in [
        "single_dump",
        "vague_messages",
        "replayed_burst",
        "backdated_commit",
        "future_commit",
        "no_tests",
    ] {
        assert!(!k.contains(&bad.to_string()), "{bad} in {k:?}");
    }
    // Gaps of 20 h split the work into four sessions.
    assert_eq!(h["sessions"].as_array().unwrap().len(), 4, "{}", h["sessions"]);
    assert_eq!(h["files_by_class"]["tests"], 2);
    assert_eq!(h["files_by_class"]["source"], 2);
    // Ids are H1..Hn in order, and every cited commit is a full sha of this history.
    let shas: Vec<&str> = h["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    for (i, s) in h["signals"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["id"], format!("H{}", i + 1));
        for c in s["commits"].as_array().unwrap() {
            assert!(shas.contains(&c.as_str().unwrap()), "{s}");
        }
    }
}

#[test]
fn single_dump_is_flagged_and_cites_the_commit() {
    let r = single_dump();
    let h = history(r.path());
    let s = signal(&h, "single_dump");
    assert_eq!(s["commits"][0], r.repo.head().unwrap().target().unwrap().to_string());
    assert!(h["largest_commit"]["share"].as_f64().unwrap() >= 0.8);
    assert!(kinds(&h).contains(&"no_tests".to_string()));
    assert!(kinds(&h).contains(&"readme_no_results".to_string()));
}

#[test]
fn backdated_and_future_commits_are_flagged() {
    let mut r = Scripted::new();
    r.put(&[("a.py", Some("a = 1\n"))]);
    r.commit("Start", DAY1);
    r.put(&[("a.py", Some("a = 2\n"))]);
    // Committed three days before it was authored: dates set by hand.
    let back = r.commit_full("Sam", "sam@example.org", DAY1 + 4 * 86400, DAY1 + 86400, "Tweak a");
    r.put(&[("a.py", Some("a = 3\n"))]);
    let future = r.commit_full("Sam", "sam@example.org", 4_102_444_800, 4_102_444_800, "From 2100");
    let h = history(r.path());
    assert_eq!(signal(&h, "backdated_commit")["commits"][0], back.to_string());
    assert_eq!(signal(&h, "future_commit")["commits"][0], future.to_string());
    // Committer dates still rise along the main line (day 1, day 2, 2100).
    assert!(
        !kinds(&h).contains(&"non_monotonic_dates".to_string()),
        "{:?}",
        kinds(&h)
    );
}

#[test]
fn non_monotonic_main_line_is_flagged() {
    let mut r = Scripted::new();
    r.put(&[("a.py", Some("1\n"))]);
    r.commit("One", DAY1 + 86400);
    r.put(&[("a.py", Some("2\n"))]);
    let odd = r.commit("Two, dated a day before its parent", DAY1);
    let h = history(r.path());
    assert_eq!(signal(&h, "non_monotonic_dates")["commits"][0], odd.to_string());
}

#[test]
fn replayed_burst_is_flagged() {
    let mut r = Scripted::new();
    for i in 0..12 {
        r.put(&[("a.py", Some(&format!("v = {i}\n")))]);
        r.commit(&format!("Step {i} of the model"), DAY1 + i * 2);
    }
    let h = history(r.path());
    let s = signal(&h, "replayed_burst");
    assert_eq!(s["commits"].as_array().unwrap().len(), 12);
}

#[test]
fn vague_messages_and_empty_test_claims_are_flagged() {
    let mut r = Scripted::new();
    for (i, m) in ["update", "wip", "fix", ".", "test: add tests"].iter().enumerate() {
        r.put(&[("a.py", Some(&format!("v = {i}\n")))]);
        r.commit(m, DAY1 + i as i64 * HOUR);
    }
    let h = history(r.path());
    assert!(signal(&h, "vague_messages")["commits"].as_array().unwrap().len() >= 4);
    assert_eq!(
        signal(&h, "test_claim_without_tests")["commits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Commits the current files as the hiring team's starter code, a day before the candidate.
fn template_commit(r: &mut Scripted) -> git2::Oid {
    r.commit_full(
        "Hiring Team",
        "jobs@company.example",
        DAY1 - 86400,
        DAY1 - 86400,
        "Starter code",
    )
}

/// Issue 14 (catalogue: visible tests edited): tests the assignment's template shipped and the
/// candidate deleted or cut down are signals a grader sees; tests kept or grown are not.
#[test]
fn template_tests_deleted_or_cut_down_are_signals() {
    let mut r = Scripted::new();
    let cases = |n: usize| -> String {
        (0..n)
            .map(|k| format!("def test_{k}():\n    assert f({k}) == {k}\n"))
            .collect()
    };
    r.put(&[
        ("solution.py", Some("def f(x):\n    raise NotImplementedError\n")),
        ("tests/test_given.py", Some(&cases(6))),
        ("tests/test_edge.py", Some(&cases(3))),
        ("tests/test_kept.py", Some(&cases(2))),
        ("README.md", Some("# Assignment\n")),
    ]);
    template_commit(&mut r);
    let mut t = DAY1;
    for i in 0..4 {
        t += 30 * 60;
        r.put(&[("solution.py", Some(&format!("def f(x):\n    return x  # step {i}\n")))]);
        r.commit(&format!("Implement step {i}"), t);
    }
    // Then the inconvenient tests go: one file deleted, one cut to a single case; the kept one
    // grows.
    r.put(&[
        ("tests/test_edge.py", None),
        ("tests/test_given.py", Some(&cases(1))),
        ("tests/test_kept.py", Some(&cases(4))),
    ]);
    let last = r.commit("Tidy tests", t + 3600);
    let h = history(r.path());
    let removed = signal(&h, "template_tests_removed");
    let text = removed["description"].as_str().unwrap();
    assert!(text.contains("tests/test_edge.py (6 lines)"), "{text}");
    assert!(!text.contains("test_kept") && !text.contains("test_given"), "{text}");
    assert_eq!(removed["commits"][0], last.to_string());
    let weakened = signal(&h, "template_tests_weakened")["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(weakened.contains("tests/test_given.py (10 lines)"), "{weakened}");
    assert!(!weakened.contains("test_kept"), "{weakened}");

    // Without a template (every commit the candidate's), nothing of the kind.
    let mut own = Scripted::new();
    own.put(&[("tests/test_a.py", Some(&cases(3)))]);
    own.commit("tests", DAY1);
    own.put(&[("tests/test_a.py", None), ("a.py", Some("x = 1\n"))]);
    own.commit("drop tests", DAY1 + HOUR);
    let k = kinds(&history(own.path()));
    assert!(!k.iter().any(|k| k.starts_with("template_tests")), "{k:?}");
}

#[test]
fn template_commit_by_another_author_is_set_apart() {
    let mut r = Scripted::new();
    let big: String = (0..400).map(|k| format!("# template line {k}\n")).collect();
    r.put(&[
        ("starter/skeleton.py", Some(&big)),
        ("README.md", Some("# Assignment\n")),
    ]);
    let template = template_commit(&mut r);
    let mut t = DAY1;
    for i in 0..6 {
        t += 30 * 60;
        let body: String = (0..=i).map(|k| format!("def f{k}():\n    return {k}\n")).collect();
        r.put(&[
            ("solution.py", Some(&body)),
            ("tests/test_solution.py", Some("def test_x():\n    assert True\n")),
        ]);
        r.commit(&format!("Implement step {i}"), t);
    }
    let h = history(r.path());
    assert_eq!(signal(&h, "template_commit")["commits"][0], template.to_string());
    // The template's 400 lines do not make the candidate a single dump.
    assert!(!kinds(&h).contains(&"single_dump".to_string()), "{:?}", kinds(&h));
    let authors = h["authors"].as_array().unwrap();
    assert_eq!(authors.len(), 2);
    assert_eq!(authors.iter().filter(|a| a["template"] == true).count(), 1);
    // Identities are anonymised everywhere in the document.
    let text = h.to_string();
    assert!(!text.contains("company.example") && !text.contains("Hiring Team") && !text.contains("sam@example.org"));
    // The first session starts with the candidate, not the template.
    assert_ne!(h["sessions"][0]["commits"][0], template.to_string());
}

#[test]
fn lfs_pointers_are_flagged() {
    let mut r = Scripted::new();
    r.put(&[
        ("data/train.csv", Some("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")),
        ("main.py", Some("print(1)\n")),
    ]);
    r.commit("Add data via LFS", DAY1);
    let h = history(r.path());
    assert_eq!(h["lfs_pointers"][0], "data/train.csv");
    assert!(signal(&h, "lfs_pointer")["description"]
        .as_str()
        .unwrap()
        .contains("data/train.csv"));
}

#[test]
fn five_thousand_commits_are_read_and_the_commit_limit_is_an_outcome() {
    let dir = tempfile::tempdir().unwrap();
    assay::bench::generate_repo(dir.path(), 5000).unwrap();
    let h = history(dir.path());
    assert_eq!(h["commit_count"], 5000);
    assert_eq!(h["commits"].as_array().unwrap().len(), 5000);
    assert!(h["growth"].as_array().unwrap().len() <= 50);

    let assay = Assay::new();
    let out = assay
        .cmd()
        .env("ASSAY_LIMITS_COMMITS", "1000")
        .args(["history", "--json", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("too_many_commits") && err.contains("limits.commits"),
        "{err}"
    );
}

#[test]
fn timeline_text_shows_sessions_and_signals() {
    let r = iterative();
    let assay = Assay::new();
    let out = assay.run(&["history", r.path().to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("session 1") && text.contains("session 4"), "{text}");
    assert!(text.contains("Add baseline model"), "{text}");
    assert!(text.contains("tests_from_start"), "{text}");
}

#[test]
fn history_of_a_non_repository_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let assay = Assay::new();
    let out = assay.run(&["history", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}

/// Regression: Rust crates whose tests are `#[cfg(test)]` modules in src/ got
/// `no_tests` in the history while their tests passed in the sandbox.
#[test]
fn rust_inline_tests_count_as_tests_from_the_commit_that_added_them() {
    let mut r = Scripted::new();
    r.put(&[
        ("Cargo.toml", Some("[package]\nname = \"pay\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")),
        ("README.md", Some("# Payments\n\nRun `cargo test`.\n")),
        (
            "src/lib.rs",
            Some("pub fn fee(x: u64) -> u64 {\n    x / 100\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn one_percent() {\n        assert_eq!(super::fee(500), 5);\n    }\n}\n"),
        ),
    ]);
    let first = r.commit("Fee calculation with a unit test", DAY1);
    let mut t = DAY1;
    for i in 0..5 {
        t += 40 * 60;
        let body: String = (0..=i)
            .map(|k| format!("pub fn rule_{k}(x: u64) -> u64 {{\n    x + {k}\n}}\n"))
            .collect();
        r.put(&[(
            "src/rules.rs",
            Some(&format!(
                "{body}\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn rules() {{\n        assert_eq!(super::rule_0(1), 1);\n    }}\n}}\n"
            )),
        )]);
        r.commit(&format!("Rule {i}"), t);
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"no_tests".to_string()), "{k:?}");
    let from_start = signal(&h, "tests_from_start");
    assert!(
        from_start["description"]
            .as_str()
            .unwrap()
            .contains(&first.to_string()[..7]),
        "{from_start}"
    );
}

/// Regression: a two-commit dump got `tests_from_start`.
#[test]
fn a_two_commit_history_does_not_claim_when_tests_came() {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Project\n"))]);
    r.commit("Initial commit", DAY1);
    r.put(&[
        ("app/main.py", Some("def f():\n    return 1\n")),
        (
            "tests/test_main.py",
            Some("from app.main import f\n\ndef test_f():\n    assert f() == 1\n"),
        ),
    ]);
    r.commit("everything", DAY1 + 86400);
    let h = history(r.path());
    let k = kinds(&h);
    for timing in ["tests_from_start", "tests_midway", "tests_late"] {
        assert!(!k.contains(&timing.to_string()), "{timing} in {k:?}");
    }
    let once = signal(&h, "tests_arrived_at_once");
    assert!(
        once["description"]
            .as_str()
            .unwrap()
            .contains("everything arrived at once"),
        "{once}"
    );
}

/// Tests where the project's pytest configuration puts them (testpaths, python_files) are
/// tests in the history, not source.
#[test]
fn tests_named_by_the_pytest_configuration_count_as_tests() {
    let mut r = Scripted::new();
    r.put(&[
        (
            "setup.cfg",
            Some("[tool:pytest]\ntestpaths = checks\npython_files = check_*.py\n"),
        ),
        ("model.py", Some("def score(x):\n    return x * 2\n")),
        (
            "checks/check_model.py",
            Some("from model import score\n\ndef test_score():\n    assert score(2) == 4\n"),
        ),
    ]);
    r.commit("Baseline scorer with its check", DAY1);
    r.put(&[("model.py", Some("def score(x):\n    return x * 3\n"))]);
    r.commit("Triple the score", DAY1 + 3600);
    r.put(&[("README.md", Some("# Scorer\n"))]);
    r.commit("Describe it", DAY1 + 7200);
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"no_tests".to_string()), "{k:?}");
    assert!(k.contains(&"tests_from_start".to_string()), "{k:?}");
}

/// Regression: a repository with a missing object was reported as "the repository has no
/// commits". A partial copy is graded as far as it goes: the history reads around the missing
/// blob, the export leaves it out and lists it, and the outcome is `repo_corrupt` (set apart in
/// triage), naming the object, its path and the commit, in `grade`, `history` and `check`.
#[test]
#[ignore = "full lane: needs the Docker engine (assay check)"]
fn a_missing_blob_is_repo_corrupt_naming_the_object_and_its_commit_and_the_history_reads_around_it() {
    let mut r = Scripted::new();
    r.put(&[("a.py", Some("x = 1\n")), ("data/b.csv", Some("id\n1\n"))]);
    r.commit("First", DAY1);
    r.put(&[("c.py", Some("y = 2\n")), ("assets/logo.svg", Some("<svg/>\n"))]);
    let head = r.commit("Second", DAY1 + 3600);
    let id = |spec: &str| {
        git2::Repository::open(r.path())
            .unwrap()
            .revparse_single(spec)
            .unwrap()
            .id()
            .to_string()
    };
    let (blob, tree) = (id("HEAD:data/b.csv"), id("HEAD:assets"));
    for o in [&blob, &tree] {
        std::fs::remove_file(r.path().join(".git/objects").join(&o[..2]).join(&o[2..])).unwrap();
    }

    let work = tempfile::tempdir().unwrap();
    let cohort = cohort_of(work.path(), "", &[("carol", r.path())]);
    let assay = Assay::new();
    let v = json_ok(&assay.run(&[
        "grade",
        "--no-drafts",
        "--no-sandbox",
        cohort.to_str().unwrap(),
        "--json",
        "--out",
        work.path().join("out").to_str().unwrap(),
    ]));
    let s = &v["submissions"][0];
    assert_eq!(s["outcome"], "repo_corrupt", "{s}");
    assert_eq!(s["commit"], head.to_string(), "{s}");
    // A missing directory is listed as one entry, its files unread.
    assert_eq!(s["missing_objects"][0]["path"], "assets/", "{s}");
    assert_eq!(s["missing_objects"][0]["object"], tree.as_str(), "{s}");
    assert_eq!(s["missing_objects"][1]["path"], "data/b.csv", "{s}");
    assert_eq!(s["missing_objects"][1]["object"], blob.as_str(), "{s}");
    // The history was read all the same: both commits, the missing blob named.
    assert_eq!(s["stages"]["history"]["status"], "done", "{s}");
    assert!(
        s["facts"]["history"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "objects_missing"),
        "{s}"
    );
    assert_eq!(s["facts"]["history"]["commit_count"], 2, "{s}");
    // Set apart for a re-run, never ranked on a copy's gap.
    let t = &v["triage"]["submissions"][0];
    assert_eq!(t["rerun"], true, "{t}");

    let out = assay.run(&["history", "--json", r.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The second commit's diff needs the missing subtree, so its changes are unknown: said so.
    let second = format!("object {tree} (a tree of commit {})", &head.to_string()[..7]);
    assert_eq!(
        h["missing_objects"],
        serde_json::json!(["assets/", "data/b.csv", second]),
        "{h}"
    );
    let signal = h["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "objects_missing")
        .unwrap();
    assert!(
        signal["description"].as_str().unwrap().contains("lacks 3 object(s)")
            && signal["description"].as_str().unwrap().contains("data/b.csv"),
        "{signal}"
    );

    let out = assay.run(&["check", "--json", r.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["outcome"], "repo_corrupt", "{c}");
    let finding = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "copy_incomplete")
        .unwrap();
    let text = finding["message"].as_str().unwrap();
    assert!(text.contains("data/b.csv") && text.contains(&blob), "{text}");
}

#[test]
fn an_early_baseline_ci_and_linters_are_read_from_the_history_and_the_graded_tree() {
    let mut r = iterative();
    let h = history(r.path());
    let k = kinds(&h);
    assert!(k.contains(&"early_baseline".to_string()), "{k:?}");
    assert!(signal(&h, "early_baseline")["description"]
        .as_str()
        .unwrap()
        .contains("commit 1 of 11"));
    assert!(
        !k.contains(&"ci_config".to_string()) && !k.contains(&"linters".to_string()),
        "{k:?}"
    );

    r.put(&[
        (".github/workflows/test.yml", Some("on: push\njobs: {}\n")),
        (
            "pyproject.toml",
            Some("[project]\nname = \"churn\"\n\n[tool.ruff]\nline-length = 100\n"),
        ),
        // Vendored configuration is not the candidate's.
        ("node_modules/pkg/.eslintrc.json", Some("{}\n")),
    ]);
    r.commit("Add CI and ruff", DAY1 + 30 * HOUR);
    let h = history(r.path());
    let ci = signal(&h, "ci_config")["description"].as_str().unwrap().to_string();
    assert!(ci.contains("GitHub Actions (.github/workflows/test.yml)"), "{ci}");
    let lint = signal(&h, "linters")["description"].as_str().unwrap().to_string();
    assert!(
        lint.contains("ruff (pyproject.toml)") && !lint.contains("eslint"),
        "{lint}"
    );

    // A dump has no early baseline.
    let h = history(single_dump().path());
    assert!(!kinds(&h).contains(&"early_baseline".to_string()), "{:?}", kinds(&h));
}

/// Corpus regression: "bug fixed", "typo tweaks", "readme" were read as explained steps.
#[test]
fn mostly_terse_messages_are_flagged_and_explained_ones_are_not() {
    let mut r = Scripted::new();
    for (i, m) in [
        "initial commit",
        "adding benchmarks",
        "assignment implemented",
        "Handle duplicate messages without an error",
        "bug fixed",
        "typo tweaks",
    ]
    .iter()
    .enumerate()
    {
        r.put(&[("a.py", Some(&format!("v = {i}\n")))]);
        r.commit(m, DAY1 + i as i64 * HOUR);
    }
    let h = history(r.path());
    let terse = signal(&h, "terse_messages");
    assert_eq!(terse["commits"].as_array().unwrap().len(), 5, "{terse}");
    assert!(
        terse["description"]
            .as_str()
            .unwrap()
            .starts_with("5 of 6 commit messages"),
        "{terse}"
    );

    let mut r = Scripted::new();
    for (i, m) in [
        "Initial commit",
        "Add the CSV reader and its tests",
        "Reject withdrawals beyond the balance",
        "Document the dispute rules in the README",
    ]
    .iter()
    .enumerate()
    {
        r.put(&[("a.py", Some(&format!("v = {i}\n")))]);
        r.commit(m, DAY1 + i as i64 * HOUR);
    }
    assert!(!kinds(&history(r.path())).contains(&"terse_messages".to_string()));
}

/// Corpus regression: tests that came inside the commit holding most of the work were
/// "from the start" when that commit was in the first work session.
#[test]
fn tests_that_came_with_the_dump_do_not_claim_when_they_were_written() {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Project\n"))]);
    r.commit("Initial commit", DAY1);
    let body: String = (0..60).map(|k| format!("def f{k}():\n    return {k}\n")).collect();
    r.put(&[
        ("app/main.py", Some(&body)),
        (
            "tests/test_main.py",
            Some("from app.main import f1\n\ndef test_f():\n    assert f1() == 1\n"),
        ),
    ]);
    r.commit("Added the whole exercise", DAY1 + 300);
    for i in 0..3 {
        r.put(&[("README.md", Some(&format!("# Project\n\nStep {i}.\n")))]);
        r.commit("Update README.md", DAY1 + 600 + i * 60);
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(k.contains(&"single_dump".to_string()), "{k:?}");
    for timing in ["tests_from_start", "tests_midway", "tests_late"] {
        assert!(!k.contains(&timing.to_string()), "{timing} in {k:?}");
    }
    assert!(signal(&h, "tests_arrived_at_once")["description"]
        .as_str()
        .unwrap()
        .contains("added most of the final lines"));
}

/// Corpus regression: a take-home done in one sitting is one work session, and tests added in
/// its fourth commit of six were "from the start" for being in the first session.
#[test]
fn tests_late_in_a_single_sitting_are_not_from_the_start() {
    let mut r = Scripted::new();
    for i in 0..6 {
        let mut files = vec![(format!("app/step{i}.py"), format!("def step{i}():\n    return {i}\n"))];
        if i == 3 {
            files.push((
                "tests/test_steps.py".to_string(),
                "from app.step0 import step0\n\ndef test_step0():\n    assert step0() == 0\n".to_string(),
            ));
        }
        let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, t)| (p.as_str(), Some(t.as_str()))).collect();
        r.put(&files);
        r.commit(&format!("Add step {i} of the pipeline"), DAY1 + i * 600);
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert_eq!(h["sessions"].as_array().unwrap().len(), 1, "{}", h["sessions"]);
    assert!(!k.contains(&"tests_from_start".to_string()), "{k:?}");
    assert!(
        k.contains(&"tests_midway".to_string()) || k.contains(&"tests_late".to_string()),
        "{k:?}"
    );
}

/// A Jupyter notebook as JSON: one code cell per source, each with `outputs` lines of output.
fn notebook(sources: &[String], outputs: usize) -> String {
    let cells: Vec<serde_json::Value> = sources
        .iter()
        .map(|src| {
            let lines: Vec<String> = src.lines().map(|l| format!("{l}\n")).collect();
            let text: Vec<String> = (0..outputs).map(|k| format!("row {k}: 0.{k}\n")).collect();
            serde_json::json!({
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": lines,
                "outputs": [{"name": "stdout", "output_type": "stream", "text": text}],
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }))
    .unwrap()
}

/// Corpus regression: a notebook re-run with its outputs saved added thousands of JSON lines,
/// and a history of 27 commits over days was "a single dump" for it.
#[test]
fn a_notebook_counts_its_cells_sources_not_its_outputs() {
    let cell = |k: usize| format!("df = load({k})\nprint(df.describe())\n");
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Churn\n\nExploring churn.\n"))]);
    r.commit("Initial commit with the question", DAY1);
    let mut cells: Vec<String> = Vec::new();
    for step in 0..6 {
        cells.push(cell(step));
        cells.push(format!("model_{step} = fit(df, depth={step})\n"));
        // Each run saves 400 lines of output per cell: the JSON grows far more than the work.
        let outputs = if step == 3 { 400 } else { 1 };
        r.put(&[("analysis.ipynb", Some(&notebook(&cells, outputs)))]);
        r.commit(
            &format!("Modelling step {step}: try depth {step}"),
            DAY1 + (step as i64 + 1) * HOUR,
        );
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"single_dump".to_string()), "{k:?} {}", h["largest_commit"]);
    // 6 steps × 3 source lines.
    assert_eq!(h["lines_by_class"]["notebooks"], 18, "{}", h["lines_by_class"]);
    assert_eq!(h["files_by_class"]["notebooks"], 1);

    // A whole notebook added in one go is still a dump.
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Churn\n"))]);
    r.commit("Initial commit", DAY1);
    let all: Vec<String> = (0..40).map(cell).collect();
    r.put(&[("analysis.ipynb", Some(&notebook(&all, 0)))]);
    r.commit("Add the analysis", DAY1 + HOUR);
    r.put(&[("README.md", Some("# Churn\n\nDone.\n"))]);
    r.commit("Say it is done", DAY1 + 2 * HOUR);
    let h = history(r.path());
    assert!(
        kinds(&h).contains(&"single_dump".to_string()),
        "{}",
        h["largest_commit"]
    );
    assert_eq!(h["largest_commit"]["added"], 80, "{}", h["largest_commit"]);
}

#[test]
/// Regression (corpus: a Rust CLI): the commit that added two integration tests also added a
/// generated 53,064-line CSV under tests/resources, counted as test code: "98% of the final
/// lines in one go". A fixture's bulk is data; the tests it feeds still count as tests.
fn a_large_fixture_under_tests_is_data_not_a_dump() {
    let mut r = Scripted::new();
    let module = |k: usize| {
        (0..30)
            .map(|i| format!("pub fn f{k}_{i}() -> u32 {{ {i} }}\n"))
            .collect::<String>()
    };
    r.put(&[
        ("Cargo.toml", Some("[package]\nname = \"p\"\n")),
        ("src/lib.rs", Some(&module(0))),
    ]);
    r.commit("First version of the processor", DAY1);
    for step in 1..4 {
        r.put(&[(&format!("src/m{step}.rs") as &str, Some(&module(step)))]);
        r.commit(&format!("Add module {step} for disputes"), DAY1 + step as i64 * HOUR);
    }
    let rows: String = (0..50_000).map(|i| format!("deposit,{i},{i},1.0\n")).collect();
    r.put(&[
        ("tests/cli.rs", Some("#[test]\nfn runs() {\n    assert!(true);\n}\n")),
        ("tests/resources/stress.csv", Some(&rows)),
    ]);
    r.commit("Add integration tests and a stress input", DAY1 + 5 * HOUR);
    let h = history(r.path());
    assert!(
        !kinds(&h).contains(&"single_dump".to_string()),
        "{}",
        h["largest_commit"]
    );
    assert_eq!(h["lines_by_class"]["tests"], 4, "{}", h["lines_by_class"]);
    assert_eq!(h["lines_by_class"]["data"], 50_000, "{}", h["lines_by_class"]);
}

#[test]
/// Regression (corpus: a Python data-science take-home): an exploration commit added 44,000
/// lines of scripts that later commits rewrote and deleted; measured against the final tree's
/// 25,000 lines it was "97% of the final lines in one go", so 22 commits over four weeks were
/// a dump. A commit's share of the final work counts, file by file, no more than the file
/// still holds.
fn lines_rewritten_away_are_no_share_of_the_final_work() {
    let mut r = Scripted::new();
    let script = |k: usize, n: usize| (0..n).map(|i| format!("value_{k}_{i} = {i}\n")).collect::<String>();
    r.put(&[
        ("pyproject.toml", Some("[project]\nname = \"p\"\n")),
        ("src/model.py", Some(&script(0, 40))),
    ]);
    r.commit("Baseline model", DAY1);
    let scratch = script(1, 2_000);
    r.put(&[
        ("notebooks/explore.py", Some(&scratch)),
        ("notebooks/explore2.py", Some(&scratch)),
    ]);
    r.commit("Exploration of the bookings", DAY1 + HOUR);
    r.put(&[("notebooks/explore.py", None), ("notebooks/explore2.py", None)]);
    for step in 1..6 {
        r.put(&[(&format!("src/step{step}.py") as &str, Some(&script(step + 1, 60)))]);
        r.commit(&format!("Add pricing step {step}"), DAY1 + (step as i64 + 2) * HOUR);
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"single_dump".to_string()), "{k:?} {}", h["largest_commit"]);
    let l = &h["largest_commit"];
    // The exploration commit added most lines, none of which survive: the largest share of
    // the final work is a later step's (or the baseline's), well under a dump.
    assert!(l["share"].as_f64().unwrap() < 0.5, "{l}");
    assert!(l["kept"].as_u64().unwrap() <= 60, "{l}");

    // One commit that writes what stays is still a dump, measured the same way.
    let mut d = Scripted::new();
    d.put(&[("src/model.py", Some(&script(0, 10)))]);
    d.commit("Start", DAY1);
    d.put(&[("src/app.py", Some(&script(1, 500)))]);
    d.commit("Everything", DAY1 + HOUR);
    d.put(&[("src/model.py", Some(&script(0, 12)))]);
    d.commit("Tweak", DAY1 + 2 * HOUR);
    let h = history(d.path());
    assert!(
        kinds(&h).contains(&"single_dump".to_string()),
        "{}",
        h["largest_commit"]
    );
    assert_eq!(h["largest_commit"]["kept"], 500, "{}", h["largest_commit"]);
}

#[test]
/// Regressions (corpus): a candidate who pushed all the code from a laptop ("MinuraPunchihewa
/// <…@gmail.com>") and then edited the README three times on GitHub ("Minura Punchihewa
/// <…+MinuraPunchihewa@users.noreply.github.com>") had their code commit set apart as
/// another author's template, hiding a dump; "Mateusz Ligęza" and "Mateusz Ligeza" were two
/// people. GitHub's own initial commit (a README title and a .gitignore) is no one's work:
/// tests in the candidate's 2nd commit of 10 came with the first quarter of the work.
fn one_person_under_two_emails_is_one_author_and_githubs_initial_commit_is_set_apart() {
    let github = ("GitHub", "noreply@github.com");
    let code = |n: usize| (0..n).map(|i| format!("x{i} = {i}\n")).collect::<String>();
    let mut r = Scripted::new();
    r.put(&[
        ("src/app.py", Some(&code(600))),
        ("tests/test_app.py", Some("def test_x():\n    assert 1 + 1 == 2\n")),
    ]);
    r.commit_full("MinuraPunchihewa", "minura@laptop.example", DAY1, DAY1, "first commit");
    for i in 0..3 {
        r.put(&[("README.md", Some(&format!("# Iris\n{}", "More.\n".repeat(i + 1))))]);
        r.commit_by(
            ("Minura Punchihewa", "4938+MinuraPunchihewa@users.noreply.github.com"),
            github,
            DAY1 + (i as i64 + 10) * 86400,
            DAY1 + (i as i64 + 10) * 86400,
            "Update README.md",
        );
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"template_commit".to_string()), "{k:?}");
    assert!(k.contains(&"single_dump".to_string()), "{k:?}");
    assert_eq!(h["authors"].as_array().unwrap().len(), 1, "{}", h["authors"]);

    let mut g = Scripted::new();
    g.put(&[
        ("README.md", Some("# payment_engine\n")),
        (".gitignore", Some("/target\n")),
    ]);
    let initial = g.commit_by(
        ("Mateusz Ligęza", "mateusz@home.example"),
        github,
        DAY1,
        DAY1,
        "Initial commit",
    );
    g.put(&[("src/lib.rs", Some(&code(100)))]);
    g.commit_full(
        "Mateusz Ligeza",
        "mateusz@work.example",
        DAY1 + HOUR,
        DAY1 + HOUR,
        "added base business models",
    );
    g.put(&[(
        "tests/reader.rs",
        Some("#[test]\nfn reads() {\n    assert_eq!(1 + 1, 2);\n}\n"),
    )]);
    g.commit_full(
        "Mateusz Ligeza",
        "mateusz@work.example",
        DAY1 + 2 * HOUR,
        DAY1 + 2 * HOUR,
        "added csv reader",
    );
    for i in 0..8 {
        g.put(&[(&format!("src/m{i}.rs") as &str, Some(&code(20)))]);
        g.commit_full(
            "Mateusz Ligeza",
            "mateusz@work.example",
            DAY1 + (3 + i) * HOUR,
            DAY1 + (3 + i) * HOUR,
            &format!("added module {i}"),
        );
    }
    let h = history(g.path());
    let t = signal(&h, "template_commit");
    assert_eq!(t["commits"][0], initial.to_string());
    assert!(
        t["description"]
            .as_str()
            .unwrap()
            .starts_with("GitHub's initial commit"),
        "{t}"
    );
    assert!(kinds(&h).contains(&"tests_from_start".to_string()), "{:?}", kinds(&h));
    assert_eq!(h["authors"].as_array().unwrap().len(), 1, "{}", h["authors"]);
    let flags = &h["commits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sha"] == initial.to_string())
        .unwrap()["flags"];
    assert!(
        flags.as_array().unwrap().iter().any(|f| f == "github_initial"),
        "{flags}"
    );
}

#[test]
/// Regression (corpus: jon-robbins): a project scaffold's first commit held
/// `tests/test_pipeline.py` with two `self.assertTrue(True)  # Placeholder test` methods; the
/// real tests came in the 6th commit of 22. The scaffold is said, not counted: tests came
/// midway, not from the start.
fn placeholder_tests_are_not_tests_from_the_start() {
    let code = |n: usize| (0..n).map(|i| format!("x{i} = {i}\n")).collect::<String>();
    let mut r = Scripted::new();
    r.put(&[
        ("src/pipeline.py", Some(&code(20))),
        (
            "tests/test_pipeline.py",
            Some(
                "import unittest\n\nclass TestPipeline(unittest.TestCase):\n    def test_init(self):\n        \
                 self.assertTrue(True)  # Placeholder test\n\n    def test_load(self):\n        assert True\n",
            ),
        ),
    ]);
    let scaffold = r.commit("Initial commit: project structure", DAY1);
    for i in 0..4 {
        r.put(&[(&format!("src/m{i}.py") as &str, Some(&code(30)))]);
        r.commit(&format!("Add module {i}"), DAY1 + (i + 1) * HOUR);
    }
    r.put(&[(
        "tests/test_m0.py",
        Some("from src.m0 import x1\n\ndef test_x1():\n    assert x1 == 1\n"),
    )]);
    let real = r.commit("Add tests", DAY1 + 6 * HOUR);
    for i in 4..10 {
        r.put(&[(&format!("src/m{i}.py") as &str, Some(&code(30)))]);
        r.commit(&format!("Add module {i}"), DAY1 + (i + 3) * HOUR);
    }
    let h = history(r.path());
    let k = kinds(&h);
    assert!(!k.contains(&"tests_from_start".to_string()), "{k:?}");
    let midway = signal(&h, "tests_midway");
    assert_eq!(midway["commits"][0], real.to_string(), "{midway}");
    let p = signal(&h, "placeholder_tests");
    assert_eq!(p["commits"][0], scaffold.to_string(), "{p}");
    assert!(
        p["description"].as_str().unwrap().contains("assert only constants"),
        "{p}"
    );

    // Real assertions from the first commit are tests from the start.
    let mut t = Scripted::new();
    t.put(&[
        ("src/pipeline.py", Some(&code(20))),
        ("tests/test_pipeline.py", Some("def test_x():\n    assert 1 + 1 == 2\n")),
    ]);
    t.commit("Start with a test", DAY1);
    for i in 0..6 {
        t.put(&[(&format!("src/m{i}.py") as &str, Some(&code(30)))]);
        t.commit(&format!("Add module {i}"), DAY1 + (i + 1) * HOUR);
    }
    let k = kinds(&history(t.path()));
    assert!(k.contains(&"tests_from_start".to_string()), "{k:?}");
    assert!(!k.contains(&"placeholder_tests".to_string()), "{k:?}");
}

/// Issue 14 (catalogue: terminal and report injection): a commit message with ESC sequences
/// (a screen clear, an OSC 52 clipboard write), a NUL and a carriage return, and a README with a
/// colour escape, reach neither the terminal nor any report raw; the readable text around
/// them stays.
#[test]
fn control_characters_from_candidates_reach_no_terminal_and_no_report() {
    let mut r = Scripted::new();
    r.put(&[(
        "README.md",
        Some("# Tool\n\n\u{1b}[31mRed\u{1b}[0m results: accuracy 0.9\n"),
    )]);
    r.commit("clear\u{1b}[2Jscreen and \u{1b}]52;c;ZXZpbA==\u{7}copy", DAY1);
    r.put(&[("app.py", Some("print(1)\n"))]);
    let parent = r.commit("second", DAY1 + HOUR);
    // A NUL and a carriage return in a message: written as a raw object, as git's own
    // commands would refuse to.
    let tree = r.repo.find_commit(parent).unwrap().tree_id();
    let raw = format!(
        "tree {tree}\nparent {parent}\nauthor Sam <sam@example.org> {t} +0000\ncommitter Sam <sam@example.org> {t} +0000\n\nnul\0byte\rover written\n",
        t = DAY1 + 2 * HOUR
    );
    let head = r
        .repo
        .odb()
        .unwrap()
        .write(git2::ObjectType::Commit, raw.as_bytes())
        .unwrap();
    r.repo.reference("refs/heads/main", head, true, "raw commit").unwrap();

    let raw_control = |text: &str| {
        text.chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
            .map(|c| format!("U+{:04X}", c as u32))
    };
    let assay = Assay::new();
    let out = assay.run(&["history", r.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(raw_control(&text), None, "{text}");
    assert!(text.contains("clear[2Jscreen"), "{text}");

    let work = tempfile::tempdir().unwrap();
    let cohort = cohort_of(work.path(), "", &[("sam", r.path())]);
    let reports = work.path().join("out");
    let out = assay.run(&[
        "grade",
        "--no-drafts",
        "--no-sandbox",
        cohort.to_str().unwrap(),
        "--out",
        reports.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(raw_control(&String::from_utf8_lossy(&out.stdout)), None);
    let mut seen = 0;
    for entry in std::fs::read_dir(&reports).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md" || e == "html") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(raw_control(&text), None, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 4, "{seen} reports");
    let packet = std::fs::read_to_string(reports.join("sam.md")).unwrap();
    assert!(packet.contains("2Jscreen and"), "{packet}");
}

/// The peak resident memory of a finished child, polled from /proc while it ran (VmHWM only
/// grows, so the last reading is the peak up to a few milliseconds before the end).
fn peak_rss_kib(mut child: std::process::Child) -> (std::process::Output, u64) {
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), peak)
}

/// Issue 14: a 200 MB blob that compresses to almost nothing, added then changed in history, is
/// never inflated to be diffed (over limits.file_bytes, its lines are unknown, as a binary's):
/// `assay history` stays under 300 MB of resident memory and reports the file changed.
#[test]
fn a_huge_compressible_blob_in_history_is_not_diffed_and_memory_stays_bounded() {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Data\n")), ("app.py", Some("print(1)\n"))]);
    r.commit("start", DAY1);
    let mut big = vec![b'a'; 200 << 20];
    r.put_entry("data/dump.txt", &big, 0o100644);
    r.commit("add a dump", DAY1 + HOUR);
    big[0] = b'b';
    r.put_entry("data/dump.txt", &big, 0o100644);
    r.put(&[("app.py", Some("print(2)\n"))]);
    r.commit("change it", DAY1 + 2 * HOUR);
    drop(big);
    let assay = Assay::new();
    let child = assay
        .cmd()
        .args(["history", "--json", r.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (out, peak) = peak_rss_kib(child);
    let h = json_ok(&out);
    assert!(peak < 300 << 10, "peak RSS {peak} KiB");
    assert_eq!(h["commit_count"], 3);
    let last = &h["commits"][2];
    assert_eq!(last["changes"]["source"]["added"], 1, "{last}");
    // A .txt file is docs; changed, its lines unknown.
    assert_eq!(last["changes"]["docs"]["files"], 1, "{last}");
    assert_eq!(last["changes"]["docs"]["added"], 0, "{last}");
}

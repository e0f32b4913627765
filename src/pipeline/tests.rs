//! The stage runner and the pipeline on the fakes (`crate::fakes`): retry with backoff,
//! cancellation, panics, resume, and a cohort end to end — no database file, Docker or model.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use super::stage::{blocking, StageOk};
use super::*;
use crate::draft::Drafter;
use crate::fakes::{CountingProgress, Drafting, FakeDrafter, MemoryStore, ScriptedSandbox};
use crate::sandbox::Phase;
use crate::store::{RunStatus, Stage};

fn pipeline(store: &Arc<MemoryStore>, dir: &Path, cancel: CancellationToken) -> Pipeline {
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        jobs: 1,
        retries: 2,
        ..Default::default()
    };
    Pipeline::new(
        Arc::clone(store) as Arc<dyn Store>,
        settings,
        cancel,
        Box::new(CountingProgress::default()),
    )
}

async fn submission(store: &MemoryStore) -> SubmissionRecord {
    let cohort = store.upsert_cohort("c", &json!({})).await.unwrap();
    store
        .upsert_submission(cohort, "alice", "anon-1", "repo", None)
        .await
        .unwrap()
}

fn done(n: usize) -> StageOk {
    StageOk {
        output: json!({ "call": n }),
        evidence: Vec::new(),
        commit: None,
        outcome: OutcomeKind::Ok,
    }
}

fn statuses(store: &MemoryStore) -> Vec<(RunStatus, i64, Option<OutcomeKind>)> {
    store
        .all_runs()
        .iter()
        .map(|r| (r.status, r.attempt, r.outcome))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_is_tried_again_after_a_backoff_then_recorded_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    let calls = AtomicUsize::new(0);
    let start = tokio::time::Instant::now();
    let out = p
        .run_stage(&rec, Stage::Fetch, "k", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 | 1 => Err(Failure::new(OutcomeKind::Unreachable, "host did not answer")),
                    _ => Ok(done(n)),
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(out.unwrap(), json!({ "call": 2 }));
    assert_eq!(
        statuses(&store),
        [
            (RunStatus::Failed, 1, Some(OutcomeKind::Unreachable)),
            (RunStatus::Failed, 2, Some(OutcomeKind::Unreachable)),
            (RunStatus::Done, 3, Some(OutcomeKind::Ok)),
        ]
    );
    // Backoff of 1 s, then 2 s (paused time: measured, not waited for).
    assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_setting_and_a_later_run_tries_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    let calls = AtomicUsize::new(0);
    let down = || {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<StageOk, _>(Failure::new(OutcomeKind::InfraError, "engine down")) }
    };
    let out = p.run_stage(&rec, Stage::Sandbox, "k", down).await.unwrap();
    assert_eq!(out.unwrap_err().kind, OutcomeKind::InfraError);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
    // assay's own trouble is never final: the next run measures again.
    let out = p
        .run_stage(&rec, Stage::Sandbox, "k", || async { Ok(done(9)) })
        .await
        .unwrap();
    assert!(out.is_ok());
    assert_eq!(
        statuses(&store).last().unwrap(),
        &(RunStatus::Done, 4, Some(OutcomeKind::Ok))
    );
}

#[tokio::test]
async fn a_failure_retrying_would_not_change_is_recorded_once_and_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    let out = p
        .run_stage(&rec, Stage::Fetch, "k", || async {
            Err::<StageOk, _>(Failure::new(OutcomeKind::BlockedUrl, "file:// is refused"))
        })
        .await
        .unwrap();
    assert_eq!(out.unwrap_err().kind, OutcomeKind::BlockedUrl);
    let out = p
        .run_stage(&rec, Stage::Fetch, "k", || async {
            panic!("a failed stage whose input is unchanged must not run again")
        })
        .await
        .unwrap();
    let f = out.unwrap_err();
    assert_eq!(
        (f.kind, f.message.as_str()),
        (OutcomeKind::BlockedUrl, "file:// is refused")
    );
    assert_eq!(
        statuses(&store),
        [(RunStatus::Failed, 1, Some(OutcomeKind::BlockedUrl))]
    );
}

#[tokio::test]
async fn a_done_stage_is_resumed_from_the_store_and_a_new_input_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    p.run_stage(&rec, Stage::History, "commit-a", || async { Ok(done(1)) })
        .await
        .unwrap()
        .unwrap();
    let again = p
        .run_stage(&rec, Stage::History, "commit-a", || async {
            panic!("a done stage must not run again")
        })
        .await
        .unwrap();
    assert_eq!(again.unwrap(), json!({ "call": 1 }));
    let moved = p
        .run_stage(&rec, Stage::History, "commit-b", || async { Ok(done(2)) })
        .await
        .unwrap();
    assert_eq!(moved.unwrap(), json!({ "call": 2 }));
    assert_eq!(store.all_runs().len(), 2);
}

#[tokio::test]
async fn cancelling_interrupts_a_running_stage_and_the_next_run_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let cancel = CancellationToken::new();
    let p = pipeline(&store, dir.path(), cancel.clone());
    let (out, ()) = tokio::join!(
        p.run_stage(
            &rec,
            Stage::Sandbox,
            "k",
            std::future::pending::<Result<StageOk, Failure>>
        ),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        }
    );
    let f = out.unwrap().unwrap_err();
    assert_eq!(
        (f.kind, f.message.as_str()),
        (OutcomeKind::Interrupted, "cancelled while running")
    );
    assert_eq!(
        statuses(&store),
        [(RunStatus::Interrupted, 1, Some(OutcomeKind::Interrupted))]
    );
    // A cancelled pipeline starts nothing more.
    let out = p
        .run_stage(&rec, Stage::Repro, "k", || async { panic!("started after cancel") })
        .await
        .unwrap();
    assert_eq!(out.unwrap_err().kind, OutcomeKind::Interrupted);
    assert_eq!(store.all_runs().len(), 1);
    // The next run (a new process, a new token) runs the interrupted stage again.
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    p.run_stage(&rec, Stage::Sandbox, "k", || async { Ok(done(2)) })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        statuses(&store).last().unwrap(),
        &(RunStatus::Done, 2, Some(OutcomeKind::Ok))
    );
}

#[tokio::test]
async fn a_panic_in_a_stage_is_an_internal_error_recorded_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let rec = submission(&store).await;
    let p = pipeline(&store, dir.path(), CancellationToken::new());
    let out = p
        .run_stage(&rec, Stage::History, "k", || {
            blocking(|| -> Result<StageOk, Failure> { panic!("index 7 out of range") })
        })
        .await
        .unwrap();
    let f = out.unwrap_err();
    assert_eq!(f.kind, OutcomeKind::InternalError);
    assert!(
        f.message.contains("assay panicked: index 7 out of range"),
        "{}",
        f.message
    );
    assert_eq!(
        statuses(&store),
        [(RunStatus::Failed, 1, Some(OutcomeKind::InternalError))]
    );
    // assay's bug is not the candidate's verdict: a later run tries again.
    assert!(p
        .run_stage(&rec, Stage::History, "k", || async { Ok(done(2)) })
        .await
        .unwrap()
        .is_ok());
}

/// A committed Python project with a README, pinned requirements and one test file.
fn project(dir: &Path) {
    let files = [
        (
            "README.md",
            "# Calc\n\nAdds numbers.\n\n## Tests\n\n```sh\npip install -r requirements.txt\npytest\n```\n",
        ),
        ("requirements.txt", "pytest==7.2.1\n"),
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    crate::bench::commit_all(dir, "calc with a test").unwrap();
}

fn cohort(dir: &Path) -> Cohort {
    std::fs::write(
        dir.join("rubric.toml"),
        include_str!("../../rubrics/trial-project.toml"),
    )
    .unwrap();
    let text = "[assignment]\nname = \"fakes\"\nrubric = \"rubric.toml\"\n\n[[submission]]\ncandidate = \"alice\"\nrepo = \"alice\"\n";
    std::fs::write(dir.join("cohort.toml"), text).unwrap();
    Cohort::parse(&dir.join("cohort.toml"), text).unwrap()
}

#[tokio::test]
async fn a_cohort_goes_through_every_stage_on_the_fakes_and_a_rerun_resumes_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("alice"));
    let cohort = cohort(dir.path());
    let store = Arc::new(MemoryStore::default());
    let sandbox = Arc::new(ScriptedSandbox::passing(&["test_add"]));
    // The engine fails the first job: assay's trouble, retried, never the candidate's.
    sandbox.engine_down.store(1, Ordering::SeqCst);
    let drafter = Arc::new(FakeDrafter::new(Drafting::Scores(2)));
    let grade = |cancel| {
        Arc::new(
            pipeline(&store, &dir.path().join("data"), cancel)
                .with_sandbox(Arc::clone(&sandbox) as Arc<dyn Sandbox>)
                .with_drafter(Arc::clone(&drafter) as Arc<dyn Drafter>),
        )
    };
    let (summary, details) = grade(CancellationToken::new()).run(&cohort).await.unwrap();
    let s = &summary.submissions[0];
    assert_eq!((s.status, s.outcome), ("done", OutcomeKind::Passed), "{s:#?}");
    let t1 = s.evidence.iter().find(|e| e.id == "T1").expect("test evidence");
    assert_eq!(t1.kind, "candidate_tests");
    assert!(t1.text.contains("1 passed"), "{}", t1.text);
    assert_eq!(s.drafts.len(), cohort.rubric.criteria.len());
    assert!(s
        .drafts
        .iter()
        .all(|d| d.score == Some(2) && d.rationale.starts_with("fake draft")));
    assert_eq!(
        details[0].draft.as_ref().map(|d| d.model.as_str()),
        Some("fake-drafter")
    );
    assert_eq!(drafter.calls.load(Ordering::SeqCst), 1);
    let phases = sandbox.phases.lock().unwrap().clone();
    assert_eq!(phases.first(), Some(&Phase::Install), "{phases:?}");
    assert!(phases.contains(&Phase::Test), "{phases:?}");
    assert_eq!(
        sandbox.prepared.load(Ordering::SeqCst),
        sandbox.cleaned.load(Ordering::SeqCst),
        "every prepared job is cleaned up"
    );
    let sandbox_runs: Vec<_> = store
        .all_runs()
        .into_iter()
        .filter(|r| r.stage == Stage::Sandbox)
        .map(|r| (r.status, r.outcome))
        .collect();
    assert_eq!(
        sandbox_runs,
        [
            (RunStatus::Failed, Some(OutcomeKind::InfraError)),
            (RunStatus::Done, Some(OutcomeKind::Passed))
        ]
    );

    // Again: every stage is done for the same inputs, nothing runs, the summary is the same.
    let (runs, phases) = (store.all_runs().len(), sandbox.phases.lock().unwrap().len());
    let (again, _) = grade(CancellationToken::new()).run(&cohort).await.unwrap();
    assert_eq!(again.submissions, summary.submissions);
    assert_eq!(store.all_runs().len(), runs);
    assert_eq!(sandbox.phases.lock().unwrap().len(), phases);
    assert_eq!(drafter.calls.load(Ordering::SeqCst), 1);
}

/// Alice's project graded without a sandbox and drafted as `drafting` says.
async fn alice_drafted_by(drafting: Drafting) -> (Arc<MemoryStore>, GradeSummary) {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("alice"));
    let cohort = cohort(dir.path());
    let store = Arc::new(MemoryStore::default());
    let p = Arc::new(
        pipeline(&store, &dir.path().join("data"), CancellationToken::new())
            .with_drafter(Arc::new(FakeDrafter::new(drafting))),
    );
    let (summary, _) = p.run(&cohort).await.unwrap();
    (store, summary)
}

#[tokio::test]
async fn a_draft_that_fails_leaves_the_outcome_alone_and_says_why() {
    let (_, summary) = alice_drafted_by(Drafting::Fails("the model wrote garbage")).await;
    let s = &summary.submissions[0];
    assert_eq!((s.status, s.outcome), ("done", OutcomeKind::Ok));
    assert!(s.drafts.is_empty());
    let draft = &s.stages[&Stage::Draft];
    assert_eq!(
        (draft.status, draft.outcome),
        (RunStatus::Failed, Some(OutcomeKind::InternalError))
    );
    assert!(draft.error.as_deref().unwrap().contains("the model wrote garbage"));
}

/// Issue 14: a panic in async code outside `blocking` (here the drafter's) is caught at the
/// submission's edge: the submission ends `failed` with `internal_error` and the panic's
/// message, never left `running`, and the run goes on to its summary.
#[tokio::test]
async fn a_panic_outside_blocking_work_fails_the_submission_as_internal_error() {
    let (store, summary) = alice_drafted_by(Drafting::Panics("index 9 out of range")).await;
    let s = &summary.submissions[0];
    assert_eq!((s.status, s.outcome), ("failed", OutcomeKind::InternalError), "{s:#?}");
    let finished = store.events_of("submission_finished");
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert!(
        finished[0]["error"]
            .as_str()
            .unwrap()
            .contains("assay panicked: index 9 out of range"),
        "{finished:?}"
    );
}

/// Issue 14: a stored output that does not read is an error naming the stage and the
/// submission — before, the draft stage read it as "no history" and the reports showed none.
#[tokio::test]
async fn a_corrupt_stored_output_is_an_error_naming_the_stage_and_submission() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("alice"));
    let cohort = cohort(dir.path());
    let store = Arc::new(MemoryStore::default());
    let grade = || {
        Arc::new(
            pipeline(&store, &dir.path().join("data"), CancellationToken::new())
                .with_drafter(Arc::new(FakeDrafter::new(Drafting::Scores(3)))),
        )
    };
    let (summary, _) = grade().run(&cohort).await.unwrap();
    assert!(summary.submissions[0].stages.contains_key(&Stage::History));
    store.overwrite_output(Stage::History, json!({ "commit_count": "many" }));
    let e = grade().run(&cohort).await.unwrap_err();
    let id = store.all_runs()[0].submission_id;
    assert!(
        matches!(e, StoreError::Output { stage: Stage::History, submission, .. } if submission == id),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("stored history output of submission {id} does not read")),
        "{e}"
    );
}

/// Issue 14: the repro stage reads the exported tree; an export cleaned since the sandbox ran
/// is rebuilt from the mirror, never assessed as an empty tree and stored as done.
#[tokio::test]
async fn the_repro_stage_rebuilds_a_cleaned_export_before_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("alice"));
    let cohort = cohort(dir.path());
    let store = Arc::new(MemoryStore::default());
    let sandbox = Arc::new(ScriptedSandbox::passing(&["test_add"]));
    let grade = || {
        Arc::new(
            pipeline(&store, &dir.path().join("data"), CancellationToken::new())
                .with_sandbox(Arc::clone(&sandbox) as Arc<dyn Sandbox>),
        )
    };
    let (_, details) = grade().run(&cohort).await.unwrap();
    let first = details[0].repro.clone().expect("repro report");
    assert!(first.findings.iter().all(|f| f.kind != "no_readme"), "{first:?}");
    let export = details[0].fetch.as_ref().unwrap().export.dir.clone();
    std::fs::remove_dir_all(&export).unwrap();
    store.forget_runs(Stage::Repro);
    let (_, details) = grade().run(&cohort).await.unwrap();
    assert_eq!(details[0].repro.as_ref(), Some(&first));
    assert!(export.join("README.md").is_file());
}

/// Issue 14: a submission gives its job back before it drafts. With one job, the second
/// submission's sandbox runs while the first waits in its draft (here the draft waits until it
/// has: before, the first held the only job through its draft and the second never started).
#[tokio::test]
async fn waiting_for_the_model_holds_no_job_so_the_next_sandbox_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(&dir.path().join("alice"));
    project(&dir.path().join("bob"));
    cohort(dir.path());
    let text = "[assignment]\nname = \"fakes\"\nrubric = \"rubric.toml\"\n\n[[submission]]\ncandidate = \"alice\"\nrepo = \"alice\"\n\n[[submission]]\ncandidate = \"bob\"\nrepo = \"bob\"\n";
    std::fs::write(dir.path().join("cohort.toml"), text).unwrap();
    let two = Cohort::parse(&dir.path().join("cohort.toml"), text).unwrap();
    let store = Arc::new(MemoryStore::default());
    let sandbox = Arc::new(ScriptedSandbox::passing(&["test_add"]));
    let seen = Arc::clone(&sandbox);
    let drafter = FakeDrafter::new(Drafting::Scores(3)).with_gate(move || seen.prepared.load(Ordering::SeqCst) >= 2);
    let p = Arc::new(
        pipeline(&store, &dir.path().join("data"), CancellationToken::new())
            .with_sandbox(Arc::clone(&sandbox) as Arc<dyn Sandbox>)
            .with_drafter(Arc::new(drafter)),
    );
    let (summary, _) = p.run(&two).await.unwrap();
    assert_eq!(summary.submissions.len(), 2);
    for s in &summary.submissions {
        assert_eq!((s.status, s.outcome), ("done", OutcomeKind::Passed), "{s:#?}");
        assert!(
            !s.drafts.is_empty(),
            "{}: the draft waited for the other's sandbox in vain",
            s.candidate
        );
    }
}

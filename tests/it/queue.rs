//! The work queue in both stores: claims in order and only when ready, leases and tokens (a
//! stale claim changes nothing), retries that end `dead`, the rescuer, re-enqueueing; and on a
//! real PostgreSQL server, concurrent claims that never hand out one job twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use assay::outcome::OutcomeKind;
use assay::store::queue::StageCounts;
use assay::store::{JobEnd, JobStatus, NewSubmission, Queue, RunStatus, SqliteStore, Stage, StageResult, Store};
use assay::submission::SubmissionStatus;

use crate::postgres::PgServer;

const STAGES: [Stage; 3] = [Stage::Fetch, Stage::History, Stage::Draft];

fn subs(n: usize) -> Vec<NewSubmission> {
    (0..n)
        .map(|i| NewSubmission {
            candidate: format!("cand{i}"),
            anon_id: format!("a-{i}"),
            repo: format!("https://example.com/c{i}.git"),
            git_ref: None,
        })
        .collect()
}

fn done(output: serde_json::Value) -> StageResult {
    StageResult {
        status: RunStatus::Done,
        outcome: OutcomeKind::Ok,
        error: None,
        output: Some(output),
        evidence: Vec::new(),
        commit: None,
    }
}

async fn counts(q: &dyn Queue, cohort: i64) -> Vec<(Stage, StageCounts)> {
    q.queue_status(cohort).await.unwrap().stages
}

/// The queue's rules, on any store: what the SQLite and PostgreSQL tests both run.
async fn queue_semantics(store: Arc<dyn Store>) {
    let q = store.queue().expect("the store has a queue");
    let e = q
        .enqueue("c", &serde_json::json!({"name": "c"}), &subs(2), &STAGES, 2)
        .await
        .unwrap();
    assert_eq!((e.submissions.len(), e.queued), (2, 6));
    let (s0, s1) = (e.submissions[0].id, e.submissions[1].id);

    // A worker that runs only drafts finds nothing ready: every draft waits for its history.
    assert_eq!(q.claim("w-draft", &[Stage::Draft], 60_000, None).await.unwrap(), None);
    // Oldest ready first: the first submission's fetch, then the second's (the first's history
    // waits for its fetch).
    let f0 = q.claim("w1", &STAGES, 60_000, None).await.unwrap().unwrap();
    assert_eq!((f0.submission_id, f0.stage, f0.attempt), (s0, Stage::Fetch, 1));
    let f1 = q.claim("w2", &STAGES, 60_000, None).await.unwrap().unwrap();
    assert_eq!((f1.submission_id, f1.stage), (s1, Stage::Fetch));
    assert_ne!(f0.token, f1.token, "every claim has its own token");
    assert_eq!(q.claim("w3", &STAGES, 60_000, None).await.unwrap(), None);
    assert!(q.heartbeat(&f0, 60_000).await.unwrap());
    assert!(q.token_current(f0.job_id, &f0.token).await.unwrap());

    // The fetch's stage run and the job's end commit together.
    let run = q
        .start_leased_run(&f0, Stage::Fetch, "k0", "w1")
        .await
        .unwrap()
        .unwrap();
    assert!(q
        .finish_job(
            &f0,
            &JobEnd::Done,
            Some((&run, &done(serde_json::json!({"commit": "abc"}))))
        )
        .await
        .unwrap());
    let stored = store.final_run(s0, Stage::Fetch, "k0").await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Done);
    // A claim that ended is no longer current: its heartbeat and a second completion change
    // nothing, and it cannot start a run.
    assert!(!q.heartbeat(&f0, 60_000).await.unwrap());
    assert!(!q.finish_job(&f0, &JobEnd::Done, None).await.unwrap());
    assert_eq!(q.start_leased_run(&f0, Stage::History, "k1", "w1").await.unwrap(), None);

    // The first submission's history is ready now.
    let h0 = q.claim("w1", &[Stage::History], 60_000, None).await.unwrap().unwrap();
    assert_eq!((h0.submission_id, h0.stage), (s0, Stage::History));

    // The rescuer: the second fetch's lease expires (its worker stopped), the job is queued
    // again with its stage run interrupted; the stale worker's completion writes nothing.
    let stale_run = q
        .start_leased_run(&f1, Stage::Fetch, "k1", "w2")
        .await
        .unwrap()
        .unwrap();
    // A grade run's reaper leaves a queue job's runs to the rescuer: their worker may be alive.
    assert_eq!(store.reap_running().await.unwrap(), 0);
    assert_eq!(store.runs(s1).await.unwrap()[0].status, RunStatus::Running);
    assert!(q.heartbeat(&f1, -1).await.unwrap(), "a lease that ended a moment ago");
    let rescued = q.rescue(0).await.unwrap();
    assert_eq!(rescued.len(), 1, "{rescued:?}");
    assert_eq!((rescued[0].job_id, rescued[0].status), (f1.job_id, JobStatus::Queued));
    let runs = store.runs(s1).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert!(
        runs[0].error.as_deref().unwrap().contains("lease expired: worker w2"),
        "{runs:?}"
    );
    assert!(!q
        .finish_job(&f1, &JobEnd::Done, Some((&stale_run, &done(serde_json::json!({})))))
        .await
        .unwrap());
    assert_eq!(
        store.final_run(s1, Stage::Fetch, "k1").await.unwrap(),
        None,
        "the stale run wrote nothing"
    );
    assert_eq!(store.runs(s1).await.unwrap()[0].status, RunStatus::Interrupted);

    // Attempt 2 of 2 asks for a retry: its attempts are spent, so it is dead, with its error;
    // the submission's later jobs fail with it, and the submission is assay's failure.
    let f1b = q.claim("w3", &STAGES, 60_000, None).await.unwrap().unwrap();
    assert_eq!((f1b.job_id, f1b.attempt), (f1.job_id, 2));
    assert!(q
        .finish_job(
            &f1b,
            &JobEnd::Retry {
                error: "docker engine unreachable".into(),
                backoff_ms: 0
            },
            None
        )
        .await
        .unwrap());
    let status = q.queue_status(e.cohort_id).await.unwrap();
    let dead: Vec<_> = status.ended.iter().filter(|j| j.status == JobStatus::Dead).collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("docker engine unreachable"));
    assert!(status
        .ended
        .iter()
        .any(|j| j.status == JobStatus::Failed && j.stage == Stage::History && j.candidate == "cand1"));
    let sub1 = &store.submissions(e.cohort_id).await.unwrap()[1];
    assert_eq!(
        (sub1.status, sub1.outcome),
        (SubmissionStatus::Failed, Some(OutcomeKind::InfraError))
    );

    // A retry with attempts left waits out its backoff.
    assert!(q
        .finish_job(
            &h0,
            &JobEnd::Retry {
                error: "busy".into(),
                backoff_ms: 3_600_000
            },
            None
        )
        .await
        .unwrap());
    assert_eq!(q.claim("w1", &STAGES, 60_000, None).await.unwrap(), None, "backing off");

    let by_stage = counts(q, e.cohort_id).await;
    let fetch = &by_stage.iter().find(|(s, _)| *s == Stage::Fetch).unwrap().1;
    assert_eq!((fetch.done, fetch.dead), (1, 1));
    assert_eq!(status.submissions, 2);

    // Enqueued again (drafts off this time): every job not running is queued again with its
    // attempts reset; the draft jobs are gone.
    let again = q
        .enqueue("c", &serde_json::json!({"name": "c"}), &subs(2), &STAGES[..2], 2)
        .await
        .unwrap();
    assert_eq!(again.queued, 4);
    let by_stage = counts(q, again.cohort_id).await;
    assert_eq!(
        by_stage.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![Stage::Fetch, Stage::History]
    );
    assert!(by_stage.iter().all(|(_, c)| c.queued == 2), "{by_stage:?}");
    let f = q.claim("w1", &STAGES, 60_000, None).await.unwrap().unwrap();
    assert_eq!((f.stage, f.attempt), (Stage::Fetch, 1));

    // A final failure fails the submission's later jobs, not the submission's status (the
    // stage run says why; the pipeline records the outcome).
    assert!(q
        .finish_job(&f, &JobEnd::Failed("unreachable".into()), None)
        .await
        .unwrap());
    let status = q.queue_status(again.cohort_id).await.unwrap();
    let history = status
        .ended
        .iter()
        .find(|j| j.stage == Stage::History && j.candidate == "cand0")
        .unwrap();
    assert_eq!(history.status, JobStatus::Failed);
    assert!(history
        .last_error
        .as_deref()
        .unwrap()
        .contains("the fetch job failed: unreachable"));

    q.worker_seen("w1", "host-a", &STAGES).await.unwrap();
    let workers = q.workers(60_000).await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!((workers[0].host.as_str(), workers[0].stages.len()), ("host-a", 3));

    // A second cohort: a claim (and the pending count) can be kept to one cohort.
    let other = q
        .enqueue("d", &serde_json::json!({"name": "d"}), &subs(1), &[Stage::Fetch], 2)
        .await
        .unwrap();
    assert_eq!(q.pending(Some(other.cohort_id)).await.unwrap(), 1);
    let all = q.pending(None).await.unwrap();
    assert_eq!(all, 1 + q.pending(Some(again.cohort_id)).await.unwrap());
    let mine = q
        .claim("w4:1:ab", &STAGES, 60_000, Some(other.cohort_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mine.cohort_id, other.cohort_id);
    assert_eq!(
        q.claim("w5", &STAGES, 60_000, Some(other.cohort_id)).await.unwrap(),
        None
    );
    let (cohort, sub) = q.job_records(&mine).await.unwrap().unwrap();
    assert_eq!(
        (cohort.name.as_str(), sub.id, sub.candidate.as_str()),
        ("d", mine.submission_id, "cand0")
    );

    // Given back unfinished (its worker stopping): queued again at once, the attempt not
    // counted, the stale token refused.
    assert!(q
        .finish_job(&mine, &JobEnd::Release("worker stopping".into()), None)
        .await
        .unwrap());
    assert!(!q.token_current(mine.job_id, &mine.token).await.unwrap());
    let again_mine = q
        .claim("w4:1:ab", &STAGES, 60_000, Some(other.cohort_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again_mine.job_id, again_mine.attempt), (mine.job_id, 1));

    // A holder known dead: its leases end now, and the next rescue queues its jobs again.
    assert!(q.holders().await.unwrap().contains(&"w4:1:ab".to_string()));
    assert_eq!(q.expire_leases("w4:1:ab").await.unwrap(), 1);
    assert_eq!(q.expire_leases("nobody").await.unwrap(), 0);
    let rescued = q.rescue(0).await.unwrap();
    assert_eq!(rescued.iter().map(|r| r.job_id).collect::<Vec<_>>(), vec![mine.job_id]);
    assert!(!q.holders().await.unwrap().contains(&"w4:1:ab".to_string()));
}

#[tokio::test]
async fn the_queue_hands_out_ready_jobs_under_leases_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("q.db").display()))
        .await
        .unwrap();
    queue_semantics(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "full lane: a real PostgreSQL server"]
async fn the_queue_hands_out_ready_jobs_under_leases_in_postgresql() {
    let pg = PgServer::start();
    let store = assay::store::open(&pg.database("queue")).await.unwrap();
    queue_semantics(store).await;
}

/// Eight workers claiming at once from separate connections: every job is handed out exactly
/// once (`FOR UPDATE SKIP LOCKED`), and none is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "full lane: a real PostgreSQL server"]
async fn concurrent_claims_in_postgresql_never_share_a_job() {
    let pg = PgServer::start();
    let url = pg.database("claims");
    let store = assay::store::open(&url).await.unwrap();
    let e = store
        .queue()
        .unwrap()
        .enqueue("c", &serde_json::json!({}), &subs(50), &[Stage::Fetch], 3)
        .await
        .unwrap();
    assert_eq!(e.queued, 50);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let url = url.clone();
        tasks.spawn(async move {
            let store = assay::store::open(&url).await.unwrap();
            let q = store.queue().unwrap();
            let mut mine = Vec::new();
            while let Some(lease) = q.claim(&format!("w{w}"), &[Stage::Fetch], 60_000, None).await.unwrap() {
                assert!(q.finish_job(&lease, &JobEnd::Done, None).await.unwrap());
                mine.push(lease.job_id);
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (50, 50));
    let s = store.queue().unwrap().queue_status(e.cohort_id).await.unwrap();
    assert_eq!(s.stages[0].1.done, 50);
}

/// Stage runs stored for the cohort "demo" in the database at `url`.
fn stage_runs(url: &str) -> usize {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = assay::store::open(url).await.unwrap();
        let cohort = store.cohort_id("demo").await.unwrap().unwrap();
        let mut n = 0;
        for s in store.submissions(cohort).await.unwrap() {
            n += store.runs(s.id).await.unwrap().len();
        }
        n
    })
}

/// `assay enqueue` records the jobs and returns; `assay worker --until-idle`, another process,
/// works them all and stops; `assay status` shows the counts before and after; and `assay
/// grade` afterwards finds every stage done (it runs none) and reports what a grade run alone
/// reports.
#[test]
fn a_worker_process_works_an_enqueued_cohort_as_grade_would() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (crate::helpers::iterative(), crate::helpers::single_dump());
    let cohort = crate::helpers::cohort_of(work.path(), "", &[("alice-smith", a.path()), ("bob-jones", b.path())]);
    let assay = crate::helpers::Assay::new();
    let cohort_arg = cohort.to_str().unwrap();
    let queued = crate::helpers::json_ok(&assay.run(&["enqueue", cohort_arg, "--no-sandbox", "--no-drafts", "--json"]));
    assert_eq!(
        (queued["submissions"].as_u64(), queued["queued"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(queued["stages"], serde_json::json!(["fetch", "history"]));
    let before = crate::helpers::json_ok(&assay.run(&["status", "demo", "--json"]));
    assert_eq!(before["stages"]["fetch"]["queued"], 2, "{before}");
    assert_eq!(before["stages"]["history"]["queued"], 2, "{before}");

    let worked = assay.run(&["worker", "--until-idle", "--stages", "fetch,history"]);
    assert!(worked.status.success(), "{}", String::from_utf8_lossy(&worked.stderr));
    let err = String::from_utf8_lossy(&worked.stderr);
    assert!(err.contains("4 jobs claimed, 0 lost"), "{err}");
    let after = crate::helpers::json_ok(&assay.run(&["status", cohort_arg, "--json"]));
    for stage in ["fetch", "history"] {
        assert_eq!(after["stages"][stage]["done"], 2, "{after}");
        assert_eq!(after["stages"][stage]["queued"], 0, "{after}");
    }
    assert_eq!(after["workers"].as_array().unwrap().len(), 1, "{after}");
    let text = String::from_utf8_lossy(&assay.run(&["status", "demo"]).stdout).to_string();
    assert!(
        text.contains("history        0       0       2       0       0"),
        "{text}"
    );

    // The worker ran fetch, history and the screen for both: grade finds them done.
    let url = format!("sqlite://{}", assay.db().display());
    let runs = stage_runs(&url);
    assert_eq!(runs, 6, "fetch, history and screen, for two submissions");
    let graded = crate::helpers::json_ok(&assay.run(&["grade", "--no-drafts", "--no-sandbox", cohort_arg, "--json"]));
    assert_eq!(stage_runs(&url), runs, "grade ran no stage again");
    let alone = crate::helpers::Assay::new();
    let fresh = crate::helpers::json_ok(&alone.run(&["grade", "--no-drafts", "--no-sandbox", cohort_arg, "--json"]));
    assert_eq!(
        crate::postgres::comparable(&graded),
        crate::postgres::comparable(&fresh)
    );
    assert!(graded["submissions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "done"));
}

/// Two worker processes on one PostgreSQL queue: every job runs once, in one of them, and the
/// cohort ends done.
#[test]
#[ignore = "full lane: a real PostgreSQL server"]
fn two_worker_processes_share_a_postgresql_queue() {
    let pg = PgServer::start();
    let url = pg.database("workers");
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (crate::helpers::iterative(), crate::helpers::single_dump());
    let subs: Vec<(String, &std::path::Path)> = (0..6)
        .map(|i| (format!("cand-{i}"), if i % 2 == 0 { a.path() } else { b.path() }))
        .collect();
    let named: Vec<(&str, &std::path::Path)> = subs.iter().map(|(c, p)| (c.as_str(), *p)).collect();
    let cohort = crate::helpers::cohort_of(work.path(), "", &named);
    let assay = crate::helpers::Assay::new();
    let queued = crate::helpers::json_ok(&assay.run(&[
        "enqueue",
        cohort.to_str().unwrap(),
        "--no-sandbox",
        "--no-drafts",
        "--db",
        &url,
        "--json",
    ]));
    assert_eq!(queued["queued"], 12);
    let spawn = || {
        assay
            .cmd()
            .args(["worker", "--until-idle", "--stages", "fetch,history", "--db", &url])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (w1, w2) = (spawn(), spawn());
    let mut claimed = 0;
    for w in [w1, w2] {
        let out = w.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        let n: u64 = err
            .split(" jobs claimed")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!(err.contains(" 0 lost"), "{err}");
        claimed += n;
    }
    assert_eq!(claimed, 12, "every job claimed once");
    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    for stage in ["fetch", "history"] {
        assert_eq!(status["stages"][stage]["done"], 6, "{status}");
    }
    assert_eq!(status["workers"].as_array().unwrap().len(), 2, "{status}");
    assert_eq!(
        stage_runs(&url),
        18,
        "fetch, history and screen once each for six submissions"
    );
}

/// Containers labelled with `claim` (any state).
fn claim_containers(claim: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=assay.claim={claim}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Fault 1: a worker SIGKILLed while its container runs. Its lease expires, another worker's
/// rescuer returns the job to the queue and removes what the dead claim left running — though
/// that worker ran under another host name, so its containers look alive to the per-host
/// reaping —, the job runs again as attempt 2, and the stage has exactly one done run.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_worker_killed_mid_container_loses_its_job_and_its_container_to_another() {
    let pg = PgServer::start();
    let url = pg.database("fault1");
    let work = tempfile::tempdir().unwrap();
    let mut repo = crate::helpers::Scripted::new();
    repo.put(&[
        (
            "README.md",
            Some("# Slow\n\nRun the tests: `pip3 install pytest`, then `python3 -m pytest`.\n"),
        ),
        ("tests/__init__.py", Some("")),
        (
            "tests/test_slow.py",
            Some("import time\n\ndef test_slow():\n    time.sleep(20)\n"),
        ),
    ]);
    repo.commit("Add a slow test", 1_700_000_000);
    let cohort = crate::helpers::cohort_of(work.path(), "", &[("slow", repo.path())]);
    let assay = crate::helpers::Assay::new();
    let mut enqueue = assay.cmd();
    enqueue.env("ASSAY_RETRIES", "2").args([
        "enqueue",
        cohort.to_str().unwrap(),
        "--no-drafts",
        "--db",
        &url,
        "--json",
    ]);
    let queued = crate::helpers::json_ok(&enqueue.output().unwrap());
    assert_eq!(queued["queued"], 4);
    let stages = [
        "worker",
        "--stages",
        "fetch,history,sandbox,repro",
        "--lease",
        "6",
        "--db",
        &url,
    ];

    // Worker A, under another host name (its own UTS namespace).
    let mut a = std::process::Command::new("unshare");
    a.args([
        "--uts",
        "sh",
        "-c",
        "hostname assay-other-host && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_assay"),
    ])
    .args(stages)
    .env("ASSAY_DATA_DIR", assay.data.path())
    .env("ASSAY_RETRIES", "0")
    .current_dir(assay.data.path());
    let mut a = crate::helpers::Running::spawn(&mut a);
    let started = std::time::Instant::now();
    let claim = loop {
        let out = std::process::Command::new("docker")
            .args([
                "ps",
                "--filter",
                "label=assay.claim",
                "--format",
                "{{.Label \"assay.claim\"}}",
            ])
            .output()
            .unwrap();
        if let Some(c) = String::from_utf8_lossy(&out.stdout).split_whitespace().next() {
            break c.to_string();
        }
        assert!(a.running(), "worker A ended before its container ran");
        assert!(started.elapsed().as_secs() < 180, "no claimed container after 180 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    a.signal("KILL");
    let _ = a.output_within(10, "worker A did not die");
    assert!(
        !claim_containers(&claim).is_empty(),
        "the dead worker's container runs on"
    );

    // Worker B takes over once the lease expires.
    let mut b = assay.cmd();
    b.args(stages).arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut b).output_within(300, "worker B did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(" 0 lost") && err.contains("1 expired leases rescued"),
        "{err}"
    );
    assert!(
        claim_containers(&claim).is_empty(),
        "what the lost claim left is removed"
    );

    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    for stage in ["fetch", "history", "sandbox", "repro"] {
        assert_eq!(status["stages"][stage]["done"], 1, "{status}");
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = assay::store::open(&url).await.unwrap();
        let cohort = store.cohort_id("demo").await.unwrap().unwrap();
        let sub = &store.submissions(cohort).await.unwrap()[0];
        let sandbox: Vec<_> = store
            .runs(sub.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.stage == Stage::Sandbox)
            .collect();
        let done = sandbox.iter().filter(|r| r.status == RunStatus::Done).count();
        assert_eq!(done, 1, "{sandbox:?}");
        assert!(
            sandbox.iter().any(|r| r.status == RunStatus::Interrupted
                && r.error.as_deref().is_some_and(|e| e.contains("lease expired"))),
            "{sandbox:?}"
        );
        assert_eq!(sub.status, SubmissionStatus::Done);
    });
}

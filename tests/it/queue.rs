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
    assert!(!q.claim_stale(f1.job_id, &f1.token).await.unwrap(), "current");
    assert!(q.heartbeat(&f1, -1).await.unwrap(), "a lease that ended a moment ago");
    let rescued = q.rescue(0).await.unwrap();
    // Its containers are orphans now; a token this queue never handed out (another database's
    // claim on the same engine) is not this queue's to judge.
    assert!(q.claim_stale(f1.job_id, &f1.token).await.unwrap());
    assert!(!q
        .claim_stale(f1.job_id, "0123456789abcdef0123456789abcdef")
        .await
        .unwrap());
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
    assert_eq!(q.pending(Some(other.cohort_id), &STAGES).await.unwrap(), 1);
    assert_eq!(q.pending(Some(other.cohort_id), &[Stage::Draft]).await.unwrap(), 0);
    let all = q.pending(None, &STAGES).await.unwrap();
    assert_eq!(all, 1 + q.pending(Some(again.cohort_id), &STAGES).await.unwrap());
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

/// A cohort of one submission whose test sleeps 20 s: its sandbox job holds a container long
/// enough to stop or kill its worker midway.
fn slow_cohort(work: &std::path::Path) -> (crate::helpers::Scripted, std::path::PathBuf) {
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
    let cohort = crate::helpers::cohort_of(work, "", &[("slow", repo.path())]);
    (repo, cohort)
}

/// A PostgreSQL server with the slow cohort enqueued (no drafts) in database `db`, each job
/// allowed `retries + 1` attempts: what the fault tests start from.
struct SlowQueue {
    _pg: PgServer,
    url: String,
    work: tempfile::TempDir,
    _repo: crate::helpers::Scripted,
    assay: crate::helpers::Assay,
}

fn slow_queue(db: &str, retries: u32) -> SlowQueue {
    let pg = PgServer::start();
    let url = pg.database(db);
    let work = tempfile::tempdir().unwrap();
    let (repo, cohort) = slow_cohort(work.path());
    let assay = crate::helpers::Assay::new();
    enqueue_no_drafts(&assay, &cohort, &url, retries);
    SlowQueue {
        _pg: pg,
        url,
        work,
        _repo: repo,
        assay,
    }
}

/// Enqueues `cohort` without drafts on `url`, each job allowed `retries + 1` attempts.
fn enqueue_no_drafts(assay: &crate::helpers::Assay, cohort: &std::path::Path, url: &str, retries: u32) {
    let mut enqueue = assay.cmd();
    enqueue.env("ASSAY_RETRIES", retries.to_string()).args([
        "enqueue",
        cohort.to_str().unwrap(),
        "--no-drafts",
        "--db",
        url,
        "--json",
    ]);
    let queued = crate::helpers::json_ok(&enqueue.output().unwrap());
    assert_eq!(queued["queued"], 4, "{queued}");
}

/// `assay worker` for the stages before the drafts, with a lease of `lease` seconds.
fn sandbox_worker(assay: &crate::helpers::Assay, url: &str, lease: u64) -> std::process::Command {
    let mut c = assay.cmd();
    c.args([
        "worker",
        "--stages",
        "fetch,history,sandbox,repro",
        "--lease",
        &lease.to_string(),
        "--db",
        url,
    ]);
    c
}

/// The claim (`JOB:TOKEN`) of the running test container `worker` (on host `host`) started
/// under a claim, once one runs; the test fails if the worker ends first or none runs within
/// 180 s. (Tests run side by side: containers are told apart by their owner, `host:pid`.)
fn claimed_container(worker: &mut crate::helpers::Running, host: &str) -> String {
    let started = std::time::Instant::now();
    let owner = format!("label=assay.owner={host}:{}", worker.id());
    loop {
        let out = std::process::Command::new("docker")
            .args([
                "ps",
                "--filter",
                "label=assay.claim",
                "--filter",
                &owner,
                "--filter",
                "label=assay.role=test",
                "--format",
                "{{.Label \"assay.claim\"}}",
            ])
            .output()
            .unwrap();
        if let Some(c) = String::from_utf8_lossy(&out.stdout).split_whitespace().next() {
            return c.to_string();
        }
        assert!(worker.running(), "the worker ended before its container ran");
        assert!(started.elapsed().as_secs() < 180, "no claimed container after 180 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The stage runs of the cohort's only submission, and the submission.
fn only_submission(url: &str) -> (assay::submission::SubmissionRecord, Vec<assay::store::StageRun>) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = assay::store::open(url).await.unwrap();
        let cohort = store.cohort_id("demo").await.unwrap().unwrap();
        let sub = store.submissions(cohort).await.unwrap().remove(0);
        let runs = store.runs(sub.id).await.unwrap();
        (sub, runs)
    })
}

fn of_stage(runs: &[assay::store::StageRun], stage: Stage, status: RunStatus) -> usize {
    runs.iter().filter(|r| r.stage == stage && r.status == status).count()
}

/// The worker's closing line's counts: (claimed, lost, rescued, cut short by the database).
fn worker_counts(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" jobs claimed, "))
        .unwrap_or_else(|| panic!("no closing line in {stderr}"));
    let n = |after: &str| -> u64 {
        line.split(after)
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (n(" jobs claimed"), n(" lost to"), n(" expired leases"), n(" cut short"))
}

/// Fault 1: a worker SIGKILLed while its container runs. Its lease expires, another worker's
/// rescuer returns the job to the queue and removes what the dead claim left running — though
/// that worker ran under another host name, so its containers look alive to the per-host
/// reaping —, the job runs again as attempt 2, and the stage has exactly one done run.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_worker_killed_mid_container_loses_its_job_and_its_container_to_another() {
    let SlowQueue {
        _pg,
        url,
        work: _work,
        _repo,
        assay,
    } = slow_queue("fault1", 2);

    // Worker A, under another host name (its own UTS namespace): its pid means nothing here.
    let mut a = std::process::Command::new("unshare");
    a.args([
        "--uts",
        "sh",
        "-c",
        "hostname assay-other-host && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_assay"),
    ])
    .args(sandbox_worker(&assay, &url, 6).get_args())
    .env("ASSAY_DATA_DIR", assay.data.path())
    .env("ASSAY_RETRIES", "0")
    .current_dir(assay.data.path());
    let mut a = crate::helpers::Running::spawn(&mut a);
    let claim = claimed_container(&mut a, "assay-other-host");
    a.signal("KILL");
    let _ = a.output_within(10, "worker A did not die");
    assert!(
        !claim_containers(&claim).is_empty(),
        "the dead worker's container runs on"
    );

    // Worker B takes over once the lease expires.
    let mut b = sandbox_worker(&assay, &url, 6);
    b.arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut b).output_within(300, "worker B did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(
        worker_counts(&err),
        (2, 0, 1, 0),
        "the sandbox job again, the repro job: {err}"
    );
    assert!(
        claim_containers(&claim).is_empty(),
        "what the lost claim left is removed"
    );

    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    for stage in ["fetch", "history", "sandbox", "repro"] {
        assert_eq!(status["stages"][stage]["done"], 1, "{status}");
    }
    let (sub, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 1, "{runs:?}");
    assert!(
        runs.iter().any(|r| r.stage == Stage::Sandbox
            && r.status == RunStatus::Interrupted
            && r.error.as_deref().is_some_and(|e| e.contains("lease expired"))),
        "{runs:?}"
    );
    assert_eq!(sub.status, SubmissionStatus::Done);
}

/// Fault 2: a worker stopped (SIGSTOP) past its lease while its container runs. Another worker
/// takes the job over (attempt 2, the stopped worker's container removed); woken (SIGCONT)
/// mid-way through the new attempt, the stale worker finds its lease gone at its next
/// heartbeat or write: it changes nothing — its interrupted run stays as the rescuer left it,
/// one done run — and counts the job lost.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_stopped_worker_woken_after_its_lease_changes_nothing() {
    let SlowQueue {
        _pg,
        url,
        work,
        _repo,
        assay,
    } = slow_queue("fault2", 2);

    let mut a = sandbox_worker(&assay, &url, 6);
    a.arg("--until-idle");
    let mut a = crate::helpers::Running::spawn_logged(&mut a, &work.path().join("a.log"));
    let first = claimed_container(&mut a, &assay::host::hostname());
    a.signal("STOP");

    let mut b = sandbox_worker(&assay, &url, 6);
    b.arg("--until-idle");
    let mut b = crate::helpers::Running::spawn_logged(&mut b, &work.path().join("b.log"));
    // B's rescuer takes the job back once the lease ran out, removes A's container and runs its
    // own: A wakes while B's attempt runs.
    let second = claimed_container(&mut b, &assay::host::hostname());
    assert!(
        claim_containers(&first).is_empty(),
        "the stale claim's container is removed"
    );
    a.signal("CONT");

    let out_b = b.output_within(300, "worker B did not finish");
    let out_a = a.output_within(120, "worker A did not finish after B");
    let (err_a, err_b) = (
        std::fs::read_to_string(work.path().join("a.log")).unwrap(),
        std::fs::read_to_string(work.path().join("b.log")).unwrap(),
    );
    assert!(
        out_b.status.success() && out_a.status.success(),
        "A:\n{err_a}\nB:\n{err_b}"
    );
    let (claimed_b, lost_b, rescued_b, _) = worker_counts(&err_b);
    assert_eq!((lost_b, rescued_b), (0, 1), "{err_b}");
    let (claimed_a, lost_a, _, _) = worker_counts(&err_a);
    assert_eq!(lost_a, 1, "{err_a}");
    assert_eq!(
        claimed_a + claimed_b,
        5,
        "four jobs, the sandbox's twice:\nA:\n{err_a}\nB:\n{err_b}"
    );
    assert_ne!(first, second);

    let (sub, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 1, "{runs:?}");
    let sandbox: Vec<_> = runs.iter().filter(|r| r.stage == Stage::Sandbox).collect();
    assert_eq!(sandbox.len(), 2, "{sandbox:?}");
    let stale = sandbox.iter().find(|r| r.status != RunStatus::Done).unwrap();
    assert_eq!(stale.status, RunStatus::Interrupted, "{stale:?}");
    assert!(
        stale.error.as_deref().is_some_and(|e| e.contains("lease expired")),
        "the rescuer's word stands: {stale:?}"
    );
    assert_eq!(sub.status, SubmissionStatus::Done);
    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    assert_eq!(status["stages"]["repro"]["done"], 1, "{status}");
}

/// Fault 4: a poison job — its worker dies every time it runs it (killed here while its
/// container runs). With two attempts allowed, the second death makes it `dead`: the next
/// worker (on the same host: the dead workers' leases end at once) rescues it as dead, its
/// later job fails, the submission is assay's failure (`infra_error`), and every container the
/// dead claims left is removed.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_job_that_kills_its_worker_every_time_ends_dead_after_its_attempts() {
    let SlowQueue {
        _pg,
        url,
        work,
        _repo,
        assay,
    } = slow_queue("fault4", 1);

    let mut claims: Vec<String> = Vec::new();
    for attempt in 1..=2 {
        // A lease far longer than the test: only the dead process's pid ends it early.
        let mut w = sandbox_worker(&assay, &url, 600);
        let mut w = crate::helpers::Running::spawn_logged(&mut w, &work.path().join(format!("w{attempt}.log")));
        let claim = claimed_container(&mut w, &assay::host::hostname());
        w.signal("KILL");
        let _ = w.output_within(10, "the worker did not die");
        claims.push(claim);
    }
    // A container of another database's queue on the same engine (its job id is one this
    // queue has too; its token this queue never handed out): not this queue's to remove.
    let foreign = "1:0123456789abcdef0123456789abcdef";
    let started = std::process::Command::new("docker")
        .args(["run", "-d", "--rm", "--label", &format!("assay.claim={foreign}")])
        .args(["assay-base:bookworm", "sleep", "300"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let mut c = sandbox_worker(&assay, &url, 600);
    c.arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut c).output_within(60, "the last worker did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let foreign_left = claim_containers(foreign);
    for id in &foreign_left {
        let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
    }
    assert!(out.status.success(), "{err}");
    assert_eq!(worker_counts(&err), (0, 0, 1, 0), "{err}");
    for claim in &claims {
        assert!(claim_containers(claim).is_empty(), "{claim} left behind");
    }
    assert_eq!(foreign_left.len(), 1, "another queue's container was removed");

    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    assert_eq!(status["stages"]["sandbox"]["dead"], 1, "{status}");
    assert_eq!(status["stages"]["repro"]["failed"], 1, "{status}");
    let dead = status["ended"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "dead")
        .unwrap();
    assert_eq!(dead["attempts"], 2, "{status}");
    assert!(dead["error"].as_str().unwrap().contains("lease expired"), "{status}");
    let (sub, runs) = only_submission(&url);
    assert_eq!(
        (sub.status, sub.outcome),
        (SubmissionStatus::Failed, Some(OutcomeKind::InfraError))
    );
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Interrupted), 2, "{runs:?}");
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 0, "{runs:?}");
}

/// Fault 5: a worker killed between "container exited" and "result committed" (stopped while
/// its container runs, killed once the container has exited): nothing of that attempt is
/// committed; the next worker on the host takes the job at once (the dead worker's pid is gone;
/// its lease would have lasted ten minutes), removes the exited container and commits the
/// re-run once.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_worker_killed_after_its_container_exited_is_rerun_and_committed_once() {
    let SlowQueue {
        _pg,
        url,
        work,
        _repo,
        assay,
    } = slow_queue("fault5", 2);

    let mut a = sandbox_worker(&assay, &url, 600);
    let mut a = crate::helpers::Running::spawn_logged(&mut a, &work.path().join("a.log"));
    let claim = claimed_container(&mut a, &assay::host::hostname());
    a.signal("STOP");
    let ids = claim_containers(&claim);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let waited = std::process::Command::new("docker")
        .args(["wait", &ids[0]])
        .output()
        .unwrap();
    assert!(waited.status.success(), "docker wait");
    let (_, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 0, "{runs:?}");
    a.signal("KILL");
    let _ = a.output_within(10, "worker A did not die");

    let mut b = sandbox_worker(&assay, &url, 600);
    b.arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut b).output_within(240, "worker B did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(worker_counts(&err), (2, 0, 1, 0), "the sandbox and repro jobs: {err}");
    assert!(claim_containers(&claim).is_empty(), "the exited container is removed");
    let (sub, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 1, "{runs:?}");
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Interrupted), 1, "{runs:?}");
    assert_eq!(of_stage(&runs, Stage::Repro, RunStatus::Done), 1, "{runs:?}");
    assert_eq!(sub.status, SubmissionStatus::Done);
}

/// A worker stopped with Ctrl-C while its test container runs removes the container and gives
/// the job back unfinished, its attempt not counted: with one attempt allowed, the next worker
/// still runs it (a stopped worker used to fail it for good).
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine and the runner images"]
fn a_worker_stopped_with_ctrl_c_gives_its_job_back_uncounted() {
    let SlowQueue {
        _pg,
        url,
        work,
        _repo,
        assay,
    } = slow_queue("release", 0);

    let mut a = sandbox_worker(&assay, &url, 60);
    let mut a = crate::helpers::Running::spawn_logged(&mut a, &work.path().join("a.log"));
    let claim = claimed_container(&mut a, &assay::host::hostname());
    a.signal("INT");
    let _ = a.output_within(60, "worker A did not stop on Ctrl-C");
    let err_a = std::fs::read_to_string(work.path().join("a.log")).unwrap();
    assert!(claim_containers(&claim).is_empty(), "A left its container: {err_a}");
    let status = crate::helpers::json_ok(&assay.run(&["status", "demo", "--db", &url, "--json"]));
    assert_eq!(status["stages"]["sandbox"]["queued"], 1, "{status}\n{err_a}");

    let mut b = sandbox_worker(&assay, &url, 60);
    b.arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut b).output_within(240, "worker B did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(worker_counts(&err), (2, 0, 0, 0), "the sandbox and repro jobs: {err}");
    let (sub, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Done), 1, "{runs:?}");
    assert_eq!(of_stage(&runs, Stage::Sandbox, RunStatus::Interrupted), 1, "{runs:?}");
    assert_eq!(sub.status, SubmissionStatus::Done);
}

/// A history-only cohort of `n` submissions (two repositories, alternating): 2n quick jobs.
fn quick_cohort(work: &std::path::Path, n: usize) -> (Vec<crate::helpers::Scripted>, std::path::PathBuf) {
    let repos = vec![crate::helpers::iterative(), crate::helpers::single_dump()];
    let names: Vec<String> = (0..n).map(|i| format!("cand-{i:03}")).collect();
    let subs: Vec<(&str, &std::path::Path)> = names
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), repos[i % 2].path()))
        .collect();
    let cohort = crate::helpers::cohort_of(work, "", &subs);
    (repos, cohort)
}

/// Per job status counts, attempts beyond the first, and done stage runs per submission and
/// stage, read from the database.
struct QueueFacts {
    done_jobs: i64,
    other_jobs: i64,
    reruns: i64,
    /// (submission, stage) pairs with more than one done run.
    duplicated: i64,
    done_runs: i64,
}

fn queue_facts(url: &str) -> QueueFacts {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let n = |q: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, i64>(q).fetch_one(&pool).await.unwrap() }
        };
        QueueFacts {
            done_jobs: n("SELECT COUNT(*) FROM jobs WHERE status = 'done'").await,
            other_jobs: n("SELECT COUNT(*) FROM jobs WHERE status <> 'done'").await,
            reruns: n("SELECT COALESCE(SUM(attempts - 1), 0)::BIGINT FROM jobs").await,
            duplicated: n(
                "SELECT COUNT(*) FROM (SELECT submission_id, stage FROM stage_runs WHERE status = 'done'
                            GROUP BY submission_id, stage HAVING COUNT(*) > 1) d",
            )
            .await,
            done_runs: n("SELECT COUNT(*) FROM stage_runs WHERE status = 'done'").await,
        }
    })
}

/// Fault 3: PostgreSQL restarted (`pg_ctl restart -m fast`) while two workers run a cohort.
/// Every connection is cut; the workers wait for the server with backoff and go on, the jobs
/// cut short are taken back once their leases end, and the cohort ends with every job done
/// once: nothing stuck, nothing duplicated.
#[test]
#[ignore = "full lane: a real PostgreSQL server"]
fn workers_ride_out_a_postgresql_restart() {
    let pg = PgServer::start();
    let url = pg.database("fault3");
    let work = tempfile::tempdir().unwrap();
    let (_repos, cohort) = quick_cohort(work.path(), 40);
    let assay = crate::helpers::Assay::new();
    let mut enqueue = assay.cmd();
    enqueue.env("ASSAY_RETRIES", "3").args([
        "enqueue",
        cohort.to_str().unwrap(),
        "--no-sandbox",
        "--no-drafts",
        "--db",
        &url,
    ]);
    assert!(enqueue.status().unwrap().success());
    let spawn = |i: usize| {
        let mut w = assay.cmd();
        w.args([
            "worker",
            "--until-idle",
            "--stages",
            "fetch,history",
            "--lease",
            "4",
            "--db",
            &url,
        ]);
        crate::helpers::Running::spawn_logged(&mut w, &work.path().join(format!("w{i}.log")))
    };
    let workers = [spawn(0), spawn(1)];
    let started = std::time::Instant::now();
    while queue_facts(&url).done_jobs < 8 {
        assert!(started.elapsed().as_secs() < 120, "no progress before the restart");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    pg.restart();
    assert!(queue_facts(&url).other_jobs > 0, "the restart came after the work");
    // Whether a worker sees the restart as an error depends on where it was: a pooled
    // connection found dead is replaced before use, silently. The jobs still to do at the
    // restart (some were, asserted above) were all done through connections opened after it.
    for (i, w) in workers.into_iter().enumerate() {
        let out = w.output_within(180, "a worker did not finish after the restart");
        let err = std::fs::read_to_string(work.path().join(format!("w{i}.log"))).unwrap();
        assert!(out.status.success(), "{err}");
        let (_, lost, _, _) = worker_counts(&err);
        assert_eq!(lost, 0, "{err}");
    }
    let facts = queue_facts(&url);
    assert_eq!((facts.done_jobs, facts.other_jobs), (80, 0));
    assert_eq!(facts.duplicated, 0);
    assert_eq!(
        facts.done_runs, 120,
        "fetch, history and screen once each for 40 submissions"
    );
}

/// Fault 6: four workers on 200 quick jobs while workers are SIGKILLed at random (and
/// started again): no job lost (all done), no done run duplicated, and no more re-runs than
/// kills (each worker holds one job at a time).
#[test]
#[ignore = "full lane: a real PostgreSQL server"]
fn four_workers_killed_at_random_lose_and_duplicate_nothing() {
    let pg = PgServer::start();
    let url = pg.database("fault6");
    let work = tempfile::tempdir().unwrap();
    let (_repos, cohort) = quick_cohort(work.path(), 100);
    let assay = crate::helpers::Assay::new();
    let mut enqueue = assay.cmd();
    enqueue.env("ASSAY_RETRIES", "5").args([
        "enqueue",
        cohort.to_str().unwrap(),
        "--no-sandbox",
        "--no-drafts",
        "--db",
        &url,
    ]);
    assert!(enqueue.status().unwrap().success());
    let mut logs = 0;
    let mut spawn = || {
        logs += 1;
        let mut w = assay.cmd();
        w.args([
            "worker",
            "--until-idle",
            "--jobs",
            "1",
            "--stages",
            "fetch,history",
            "--lease",
            "4",
            "--db",
            &url,
        ]);
        crate::helpers::Running::spawn_logged(&mut w, &work.path().join(format!("w{logs}.log")))
    };
    let mut workers: Vec<crate::helpers::Running> = (0..4).map(|_| spawn()).collect();
    // A fixed sequence of "random" victims and pauses (xorshift): the same faults every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut kills = 0;
    for _ in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(100 + next() % 250));
        if queue_facts(&url).other_jobs == 0 {
            break;
        }
        let victim = (next() % 4) as usize;
        if workers[victim].running() {
            workers[victim].signal("KILL");
            kills += 1;
        }
        workers[victim] = spawn();
    }
    assert!(kills >= 3, "the faults came after the work: {kills} kills");
    for w in workers {
        let out = w.output_within(240, "a worker did not finish");
        assert!(out.status.success());
    }
    let facts = queue_facts(&url);
    assert_eq!((facts.done_jobs, facts.other_jobs), (200, 0), "no job lost");
    assert_eq!(facts.duplicated, 0, "no done run duplicated");
    assert_eq!(
        facts.done_runs, 300,
        "fetch, history and screen once each for 100 submissions"
    );
    assert!(facts.reruns <= kills, "{} re-runs for {kills} kills", facts.reruns);
}

/// `assay bench queue` on a small scale, as JSON: every throughput run did all its jobs, the
/// claims were measured with the backlog, both recoveries ran the dead worker's job to its end
/// with a real worker process, and the scaling runs ran.
fn bench_queue_reports(db: Option<&str>) {
    let assay = crate::helpers::Assay::new();
    let mut args = vec![
        "bench",
        "queue",
        "--jobs",
        "40",
        "--backlog",
        "100",
        "--lease",
        "3",
        "--slow-jobs",
        "4",
        "--json",
    ];
    if let Some(db) = db {
        args.extend(["--db", db]);
    }
    let r = crate::helpers::json_ok(&assay.run(&args));
    let runs = r["throughput"].as_array().unwrap();
    assert_eq!(
        runs.iter().map(|t| t["workers"].as_u64().unwrap()).collect::<Vec<_>>(),
        vec![1, 2, 4, 8]
    );
    assert!(
        runs.iter()
            .all(|t| t["jobs"] == 40 && t["per_second"].as_f64().unwrap() > 0.0),
        "{r}"
    );
    assert_eq!(
        (r["claims"]["queued"].as_u64(), r["claims"]["claims"].as_u64()),
        (Some(100), Some(20))
    );
    assert!(r["claims"]["p99_ms"].as_f64().unwrap() >= r["claims"]["p50_ms"].as_f64().unwrap());
    let recovered: Vec<&str> = r["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["dead_on"].as_str().unwrap())
        .collect();
    assert_eq!(recovered, ["another host", "this host"]);
    // Another host's dead worker is known by its lease alone: its job waits that long.
    assert!(r["recovery"][0]["seconds"].as_f64().unwrap() >= 3.0, "{r}");
    assert_eq!(r["scaling"]["jobs"], 4);
}

#[test]
fn bench_queue_measures_the_queue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    bench_queue_reports(Some(&format!("sqlite://{}", dir.path().join("bench.db").display())));
}

#[test]
#[ignore = "full lane: a PostgreSQL server of its own (Debian's postgresql)"]
fn bench_queue_measures_the_queue_on_its_own_postgresql() {
    bench_queue_reports(None);
}

/// A database that holds cohorts of its own is not a scratch database: the bench refuses it.
#[test]
fn bench_queue_refuses_a_database_with_real_cohorts() {
    let work = tempfile::tempdir().unwrap();
    let repo = crate::helpers::iterative();
    let cohort = crate::helpers::cohort_of(work.path(), "", &[("alice-smith", repo.path())]);
    let assay = crate::helpers::Assay::new();
    let queued = assay.run(&["enqueue", cohort.to_str().unwrap(), "--no-sandbox", "--no-drafts"]);
    assert!(queued.status.success());
    let db = format!("sqlite://{}", assay.db().display());
    let out = assay.run(&["bench", "queue", "--db", &db]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds cohorts of its own (demo)"), "{err}");
}

/// Two machines' roles on one queue: a container host runs `--stages fetch,history,sandbox,repro`
/// and a machine without Docker `--stages draft` (its own model, SmolLM2 here). The draft worker
/// finds the screen done, drafts every submission, and the submission's outcome is the one the
/// other machine's sandbox found (`tests_failed`), not a plain `ok` for want of a sandbox.
#[test]
#[ignore = "full lane: real PostgreSQL, the Docker engine, the runner images and the model weights"]
fn a_machine_without_docker_drafts_what_a_container_host_tested() {
    let pg = PgServer::start();
    let url = pg.database("split");
    let work = tempfile::tempdir().unwrap();
    let mut repo = crate::helpers::Scripted::new();
    repo.put(&[
        (
            "README.md",
            Some("# Calc\n\nRun the tests: `pip3 install pytest`, then `python3 -m pytest`.\n"),
        ),
        ("requirements.txt", Some("pytest\n")),
        ("calc.py", Some("def add(a, b):\n    return a + b\n")),
        (
            "tests/test_calc.py",
            Some("from calc import add\n\ndef test_ok():\n    assert add(1, 2) == 3\n\ndef test_wrong():\n    assert add(2, 2) == 5\n"),
        ),
    ]);
    repo.commit("Add calc", 1_700_000_000);
    let cohort = crate::helpers::cohort_of(work.path(), "", &[("calc", repo.path())]);
    let assay = crate::helpers::Assay::new();
    let queued = crate::helpers::json_ok(&assay.run(&["enqueue", cohort.to_str().unwrap(), "--db", &url, "--json"]));
    assert_eq!(queued["queued"], 5, "{queued}");

    let mut host = sandbox_worker(&assay, &url, 60);
    host.arg("--until-idle");
    let out = crate::helpers::Running::spawn(&mut host).output_within(300, "the container host did not finish");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (sub, _) = only_submission(&url);
    assert_eq!(sub.status, SubmissionStatus::Running, "drafts are still to come");

    let models = crate::llm::model_path(assay::llm::TINY_MODEL)
        .parent()
        .unwrap()
        .to_path_buf();
    let mut drafter = assay.cmd();
    drafter
        .env("ASSAY_MODEL_DIR", &models)
        // No Docker engine reachable from this "machine": a worker that needed one would fail.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "worker",
            "--until-idle",
            "--stages",
            "draft",
            "--model",
            assay::llm::TINY_MODEL,
            "--db",
            &url,
        ]);
    let out = crate::helpers::Running::spawn(&mut drafter).output_within(600, "the draft worker did not finish");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert_eq!(worker_counts(&err), (1, 0, 0, 0), "{err}");
    let (sub, runs) = only_submission(&url);
    assert_eq!(of_stage(&runs, Stage::Draft, RunStatus::Done), 1, "{runs:?}");
    assert_eq!(
        of_stage(&runs, Stage::Screen, RunStatus::Done),
        1,
        "the screen ran once, on the container host"
    );
    assert_eq!(
        (sub.status, sub.outcome),
        (SubmissionStatus::Done, Some(OutcomeKind::TestsFailed))
    );
}

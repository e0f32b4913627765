//! `--db postgres://…`: a real PostgreSQL server (Debian's, started here in a temporary directory
//! on a loopback port) holds what SQLite holds, and every command reads and writes it the same.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assay::bench::postgres::TempPostgres;
use assay::review::CriterionReview;
use assay::store::{ReviewSave, SaveOutcome, Store};

use crate::helpers::*;

/// The throwaway server `assay bench queue` uses ([`TempPostgres`]: its own directory and
/// loopback port, stopped and deleted on drop), failing the test when it cannot start.
pub struct PgServer(TempPostgres);

impl PgServer {
    pub fn start() -> PgServer {
        PgServer(TempPostgres::start().expect("a PostgreSQL server (scripts/test.sh installs Debian's postgresql)"))
    }

    /// A server that accepts only TLS connections, with a self-signed certificate for
    /// 127.0.0.1 at [`PgServer::cert`].
    pub fn start_tls() -> PgServer {
        PgServer(TempPostgres::start_with(true).expect("a PostgreSQL server with TLS (and openssl)"))
    }

    pub fn cert(&self) -> PathBuf {
        self.0.cert()
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        self.0.database(name).unwrap()
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server is back once this returns.
    pub fn restart(&self) {
        self.0.restart().unwrap()
    }
}

/// A grade or export document without what differs between two runs of the same work: times,
/// durations and where reports were written.
pub fn comparable(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "duration_ms" | "elapsed_ms" | "started_at" | "finished_at" | "finalized_at" | "at" | "out"
                )
            })
            .map(|(k, v)| (k.clone(), comparable(v)))
            .collect(),
        serde_json::Value::Array(a) => a.iter().map(comparable).collect(),
        other => other.clone(),
    }
}

fn grade(assay: &Assay, cohort: &Path, db: Option<&str>, out: &Path) -> serde_json::Value {
    let mut args = vec![
        "grade",
        "--no-drafts",
        "--no-sandbox",
        cohort.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(db) = db {
        args.extend(["--db", db]);
    }
    json_ok(&assay.run(&args))
}

/// `assay grade` of `cohort` on the database `url`, as it ended.
fn grade_on(assay: &Assay, cohort: &Path, url: &str) -> std::process::Output {
    assay.run(&[
        "grade",
        "--no-drafts",
        "--no-sandbox",
        cohort.to_str().unwrap(),
        "--db",
        url,
    ])
}

/// Two reviews through the store, the second from a stale version (refused, nothing lost), and
/// the first finalized; what each save returned.
async fn review(store: &dyn Store, submission: i64) -> Vec<String> {
    let scores = |s: u32| {
        [(
            "correctness".to_string(),
            CriterionReview {
                score: Some(s),
                draft_score: Some(3),
                ..Default::default()
            },
        )]
        .into_iter()
        .collect()
    };
    let save = |actor: &'static str, base: i64, s: u32, finalize: bool| ReviewSave {
        submission_id: submission,
        grader: "ann",
        actor,
        base_version: base,
        scores: scores(s),
        comment: String::new(),
        finalize,
    };
    let mut seen = Vec::new();
    for (actor, base, s, finalize) in [
        ("ann", 0, 3, false),
        ("ben", 1, 4, false),
        ("ann", 1, 2, false),
        ("ann", 2, 4, true),
    ] {
        seen.push(
            match store.save_review(&save(actor, base, s, finalize)).await.unwrap() {
                SaveOutcome::Saved(r) => format!("saved v{} {:?}", r.version, r.status),
                SaveOutcome::Conflict(r) => format!("conflict at v{}", r.map_or(0, |r| r.version)),
                SaveOutcome::AlreadyFinal(_) => "final".into(),
            },
        );
    }
    seen
}

#[test]
#[ignore = "full lane: needs PostgreSQL (scripts/test.sh installs Debian's postgresql)"]
fn grade_resume_reviews_and_export_read_and_write_postgres_as_they_do_sqlite() {
    let pg = PgServer::start();
    let url = pg.database("assay_grade");
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (iterative(), single_dump());
    let cohort = cohort_of(work.path(), "", &[("alice-smith", a.path()), ("bob-jones", b.path())]);
    let assay = Assay::new();
    let on_sqlite = grade(&assay, &cohort, None, &work.path().join("sqlite-out"));
    let on_postgres = grade(&assay, &cohort, Some(&url), &work.path().join("pg-out"));
    assert_eq!(on_postgres["submissions"].as_array().unwrap().len(), 2);
    assert_eq!(comparable(&on_postgres), comparable(&on_sqlite));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sqlite_url = format!("sqlite://{}", assay.db().display());
    let (runs_before, subs) = rt.block_on(async {
        let store = assay::store::open(&url).await.unwrap();
        let cohort = store
            .cohort_id("demo")
            .await
            .unwrap()
            .expect("the cohort is in PostgreSQL");
        let subs = store.submissions(cohort).await.unwrap();
        let mut runs = 0;
        for s in &subs {
            runs += store.runs(s.id).await.unwrap().len();
            assert!(
                !store.evidence(s.id).await.unwrap().is_empty(),
                "{} has evidence",
                s.candidate
            );
        }
        (runs, subs)
    });
    assert!(runs_before >= 2 * 3, "fetch, history, screen at least: {runs_before}");

    // One grading process per database, across machines: while another holds the database's
    // lock (a session advisory lock: a file lock on one machine cannot see another), a grade
    // run refuses to start.
    let held = rt.block_on(async {
        assay::store::PostgresStore::open(&url)
            .await
            .unwrap()
            .lock()
            .await
            .unwrap()
            .expect("the lock is free")
    });
    let busy = grade_on(&assay, &cohort, &url);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(
        !busy.status.success() && err.contains("another assay process is grading with this database"),
        "{err}"
    );
    rt.block_on(held.release()).unwrap();

    // A second run resumes from PostgreSQL: every stage is reused, none runs again.
    let again = grade(&assay, &cohort, Some(&url), &work.path().join("pg-out"));
    assert_eq!(comparable(&again), comparable(&on_postgres));
    let runs_after = rt.block_on(async {
        let store = assay::store::open(&url).await.unwrap();
        let mut runs = 0;
        for s in &subs {
            runs += store.runs(s.id).await.unwrap().len();
        }
        runs
    });
    assert_eq!(runs_after, runs_before, "nothing ran twice");

    // Reviews: the same optimistic concurrency on both backends.
    let (on_pg, on_lite) = rt.block_on(async {
        let pg_store = assay::store::open(&url).await.unwrap();
        let lite = assay::store::open(&sqlite_url).await.unwrap();
        let lite_cohort = lite.cohort_id("demo").await.unwrap().unwrap();
        let lite_first = lite.submissions(lite_cohort).await.unwrap()[0].id;
        (review(&*pg_store, subs[0].id).await, review(&*lite, lite_first).await)
    });
    assert_eq!(
        on_pg,
        ["saved v1 Open", "saved v2 Open", "conflict at v2", "saved v3 Final"]
    );
    assert_eq!(on_pg, on_lite);

    // A NUL in candidate text (a README may hold one; PostgreSQL's text cannot) is kept as
    // U+FFFD by both backends, and the stage's evidence is stored, not a failed run.
    let (pg_text, lite_text) = rt.block_on(async {
        let mut texts = Vec::new();
        for db in [&url, &sqlite_url] {
            let store = assay::store::open(db).await.unwrap();
            let cohort = store.cohort_id("demo").await.unwrap().unwrap();
            let sub = store.submissions(cohort).await.unwrap()[1].id;
            let run = store
                .start_run(sub, assay::store::Stage::Draft, "nul-test", "test")
                .await
                .unwrap();
            let item = assay::evidence::EvidenceItem {
                id: "D9".into(),
                kind: "readme_section".into(),
                source: "README.md:3".into(),
                text: "Hello \0 world".into(),
            };
            store
                .finish_run(
                    &run,
                    &assay::store::StageResult {
                        status: assay::store::RunStatus::Done,
                        outcome: assay::outcome::OutcomeKind::Ok,
                        error: Some("a \0 in the error".into()),
                        output: Some(serde_json::json!({"raw": "x\0y"})),
                        evidence: vec![item],
                        commit: None,
                    },
                )
                .await
                .unwrap();
            let stored = store.evidence(sub).await.unwrap();
            let runs = store.runs(sub).await.unwrap();
            let last = runs.last().unwrap();
            assert_eq!(last.output.as_ref().unwrap()["raw"], "x\0y", "JSON keeps it escaped");
            assert_eq!(last.error.as_deref(), Some("a \u{FFFD} in the error"));
            texts.push(stored.into_iter().find(|e| e.id == "D9").unwrap().text);
        }
        (texts.remove(0), texts.remove(0))
    });
    assert_eq!(pg_text, "Hello \u{FFFD} world");
    assert_eq!(pg_text, lite_text);

    let export = |db: Option<&str>| {
        let mut args = vec!["export", "demo", "--format", "json", "--reveal"];
        if let Some(db) = db {
            args.extend(["--db", db]);
        }
        json_ok(&assay.run(&args))
    };
    let (pg_export, lite_export) = (export(Some(&url)), export(None));
    assert_eq!(pg_export["reviews"][0]["candidate"], "alice-smith");
    assert_eq!(comparable(&pg_export), comparable(&lite_export));
}

#[test]
#[ignore = "full lane: needs PostgreSQL (scripts/test.sh installs Debian's postgresql)"]
fn a_postgres_database_that_cannot_be_opened_is_named_with_its_cause_and_without_its_password() {
    let pg = PgServer::start();
    let work = tempfile::tempdir().unwrap();
    let a = iterative();
    let cohort = cohort_of(work.path(), "", &[("alice-smith", a.path())]);
    let assay = Assay::new();
    let closed = free_port();
    for (url, cause) in [
        (
            format!("postgres://assay:hunter2@127.0.0.1:{closed}/x"),
            "Connection refused",
        ),
        (
            format!("postgres://assay:hunter2@127.0.0.1:{}/nosuchdb", pg.port()),
            "database \"nosuchdb\" does not exist",
        ),
    ] {
        let started = Instant::now();
        let out = grade_on(&assay, &cohort, &url);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {err}");
        assert!(
            err.contains("cannot open database postgres://") && err.contains(cause),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "the password is never shown: {err}");
        assert_eq!(err.matches(cause).count(), 1, "the cause once: {err}");
        assert!(started.elapsed() < Duration::from_secs(20), "it fails at once: {err}");
    }
}

#[test]
#[ignore = "full lane: needs PostgreSQL and openssl (scripts/test.sh installs both)"]
fn a_server_that_accepts_only_tls_is_reached_over_tls_and_its_certificate_checked_when_asked() {
    let pg = PgServer::start_tls();
    let plain = pg.database("assay_tls");
    let work = tempfile::tempdir().unwrap();
    let a = iterative();
    let cohort = cohort_of(work.path(), "", &[("alice-smith", a.path())]);
    let assay = Assay::new();
    // Without TLS the server refuses (pg_hba.conf: hostnossl reject), and says so.
    let refused = grade_on(&assay, &cohort, &format!("{plain}?sslmode=disable"));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("no encryption"), "{err}");
    // Encrypted, the certificate checked against the CA the URL names: graded.
    let verified = format!("{plain}?sslmode=verify-full&sslrootcert={}", pg.cert().display());
    let v = grade(&assay, &cohort, Some(&verified), &work.path().join("out"));
    assert_eq!(v["submissions"][0]["status"], "done", "{v}");
    // verify-full with the system's roots does not trust a self-signed certificate.
    let untrusted = grade_on(&assay, &cohort, &format!("{plain}?sslmode=verify-full"));
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success() && err.contains("cannot open database"),
        "{err}"
    );
}

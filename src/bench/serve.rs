//! `assay bench serve`: page latencies of the review UI over a generated cohort.
//!
//! A cohort of `size` submissions is written through the store as the pipeline writes it: each
//! submission gets a real history report (of one generated repository, analysed once), its
//! evidence, README items and a draft with varied scores. The server runs in-process on a
//! loopback port; a client on its own thread signs in and requests pages one at a time over a
//! kept-alive connection, as a grader's browser would. Reported: p50/p99/max per page; the
//! queue page is also measured with its triage cache dropped before each request, the baseline
//! the cache is there to beat.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Grader;
use crate::draft::{Attempt, CriterionDraft, DraftRecord};
use crate::outcome::OutcomeKind;
use crate::rubric::Rubric;
use crate::store::{RunStatus, Stage, StageResult, Store};
use crate::submission::SubmissionStatus;
use crate::web::{self, App};

/// One page's latencies.
#[derive(Debug, Clone, Serialize)]
pub struct PageStats {
    pub page: &'static str,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The p99 the issue asks for, when there is one.
    pub target_p99_ms: Option<f64>,
    /// Bytes of the last response body.
    pub bytes: usize,
}

/// What `bench serve` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub submissions: usize,
    /// Seconds to write the cohort into the store.
    pub setup_s: f64,
    pub pages: Vec<PageStats>,
}

/// Percentile (nearest rank) of sorted milliseconds.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn stats(page: &'static str, mut ms: Vec<f64>, target: Option<f64>, bytes: usize) -> PageStats {
    ms.sort_by(|a, b| a.total_cmp(b));
    PageStats {
        page,
        requests: ms.len(),
        p50_ms: percentile(&ms, 50.0),
        p99_ms: percentile(&ms, 99.0),
        max_ms: ms.last().copied().unwrap_or(0.0),
        target_p99_ms: target,
        bytes,
    }
}

/// Records a done run of `stage` with its output and evidence, as the pipeline does.
async fn done(
    store: &dyn Store,
    submission: i64,
    stage: Stage,
    commit: &str,
    output: serde_json::Value,
    evidence: &[crate::evidence::EvidenceItem],
) -> Result<()> {
    let run = store.start_run(submission, stage, commit, "bench").await?;
    let result = StageResult {
        status: RunStatus::Done,
        outcome: OutcomeKind::Ok,
        error: None,
        output: Some(output),
        evidence: evidence.to_vec(),
        commit: Some(commit.to_string()),
    };
    store.finish_run(&run, &result).await?;
    Ok(())
}

/// Writes a cohort of `size` submissions into `store`; returns the anonymised ids.
async fn generate(store: &dyn Store, dir: &Path, size: usize) -> Result<Vec<String>> {
    let rubric = Rubric::parse(
        Path::new("rubrics/trial-project.toml"),
        include_str!("../../rubrics/trial-project.toml"),
    )?;
    let repo = dir.join("repo");
    let head = crate::bench::generate_repo(&repo, 120)?.to_string();
    let history = crate::git::history::analyze(&crate::git::history::HistoryInput {
        repo: &repo,
        commit: &head,
        now: chrono::Utc::now(),
        max_commits: 50_000,
        after_deadline: &[],
        salt: "bench",
        max_blob: crate::config::Limits::default().file_bytes,
    })
    .map_err(|f| anyhow::anyhow!("history of the generated repository: {f:?}"))?;
    let history_items = crate::evidence::from_history(&history);
    let readme = "# Churn\n\nPredict churn from usage logs. Success metric: recall at 10% FPR.\n\n\
                  ## Approach\n\nA logistic-regression baseline first, then gradient boosting.\n\n\
                  ## Results\n\nRecall 0.71 against 0.0 for the baseline.\n\n\
                  ## Trade-offs\n\nLogistic regression kept for latency; boosting costs 3x at inference.\n\n\
                  ## Limitations\n\nOne month of data; seasonality is not modelled.\n\n\
                  ## Next\n\nCalibrate, add the billing features, monitor drift.\n";
    let readme_items = crate::draft::readme_items_from_text("README.md", readme);
    let spec = serde_json::json!({
        "name": "bench",
        "rubric": "rubrics/trial-project.toml",
        "rubric_def": rubric,
        "top": 10,
    });
    let cohort = store.upsert_cohort("bench", &spec).await?;
    let cite: Vec<String> = history_items
        .iter()
        .chain(&readme_items)
        .map(|e| e.id.clone())
        .collect();
    let mut anon = Vec::with_capacity(size);
    for i in 0..size {
        let id = format!("a-{:08x}", (i as u32).wrapping_mul(2_654_435_761));
        let rec = store
            .upsert_submission(
                cohort,
                &format!("cand-{i:04}"),
                &id,
                &format!("https://example.org/cand-{i:04}/churn.git"),
                None,
            )
            .await?;
        done(
            store,
            rec.id,
            Stage::History,
            &head,
            serde_json::to_value(&history)?,
            &history_items,
        )
        .await?;
        let drafts: Vec<CriterionDraft> = rubric
            .criteria
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let score = c.levels[(i * 7 + k * 3) % c.levels.len()].score;
                CriterionDraft {
                    criterion: c.id.clone(),
                    score: Some(score),
                    model_score: Some(score),
                    band_max: None,
                    rationale: format!(
                        "{}: the README states the metric and a baseline; commits show steady, explained steps (draft {i}).",
                        c.title
                    ),
                    evidence: cite.iter().skip((i + k) % cite.len().max(1)).take(3).cloned().collect(),
                    valid: true,
                    flags: Vec::new(),
                    items: Vec::new(),
                    feedback: None,
                }
            })
            .collect();
        let record = DraftRecord {
            model: "bench".into(),
            prompt_version: "bench".into(),
            prompt_hash: String::new(),
            prompt_tokens: 1500,
            reused_tokens: 0,
            generated_tokens: 400,
            prompt_ms: 0,
            generate_ms: 0,
            valid: true,
            reason: None,
            drafts,
            attempts: vec![Attempt {
                seed: None,
                valid: true,
                reason: None,
                finish: "stop".into(),
                generated_tokens: 400,
                prompt_ms: 0,
                generate_ms: 0,
            }],
            evidence_cut: Vec::new(),
            readme_lines: Some(readme.lines().count()),
            raw: String::new(),
            answers: Vec::new(),
            feedback: None,
        };
        done(
            store,
            rec.id,
            Stage::Draft,
            &head,
            serde_json::to_value(&record)?,
            &readme_items,
        )
        .await?;
        store
            .set_submission(rec.id, SubmissionStatus::Done, Some(OutcomeKind::Ok), Some(&head))
            .await?;
        anon.push(id);
    }
    Ok(anon)
}

/// An HTTP/1.1 connection kept alive across requests.
struct Conn {
    reader: BufReader<TcpStream>,
    cookie: Option<String>,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Conn {
    fn new(addr: std::net::SocketAddr) -> Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(s),
            cookie: None,
        })
    }

    fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Result<Answer> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if let Some(c) = &self.cookie {
            req.push_str(&format!("Cookie: {}={c}\r\n", web::COOKIE));
        }
        if let Some(body) = form {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.reader.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse()?;
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8(body)?,
        })
    }

    /// GET, checked for 200; milliseconds and body size.
    fn timed_get(&mut self, path: &str) -> Result<(f64, usize)> {
        let start = Instant::now();
        let a = self.request("GET", path, None)?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(a.status == 200, "GET {path}: {} {}", a.status, a.body);
        Ok((ms, a.body.len()))
    }
}

/// The value of a hidden input in a page.
fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(page[at..].split('"').next()?.to_string())
}

/// Generates the cohort, serves it and measures.
pub async fn run(size: usize, requests: usize) -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("assay.db").display());
    let store = crate::store::open(&url).await?;
    let started = Instant::now();
    let anon = generate(store.as_ref(), dir.path(), size).await?;
    let setup_s = started.elapsed().as_secs_f64();

    let token = web::random_token();
    let app = App::new(
        store,
        vec![Grader {
            name: "bench".into(),
            token_sha256: web::token_hash(&token),
        }],
        web::Options { blind: true },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = app.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let handle = tokio::runtime::Handle::current();
    let client_app = app.clone();
    let pages = tokio::task::spawn_blocking(move || -> Result<Vec<PageStats>> {
        let mut c = Conn::new(addr)?;
        let login = c.request("POST", "/login", Some(&format!("name=bench&token={token}&next=/")))?;
        anyhow::ensure!(login.status == 303, "sign-in refused: {}", login.status);
        let cookie = login
            .headers
            .iter()
            .find(|(k, _)| k == "set-cookie")
            .and_then(|(_, v)| v.split(';').next())
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .context("no session cookie")?;
        c.cookie = Some(cookie);

        // Baseline: the queue with its triage recomputed from the store on every request.
        let mut cold = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            handle.block_on(client_app.forget_views());
            let (ms, b) = c.timed_get("/c/bench")?;
            cold.push(ms);
            bytes = b;
        }
        let cold = stats("queue, triage recomputed (baseline)", cold, None, bytes);

        let mut queue = Vec::new();
        for _ in 0..requests {
            let (ms, b) = c.timed_get("/c/bench")?;
            queue.push(ms);
            bytes = b;
        }
        let queue = stats("queue (cached triage)", queue, Some(100.0), bytes);

        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let mut pick = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            &anon[(rng % anon.len() as u64) as usize]
        };
        let mut packet = Vec::new();
        for _ in 0..requests {
            let (ms, b) = c.timed_get(&format!("/c/bench/s/{}", pick()))?;
            packet.push(ms);
            bytes = b;
        }
        let packet = stats("packet", packet, Some(50.0), bytes);

        // Saving a review: the form as the packet serves it, posted back.
        let mut saves = Vec::new();
        for _ in 0..(requests / 4).max(1) {
            let id = pick().clone();
            let path = format!("/c/bench/s/{id}");
            let page = c.request("GET", &path, None)?.body;
            let csrf = hidden(&page, "csrf").context("no form token in the packet")?;
            let base = hidden(&page, "base").context("no base version in the packet")?;
            let form = format!("csrf={csrf}&base={base}&action=save&score%3Aframing=3&comment%3Aframing=ok");
            let start = Instant::now();
            let a = c.request("POST", &path, Some(&form))?;
            saves.push(start.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(a.status == 303, "save {path}: {} {}", a.status, a.body);
        }
        let saves = stats("save review (POST, redirect)", saves, None, 0);
        Ok(vec![queue, packet, saves, cold])
    })
    .await??;
    server.abort();
    Ok(Report {
        submissions: size,
        setup_s,
        pages,
    })
}

/// The terminal table: each page's latencies against its target, and the triage cache's gain.
pub fn text(report: &Report) -> String {
    let mut s = format!(
        "{} submissions written through the store in {:.1} s; one client, kept-alive connection\n",
        report.submissions, report.setup_s
    );
    s += &format!(
        "{:<38} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}\n",
        "page", "requests", "p50 ms", "p99 ms", "max ms", "target p99", "bytes"
    );
    for p in &report.pages {
        s += &format!(
            "{:<38} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>10} {:>9}\n",
            p.page,
            p.requests,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.target_p99_ms.map_or("—".into(), |t| format!("≤ {t:.0}")),
            p.bytes
        );
    }
    let (queue, cold) = (&report.pages[0], &report.pages[3]);
    s += &format!(
        "queue p50 with the triage cache / recomputed: {:.3} ({:.2} vs {:.2} ms)\n",
        queue.p50_ms / cold.p50_ms,
        queue.p50_ms,
        cold.p50_ms
    );
    let missed: Vec<&str> = report
        .pages
        .iter()
        .filter(|p| p.target_p99_ms.is_some_and(|t| p.p99_ms > t))
        .map(|p| p.page)
        .collect();
    if !missed.is_empty() {
        s += &format!("MISSED the p99 target: {}\n", missed.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 99.0)), (50.0, 99.0));
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(
            hidden("<input name=\"base\" value=\"12\">", "base").as_deref(),
            Some("12")
        );
    }
}

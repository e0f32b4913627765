//! `assay bench items [LABELS] --repos DIR`: the checklist rubric's items, as assay answers
//! them on real take-home repositories, against labels recorded by hand.
//!
//! The labels file (`corpus/items.toml`) holds, per corpus repository (`owner/name`, its commit
//! from the corpus manifest), every item of the rubric as `"criterion.item" = true|false`: ids
//! and booleans only, never the candidates' text. The bench writes the labelled repositories
//! as one cohort, runs `assay grade` on it (the real pipeline: sandbox, history, the model's
//! questions; a finished stage is reused, so a second run only judges), then measures:
//! per item the accuracy against the labels (the targets are on the model's questions), the
//! share of the model's "yes" answers whose quote failed verification, Spearman's ρ between
//! assay's totals and the totals the hand labels give under the same rubric, and ties between
//! submissions whose items differ. With `--timing N` it also drafts N submissions twice on the
//! same evidence, the holistic single draft (today's baseline) and the checklist questions, and
//! reports both times and their ratio.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bench::corpus::{self, Manifest};
use crate::diag::InputError;
use crate::results::GradeSummary;
use crate::review::CriterionReview;
use crate::rubric::Rubric;

/// The labels file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// The labelled repositories.
    #[serde(rename = "repo")]
    pub repos: Vec<Labelled>,
}

/// One repository's items as judged by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labelled {
    /// `owner/name`, as in the corpus manifest.
    pub repo: String,
    /// `"criterion.item"` → met.
    pub items: BTreeMap<String, bool>,
}

impl Labels {
    /// Reads a labels file and checks it against `rubric` and the corpus `manifest`: every
    /// repository is in the manifest, once, and labels every item of the rubric, nothing else.
    pub fn load(path: &Path, rubric: &Rubric, manifest: &Manifest) -> Result<Labels, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
        let labels: Labels = toml::from_str(&text).map_err(|e| InputError::from_toml(path, &text, &e))?;
        let keys = rubric.item_keys();
        let mut seen = std::collections::BTreeSet::new();
        for l in &labels.repos {
            if !manifest.repos.iter().any(|e| e.repo == l.repo) {
                return Err(InputError::file(
                    path,
                    format!("{}: not in the corpus manifest (its commit comes from there)", l.repo),
                ));
            }
            if !seen.insert(&l.repo) {
                return Err(InputError::file(path, format!("{}: labelled twice", l.repo)));
            }
            if let Some(k) = l.items.keys().find(|k| !keys.contains(k)) {
                return Err(InputError::file(
                    path,
                    format!("{}: the rubric {} has no item {k:?}", l.repo, rubric.name),
                ));
            }
            let missing: Vec<&String> = keys.iter().filter(|k| !l.items.contains_key(*k)).collect();
            if !missing.is_empty() {
                return Err(InputError::file(
                    path,
                    format!(
                        "{}: every item needs a label; missing {}",
                        l.repo,
                        missing.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(labels)
    }
}

/// The cohort's candidate id for a repository: `owner.name`, made a plain id.
pub fn candidate_id(repo: &str) -> String {
    repo.replace('/', ".")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// The cohort file `assay bench items` grades: each labelled repository found under `repos`,
/// at its manifest commit, under `rubric_path`. Returns the text and the repositories left
/// out because they are not under `repos`.
pub fn cohort_toml(labels: &Labels, manifest: &Manifest, repos: &Path, rubric_path: &Path) -> (String, Vec<String>) {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = format!(
        "# Written by `assay bench items`: the labelled corpus repositories as one cohort.\n\
         [assignment]\nname = \"corpus-items\"\nrubric = {}\ntop = 5\n",
        quote(&rubric_path.display().to_string())
    );
    let mut missing = Vec::new();
    for l in &labels.repos {
        let entry = manifest
            .repos
            .iter()
            .find(|e| e.repo == l.repo)
            .expect("labels are checked");
        let Some(dir) = corpus::git_dir(repos, entry) else {
            missing.push(l.repo.clone());
            continue;
        };
        out.push_str(&format!(
            "\n[[submission]]\ncandidate = {}\nrepo = {}\nref = {}\n",
            quote(&candidate_id(&l.repo)),
            quote(&dir.display().to_string()),
            quote(&entry.commit)
        ));
    }
    (out, missing)
}

/// One item's agreement with the labels over the corpus.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ItemScore {
    /// `criterion.item`.
    pub item: String,
    /// `check` or `ask`.
    pub kind: &'static str,
    /// Submissions judged (labelled and drafted).
    pub judged: usize,
    /// assay's answer equals the label.
    pub agree: usize,
    pub accuracy: Option<f64>,
    /// assay met it, the label says not.
    pub false_met: usize,
    /// assay did not meet it, the label says met.
    pub missed: usize,
    /// Questions: the model answered yes.
    pub yes: usize,
    /// Of those, yes answers whose quote failed verification (not counted).
    pub unverified: usize,
}

/// One submission: assay's total against the hand labels' total, and where they differ.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Judged {
    pub repo: String,
    /// Triage's total (`None`: set apart, or not drafted).
    pub total: Option<f64>,
    /// The total the hand labels give under the same rubric.
    pub hand_total: f64,
    /// `criterion.item` where assay and the label differ, with assay's answer.
    pub disagreements: Vec<(String, bool)>,
    /// assay's items, in rubric order (for ties).
    #[serde(skip)]
    pub met: Vec<bool>,
    /// What the ranking orders equal totals by.
    #[serde(skip)]
    pub order: Vec<bool>,
}

/// What `assay bench items` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ItemsReport {
    pub submissions: Vec<Judged>,
    pub items: Vec<ItemScore>,
    /// Over every question item of every judged submission.
    pub question_accuracy: Option<f64>,
    /// Over every check item.
    pub check_accuracy: Option<f64>,
    /// Yes answers whose quote failed verification, over all yes answers.
    pub unverified_share: Option<f64>,
    /// Spearman's ρ between assay's totals and the hand totals (submissions with a total).
    pub spearman: Option<f64>,
    /// Pairs of submissions with the same total whose items differ, which the ranking orders
    /// by their items.
    pub equal_totals: Vec<(String, String, f64)>,
    /// Pairs with the same total whose items differ that the ranking leaves tied.
    pub ties: Vec<(String, String, f64)>,
    /// The timing runs, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

/// The checklist's questions against the holistic single draft on the same evidence.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timing {
    pub model: String,
    /// Per submission: (repo, holistic draft ms, questions ms, feedback ms).
    pub runs: Vec<(String, u64, u64, u64)>,
    /// Per submission, in the order of `runs`: where the questions' time went.
    pub spent: Vec<crate::ask::Spent>,
    /// Median of questions / holistic.
    pub median_ratio: Option<f64>,
    /// Median of (questions + feedback) / holistic.
    pub median_ratio_with_feedback: Option<f64>,
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// The total a set of item answers gives under `rubric` (each criterion's level by its rule,
/// weighted as triage weighs them), on 0–100.
pub fn total_of(rubric: &Rubric, met: &dyn Fn(&str, &str) -> bool) -> f64 {
    let scores: BTreeMap<String, CriterionReview> = rubric
        .criteria
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                CriterionReview {
                    score: Some(c.level_where(|i| met(&c.id, i))),
                    ..Default::default()
                },
            )
        })
        .collect();
    crate::review::total(rubric, &scores).unwrap_or(0.0)
}

/// One graded submission as the bench reads it.
#[derive(Debug, Clone, Default)]
pub struct Graded {
    /// Triage's total (`None`: set apart).
    pub total: Option<f64>,
    /// Its drafts, with the checklist items.
    pub drafts: Vec<crate::draft::CriterionDraft>,
    /// The checklist items the ranking orders equal totals by (triage's `items_met`).
    pub order: Vec<bool>,
}

/// The graded submissions of `summary`, by candidate id.
pub fn graded(summary: &GradeSummary) -> BTreeMap<String, Graded> {
    summary
        .submissions
        .iter()
        .map(|s| {
            let t = summary.triage.submissions.iter().find(|t| t.candidate == s.candidate);
            (
                s.candidate.clone(),
                Graded {
                    total: t.and_then(|t| t.total),
                    drafts: s.drafts.clone(),
                    order: t.map(|t| t.items_met.clone()).unwrap_or_default(),
                },
            )
        })
        .collect()
}

/// Judges the graded cohort against the labels.
pub fn judge(rubric: &Rubric, labels: &Labels, graded: &BTreeMap<String, Graded>) -> ItemsReport {
    let keys = rubric.item_keys();
    let mut scores: Vec<ItemScore> = rubric
        .criteria
        .iter()
        .flat_map(|c| {
            c.items.iter().map(move |i| ItemScore {
                item: format!("{}.{}", c.id, i.id),
                kind: i.decide.kind(),
                judged: 0,
                agree: 0,
                accuracy: None,
                false_met: 0,
                missed: 0,
                yes: 0,
                unverified: 0,
            })
        })
        .collect();
    let mut judged = Vec::new();
    for l in &labels.repos {
        let id = candidate_id(&l.repo);
        let Some(s) = graded.get(&id) else {
            continue;
        };
        // Only drafted submissions carry items.
        if s.drafts.iter().all(|d| d.items.is_empty()) {
            continue;
        }
        let result = |key: &str| {
            let (c, i) = key.split_once('.').expect("keys are criterion.item");
            s.drafts
                .iter()
                .find(|d| d.criterion == c)
                .and_then(|d| d.items.iter().find(|x| x.id == i))
        };
        let mut disagreements = Vec::new();
        let mut met = Vec::new();
        for (key, score) in keys.iter().zip(scores.iter_mut()) {
            let r = result(key);
            let ours = r.is_some_and(|r| r.met);
            let truth = l.items[key];
            met.push(ours);
            score.judged += 1;
            if ours == truth {
                score.agree += 1;
            } else {
                disagreements.push((key.clone(), ours));
                if ours {
                    score.false_met += 1;
                } else {
                    score.missed += 1;
                }
            }
            if let Some(claim) = r.and_then(|r| r.claimed.as_ref()) {
                if claim.answer.as_deref() == Some("yes") {
                    score.yes += 1;
                    let failed = r.is_some_and(|r| r.flags.iter().any(|f| f.starts_with("unverified_quote")));
                    score.unverified += usize::from(failed);
                }
            }
        }
        let total = s.total;
        let hand_total = total_of(rubric, &|c, i| l.items[&format!("{c}.{i}")]);
        judged.push(Judged {
            repo: l.repo.clone(),
            total,
            hand_total,
            disagreements,
            met,
            order: s.order.clone(),
        });
    }
    for s in &mut scores {
        s.accuracy = ratio(s.agree, s.judged);
    }
    let sum =
        |kind: &str, f: fn(&ItemScore) -> usize| -> usize { scores.iter().filter(|s| s.kind == kind).map(f).sum() };
    let question_accuracy = ratio(sum("ask", |s| s.agree), sum("ask", |s| s.judged));
    let check_accuracy = ratio(sum("check", |s| s.agree), sum("check", |s| s.judged));
    let unverified_share = ratio(sum("ask", |s| s.unverified), sum("ask", |s| s.yes));
    let ranked: Vec<&Judged> = judged.iter().filter(|j| j.total.is_some()).collect();
    let spearman = spearman(
        &ranked.iter().map(|j| j.total.expect("filtered")).collect::<Vec<_>>(),
        &ranked.iter().map(|j| j.hand_total).collect::<Vec<_>>(),
    );
    let (mut equal_totals, mut ties) = (Vec::new(), Vec::new());
    for (n, a) in ranked.iter().enumerate() {
        for b in &ranked[n + 1..] {
            let (x, y) = (a.total.expect("filtered"), b.total.expect("filtered"));
            if (x - y).abs() < crate::triage::TIE_EPSILON && a.met != b.met {
                let pair = (a.repo.clone(), b.repo.clone(), x);
                if a.order == b.order {
                    ties.push(pair);
                } else {
                    equal_totals.push(pair);
                }
            }
        }
    }
    ItemsReport {
        submissions: judged,
        items: scores,
        question_accuracy,
        check_accuracy,
        unverified_share,
        spearman,
        equal_totals,
        ties,
        timing: None,
    }
}

/// Ranks of `xs`, 1-based, ties given the mean of the ranks they span.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// Spearman's ρ: Pearson's correlation of the ranks (ties averaged). `None` with fewer than
/// three pairs or when either side is constant.
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(xs), ranks(ys));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// The median of `xs` (`None` when empty).
pub fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// The rubric with every criterion's checklist taken away: the holistic single draft that
/// scored each criterion as a whole before checklists (the timing baseline).
pub fn holistic(rubric: &Rubric) -> Rubric {
    let mut r = rubric.clone();
    for c in &mut r.criteria {
        c.items.clear();
    }
    r
}

/// How `assay bench items` runs.
pub struct Options<'a> {
    pub labels: &'a Path,
    pub manifest: &'a Path,
    pub repos: &'a Path,
    pub rubric: &'a Path,
    /// The model that answers the questions (manifest name or .gguf path).
    pub model: &'a str,
    /// Where the cohort file, database and reports go.
    pub work: &'a Path,
    /// The data directory the grade run uses (model directory, settings).
    pub data_dir: &'a Path,
    /// Jobs for the grade run.
    pub jobs: usize,
    /// Submissions drafted twice for the timing (0: none).
    pub timing: usize,
    /// The file limits an export is rebuilt under (the settings' own).
    pub limits: &'a crate::config::Limits,
    /// Only these labelled repositories (`owner/name`); all when empty.
    pub only: &'a [String],
}

/// `n` indices spread evenly over `0..len`, first and last included (all of them when `n`
/// is at least `len`).
fn spread(len: usize, n: usize) -> Vec<usize> {
    match (len, n) {
        (0, _) | (_, 0) => vec![],
        (_, 1) => vec![len / 2],
        _ if n >= len => (0..len).collect(),
        _ => (0..n).map(|k| (k * (len - 1) + (n - 1) / 2) / (n - 1)).collect(),
    }
}

/// Runs the bench: grades the labelled corpus with `assay grade` (this binary), judges the
/// items, and times the questions against the holistic draft when asked.
pub async fn run(o: &Options<'_>) -> anyhow::Result<ItemsReport> {
    use anyhow::Context as _;
    let rubric = Rubric::load(o.rubric)?;
    let manifest = Manifest::load(o.manifest)?;
    let mut labels = Labels::load(o.labels, &rubric, &manifest)?;
    if !o.only.is_empty() {
        if let Some(unknown) = o.only.iter().find(|r| !labels.repos.iter().any(|l| &l.repo == *r)) {
            anyhow::bail!("--only {unknown}: not a repository of {}", o.labels.display());
        }
        labels.repos.retain(|l| o.only.contains(&l.repo));
    }
    std::fs::create_dir_all(o.work).with_context(|| format!("cannot create {}", o.work.display()))?;
    let rubric_path = std::path::absolute(o.rubric)?;
    let repos = std::path::absolute(o.repos)?;
    let (cohort, missing) = cohort_toml(&labels, &manifest, &repos, &rubric_path);
    if !missing.is_empty() {
        anyhow::bail!(
            "{} labelled repositories are not under {} (fetch them with corpus/fetch.sh): {}",
            missing.len(),
            repos.display(),
            missing.join(", ")
        );
    }
    let cohort_path = o.work.join("cohort.toml");
    std::fs::write(&cohort_path, cohort)?;
    let db = format!("sqlite://{}", o.work.join("assay.db").display());
    // The real pipeline, as a user runs it; finished stages are reused on a second run.
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(o.data_dir)
        .arg("grade")
        .arg(&cohort_path)
        .args(["--db", &db, "--model", o.model, "--jobs", &o.jobs.to_string(), "--out"])
        .arg(o.work.join("out"))
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("cannot run assay grade")?;
    anyhow::ensure!(status.success(), "assay grade on the labelled corpus failed ({status})");
    let store = crate::store::open(&db).await?;
    let cohort_id = store
        .cohort_id("corpus-items")
        .await?
        .context("the grade run stored no cohort corpus-items")?;
    let summary = crate::results::summarize(store.as_ref(), "corpus-items", cohort_id, &rubric, 5).await?;
    let graded = graded(&summary);
    let mut report = judge(&rubric, &labels, &graded);
    if o.timing > 0 {
        let dir = crate::llm::manifest::model_dir(o.data_dir);
        let m = crate::llm::manifest::resolve(&dir, o.model)?;
        let (path, id) = (m.path.clone(), m.id.clone());
        let engine =
            tokio::task::spawn_blocking(move || crate::llm::Engine::start(&path, &id, crate::llm::DEFAULT_CONTEXT))
                .await??;
        let mut timing = Timing {
            model: m.id.clone(),
            ..Default::default()
        };
        let records = store.submissions(cohort_id).await?;
        let whole = holistic(&rubric);
        // The README of every graded submission, to time a sample that spans README lengths
        // (the questions' evidence is cut to a budget, so a long README costs more than a
        // short one would suggest).
        let mut graded = Vec::new();
        for j in &report.submissions {
            let id = candidate_id(&j.repo);
            let Some(rec) = records.iter().find(|r| r.candidate == id) else {
                continue;
            };
            let runs = store.runs(rec.id).await?;
            let Some(fetch) =
                crate::results::read_latest::<crate::results::FetchOutput>(&runs, rec.id, crate::store::Stage::Fetch)?
            else {
                continue;
            };
            let limits = o.limits.clone();
            let (readme, lines) =
                tokio::task::spawn_blocking(move || crate::pipeline::readme_evidence(&fetch, &limits)).await??;
            let chars: usize = readme.iter().map(|i| i.text.len()).sum();
            graded.push((j, rec, readme, lines, chars));
        }
        graded.sort_by_key(|g| (g.4, g.0.repo.clone()));
        for k in spread(graded.len(), o.timing) {
            let (j, rec, readme, lines, _) = &graded[k];
            let (readme, lines) = (readme.clone(), *lines);
            let ev = crate::pipeline::draft_evidence(store.as_ref(), rec.id).await?;
            let mut facts = ev.facts.clone();
            facts.readme_lines = Some(lines);
            let options = crate::draft::DraftOptions::default();
            let input = |r| crate::draft::DraftInput {
                rubric: r,
                band_above: rubric.band_above,
                stage_items: ev.items.clone(),
                readme: readme.clone(),
                commits: ev.commits.clone(),
                flags: ev.flags.clone(),
                facts: facts.clone(),
                options: &options,
                previous: vec![],
                previous_feedback: None,
            };
            let start = std::time::Instant::now();
            crate::draft::draft(&engine, input(&whole)).await?;
            let holistic_ms = start.elapsed().as_millis() as u64;
            let (record, _) = crate::draft::draft(&engine, input(&rubric)).await?;
            let questions_ms: u64 = record.answers.iter().map(crate::ask::Answer::ms).sum();
            let feedback_ms = record
                .feedback
                .as_ref()
                .map_or(0, |f| f.run.prompt_ms + f.run.generate_ms);
            eprintln!(
                "assay: timed {}: holistic draft {holistic_ms} ms, questions {questions_ms} ms, feedback {feedback_ms} ms",
                j.repo
            );
            timing
                .runs
                .push((j.repo.clone(), holistic_ms, questions_ms, feedback_ms));
            timing
                .spent
                .push(record.answers.iter().map(crate::ask::Answer::spent).sum());
        }
        let ratios = |with_feedback: bool| -> Vec<f64> {
            timing
                .runs
                .iter()
                .filter(|r| r.1 > 0)
                .map(|r| (r.2 + if with_feedback { r.3 } else { 0 }) as f64 / r.1 as f64)
                .collect()
        };
        timing.median_ratio = median(&mut ratios(false));
        timing.median_ratio_with_feedback = median(&mut ratios(true));
        report.timing = Some(timing);
    }
    Ok(report)
}

/// The terminal report.
pub fn text(r: &ItemsReport) -> String {
    use std::fmt::Write as _;
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
    let mut s = String::new();
    let _ = writeln!(s, "{} submissions judged against hand labels", r.submissions.len());
    let _ = writeln!(
        s,
        "{:<34} {:<5} {:>6} {:>9} {:>9} {:>7} {:>5} {:>10}",
        "item", "kind", "judged", "accuracy", "false met", "missed", "yes", "unverified"
    );
    for i in &r.items {
        let _ = writeln!(
            s,
            "{:<34} {:<5} {:>6} {:>9} {:>9} {:>7} {:>5} {:>10}",
            i.item,
            i.kind,
            i.judged,
            pct(i.accuracy),
            i.false_met,
            i.missed,
            if i.kind == "ask" { i.yes.to_string() } else { "".into() },
            if i.kind == "ask" {
                i.unverified.to_string()
            } else {
                "".into()
            }
        );
    }
    let _ = writeln!(
        s,
        "question accuracy: {} (target ≥ 90%, ≥ 85% per item)",
        pct(r.question_accuracy)
    );
    let _ = writeln!(s, "check accuracy: {}", pct(r.check_accuracy));
    let _ = writeln!(
        s,
        "yes answers whose quote failed verification: {}",
        pct(r.unverified_share)
    );
    let _ = writeln!(
        s,
        "Spearman's rho, assay's totals vs the hand labels' totals: {} (target ≥ 0.85)",
        r.spearman.map_or("—".into(), |v| format!("{v:.3}"))
    );
    let _ = writeln!(
        s,
        "equal totals with different items, ordered by the items met: {} pair(s)",
        r.equal_totals.len()
    );
    if r.ties.is_empty() {
        let _ = writeln!(
            s,
            "ties the ranking leaves between submissions whose items differ: none"
        );
    }
    for (a, b, t) in &r.ties {
        let _ = writeln!(s, "tie at {t:.1} with different items: {a} and {b}");
    }
    let _ = writeln!(
        s,
        "\n{:<58} {:>7} {:>7}  disagreements (assay's answer)",
        "repository", "assay", "hand"
    );
    for j in &r.submissions {
        let d: Vec<String> = j
            .disagreements
            .iter()
            .map(|(k, ours)| format!("{k}={}", if *ours { "met" } else { "not" }))
            .collect();
        let _ = writeln!(
            s,
            "{:<58} {:>7} {:>7.1}  {}",
            j.repo,
            j.total.map_or("—".into(), |t| format!("{t:.1}")),
            j.hand_total,
            d.join(" ")
        );
    }
    if let Some(t) = &r.timing {
        let _ = writeln!(s, "\ntiming ({}; the same evidence drafted both ways):", t.model);
        for (k, (repo, h, q, f)) in t.runs.iter().enumerate() {
            let _ = writeln!(s, "  {repo}: holistic draft {h} ms, questions {q} ms, feedback {f} ms");
            if let Some(sp) = t.spent.get(k) {
                let kinds = [
                    ("first readings", sp.first),
                    ("later parts", sp.parts),
                    ("second readings", sp.second),
                    ("closer and phrase readings", sp.closer),
                ];
                let line: Vec<String> = kinds
                    .iter()
                    .filter(|(_, t)| t.n > 0)
                    .map(|(what, t)| format!("{what} {} ({} ms, {} new prompt tokens)", t.n, t.ms, t.new_tokens))
                    .collect();
                let _ = writeln!(s, "    {}", line.join(", "));
            }
        }
        let _ = writeln!(
            s,
            "questions / holistic draft, median: {} (target ≤ 1.2); with the feedback draft: {}",
            t.median_ratio.map_or("—".into(), |v| format!("{v:.2}")),
            t.median_ratio_with_feedback.map_or("—".into(), |v| format!("{v:.2}"))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rubric() -> Rubric {
        Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "framing"
title = "F"
description = "d"
weight = 1.0
level = [{ score = 1, descriptor = "a" }, { score = 2, descriptor = "b" }, { score = 3, descriptor = "c" }]
[[criterion.item]]
id = "metric"
text = "t"
ask = "Does the README state a metric?"
from = ["readme"]
[[criterion.item]]
id = "ci"
text = "t"
check = "ci_config"
"#,
        )
        .unwrap()
    }

    #[test]
    fn the_timing_sample_spans_the_shortest_to_the_longest() {
        assert_eq!(spread(33, 5), [0, 8, 16, 24, 32]);
        assert_eq!(spread(33, 3), [0, 16, 32]);
        assert_eq!(spread(10, 1), [5]);
        assert_eq!(spread(4, 9), [0, 1, 2, 3]);
        assert!(spread(0, 3).is_empty() && spread(7, 0).is_empty());
        let s = spread(100, 7);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s[0] == 0 && s[6] == 99, "{s:?}");
    }

    #[test]
    fn the_shipped_labels_cover_every_item_of_the_shipped_rubric_for_twenty_repositories() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let rubric = Rubric::load(&root.join("rubrics/trial-project.toml")).unwrap();
        let manifest = Manifest::load(&root.join("corpus/manifest.toml")).unwrap();
        let labels = Labels::load(&root.join("corpus/items.toml"), &rubric, &manifest).unwrap();
        assert!(labels.repos.len() >= 20, "{} labelled", labels.repos.len());
        // Labels that met nothing would measure nothing.
        let met: usize = labels
            .repos
            .iter()
            .map(|l| l.items.values().filter(|v| **v).count())
            .sum();
        assert!(met > 100, "{met} items met in all");
    }

    #[test]
    fn spearman_is_one_for_the_same_order_and_averages_ties() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(ranks(&[5.0, 1.0, 5.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        let rho = spearman(&[1.0, 2.0, 2.0, 4.0, 5.0], &[1.0, 3.0, 2.0, 4.0, 5.0]).unwrap();
        assert!((rho - 0.9747).abs() < 1e-3, "{rho}");
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None, "a constant side");
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }

    fn item(id: &str, kind: &str, met: bool, claimed_yes: bool, unverified: bool) -> crate::rubric::assess::ItemResult {
        crate::rubric::assess::ItemResult {
            id: id.into(),
            kind: kind.into(),
            text: String::new(),
            met,
            evidence: vec![],
            quote: None,
            flags: if unverified {
                vec!["unverified_quote: not in D2".into()]
            } else {
                vec![]
            },
            note: String::new(),
            claimed: (kind == "ask").then(|| crate::rubric::assess::Claim {
                answer: Some(if claimed_yes { "yes" } else { "no" }.into()),
                evidence: None,
                quote: None,
            }),
        }
    }

    fn drafted(total: Option<f64>, items: Vec<crate::rubric::assess::ItemResult>) -> Graded {
        Graded {
            total,
            order: items.iter().map(|i| i.met).collect(),
            drafts: vec![crate::draft::CriterionDraft {
                criterion: "framing".into(),
                score: None,
                model_score: None,
                band_max: None,
                rationale: String::new(),
                evidence: vec![],
                valid: true,
                flags: vec![],
                items,
                feedback: None,
            }],
        }
    }

    #[test]
    fn items_are_judged_against_the_labels_with_unverified_yeses_and_ties() {
        let r = rubric();
        let labels: Labels = toml::from_str(
            r#"[[repo]]
repo = "a/one"
items = { "framing.metric" = true, "framing.ci" = true }
[[repo]]
repo = "a/two"
items = { "framing.metric" = false, "framing.ci" = true }
[[repo]]
repo = "a/three"
items = { "framing.metric" = false, "framing.ci" = true }
[[repo]]
repo = "a/four"
items = { "framing.metric" = false, "framing.ci" = true }
[[repo]]
repo = "a/undrafted"
items = { "framing.metric" = true, "framing.ci" = true }
"#,
        )
        .unwrap();
        let graded = BTreeMap::from([
            // Right on both.
            (
                "a.one".to_string(),
                drafted(
                    Some(100.0),
                    vec![
                        item("metric", "ask", true, true, false),
                        item("ci", "check", true, false, false),
                    ],
                ),
            ),
            // The model said yes with a quote that was not there: not met, which the label agrees with.
            (
                "a.two".to_string(),
                drafted(
                    Some(50.0),
                    vec![
                        item("metric", "ask", false, true, true),
                        item("ci", "check", true, false, false),
                    ],
                ),
            ),
            // The check missed CI: same total as a.two with different items, ordered by them.
            (
                "a.three".to_string(),
                drafted(
                    Some(50.0),
                    vec![
                        item("metric", "ask", true, true, false),
                        item("ci", "check", false, false, false),
                    ],
                ),
            ),
            // Same total and different items, but the ranking read the same items as a.two's
            // (say, from the checks of an invalid draft): a tie it leaves.
            (
                "a.four".to_string(),
                Graded {
                    order: vec![false, true],
                    ..drafted(
                        Some(50.0),
                        vec![
                            item("metric", "ask", true, true, false),
                            item("ci", "check", false, false, false),
                        ],
                    )
                },
            ),
            ("a.undrafted".to_string(), Graded::default()),
        ]);
        let rep = judge(&r, &labels, &graded);
        assert_eq!(rep.submissions.len(), 4, "an undrafted submission is not judged");
        let metric = &rep.items[0];
        assert_eq!(
            (metric.judged, metric.agree, metric.false_met, metric.missed),
            (4, 2, 2, 0)
        );
        assert_eq!((metric.yes, metric.unverified), (4, 1));
        assert_eq!(rep.question_accuracy, Some(2.0 / 4.0));
        assert_eq!(rep.check_accuracy, Some(2.0 / 4.0));
        assert_eq!(rep.unverified_share, Some(1.0 / 4.0));
        assert_eq!(
            rep.submissions[2].disagreements,
            [("framing.metric".to_string(), true), ("framing.ci".to_string(), false)]
        );
        assert_eq!(rep.submissions[1].hand_total, 50.0);
        assert_eq!(rep.equal_totals, [("a/two".to_string(), "a/three".to_string(), 50.0)]);
        assert_eq!(rep.ties, [("a/two".to_string(), "a/four".to_string(), 50.0)]);
        assert!(rep.spearman.is_some());
    }

    #[test]
    fn hand_totals_follow_the_rubric_rule() {
        let r = rubric();
        assert_eq!(total_of(&r, &|_, _| false), 0.0);
        assert_eq!(total_of(&r, &|_, i| i == "metric"), 50.0);
        assert_eq!(total_of(&r, &|_, _| true), 100.0);
        assert!(holistic(&r).criteria.iter().all(|c| c.items.is_empty()));
    }

    #[test]
    fn labels_must_cover_every_item_of_a_repository_in_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest: Manifest = toml::from_str(
            r#"[[repo]]
repo = "a/b"
commit = "0123456789012345678901234567890123456789"
kind = "go"
outcome = "passed"
"#,
        )
        .unwrap();
        let write = |text: &str| {
            let p = dir.path().join("items.toml");
            std::fs::write(&p, text).unwrap();
            p
        };
        let r = rubric();
        let ok = write("[[repo]]\nrepo = \"a/b\"\nitems = { \"framing.metric\" = true, \"framing.ci\" = false }\n");
        assert_eq!(Labels::load(&ok, &r, &manifest).unwrap().repos.len(), 1);
        let missing = write("[[repo]]\nrepo = \"a/b\"\nitems = { \"framing.metric\" = true }\n");
        let e = Labels::load(&missing, &r, &manifest).unwrap_err().to_string();
        assert!(e.contains("missing framing.ci"), "{e}");
        let unknown = write(
            "[[repo]]\nrepo = \"a/b\"\nitems = { \"framing.metric\" = true, \"framing.ci\" = false, \"x.y\" = true }\n",
        );
        assert!(Labels::load(&unknown, &r, &manifest)
            .unwrap_err()
            .to_string()
            .contains("no item \"x.y\""));
        let stranger = write("[[repo]]\nrepo = \"c/d\"\nitems = {}\n");
        assert!(Labels::load(&stranger, &r, &manifest)
            .unwrap_err()
            .to_string()
            .contains("not in the corpus manifest"));
        assert_eq!(candidate_id("giuliovn/module3 x"), "giuliovn.module3-x");
    }
}

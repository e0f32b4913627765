//! `assay bench llm`: candle in assay against llama.cpp (llama-cpp-python) on the same GGUF,
//! threads and prompt token ids, each in its own process so peak RSS is its own.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::bench::measure;
use crate::draft::{self, Bundle, DraftOptions};
use crate::llm::generate::argmax;
use crate::llm::{Engine, Llm};
use crate::rubric::Rubric;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStats {
    pub load_s: f64,
    pub prompt_tokens: usize,
    pub prompt_s: f64,
    pub gen_tokens: usize,
    pub gen_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftStats {
    pub load_s: f64,
    pub draft_s: f64,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub valid: bool,
    pub prompt_ids: Vec<u32>,
    /// The draft itself.
    pub record: draft::DraftRecord,
}

/// Prompt processing of `ids`, then `n_gen` greedy tokens (end-of-turn ignored).
pub fn run_raw(model: &Path, ids: &[u32], n_gen: usize, n_ctx: usize) -> Result<RunStats> {
    let t = Instant::now();
    let mut llm = Llm::load(model, "bench", n_ctx)?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut logits, _) = llm.model.prefill(ids)?;
    let prompt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..n_gen {
        logits = llm.model.step(argmax(&logits))?;
    }
    Ok(RunStats {
        load_s,
        prompt_tokens: ids.len(),
        prompt_s,
        gen_tokens: n_gen,
        gen_s: t.elapsed().as_secs_f64(),
    })
}

/// One full draft of `bundle`: prompt building, prompt processing, constrained generation,
/// validation (and the retry when invalid).
pub fn run_draft(model: &Path, bundle: &Path, rubric: &Path, n_ctx: usize) -> Result<DraftStats> {
    let rubric = Rubric::load(rubric)?;
    let bundle = Bundle::load(bundle)?;
    let t = Instant::now();
    let engine = Engine::start(model, "bench", n_ctx)?;
    let load_s = t.elapsed().as_secs_f64();
    let options = DraftOptions::default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let t = Instant::now();
    let (record, _) = rt.block_on(draft::draft(&engine, bundle.input(&rubric, &options)))?;
    let draft_s = t.elapsed().as_secs_f64();
    let tok = engine.tok.clone();
    let count = move |s: &str| tok.encode_plain(s).map(|v| v.len()).unwrap_or(s.len());
    let prepared = draft::prepare(
        &rubric,
        &bundle.items,
        bundle.readme_items(),
        &draft::Bundle::input(&bundle, &rubric, &options).flags,
        &count,
        options.evidence_budget,
    );
    let prompt_ids = engine.encode_chat(&prepared.messages)?;
    Ok(DraftStats {
        load_s,
        draft_s,
        prompt_tokens: record.prompt_tokens,
        gen_tokens: record.generated_tokens,
        valid: record.valid,
        prompt_ids,
        record,
    })
}

pub struct BenchArgs {
    pub model: PathBuf,
    pub model_id: String,
    pub python: PathBuf,
    pub gen: usize,
    pub n_ctx: usize,
    pub bundle: PathBuf,
    pub rubric: PathBuf,
}

fn read<T: for<'de> Deserialize<'de>>(p: &Path) -> Result<T> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Runs both sides and prints the comparison.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let script = Path::new("scripts/bench_llamacpp.py");
    if !script.is_file() {
        bail!("run from the repository root ({} is missing)", script.display());
    }
    let ok = std::process::Command::new(&a.python)
        .args(["-c", "import llama_cpp"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "{} cannot import llama_cpp: install llama-cpp-python (e.g. python3 -m venv /opt/llamacpp && \
             /opt/llamacpp/bin/pip install llama-cpp-python==0.3.36, a ~15 minute build) and pass --python",
            a.python.display()
        );
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tmp = tempfile::tempdir()?;
    let exe = std::env::current_exe()?.display().to_string();
    let model = a.model.display().to_string();
    let py = a.python.display().to_string();

    // 1. The full draft (also gives the real ~1,200-token prompt).
    let draft_out = tmp.path().join("draft.json");
    let s = |p: &Path| p.display().to_string();
    let m_draft = measure(&[
        exe.clone(),
        "bench".into(),
        "llm-draft".into(),
        "--model".into(),
        model.clone(),
        "--bundle".into(),
        s(&a.bundle),
        "--rubric".into(),
        s(&a.rubric),
        "--ctx".into(),
        a.n_ctx.to_string(),
        "--stats".into(),
        s(&draft_out),
    ])?;
    let ds: DraftStats = read(&draft_out)?;
    let ids_file = tmp.path().join("ids.json");
    std::fs::write(&ids_file, serde_json::to_string(&ds.prompt_ids)?)?;

    // 2. Prompt processing + fixed-length generation, both sides.
    let ours_out = tmp.path().join("ours.json");
    let m_ours = measure(&[
        exe.clone(),
        "bench".into(),
        "llm-run".into(),
        "--model".into(),
        model.clone(),
        "--ids".into(),
        s(&ids_file),
        "--gen".into(),
        a.gen.to_string(),
        "--ctx".into(),
        a.n_ctx.to_string(),
        "--stats".into(),
        s(&ours_out),
    ])?;
    let ours: RunStats = read(&ours_out)?;
    let theirs_out = tmp.path().join("theirs.json");
    let m_theirs = measure(&[
        py.clone(),
        s(script),
        model.clone(),
        s(&ids_file),
        a.gen.to_string(),
        threads.to_string(),
        a.n_ctx.to_string(),
        s(&theirs_out),
    ])?;
    let theirs: RunStats = read(&theirs_out)?;

    // 3. llama.cpp on the draft's prompt and answer length (unconstrained: a lower bound).
    let replay_out = tmp.path().join("replay.json");
    measure(&[
        py,
        s(script),
        model,
        s(&ids_file),
        ds.gen_tokens.to_string(),
        threads.to_string(),
        a.n_ctx.to_string(),
        s(&replay_out),
    ])?;
    let replay: RunStats = read(&replay_out)?;
    let replay_s = replay.prompt_s + replay.gen_s;

    let tps = |n: usize, s: f64| n as f64 / s;
    println!(
        "model {} — {} threads, context {}, prompt {} tokens, {} generated",
        a.model_id, threads, a.n_ctx, ours.prompt_tokens, a.gen
    );
    println!("{:<28} {:>12} {:>12} {:>8}", "", "assay", "llama.cpp", "ratio");
    let pp = (
        tps(ours.prompt_tokens, ours.prompt_s),
        tps(theirs.prompt_tokens, theirs.prompt_s),
    );
    let tg = (tps(ours.gen_tokens, ours.gen_s), tps(theirs.gen_tokens, theirs.gen_s));
    println!(
        "{:<28} {:>12.1} {:>12.1} {:>8.2}",
        "prompt tokens/s",
        pp.0,
        pp.1,
        pp.0 / pp.1
    );
    println!(
        "{:<28} {:>12.1} {:>12.1} {:>8.2}",
        "generation tokens/s",
        tg.0,
        tg.1,
        tg.0 / tg.1
    );
    println!(
        "{:<28} {:>12.0} {:>12.0} {:>8.2}",
        "peak RSS MiB",
        m_ours.max_rss_mib,
        m_theirs.max_rss_mib,
        m_ours.max_rss_mib / m_theirs.max_rss_mib
    );
    println!(
        "{:<28} {:>12.2} {:>12.2} {:>8.2}",
        "load s",
        ours.load_s,
        theirs.load_s,
        ours.load_s / theirs.load_s
    );
    println!(
        "{:<28} {:>12.2} {:>12.2} {:>8.2}",
        format!("full draft s ({}+{} tok)", ds.prompt_tokens, ds.gen_tokens),
        ds.draft_s,
        replay_s,
        ds.draft_s / replay_s
    );
    println!(
        "draft: valid {}, peak RSS {:.0} MiB (llama.cpp side: prompt + {} tokens, unconstrained)",
        ds.valid, m_draft.max_rss_mib, ds.gen_tokens
    );
    Ok(())
}

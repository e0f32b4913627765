//! Our own transformer forward for llama-family and qwen2 GGUF models.
//!
//! candle supplies the GGUF reader and the quantized matmul kernels; everything between the
//! matmuls (norms, rope, attention, activations) is plain `f32` code over a KV cache that is
//! allocated once for the whole context window. The cache remembers which tokens it holds, so a
//! prompt that shares a prefix with the previous one only processes the new suffix.
//!
//! candle's stock `quantized_llama` appends to its cache with `Tensor::cat` and repeats K/V for
//! grouped-query attention every step; at 1.2k tokens of context that halves generation speed.
//! Here K/V are written in place and grouped heads index the shared K/V directly.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use rayon::prelude::*;

use super::gguf::{dtype_name, Gguf};

/// Tokens processed per forward call while reading a prompt (bounds activation memory).
const PREFILL_CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (llama's GGUF layout).
    Interleaved,
    /// Halves (GPT-NeoX; qwen2).
    Neox,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub arch: String,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub eps: f32,
    pub rope_base: f32,
    pub rope: RopeStyle,
    pub ctx_train: usize,
    pub vocab: usize,
}

impl Config {
    fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.architecture()?.to_string();
        let rope = match arch.as_str() {
            "llama" => RopeStyle::Interleaved,
            "qwen2" => RopeStyle::Neox,
            other => bail!(
                "{}: architecture {other:?} is not supported (supported: llama, qwen2)",
                g.path.display()
            ),
        };
        let k = |s: &str| format!("{arch}.{s}");
        let n_embd = g.require_u32(&k("embedding_length"))? as usize;
        let n_head = g.require_u32(&k("attention.head_count"))? as usize;
        let n_kv_head = g.u32(&k("attention.head_count_kv")).map_or(n_head, |v| v as usize);
        let head_dim = g
            .u32(&k("attention.key_length"))
            .map_or(n_embd / n_head, |v| v as usize);
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 {
            bail!("{}: head counts {n_head}/{n_kv_head} do not divide", g.path.display());
        }
        let vocab = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map_or(0, Vec::len);
        Ok(Config {
            n_embd,
            n_layer: g.require_u32(&k("block_count"))? as usize,
            n_head,
            n_kv_head,
            head_dim,
            n_ff: g.require_u32(&k("feed_forward_length"))? as usize,
            eps: g.f32(&k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            rope_base: g.f32(&k("rope.freq_base")).unwrap_or(10_000.0),
            rope,
            ctx_train: g.u32(&k("context_length")).map_or(4096, |v| v as usize),
            vocab,
            arch,
        })
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    wo: QMatMul,
    ffn_norm: Vec<f32>,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
    /// K and V for every cached position: `[kv_head][pos][head_dim]`.
    k_cache: Vec<f32>,
    v_cache: Vec<f32>,
}

/// Load-time facts reported by `assay model info` and the benchmark.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    pub requantised: Vec<String>,
    pub load_ms: u64,
    pub kv_cache_bytes: usize,
    pub context: usize,
}

pub struct Transformer {
    pub cfg: Config,
    embd: Arc<QTensor>,
    layers: Vec<Layer>,
    out_norm: Vec<f32>,
    output: QMatMul,
    /// `[pos][head_dim / 2]`
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// Context window the cache was allocated for.
    pub n_ctx: usize,
    /// Tokens whose K/V are in the cache, in order.
    cached: Vec<u32>,
    pub report: LoadReport,
}

/// Tensor types candle 0.11 has no SIMD dot product for; they are requantised to Q8_0 at load.
fn needs_requant(t: GgmlDType) -> bool {
    matches!(t, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Reads tensors by name, requantising the types without fast kernels.
struct Loader<'a> {
    g: &'a Gguf,
    reader: BufReader<File>,
    requantised: Vec<String>,
}

impl Loader<'_> {
    fn has(&self, name: &str) -> bool {
        self.g.content.tensor_infos.contains_key(name)
    }

    fn q(&mut self, name: &str) -> Result<QTensor> {
        let dev = Device::Cpu;
        let t = self
            .g
            .content
            .tensor(&mut self.reader, name, &dev)
            .with_context(|| format!("{}: tensor {name}", self.g.path.display()))?;
        if needs_requant(t.dtype()) && t.rank() == 2 {
            let from = dtype_name(t.dtype());
            let q = QTensor::quantize(&t.dequantize(&dev)?, GgmlDType::Q8_0)?;
            self.requantised.push(format!("{name} {from}->Q8_0"));
            return Ok(q);
        }
        Ok(t)
    }

    fn vec(&mut self, name: &str) -> Result<Vec<f32>> {
        let t = self.q(name)?;
        Ok(t.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn optional_vec(&mut self, name: &str) -> Result<Option<Vec<f32>>> {
        if self.has(name) {
            Ok(Some(self.vec(name)?))
        } else {
            Ok(None)
        }
    }
}

impl Transformer {
    /// Loads weights from `g` and allocates the KV cache for `n_ctx` tokens (capped at the
    /// model's training context).
    pub fn load(g: &Gguf, n_ctx: usize) -> Result<Self> {
        let started = std::time::Instant::now();
        let cfg = Config::from_gguf(g)?;
        let n_ctx = n_ctx.min(cfg.ctx_train).max(16);
        let mut report = LoadReport {
            context: n_ctx,
            ..Default::default()
        };
        let mut ld = Loader {
            g,
            reader: BufReader::new(File::open(&g.path)?),
            requantised: Vec::new(),
        };
        let embd = Arc::new(ld.q("token_embd.weight")?);
        let kv_len = cfg.n_kv_head * n_ctx * cfg.head_dim;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = |s: &str| format!("blk.{i}.{s}");
            let bq = ld.optional_vec(&p("attn_q.bias"))?;
            let bk = ld.optional_vec(&p("attn_k.bias"))?;
            let bv = ld.optional_vec(&p("attn_v.bias"))?;
            layers.push(Layer {
                attn_norm: ld.vec(&p("attn_norm.weight"))?,
                ffn_norm: ld.vec(&p("ffn_norm.weight"))?,
                bq,
                bk,
                bv,
                wq: QMatMul::from_qtensor(ld.q(&p("attn_q.weight"))?)?,
                wk: QMatMul::from_qtensor(ld.q(&p("attn_k.weight"))?)?,
                wv: QMatMul::from_qtensor(ld.q(&p("attn_v.weight"))?)?,
                wo: QMatMul::from_qtensor(ld.q(&p("attn_output.weight"))?)?,
                w_gate: QMatMul::from_qtensor(ld.q(&p("ffn_gate.weight"))?)?,
                w_up: QMatMul::from_qtensor(ld.q(&p("ffn_up.weight"))?)?,
                w_down: QMatMul::from_qtensor(ld.q(&p("ffn_down.weight"))?)?,
                k_cache: vec![0.0; kv_len],
                v_cache: vec![0.0; kv_len],
            });
        }
        let out_norm = ld.vec("output_norm.weight")?;
        let output = if ld.has("output.weight") {
            QMatMul::from_qtensor(ld.q("output.weight")?)?
        } else {
            QMatMul::from_arc(embd.clone())?
        };
        let rope_factors = ld.optional_vec("rope_freqs.weight")?;
        report.requantised = ld.requantised;
        let (cos, sin) = rope_tables(cfg.head_dim, n_ctx, cfg.rope_base, rope_factors.as_deref());
        report.kv_cache_bytes = 2 * kv_len * cfg.n_layer * std::mem::size_of::<f32>();
        report.load_ms = started.elapsed().as_millis() as u64;
        Ok(Transformer {
            cfg,
            embd,
            layers,
            out_norm,
            output,
            cos,
            sin,
            n_ctx,
            cached: Vec::new(),
            report,
        })
    }

    /// Forgets the cache (the next prompt is processed from scratch).
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// Processes `prompt`, reusing the longest cached prefix, and returns the logits after its last
    /// token plus how many tokens were reused.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize)> {
        if prompt.is_empty() {
            bail!("empty prompt");
        }
        if prompt.len() > self.n_ctx {
            bail!(
                "prompt of {} tokens exceeds the context window of {}",
                prompt.len(),
                self.n_ctx
            );
        }
        // Keep at least one token to run, so there are logits to return.
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.cached.truncate(common);
        let mut logits = Vec::new();
        for chunk in prompt[common..].chunks(PREFILL_CHUNK) {
            logits = self.forward(chunk)?;
        }
        Ok((logits, common))
    }

    /// Appends one token and returns the logits after it.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        if self.cached.len() >= self.n_ctx {
            bail!("context window of {} tokens is full", self.n_ctx);
        }
        self.forward(&[token])
    }

    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let m = tokens.len();
        let start = self.cached.len();
        if start + m > self.n_ctx {
            bail!("context window of {} tokens is full", self.n_ctx);
        }
        let cfg = self.cfg.clone();
        let (d, hd) = (cfg.n_embd, cfg.head_dim);
        let ids = Tensor::from_vec(tokens.to_vec(), m, &Device::Cpu)?;
        let mut x = self.embd.embedding(&ids)?.flatten_all()?.to_vec1::<f32>()?;
        let mut h = vec![0f32; m * d];
        for layer in &mut self.layers {
            rms_norm(&x, &layer.attn_norm, cfg.eps, d, &mut h);
            let hq = Tensor::from_slice(&h, (m, d), &Device::Cpu)?;
            let mut q = matmul(&layer.wq, &hq)?;
            let mut k = matmul(&layer.wk, &hq)?;
            let mut v = matmul(&layer.wv, &hq)?;
            add_bias(&mut q, layer.bq.as_deref());
            add_bias(&mut k, layer.bk.as_deref());
            add_bias(&mut v, layer.bv.as_deref());
            apply_rope(&mut q, cfg.n_head, hd, start, &self.cos, &self.sin, cfg.rope);
            apply_rope(&mut k, cfg.n_kv_head, hd, start, &self.cos, &self.sin, cfg.rope);
            // Write K/V into the cache in place.
            for t in 0..m {
                for kh in 0..cfg.n_kv_head {
                    let src = (t * cfg.n_kv_head + kh) * hd;
                    let dst = (kh * self.n_ctx + start + t) * hd;
                    layer.k_cache[dst..dst + hd].copy_from_slice(&k[src..src + hd]);
                    layer.v_cache[dst..dst + hd].copy_from_slice(&v[src..src + hd]);
                }
            }
            let attn = attention(&q, &layer.k_cache, &layer.v_cache, &cfg, self.n_ctx, start, m);
            let o = matmul(&layer.wo, &Tensor::from_vec(attn, (m, cfg.n_head * hd), &Device::Cpu)?)?;
            for (xi, oi) in x.iter_mut().zip(&o) {
                *xi += oi;
            }
            rms_norm(&x, &layer.ffn_norm, cfg.eps, d, &mut h);
            let hf = Tensor::from_slice(&h, (m, d), &Device::Cpu)?;
            let gate = matmul(&layer.w_gate, &hf)?;
            let up = matmul(&layer.w_up, &hf)?;
            let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect();
            let down = matmul(&layer.w_down, &Tensor::from_vec(act, (m, cfg.n_ff), &Device::Cpu)?)?;
            for (xi, di) in x.iter_mut().zip(&down) {
                *xi += di;
            }
        }
        self.cached.extend_from_slice(tokens);
        // Logits for the last position only.
        let last = &x[(m - 1) * d..];
        let mut normed = vec![0f32; d];
        rms_norm(last, &self.out_norm, cfg.eps, d, &mut normed);
        let logits = matmul(&self.output, &Tensor::from_vec(normed, (1, d), &Device::Cpu)?)?;
        Ok(logits)
    }
}

fn matmul(w: &QMatMul, x: &Tensor) -> Result<Vec<f32>> {
    Ok(w.forward(x)?.flatten_all()?.to_vec1::<f32>()?)
}

fn add_bias(x: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in x.chunks_mut(b.len()) {
            for (xi, bi) in row.iter_mut().zip(b) {
                *xi += bi;
            }
        }
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32, d: usize, out: &mut [f32]) {
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let ss: f32 = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let scale = 1.0 / (ss + eps).sqrt();
        for ((oi, xi), wi) in o.iter_mut().zip(row).zip(w) {
            *oi = xi * scale * wi;
        }
    }
}

fn rope_tables(hd: usize, n_ctx: usize, base: f32, factors: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
    let half = hd / 2;
    let inv: Vec<f64> = (0..half)
        .map(|i| {
            let f = 1.0 / (base as f64).powf(2.0 * i as f64 / hd as f64);
            match factors {
                Some(fs) if i < fs.len() => f / fs[i] as f64,
                _ => f,
            }
        })
        .collect();
    let mut cos = Vec::with_capacity(n_ctx * half);
    let mut sin = Vec::with_capacity(n_ctx * half);
    for p in 0..n_ctx {
        for f in &inv {
            let a = p as f64 * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    (cos, sin)
}

/// Rotates each head of each row; row `t` is at position `start + t`.
fn apply_rope(x: &mut [f32], heads: usize, hd: usize, start: usize, cos: &[f32], sin: &[f32], style: RopeStyle) {
    let half = hd / 2;
    for (t, row) in x.chunks_mut(heads * hd).enumerate() {
        let c = &cos[(start + t) * half..(start + t + 1) * half];
        let s = &sin[(start + t) * half..(start + t + 1) * half];
        for head in row.chunks_mut(hd) {
            match style {
                RopeStyle::Interleaved => {
                    for i in 0..half {
                        let (a, b) = (head[2 * i], head[2 * i + 1]);
                        head[2 * i] = a * c[i] - b * s[i];
                        head[2 * i + 1] = a * s[i] + b * c[i];
                    }
                }
                RopeStyle::Neox => {
                    for i in 0..half {
                        let (a, b) = (head[i], head[i + half]);
                        head[i] = a * c[i] - b * s[i];
                        head[i + half] = a * s[i] + b * c[i];
                    }
                }
            }
        }
    }
}

/// Causal attention of `m` query rows (positions `start..start+m`) against the cache; returns
/// `[m][n_head * head_dim]`.
fn attention(q: &[f32], kc: &[f32], vc: &[f32], cfg: &Config, n_ctx: usize, start: usize, m: usize) -> Vec<f32> {
    let hd = cfg.head_dim;
    let group = cfg.n_head / cfg.n_kv_head;
    let scale = 1.0 / (hd as f32).sqrt();
    let per_head: Vec<Vec<f32>> = (0..cfg.n_head)
        .into_par_iter()
        .map(|h| {
            let kh = h / group;
            let kbase = kh * n_ctx * hd;
            let mut out = vec![0f32; m * hd];
            let mut scores = vec![0f32; start + m];
            for t in 0..m {
                let qrow = &q[(t * cfg.n_head + h) * hd..(t * cfg.n_head + h + 1) * hd];
                let len = start + t + 1;
                let mut max = f32::NEG_INFINITY;
                for (p, s) in scores[..len].iter_mut().enumerate() {
                    let krow = &kc[kbase + p * hd..kbase + (p + 1) * hd];
                    let dot: f32 = qrow.iter().zip(krow).map(|(a, b)| a * b).sum();
                    *s = dot * scale;
                    max = max.max(*s);
                }
                let mut sum = 0f32;
                for s in &mut scores[..len] {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let o = &mut out[t * hd..(t + 1) * hd];
                for (p, s) in scores[..len].iter().enumerate() {
                    let w = s / sum;
                    let vrow = &vc[kbase + p * hd..kbase + (p + 1) * hd];
                    for (oi, vi) in o.iter_mut().zip(vrow) {
                        *oi += w * vi;
                    }
                }
            }
            out
        })
        .collect();
    let mut out = vec![0f32; m * cfg.n_head * hd];
    for (h, ho) in per_head.iter().enumerate() {
        for t in 0..m {
            out[(t * cfg.n_head + h) * hd..(t * cfg.n_head + h + 1) * hd].copy_from_slice(&ho[t * hd..(t + 1) * hd]);
        }
    }
    out
}

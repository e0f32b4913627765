//! Our own transformer forward for llama-family, qwen2 and gemma3 GGUF models.
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
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, QuantizedType};
use candle_core::{Device, Module, Tensor};

use super::gguf::{dtype_name, Gguf};

/// Rows per chunk while reading a prompt (bounds activation memory).
const PREFILL_CHUNK: usize = 256;
/// From this many new tokens on, a forward pass uses the tiled matrices (rebuilding them costs
/// about as much as a few dozen tokens of compact matmuls).
const TILED_MIN_TOKENS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (llama's GGUF layout).
    Interleaved,
    /// Halves (GPT-NeoX; qwen2).
    Neox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU-gated feed-forward (llama, qwen2).
    Silu,
    /// GELU (tanh approximation) gated (gemma).
    GeluTanh,
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
    pub act: Activation,
    /// Softmax scale of the attention scores.
    pub attn_scale: f32,
    /// Token embeddings are multiplied by this (gemma: sqrt(n_embd)).
    pub embed_scale: Option<f32>,
    /// Sliding-window attention: a key at distance `window` or more from the query is masked.
    pub sliding_window: Option<usize>,
    /// Every `swa_period`-th layer (1-based) attends globally; the others slide.
    pub swa_period: usize,
    /// RoPE base of sliding layers (gemma3: 10 000, against 1 000 000 for global ones).
    pub rope_base_local: f32,
    /// Linear RoPE scaling of global layers (positions divided by it).
    pub rope_scale: f32,
}

impl Config {
    /// Whether layer `i` uses sliding-window attention.
    pub fn slides(&self, i: usize) -> bool {
        self.sliding_window.is_some() && !(i + 1).is_multiple_of(self.swa_period)
    }
}

impl Config {
    fn from_gguf(g: &Gguf) -> Result<Self> {
        let arch = g.architecture()?.to_string();
        let rope = match arch.as_str() {
            "llama" => RopeStyle::Interleaved,
            "qwen2" | "gemma3" => RopeStyle::Neox,
            other => bail!(
                "{}: architecture {other:?} is not supported (supported: llama, qwen2, gemma3)",
                g.path.display()
            ),
        };
        let gemma = arch == "gemma3";
        let k = |s: &str| format!("{arch}.{s}");
        let n_embd = g.require_u32(&k("embedding_length"))? as usize;
        let n_head = g.require_u32(&k("attention.head_count"))? as usize;
        let n_kv_head = g.u32(&k("attention.head_count_kv")).map_or(n_head, |v| v as usize);
        let head_dim = g
            .u32(&k("attention.key_length"))
            .map_or(n_embd / n_head, |v| v as usize);
        if n_head == 0 || n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) {
            bail!("{}: head counts {n_head}/{n_kv_head} do not divide", g.path.display());
        }
        let vocab = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map_or(0, Vec::len);
        let rope_base = g.f32(&k("rope.freq_base")).unwrap_or(10_000.0);
        let rope_scale = match g.string(&k("rope.scaling.type")) {
            Some("linear") | None => g.f32(&k("rope.scaling.factor")).filter(|f| *f > 0.0).unwrap_or(1.0),
            Some(other) => bail!(
                "{}: rope scaling {other:?} is not supported (supported: linear)",
                g.path.display()
            ),
        };
        Ok(Config {
            n_embd,
            n_layer: g.require_u32(&k("block_count"))? as usize,
            n_head,
            n_kv_head,
            head_dim,
            n_ff: g.require_u32(&k("feed_forward_length"))? as usize,
            eps: g.f32(&k("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5),
            rope_base,
            rope,
            ctx_train: g.u32(&k("context_length")).map_or(4096, |v| v as usize),
            vocab,
            act: if gemma { Activation::GeluTanh } else { Activation::Silu },
            // Gemma 3 scales queries by 1/sqrt(query_pre_attn_scalar), which is head_dim for every
            // size but 27B (n_embd / n_head there); llama.cpp keys that on the model size.
            attn_scale: if gemma && n_embd == 5376 && n_head == 32 {
                1.0 / ((n_embd / n_head) as f32).sqrt()
            } else {
                1.0 / (head_dim as f32).sqrt()
            },
            embed_scale: gemma.then(|| (n_embd as f32).sqrt()),
            sliding_window: if gemma {
                g.u32(&k("attention.sliding_window")).map(|w| w as usize)
            } else {
                None
            },
            swa_period: 6,
            rope_base_local: if gemma { 10_000.0 } else { rope_base },
            rope_scale,
            arch,
        })
    }
}

/// A weight matrix `[n][k]` in the GGUF's own block layout, multiplied with candle's `vec_dot`
/// kernels: generation reads the fewest bytes per token this way.
///
/// For long prompts, matrices whose type has one of candle's tiled x86 kernels (Q4_K, Q6_K, Q8_0)
/// are read again from the file, one layer at a time, as `QMatMul`s that candle repacks into
/// wider tiles (see [`Transformer::prefill`]); the tiles are dropped after the layer, so they never
/// sit in memory next to the compact copy.
struct Weight {
    w: Box<dyn QuantizedType>,
    n: usize,
    k: usize,
    /// Tensor name in the GGUF, when the tiled kernels apply to it.
    tiled: Option<String>,
}

impl Weight {
    fn new(name: &str, t: QTensor, requantised: bool) -> Result<Self> {
        let (n, k) = t.shape().dims2()?;
        let tileable = matches!(t.dtype(), GgmlDType::Q4K | GgmlDType::Q6K | GgmlDType::Q8_0)
            && n.is_multiple_of(16)
            && k.is_multiple_of(256)
            && !requantised;
        let w = t.dtype().from_data(t.data()?);
        Ok(Weight {
            w,
            n,
            k,
            tiled: tileable.then(|| name.to_string()),
        })
    }

    /// `x` is `[m][k]`; returns `[m][n]`, through `tiled` when given.
    fn mm(&self, x: &[f32], m: usize, tiled: Option<&QMatMul>) -> Result<Vec<f32>> {
        if let Some(q) = tiled {
            return matmul(q, &Tensor::from_slice(x, (m, self.k), &Device::Cpu)?);
        }
        let mut dst = vec![0f32; m * self.n];
        self.w.matmul_t((m, self.k, self.n), x, &mut dst)?;
        Ok(dst)
    }
}

/// One layer's tiled matrices for a long prompt (`None` where the compact path is used).
#[derive(Default)]
struct TiledLayer {
    mats: [Option<QMatMul>; 7],
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: Weight,
    wk: Weight,
    wv: Weight,
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    wo: Weight,
    ffn_norm: Vec<f32>,
    w_gate: Weight,
    w_up: Weight,
    w_down: Weight,
    /// Per-head RMS norms of queries and keys (gemma3).
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    /// Norms of the attention and feed-forward outputs before the residual add (gemma3).
    post_attn_norm: Option<Vec<f32>>,
    post_ffw_norm: Option<Vec<f32>>,
    /// Sliding-window attention (and the local RoPE table).
    slides: bool,
    /// K and V for every cached position: `[kv_head][pos][head_dim]`.
    k_cache: Vec<f32>,
    v_cache: Vec<f32>,
}

pub struct Transformer {
    pub cfg: Config,
    /// The GGUF the weights came from (tiled matrices are re-read from it for long prompts).
    src: Arc<Gguf>,
    embd: Arc<QTensor>,
    layers: Vec<Layer>,
    out_norm: Vec<f32>,
    /// `None`: tied to the token embeddings.
    output: Option<Weight>,
    tied_output: Option<QMatMul>,
    /// `[pos][head_dim / 2]`, for global layers and (gemma3) sliding ones.
    rope_global: Rope,
    rope_local: Option<Rope>,
    /// Context window the cache was allocated for.
    pub n_ctx: usize,
    /// Tokens whose K/V are in the cache, in order.
    cached: Vec<u32>,
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

    fn weight(&mut self, name: &str) -> Result<Weight> {
        let before = self.requantised.len();
        let t = self.q(name)?;
        Weight::new(name, t, self.requantised.len() > before)
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
    pub fn load(src: Arc<Gguf>, n_ctx: usize) -> Result<Self> {
        let g = src.as_ref();
        let started = std::time::Instant::now();
        let cfg = Config::from_gguf(g)?;
        let n_ctx = n_ctx.min(cfg.ctx_train).max(16);
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
                wq: ld.weight(&p("attn_q.weight"))?,
                wk: ld.weight(&p("attn_k.weight"))?,
                wv: ld.weight(&p("attn_v.weight"))?,
                wo: ld.weight(&p("attn_output.weight"))?,
                w_gate: ld.weight(&p("ffn_gate.weight"))?,
                w_up: ld.weight(&p("ffn_up.weight"))?,
                w_down: ld.weight(&p("ffn_down.weight"))?,
                q_norm: ld.optional_vec(&p("attn_q_norm.weight"))?,
                k_norm: ld.optional_vec(&p("attn_k_norm.weight"))?,
                post_attn_norm: ld.optional_vec(&p("post_attention_norm.weight"))?,
                post_ffw_norm: ld.optional_vec(&p("post_ffw_norm.weight"))?,
                slides: cfg.slides(i),
                k_cache: vec![0.0; kv_len],
                v_cache: vec![0.0; kv_len],
            });
        }
        let out_norm = ld.vec("output_norm.weight")?;
        let (output, tied_output) = if ld.has("output.weight") {
            (Some(ld.weight("output.weight")?), None)
        } else {
            (None, Some(QMatMul::from_arc(embd.clone())?))
        };
        let rope_factors = ld.optional_vec("rope_freqs.weight")?;
        let rope_global = Rope::new(
            cfg.head_dim,
            n_ctx,
            cfg.rope_base,
            cfg.rope_scale,
            rope_factors.as_deref(),
        );
        let rope_local = cfg
            .sliding_window
            .map(|_| Rope::new(cfg.head_dim, n_ctx, cfg.rope_base_local, 1.0, None));
        tracing::debug!(
            model = %g.path.display(),
            load_ms = started.elapsed().as_millis() as u64,
            kv_cache_bytes = 2 * kv_len * cfg.n_layer * std::mem::size_of::<f32>(),
            requantised = ?ld.requantised,
            "model loaded"
        );
        Ok(Transformer {
            src: src.clone(),
            cfg,
            embd,
            layers,
            out_norm,
            output,
            tied_output,
            rope_global,
            rope_local,
            n_ctx,
            cached: Vec::new(),
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
        let logits = self.forward(&prompt[common..])?;
        Ok((logits, common))
    }

    /// Appends one token and returns the logits after it.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        if self.cached.len() >= self.n_ctx {
            bail!("context window of {} tokens is full", self.n_ctx);
        }
        self.forward(&[token])
    }

    /// Reads layer `li`'s tileable matrices again from the file as `QMatMul`s.
    fn tiled_layer(&self, li: usize) -> Result<TiledLayer> {
        let mut reader = BufReader::new(File::open(&self.src.path)?);
        let mut out = TiledLayer::default();
        let l = &self.layers[li];
        for (slot, w) in out.mats.iter_mut().zip(l.weights()) {
            if let Some(name) = &w.tiled {
                let t = self.src.content.tensor(&mut reader, name, &Device::Cpu)?;
                *slot = Some(QMatMul::from_qtensor(t)?);
            }
        }
        Ok(out)
    }

    /// Runs `tokens` (positions `cached.len()..`) through every layer and returns the logits after
    /// the last one. Long inputs go layer by layer (all chunks of a layer, then the next layer),
    /// so each layer's tiled matrices are built once and dropped before the next.
    fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let m = tokens.len();
        let start = self.cached.len();
        if start + m > self.n_ctx {
            bail!("context window of {} tokens is full", self.n_ctx);
        }
        let d = self.cfg.n_embd;
        let ids = Tensor::from_vec(tokens.to_vec(), m, &Device::Cpu)?;
        let mut x = self.embd.embedding(&ids)?.flatten_all()?.to_vec1::<f32>()?;
        if let Some(scale) = self.cfg.embed_scale {
            x.iter_mut().for_each(|v| *v *= scale);
        }
        let tiled = m >= TILED_MIN_TOKENS;
        for li in 0..self.layers.len() {
            let mats = if tiled { Some(self.tiled_layer(li)?) } else { None };
            let rope = match (&self.rope_local, self.layers[li].slides) {
                (Some(local), true) => local,
                _ => &self.rope_global,
            };
            for (ci, chunk) in x.chunks_mut(PREFILL_CHUNK * d).enumerate() {
                let rows = chunk.len() / d;
                layer_forward(
                    &mut self.layers[li],
                    &self.cfg,
                    rope,
                    self.n_ctx,
                    chunk,
                    start + ci * PREFILL_CHUNK,
                    rows,
                    mats.as_ref(),
                )?;
            }
        }
        self.cached.extend_from_slice(tokens);
        // Logits for the last position only.
        let last = &x[(m - 1) * d..];
        let mut normed = vec![0f32; d];
        rms_norm(last, &self.out_norm, self.cfg.eps, d, &mut normed);
        match (&self.output, &self.tied_output) {
            (Some(w), _) => w.mm(&normed, 1, None),
            (None, Some(t)) => matmul(t, &Tensor::from_vec(normed, (1, d), &Device::Cpu)?),
            (None, None) => bail!("the model has no output projection"),
        }
    }
}

impl Layer {
    /// The matrices in [`TiledLayer`] order.
    fn weights(&self) -> [&Weight; 7] {
        [
            &self.wq,
            &self.wk,
            &self.wv,
            &self.wo,
            &self.w_gate,
            &self.w_up,
            &self.w_down,
        ]
    }
}

/// One layer over `m` rows of `x` at positions `pos..pos + m` (K/V of earlier positions are in the
/// cache already).
#[allow(clippy::too_many_arguments)]
fn layer_forward(
    layer: &mut Layer,
    cfg: &Config,
    rope: &Rope,
    n_ctx: usize,
    x: &mut [f32],
    pos: usize,
    m: usize,
    tiled: Option<&TiledLayer>,
) -> Result<()> {
    let (d, hd) = (cfg.n_embd, cfg.head_dim);
    let t = |i: usize| tiled.and_then(|t| t.mats[i].as_ref());
    let mut h = vec![0f32; m * d];
    rms_norm(x, &layer.attn_norm, cfg.eps, d, &mut h);
    let mut q = layer.wq.mm(&h, m, t(0))?;
    let mut k = layer.wk.mm(&h, m, t(1))?;
    let mut v = layer.wv.mm(&h, m, t(2))?;
    add_bias(&mut q, layer.bq.as_deref());
    add_bias(&mut k, layer.bk.as_deref());
    add_bias(&mut v, layer.bv.as_deref());
    if let Some(w) = &layer.q_norm {
        q = normed(&q, w, cfg.eps, hd);
    }
    if let Some(w) = &layer.k_norm {
        k = normed(&k, w, cfg.eps, hd);
    }
    rope.apply(&mut q, cfg.n_head, hd, pos, cfg.rope);
    rope.apply(&mut k, cfg.n_kv_head, hd, pos, cfg.rope);
    // Write K/V into the cache in place.
    for r in 0..m {
        for kh in 0..cfg.n_kv_head {
            let src = (r * cfg.n_kv_head + kh) * hd;
            let dst = (kh * n_ctx + pos + r) * hd;
            layer.k_cache[dst..dst + hd].copy_from_slice(&k[src..src + hd]);
            layer.v_cache[dst..dst + hd].copy_from_slice(&v[src..src + hd]);
        }
    }
    let window = if layer.slides { cfg.sliding_window } else { None };
    let attn = attention(&q, &layer.k_cache, &layer.v_cache, cfg, n_ctx, pos, m, window);
    let mut o = layer.wo.mm(&attn, m, t(3))?;
    if let Some(w) = &layer.post_attn_norm {
        o = normed(&o, w, cfg.eps, d);
    }
    for (xi, oi) in x.iter_mut().zip(&o) {
        *xi += oi;
    }
    rms_norm(x, &layer.ffn_norm, cfg.eps, d, &mut h);
    let gate = layer.w_gate.mm(&h, m, t(4))?;
    let up = layer.w_up.mm(&h, m, t(5))?;
    let act: Vec<f32> = match cfg.act {
        Activation::Silu => gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect(),
        Activation::GeluTanh => gate.iter().zip(&up).map(|(g, u)| gelu_tanh(*g) * u).collect(),
    };
    let mut down = layer.w_down.mm(&act, m, t(6))?;
    if let Some(w) = &layer.post_ffw_norm {
        down = normed(&down, w, cfg.eps, d);
    }
    for (xi, di) in x.iter_mut().zip(&down) {
        *xi += di;
    }
    Ok(())
}

/// Dot product with eight independent accumulators, so the compiler keeps it in SIMD registers
/// (a plain `zip().sum()` is a serial chain of float adds it may not reorder).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().expect("8"), y.try_into().expect("8"));
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
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

/// GELU, tanh approximation (as ggml's `gelu` and gemma's `gelu_pytorch_tanh`).
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// RMS norm of each `d`-wide row of `x` into a new buffer.
fn normed(x: &[f32], w: &[f32], eps: f32, d: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    rms_norm(x, w, eps, d, &mut out);
    out
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

/// RoPE cos/sin tables, `[pos][head_dim / 2]`.
struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// `scale`: linear position scaling; `factors`: per-frequency divisors (llama 3's rope_freqs).
    fn new(hd: usize, n_ctx: usize, base: f32, scale: f32, factors: Option<&[f32]>) -> Self {
        let half = hd / 2;
        let inv: Vec<f64> = (0..half)
            .map(|i| {
                let f = 1.0 / (base as f64).powf(2.0 * i as f64 / hd as f64) / scale as f64;
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
        Rope { cos, sin }
    }

    /// Rotates each head of each row; row `t` is at position `start + t`.
    fn apply(&self, x: &mut [f32], heads: usize, hd: usize, start: usize, style: RopeStyle) {
        let half = hd / 2;
        for (t, row) in x.chunks_mut(heads * hd).enumerate() {
            let c = &self.cos[(start + t) * half..(start + t + 1) * half];
            let s = &self.sin[(start + t) * half..(start + t + 1) * half];
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
}

/// Query rows per attention work item.
const ATTN_ROWS: usize = 16;

/// Causal attention of `m` query rows (positions `start..start+m`) against the cache; returns
/// `[m][n_head * head_dim]`. With a `window`, a query at position `p` sees keys `p - window + 1 ..= p`.
///
/// Work items are (kv head, block of rows), run on candle's worker pool (the one its matmuls
/// use, so the two never compete for cores). Each K and V row is read once for all the query
/// heads that share it (grouped-query attention) rather than once per query head.
#[allow(clippy::too_many_arguments)]
fn attention(
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    cfg: &Config,
    n_ctx: usize,
    start: usize,
    m: usize,
    window: Option<usize>,
) -> Vec<f32> {
    let hd = cfg.head_dim;
    let group = cfg.n_head / cfg.n_kv_head;
    let scale = cfg.attn_scale;
    let row_blocks = m.div_ceil(ATTN_ROWS);
    let items = cfg.n_kv_head * row_blocks;
    let results: Vec<std::sync::Mutex<Vec<f32>>> = (0..items).map(|_| std::sync::Mutex::new(Vec::new())).collect();
    let work = |item: usize| {
        let (kh, rb) = (item / row_blocks, item % row_blocks);
        let (r0, r1) = (rb * ATTN_ROWS, ((rb + 1) * ATTN_ROWS).min(m));
        let kbase = kh * n_ctx * hd;
        let heads = kh * group..(kh + 1) * group;
        // [row][head in group][hd]
        let mut out = vec![0f32; (r1 - r0) * group * hd];
        let mut scores = vec![0f32; group * (start + r1)];
        for t in r0..r1 {
            let end = start + t + 1;
            let lo = window.map_or(0, |w| end.saturating_sub(w));
            let len = end - lo;
            let qrow = |g: usize| {
                let h = heads.start + g;
                &q[(t * cfg.n_head + h) * hd..(t * cfg.n_head + h + 1) * hd]
            };
            for p in 0..len {
                let at = kbase + (lo + p) * hd;
                let krow = &kc[at..at + hd];
                for g in 0..group {
                    scores[g * len + p] = dot(qrow(g), krow) * scale;
                }
            }
            for g in 0..group {
                let s = &mut scores[g * len..(g + 1) * len];
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for x in s.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                let inv = 1.0 / sum;
                for x in s.iter_mut() {
                    *x *= inv;
                }
            }
            let o = &mut out[(t - r0) * group * hd..(t - r0 + 1) * group * hd];
            for p in 0..len {
                let at = kbase + (lo + p) * hd;
                let vrow = &vc[at..at + hd];
                for g in 0..group {
                    let w = scores[g * len + p];
                    for (oi, vi) in o[g * hd..(g + 1) * hd].iter_mut().zip(vrow) {
                        *oi += w * vi;
                    }
                }
            }
        }
        *results[item].lock().expect("attention slot") = out;
    };
    candle_core::utils::barrier_pool().execute_chunked(items, |range| {
        for item in range {
            work(item);
        }
    });
    let mut out = vec![0f32; m * cfg.n_head * hd];
    for (item, slot) in results.into_iter().enumerate() {
        let (kh, rb) = (item / row_blocks, item % row_blocks);
        let r0 = rb * ATTN_ROWS;
        let block = slot.into_inner().expect("attention slot");
        for (i, row) in block.chunks(group * hd).enumerate() {
            let t = r0 + i;
            let dst = (t * cfg.n_head + kh * group) * hd;
            out[dst..dst + group * hd].copy_from_slice(row);
        }
    }
    out
}

//! Token generation: greedy or seeded sampling, stop tokens, a token budget, and decoding
//! constrained to a JSON schema with llguidance.
//!
//! llguidance's own bridge (toktrie_hf_tokenizers) is built on another tokenizers release, so its
//! token trie is built here from each token's bytes, with control tokens marked special.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde::{Deserialize, Serialize};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use super::model::Transformer;
use super::tokenizer::GgufTokenizer;

#[derive(Debug, Clone)]
pub struct GenParams {
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    /// Constrain the output to this JSON schema.
    pub schema: Option<serde_json::Value>,
    /// llama.cpp's repetition penalty on tokens generated in the last `repeat_last` (1.0: off):
    /// a positive logit is divided by it, a negative one multiplied.
    pub repeat_penalty: f32,
    pub repeat_last: usize,
    /// Text the answer starts with: appended to the prompt (and, with a schema, consumed by its
    /// grammar), so generation continues from it; the returned text starts with it.
    pub start: String,
    /// Added to these tokens' logits at the first generated step only, after `start`: how a
    /// caller leans one way at a choice the grammar leaves open there (`yes` over `no`).
    pub first_bias: Vec<(u32, f32)>,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            max_tokens: 512,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            schema: None,
            repeat_penalty: 1.0,
            repeat_last: 64,
            start: String::new(),
            first_bias: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token (or the grammar's end) was reached.
    #[default]
    Stop,
    /// `max_tokens` ran out first.
    Length,
    /// The context window filled up.
    Context,
}

impl FinishReason {
    pub fn is_stop(&self) -> bool {
        *self == FinishReason::Stop
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache entries were reused from the previous prompt.
    pub reused_tokens: usize,
    pub finish: FinishReason,
    pub prompt_ms: u64,
    pub generate_ms: u64,
    /// With `first_bias`: at the first generated step, the best logit among its tokens less the
    /// best among the other tokens allowed there, before the bias (> 0: the model chose one of
    /// them unaided). How far a choice was from going the other way, to calibrate a bias.
    pub first_margin: Option<f32>,
}

/// llguidance's view of our tokenizer.
struct Env {
    trie: TokTrie,
    tok: Arc<GgufTokenizer>,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.tok.encode_plain(&String::from_utf8_lossy(s)).unwrap_or_default()
    }
}

/// Builds grammars for one tokenizer (the token trie and its slices are computed once).
pub struct Constrainer {
    factory: ParserFactory,
}

impl Constrainer {
    pub fn new(tok: Arc<GgufTokenizer>) -> Result<Self> {
        let words: Vec<Vec<u8>> = (0..tok.vocab_size() as u32)
            .map(|id| {
                let b = tok.token_bytes(id);
                if tok.is_control(id) {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(b);
                    w
                } else {
                    b.to_vec()
                }
            })
            .collect();
        let mut info = TokRxInfo::new(words.len() as u32, tok.eos);
        info.tok_bos = tok.bos;
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(Env { trie, tok });
        let mut factory = ParserFactory::new_simple(&env).map_err(|e| anyhow!("llguidance: {e}"))?;
        factory.quiet();
        Ok(Constrainer { factory })
    }

    pub fn matcher(&self, schema: &serde_json::Value) -> Result<Matcher> {
        let mut schema = schema.clone();
        if let Some(obj) = schema.as_object_mut() {
            // Compact separators: fewer tokens and one canonical form.
            obj.entry("x-guidance").or_insert(serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ",",
                "key_separator": ":",
            }));
        }
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(schema))
            .map_err(|e| anyhow!("JSON schema does not compile: {e}"))?;
        let m = Matcher::new(Ok(parser));
        if let Some(e) = m.get_error() {
            return Err(anyhow!("JSON schema does not compile: {e}"));
        }
        Ok(m)
    }
}

/// splitmix64: small, seedable and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Index of the largest logit (the first on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(logits: &[f32], p: &GenParams, rng: &mut Rng) -> u32 {
    if p.temperature <= 0.0 {
        return argmax(logits);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, l)| (i as u32, ((l - max) / p.temperature).exp()))
        .collect();
    // Stable order (by probability, then id) keeps seeded runs reproducible.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f32 = probs.iter().map(|x| x.1).sum();
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, (_, pr)) in probs.iter().enumerate() {
        kept += pr / total;
        if kept >= p.top_p {
            cut = i + 1;
            break;
        }
    }
    probs.truncate(cut.max(1));
    let sum: f32 = probs.iter().map(|x| x.1).sum();
    let mut r = rng.next_f32() * sum;
    for (id, pr) in &probs {
        r -= pr;
        if r <= 0.0 {
            return *id;
        }
    }
    probs[0].0
}

/// Generates from `prompt` (token ids) until a stop token, the grammar's end or `max_tokens`.
pub fn generate(
    model: &mut Transformer,
    tok: &GgufTokenizer,
    constrainer: Option<&Constrainer>,
    prompt: &[u32],
    params: &GenParams,
) -> Result<Generation> {
    let started = Instant::now();
    let mut matcher = match (&params.schema, constrainer) {
        (Some(schema), Some(c)) => Some(c.matcher(schema)?),
        (Some(_), None) => return Err(anyhow!("a JSON schema was given but the model has no constrainer")),
        _ => None,
    };
    let start = if params.start.is_empty() {
        Vec::new()
    } else {
        tok.encode_plain(&params.start)?
    };
    if let Some(m) = matcher.as_mut() {
        for &t in &start {
            m.consume_token(t)
                .map_err(|e| anyhow!("grammar: the answer's start {:?}: {e}", params.start))?;
        }
    }
    let full: Vec<u32> = prompt.iter().chain(&start).copied().collect();
    let (mut logits, reused) = model.prefill(&full)?;
    let prompt_ms = started.elapsed().as_millis() as u64;
    let gen_started = Instant::now();
    let mut rng = Rng(params.seed);
    let mut out = Vec::new();
    let mut finish = FinishReason::Length;
    let mut first_margin = None;
    while out.len() < params.max_tokens {
        penalise_repeats(&mut logits, &out, params);
        if let Some(m) = matcher.as_mut() {
            if m.is_stopped() {
                finish = FinishReason::Stop;
                break;
            }
            let mask = m.compute_mask().map_err(|e| anyhow!("grammar: {e}"))?;
            for (i, l) in logits.iter_mut().enumerate() {
                if i >= mask.len() || !mask.is_allowed(i as u32) {
                    *l = f32::NEG_INFINITY;
                }
            }
            if logits.iter().all(|l| !l.is_finite()) {
                return Err(anyhow!("grammar allows no token"));
            }
        }
        if out.is_empty() && !params.first_bias.is_empty() {
            let chosen: std::collections::HashSet<u32> = params.first_bias.iter().map(|b| b.0).collect();
            let best = |pick: bool| {
                logits
                    .iter()
                    .enumerate()
                    .filter(|(i, l)| l.is_finite() && chosen.contains(&(*i as u32)) == pick)
                    .map(|(_, l)| *l)
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            let (with, without) = (best(true), best(false));
            first_margin = (with.is_finite() && without.is_finite()).then_some(with - without);
            for &(id, bias) in &params.first_bias {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l += bias;
                }
            }
        }
        let next = sample(&logits, params, &mut rng);
        if tok.stop.contains(&next) {
            finish = FinishReason::Stop;
            break;
        }
        if let Some(m) = matcher.as_mut() {
            m.consume_token(next).map_err(|e| anyhow!("grammar: {e}"))?;
        }
        out.push(next);
        if out.len() >= params.max_tokens {
            break;
        }
        if model.cached_tokens().len() >= model.n_ctx {
            finish = FinishReason::Context;
            break;
        }
        logits = model.step(next)?;
    }
    if let Some(m) = matcher.as_ref() {
        if finish == FinishReason::Length && m.is_stopped() {
            finish = FinishReason::Stop;
        }
    }
    Ok(Generation {
        text: format!("{}{}", params.start, tok.decode(&out)),
        prompt_tokens: full.len(),
        reused_tokens: reused,
        tokens: out,
        finish,
        prompt_ms,
        generate_ms: gen_started.elapsed().as_millis() as u64,
        first_margin,
    })
}

/// Applies the repetition penalty to the tokens of the last `repeat_last` generated, once each.
fn penalise_repeats(logits: &mut [f32], out: &[u32], params: &GenParams) {
    if params.repeat_penalty == 1.0 || params.repeat_last == 0 {
        return;
    }
    let mut recent: Vec<u32> = out[out.len().saturating_sub(params.repeat_last)..].to_vec();
    recent.sort_unstable();
    recent.dedup();
    for t in recent {
        if let Some(l) = logits.get_mut(t as usize) {
            *l = if *l > 0.0 {
                *l / params.repeat_penalty
            } else {
                *l * params.repeat_penalty
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repetition_penalty_lowers_recent_tokens_once_each() {
        let p = GenParams {
            repeat_penalty: 2.0,
            repeat_last: 3,
            ..Default::default()
        };
        let mut logits = vec![4.0, -1.0, 3.0, 1.0];
        // Token 3 is outside the window; 0 appears twice but is penalised once.
        penalise_repeats(&mut logits, &[3, 0, 1, 0], &p);
        assert_eq!(logits, [2.0, -2.0, 3.0, 1.0]);
        let mut same = vec![4.0, -1.0];
        penalise_repeats(&mut same, &[0, 1], &GenParams::default());
        assert_eq!(same, [4.0, -1.0], "1.0 is off");
    }

    #[test]
    fn seeded_sampling_repeats_and_greedy_takes_the_max() {
        let logits = vec![0.1, 2.0, 1.9, -1.0, 0.5];
        let p = GenParams {
            temperature: 0.8,
            top_p: 0.95,
            seed: 7,
            ..Default::default()
        };
        let a: Vec<u32> = {
            let mut r = Rng(7);
            (0..20).map(|_| sample(&logits, &p, &mut r)).collect()
        };
        let b: Vec<u32> = {
            let mut r = Rng(7);
            (0..20).map(|_| sample(&logits, &p, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.contains(&1) && a.contains(&2), "{a:?}");
        let greedy = GenParams::default();
        assert_eq!(sample(&logits, &greedy, &mut Rng(1)), 1);
    }
}

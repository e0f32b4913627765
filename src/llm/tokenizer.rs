//! A tokenizer built from a GGUF file's own metadata, giving llama.cpp's ids.
//!
//! Byte-level BPE (`tokenizer.ggml.model = gpt2`) from `tokenizer.ggml.tokens` and
//! `tokenizer.ggml.merges`, with the pre-tokenizer `tokenizer.ggml.pre` names; SentencePiece
//! (`llama`, Gemma 3) as a BPE whose merges are rebuilt from `tokenizer.ggml.scores`. Control tokens become
//! special added tokens (parsed only when asked: `encode_special`), user-defined tokens are always
//! matched, as in llama.cpp. Untrusted text goes through `encode_plain`, where `<|im_end|>` stays
//! text.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::NormalizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::gguf::Gguf;

/// Qwen2's pre-tokenizer regex (llama.cpp LLAMA_VOCAB_PRE_TYPE_QWEN2).
const QWEN2_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's (LLAMA_VOCAB_PRE_TYPE_LLAMA3): digits in runs of up to three.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's token types.
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_BYTE: i64 = 6;

/// SentencePiece's visible space.
const SPM_SPACE: char = '\u{2581}';

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GPT-2 style byte-level BPE with explicit merges.
    ByteLevel,
    /// SentencePiece: bigrams merged by score, unknown characters as `<0xNN>` byte tokens.
    SentencePiece,
}

pub struct GgufTokenizer {
    special: Tokenizer,
    plain: Tokenizer,
    /// Each token's bytes as the model sees them (control tokens: their text).
    token_bytes: Vec<Vec<u8>>,
    is_control: Vec<bool>,
    pub bos: Option<u32>,
    pub eos: u32,
    pub add_bos: bool,
    /// Tokens that end a turn (eos, eot and the chat templates' end markers).
    pub stop: Vec<u32>,
    pub pre: String,
}

impl GgufTokenizer {
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let model = g.string("tokenizer.ggml.model").unwrap_or("");
        let kind = match model {
            "gpt2" => Kind::ByteLevel,
            "llama" => Kind::SentencePiece,
            other => bail!(
                "{}: tokenizer.ggml.model = {other:?} is not supported (supported: byte-level BPE \"gpt2\" — \
                 llama 3, SmolLM2, Qwen2/2.5 — and SentencePiece \"llama\" — Gemma 3)",
                g.path.display()
            ),
        };
        let pre = g.string("tokenizer.ggml.pre").unwrap_or("default").to_string();
        let tokens = g.strings("tokenizer.ggml.tokens")?;
        let types = g
            .ints("tokenizer.ggml.token_type")
            .unwrap_or_else(|_| vec![1; tokens.len()]);
        if types.len() != tokens.len() {
            bail!(
                "{}: token_type has {} entries for {} tokens",
                g.path.display(),
                types.len(),
                tokens.len()
            );
        }
        let mut vocab: ahash::AHashMap<String, u32> = ahash::AHashMap::with_capacity(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            vocab.entry(t.clone()).or_insert(id as u32);
        }
        let mut tk = match kind {
            Kind::ByteLevel => byte_level_bpe(g, &pre, vocab)?,
            Kind::SentencePiece => sentencepiece_bpe(g, &tokens, vocab)?,
        };

        let mut added = Vec::new();
        let mut is_control = vec![false; tokens.len()];
        for (id, (t, ty)) in tokens.iter().zip(&types).enumerate() {
            match *ty {
                TYPE_CONTROL => {
                    is_control[id] = true;
                    added.push(AddedToken::from(t.clone(), true).normalized(false));
                }
                TYPE_USER_DEFINED => added.push(AddedToken::from(t.clone(), false).normalized(false)),
                _ => {}
            }
        }
        tk.add_tokens(added)
            .map_err(|e| anyhow!("{}: added tokens: {e}", g.path.display()))?;
        let mut plain = tk.clone();
        plain.set_encode_special_tokens(true);

        let char_bytes = char_to_byte();
        let token_bytes = tokens
            .iter()
            .zip(&types)
            .map(|(t, ty)| match (*ty, kind) {
                (TYPE_CONTROL | TYPE_USER_DEFINED, _) => t.as_bytes().to_vec(),
                (_, Kind::ByteLevel) => t
                    .chars()
                    .map(|c| char_bytes.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| t.as_bytes().to_vec()),
                (TYPE_BYTE, Kind::SentencePiece) => match byte_token(t) {
                    Some(b) => vec![b],
                    None => t.as_bytes().to_vec(),
                },
                (_, Kind::SentencePiece) => t.replace(SPM_SPACE, " ").into_bytes(),
            })
            .collect();

        let eos = g.require_u32("tokenizer.ggml.eos_token_id")?;
        let bos = g.u32("tokenizer.ggml.bos_token_id");
        let add_bos = matches!(g.get("tokenizer.ggml.add_bos_token"), Some(v) if v.to_bool().unwrap_or(false));
        let mut stop = vec![eos];
        if let Some(eot) = g.u32("tokenizer.ggml.eot_token_id") {
            stop.push(eot);
        }
        for marker in [
            "<|im_end|>",
            "<|eot_id|>",
            "<|endoftext|>",
            "<end_of_turn>",
            "<|end_of_text|>",
        ] {
            if let Some(id) = tokens.iter().position(|t| t == marker) {
                if is_control[id] {
                    stop.push(id as u32);
                }
            }
        }
        stop.sort_unstable();
        stop.dedup();
        Ok(Self {
            special: tk,
            plain,
            token_bytes,
            is_control,
            bos,
            eos,
            add_bos,
            stop,
            pre,
        })
    }

    /// Trusted text (our own prompt scaffolding): `<|im_start|>` and friends become their tokens.
    pub fn encode_special(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.special.encode(text, false).map_err(|e| anyhow!("tokenize: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Untrusted text: special-token markers in it stay plain text.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.plain.encode(text, false).map_err(|e| anyhow!("tokenize: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_control(&self, id: u32) -> bool {
        self.is_control.get(id as usize).copied().unwrap_or(false)
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Ids of the (non-control) tokens that can start spelling `word`: their text is a
    /// non-empty prefix of it (`y`, `ye`, `yes`) or starts with it (`yes"`). Under a grammar
    /// that only allows `word` or its rivals at that point, these are the tokens choosing it.
    pub fn spelling(&self, word: &str) -> Vec<u32> {
        let w = word.as_bytes();
        (0..self.vocab_size() as u32)
            .filter(|&id| !self.is_control(id))
            .filter(|&id| {
                let b = self.token_bytes(id);
                !b.is_empty() && (w.starts_with(b) || b.starts_with(w))
            })
            .collect()
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.special.token_to_id(text)
    }
}

/// Byte-level BPE from `tokenizer.ggml.merges`, pre-tokenized as `tokenizer.ggml.pre` says.
fn byte_level_bpe(g: &Gguf, pre: &str, vocab: ahash::AHashMap<String, u32>) -> Result<Tokenizer> {
    let merges_raw = g.strings("tokenizer.ggml.merges")?;
    let mut merges = Vec::with_capacity(merges_raw.len());
    for (i, m) in merges_raw.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .ok_or_else(|| anyhow!("{}: merge {i} ({m:?}) has no space", g.path.display()))?;
        merges.push((a.to_string(), b.to_string()));
    }
    let (pre_tokenizer, ignore_merges) = pre_tokenizer_for(pre)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| anyhow!("{}: cannot build BPE: {e}", g.path.display()))?;
    let mut tk = Tokenizer::new(bpe);
    tk.with_pre_tokenizer(Some(pre_tokenizer));
    tk.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tk)
}

/// SentencePiece as llama.cpp runs it (`llm_tokenizer_spm`): spaces become `▁`, no pre-tokenizer,
/// adjacent symbols merged while their concatenation is a token, highest score first, characters
/// no token covers as `<0xNN>` byte tokens. A BPE whose merge ranks follow the merged token's
/// score does exactly that; the merges are rebuilt from every way a token splits into two tokens.
fn sentencepiece_bpe(g: &Gguf, tokens: &[String], vocab: ahash::AHashMap<String, u32>) -> Result<Tokenizer> {
    let scores = g.floats("tokenizer.ggml.scores")?;
    if scores.len() != tokens.len() {
        bail!(
            "{}: tokenizer.ggml.scores has {} entries for {} tokens",
            g.path.display(),
            scores.len(),
            tokens.len()
        );
    }
    let mut ranked: Vec<(f32, u32, u32, u32)> = tokens
        .par_iter()
        .enumerate()
        .flat_map_iter(|(id, t)| {
            let vocab = &vocab;
            let score = scores[id];
            t.char_indices().skip(1).filter_map(move |(at, _)| {
                let a = *vocab.get(&t[..at])?;
                let b = *vocab.get(&t[at..])?;
                Some((score, id as u32, a, b))
            })
        })
        .collect();
    // Highest score first; equal scores in token order, then split order.
    ranked.par_sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let merges: Vec<(String, String)> = ranked
        .iter()
        .map(|&(_, _, a, b)| (tokens[a as usize].clone(), tokens[b as usize].clone()))
        .collect();
    let unk = g
        .u32("tokenizer.ggml.unknown_token_id")
        .and_then(|id| tokens.get(id as usize).cloned());
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk).fuse_unk(true);
    }
    let bpe = builder
        .build()
        .map_err(|e| anyhow!("{}: cannot build BPE: {e}", g.path.display()))?;
    let mut tk = Tokenizer::new(bpe);
    let space = Replace::new(" ", SPM_SPACE.to_string()).map_err(|e| anyhow!("normalizer: {e}"))?;
    let mut normalizers = vec![NormalizerWrapper::Replace(space)];
    if matches!(g.get("tokenizer.ggml.add_space_prefix"), Some(v) if v.to_bool().unwrap_or(false)) {
        normalizers.insert(0, NormalizerWrapper::Prepend(Prepend::new(" ".to_string())));
    }
    tk.with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| anyhow!("normalizer: {e}"))?;
    Ok(tk)
}

/// `<0x0A>` → 0x0A.
fn byte_token(t: &str) -> Option<u8> {
    let hex = t.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

fn pre_tokenizer_for(pre: &str) -> Result<(PreTokenizerWrapper, bool)> {
    let byte_level = |regex: bool| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, regex));
    let split = |re: &str| -> Result<PreTokenizerWrapper> {
        let s = Split::new(
            SplitPattern::Regex(re.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| anyhow!("pre-tokenizer regex: {e}"))?;
        Ok(PreTokenizerWrapper::Split(s))
    };
    Ok(match pre {
        "smollm" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level(true),
            ])),
            false,
        ),
        "qwen2" | "deepseek-r1-qwen" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![split(QWEN2_REGEX)?, byte_level(false)])),
            false,
        ),
        "llama-bpe" | "llama3" | "smaug-bpe" => (
            PreTokenizerWrapper::Sequence(Sequence::new(vec![split(LLAMA3_REGEX)?, byte_level(false)])),
            true,
        ),
        "default" | "gpt2" | "gpt-2" => (byte_level(true), false),
        other => bail!(
            "tokenizer.ggml.pre = {other:?} is not supported (supported: smollm, qwen2, llama-bpe, gpt2, default)"
        ),
    })
}

/// GPT-2's byte ↔ printable-character table, inverted.
fn char_to_byte() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .map(|(b, c)| (char::from_u32(c).expect("valid char"), b as u8))
        .collect()
}

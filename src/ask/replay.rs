//! Generations a previous draft already ran, replayed instead of run again.
//!
//! Answers are greedy: the same model, prompt and parameters give the same text. Each stored
//! generation ([`GenRun`]) carries a key of exactly those, so a re-draft after a change to how
//! questions are read (a second reading's rule, a closer reading added, a question reworded)
//! generates only the readings whose prompt or parameters changed; every other reading is taken
//! from the previous draft's record, with the token counts and timings it had when it ran.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Answer, GenRun, Model};
use crate::llm::{FinishReason, GenParams};

/// One generation as the questions use it: its text, why it ended, and its record.
pub(super) struct Gen {
    pub text: String,
    pub finish: FinishReason,
    pub run: GenRun,
}

impl From<Gen> for GenRun {
    fn from(g: Gen) -> GenRun {
        g.run
    }
}

/// The model, with the generations of a previous draft to replay.
pub(super) struct Reader<'a> {
    pub model: &'a dyn Model,
    known: HashMap<String, GenRun>,
}

impl<'a> Reader<'a> {
    /// `model`, replaying every keyed generation stored in `previous` (its first readings, the
    /// readings of other parts, second and closer readings).
    pub fn new(model: &'a dyn Model, previous: &[Answer]) -> Reader<'a> {
        let mut known = HashMap::new();
        for run in previous.iter().flat_map(Answer::runs) {
            if let Some(key) = &run.key {
                known.entry(key.clone()).or_insert_with(|| run.clone());
            }
        }
        Reader { model, known }
    }

    /// The generation of `prompt` with `params`: replayed when a previous draft ran it, else run.
    pub async fn generate(&self, prompt: Vec<u32>, params: GenParams) -> anyhow::Result<Gen> {
        let key = key(self.model.model_id(), &prompt, &params);
        if let Some(run) = self.known.get(&key) {
            return Ok(Gen {
                text: run.raw.clone(),
                finish: run.finish,
                run: run.clone(),
            });
        }
        let g = self.model.generate(prompt, params).await?;
        let (text, finish) = (g.text.clone(), g.finish);
        let mut run = GenRun::from(g);
        run.key = Some(key);
        Ok(Gen { text, finish, run })
    }

    /// How many generations there are to replay.
    #[cfg(test)]
    pub fn known(&self) -> usize {
        self.known.len()
    }
}

/// What a generation's text follows from: the model (its id names its weights), this build of
/// assay (its inference code), the prompt's token ids and every generation parameter.
pub(super) fn key(model_id: &str, prompt: &[u32], p: &GenParams) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"gen-v1");
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(model_id.as_bytes());
    let ids: Vec<u8> = prompt.iter().flat_map(|t| t.to_le_bytes()).collect();
    field(&ids);
    field(&(p.max_tokens as u64).to_le_bytes());
    field(&p.temperature.to_le_bytes());
    field(&p.top_p.to_le_bytes());
    field(&p.seed.to_le_bytes());
    field(p.schema.as_ref().map(|s| s.to_string()).unwrap_or_default().as_bytes());
    field(&p.repeat_penalty.to_le_bytes());
    field(&(p.repeat_last as u64).to_le_bytes());
    field(p.start.as_bytes());
    let bias: Vec<u8> = p
        .first_bias
        .iter()
        .flat_map(|(t, b)| t.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        .collect();
    field(&bias);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> GenParams {
        GenParams {
            max_tokens: 100,
            schema: Some(json!({"type": "object"})),
            start: "{\"answer\":\"".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_key_changes_with_the_model_the_prompt_and_every_parameter() {
        let base = key("m@1", &[1, 2, 3], &params());
        assert_eq!(base, key("m@1", &[1, 2, 3], &params()), "deterministic");
        assert_ne!(base, key("m@2", &[1, 2, 3], &params()));
        assert_ne!(base, key("m@1", &[1, 2, 4], &params()));
        assert_ne!(base, key("m@1", &[1, 2], &params()));
        let changed: Vec<GenParams> = vec![
            GenParams {
                max_tokens: 12,
                ..params()
            },
            GenParams {
                temperature: 0.5,
                ..params()
            },
            GenParams { seed: 7, ..params() },
            GenParams {
                schema: None,
                ..params()
            },
            GenParams {
                start: String::new(),
                ..params()
            },
            GenParams {
                repeat_penalty: 1.1,
                ..params()
            },
            GenParams {
                first_bias: vec![(5, 1.5)],
                ..params()
            },
        ];
        for p in changed {
            assert_ne!(base, key("m@1", &[1, 2, 3], &p), "{p:?}");
        }
    }
}

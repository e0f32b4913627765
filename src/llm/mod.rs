//! The local model: GGUF weights through candle, our own forward pass, a tokenizer built from the
//! GGUF's metadata, its chat template, and JSON-schema constrained decoding.
//!
//! One [`Llm`] per process lives on a dedicated inference thread ([`Engine`]) fed by a bounded
//! channel, so the async runtime never blocks on inference and containers keep running while the
//! model drafts.

pub mod chat;
pub mod generate;
pub mod gguf;
pub mod manifest;
pub mod model;
pub mod tokenizer;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, oneshot};

pub use chat::{ChatTemplate, Message};
pub use generate::{Constrainer, FinishReason, GenParams, Generation};
pub use gguf::{Gguf, ModelInfo};
pub use manifest::{ModelRef, DEFAULT_MODEL, TINY_MODEL};
pub use model::Transformer;
pub use tokenizer::GgufTokenizer;

/// Default context window allocated for the KV cache.
pub const DEFAULT_CONTEXT: usize = 4096;

pub struct Llm {
    pub id: String,
    pub info: ModelInfo,
    pub tok: Arc<GgufTokenizer>,
    pub template: ChatTemplate,
    pub model: Transformer,
    constrainer: Option<Constrainer>,
}

impl Llm {
    /// Loads the model at `path` with a KV cache for `n_ctx` tokens.
    pub fn load(path: &Path, id: &str, n_ctx: usize) -> Result<Self> {
        let g = Arc::new(Gguf::open(path)?);
        let info = g.info()?;
        let tok = Arc::new(GgufTokenizer::from_gguf(&g)?);
        let template = ChatTemplate::new(g.string("tokenizer.chat_template"), &info.architecture);
        let model = Transformer::load(g.clone(), n_ctx).with_context(|| format!("cannot load {}", path.display()))?;
        Ok(Llm {
            id: id.to_string(),
            info,
            tok,
            template,
            model,
            constrainer: None,
        })
    }

    /// The JSON constrainer, built on first use (computing the token trie's slices takes a moment).
    pub fn constrainer(&mut self) -> Result<&Constrainer> {
        if self.constrainer.is_none() {
            self.constrainer = Some(Constrainer::new(self.tok.clone())?);
        }
        Ok(self.constrainer.as_ref().expect("just built"))
    }

    /// Prompt token ids for `messages`, contents encoded as untrusted text.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.template.encode(&self.tok, messages, true)
    }

    pub fn chat(&mut self, messages: &[Message], params: &GenParams) -> Result<Generation> {
        let prompt = self.encode_chat(messages)?;
        self.generate_ids(&prompt, params)
    }

    pub fn generate_ids(&mut self, prompt: &[u32], params: &GenParams) -> Result<Generation> {
        if params.schema.is_some() {
            self.constrainer()?;
        }
        let Llm {
            model,
            tok,
            constrainer,
            ..
        } = self;
        generate::generate(model, tok, constrainer.as_ref(), prompt, params)
    }
}

struct Request {
    prompt: Vec<u32>,
    params: GenParams,
    reply: oneshot::Sender<Result<Generation>>,
}

/// The inference thread's handle; cheap to clone, safe to use from async tasks.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Request>,
    pub model_id: String,
    pub info: Arc<ModelInfo>,
    pub tok: Arc<GgufTokenizer>,
    pub template: Arc<ChatTemplate>,
    pub n_ctx: usize,
}

impl Engine {
    /// Loads the model on a new thread and returns once it is ready (or failed to load).
    pub fn start(path: &Path, id: &str, n_ctx: usize) -> Result<Engine> {
        let (tx, mut rx) = mpsc::channel::<Request>(4);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let path = path.to_path_buf();
        let id_owned = id.to_string();
        std::thread::Builder::new()
            .name("assay-llm".into())
            .spawn(move || {
                let mut llm = match Llm::load(&path, &id_owned, n_ctx) {
                    Ok(l) => {
                        let template = l.template.clone();
                        let _ = ready_tx.send(Ok((l.info.clone(), l.tok.clone(), template, l.model.n_ctx)));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(req) = rx.blocking_recv() {
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        llm.generate_ids(&req.prompt, &req.params)
                    }))
                    .unwrap_or_else(|_| {
                        llm.model.reset();
                        Err(anyhow::anyhow!("the model panicked while generating"))
                    });
                    let _ = req.reply.send(out);
                }
            })
            .context("cannot start the inference thread")?;
        let (info, tok, template, n_ctx) = ready_rx.recv().context("the inference thread died while loading")??;
        Ok(Engine {
            tx,
            model_id: id.to_string(),
            info: Arc::new(info),
            tok,
            template: Arc::new(template),
            n_ctx,
        })
    }

    /// Prompt ids for `messages` (contents encoded as untrusted text).
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.template.encode(&self.tok, messages, true)
    }

    /// Queues a generation on the inference thread (waits while the queue is full).
    pub async fn generate(&self, prompt: Vec<u32>, params: GenParams) -> Result<Generation> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { prompt, params, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the inference thread has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the inference thread dropped the request"))?
    }
}

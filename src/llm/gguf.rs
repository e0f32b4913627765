//! Reading a GGUF file's header: metadata, tensor table, and the summary `assay model info` prints.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use serde::Serialize;

/// A parsed GGUF header plus the path it came from (tensors are read lazily).
pub struct Gguf {
    pub path: PathBuf,
    pub content: Content,
}

impl Gguf {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open model file {}", path.display()))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|e| anyhow::anyhow!("{}: not a readable GGUF file: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
        })
    }

    pub fn meta(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.to_string().ok()).map(String::as_str)
    }

    pub fn u32(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(|v| match v {
            Value::U8(x) => Some(*x as u32),
            Value::U16(x) => Some(*x as u32),
            Value::U32(x) => Some(*x),
            Value::U64(x) => u32::try_from(*x).ok(),
            Value::I32(x) => u32::try_from(*x).ok(),
            Value::I64(x) => u32::try_from(*x).ok(),
            _ => None,
        })
    }

    pub fn f32(&self, key: &str) -> Option<f32> {
        self.get(key).and_then(|v| match v {
            Value::F32(x) => Some(*x),
            Value::F64(x) => Some(*x as f32),
            _ => None,
        })
    }

    pub fn require_u32(&self, key: &str) -> Result<u32> {
        self.u32(key)
            .with_context(|| format!("{}: metadata key {key} is missing", self.path.display()))
    }

    /// The array at `key`, each element converted by `f`.
    fn array<T>(&self, key: &str, f: impl Fn(&Value) -> Result<T>) -> Result<Vec<T>> {
        let Some(v) = self.get(key) else {
            bail!("{}: metadata key {key} is missing", self.path.display())
        };
        let arr = v.to_vec().map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        arr.iter()
            .map(|v| f(v).with_context(|| format!("{}: {key}", self.path.display())))
            .collect()
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.array(key, |v| Ok(v.to_string()?.clone()))
    }

    pub fn ints(&self, key: &str) -> Result<Vec<i64>> {
        self.array(key, |v| match v {
            Value::I32(x) => Ok(*x as i64),
            Value::U32(x) => Ok(*x as i64),
            Value::I8(x) => Ok(*x as i64),
            Value::U8(x) => Ok(*x as i64),
            Value::I64(x) => Ok(*x),
            other => bail!("expected integers, found {:?}", other.value_type()),
        })
    }

    pub fn floats(&self, key: &str) -> Result<Vec<f32>> {
        self.array(key, |v| match v {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            other => bail!("expected floats, found {:?}", other.value_type()),
        })
    }

    pub fn architecture(&self) -> Result<&str> {
        self.string("general.architecture")
            .with_context(|| format!("{}: general.architecture is missing", self.path.display()))
    }

    /// The summary `assay model info` prints.
    pub fn info(&self) -> Result<ModelInfo> {
        let arch = self.architecture()?.to_string();
        let mut parameters: u64 = 0;
        let mut bytes_by_type: HashMap<String, u64> = HashMap::new();
        for info in self.content.tensor_infos.values() {
            let n = info.shape.elem_count() as u64;
            parameters += n;
            *bytes_by_type
                .entry(dtype_name(info.ggml_dtype).to_string())
                .or_default() += n;
        }
        let mut quantisation: Vec<(String, u64)> = bytes_by_type.into_iter().collect();
        quantisation.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let file_type = self.u32("general.file_type").map(file_type_name);
        Ok(ModelInfo {
            path: self.path.display().to_string(),
            name: self.string("general.name").map(str::to_string),
            architecture: arch.clone(),
            parameters,
            file_type: file_type.map(str::to_string),
            tensor_types: quantisation
                .into_iter()
                .map(|(t, n)| TensorTypeShare {
                    dtype: t,
                    share: n as f64 / parameters.max(1) as f64,
                })
                .collect(),
            context_length: self.u32(&format!("{arch}.context_length")),
            embedding_length: self.u32(&format!("{arch}.embedding_length")),
            block_count: self.u32(&format!("{arch}.block_count")),
            head_count: self.u32(&format!("{arch}.attention.head_count")),
            head_count_kv: self.u32(&format!("{arch}.attention.head_count_kv")),
            vocab_size: self
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(Vec::len),
            tokenizer_model: self.string("tokenizer.ggml.model").map(str::to_string),
            tokenizer_pre: self.string("tokenizer.ggml.pre").map(str::to_string),
            chat_template: self.string("tokenizer.chat_template").is_some(),
            license: self.string("general.license").map(str::to_string),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorTypeShare {
    pub dtype: String,
    /// Share of all parameters stored in this type.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub name: Option<String>,
    pub architecture: String,
    pub parameters: u64,
    pub file_type: Option<String>,
    pub tensor_types: Vec<TensorTypeShare>,
    pub context_length: Option<u32>,
    pub embedding_length: Option<u32>,
    pub block_count: Option<u32>,
    pub head_count: Option<u32>,
    pub head_count_kv: Option<u32>,
    pub vocab_size: Option<usize>,
    pub tokenizer_model: Option<String>,
    pub tokenizer_pre: Option<String>,
    pub chat_template: bool,
    pub license: Option<String>,
}

pub fn dtype_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// llama.cpp's `general.file_type` codes (LLAMA_FTYPE_*).
fn file_type_name(code: u32) -> &'static str {
    match code {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => "other",
    }
}

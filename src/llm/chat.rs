//! The chat template from the GGUF (`tokenizer.chat_template`), rendered with minijinja.
//!
//! Message contents are untrusted (they carry a candidate's README and code). The template is
//! rendered with placeholders in place of the contents, its own text is tokenized with special
//! tokens parsed, and each content is tokenized with special-token parsing off: a `<|im_end|>`
//! inside a README stays six ordinary tokens and cannot close the turn.

use anyhow::{anyhow, Context, Result};
use minijinja::{context, Environment};
use serde::Serialize;

use super::tokenizer::GgufTokenizer;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// ChatML, for GGUFs that carry no template (and name no family with a known one).
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Gemma's turn format, for Gemma GGUFs without a template: no system role, so a system message
/// opens the first user turn; the assistant's role is `model`. Contents are not trimmed (the
/// official template trims them; contents here are ours and already tidy).
const GEMMA: &str = "{%- if messages[0]['role'] == 'system' -%}{%- set prefix = messages[0]['content'] + '\n\n' -%}{%- set turns = messages[1:] -%}{%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}{%- for message in turns -%}{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + message['content'] + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}";

#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    pub from_gguf: bool,
}

impl ChatTemplate {
    /// The GGUF's own template, else the built-in one for its architecture (`general.architecture`).
    pub fn new(source: Option<&str>, arch: &str) -> Self {
        match source {
            Some(s) => ChatTemplate {
                source: s.to_string(),
                from_gguf: true,
            },
            None => ChatTemplate {
                source: if arch.starts_with("gemma") { GEMMA } else { CHATML }.to_string(),
                from_gguf: false,
            },
        }
    }

    pub fn source(&self) -> Option<&str> {
        self.from_gguf.then_some(self.source.as_str())
    }

    /// The prompt text, as llama.cpp's template engine renders it.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let mut env = Environment::new();
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", &self.source)
            .context("chat template does not parse")?;
        let tmpl = env.get_template("chat").map_err(|e| anyhow!("{e}"))?;
        let bos = "";
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => bos,
            eos_token => "",
            tools => minijinja::Value::UNDEFINED,
        })
        .context("chat template failed to render")
    }

    /// Token ids of the prompt; template text with special tokens parsed, contents without.
    pub fn encode(&self, tok: &GgufTokenizer, messages: &[Message], add_generation_prompt: bool) -> Result<Vec<u32>> {
        let marked: Vec<Message> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| Message {
                role: m.role.clone(),
                content: placeholder(i),
            })
            .collect();
        let rendered = self.render(&marked, add_generation_prompt)?;
        let mut ids = Vec::new();
        if tok.add_bos {
            ids.extend(tok.bos);
        }
        let mut rest = rendered.as_str();
        loop {
            let next = (0..messages.len())
                .filter_map(|i| rest.find(&placeholder(i)).map(|at| (at, i)))
                .min();
            let Some((at, i)) = next else {
                ids.extend(tok.encode_special(rest)?);
                break;
            };
            ids.extend(tok.encode_special(&rest[..at])?);
            ids.extend(tok.encode_plain(&messages[i].content)?);
            rest = &rest[at + placeholder(i).len()..];
        }
        Ok(ids)
    }
}

/// A marker no template produces on its own (private-use code points around the index).
fn placeholder(i: usize) -> String {
    format!("\u{F8FF}assay-content-{i}\u{F8FF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_turns_and_the_generation_prompt() {
        let t = ChatTemplate::new(None, "llama");
        let out = t
            .render(&[Message::new("system", "Be brief."), Message::new("user", "Hi")], true)
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_folds_the_system_message_into_the_first_user_turn() {
        let t = ChatTemplate::new(None, "gemma3");
        let out = t
            .render(
                &[
                    Message::new("system", "Be brief."),
                    Message::new("user", "Hi"),
                    Message::new("assistant", "Hello."),
                    Message::new("user", "Bye"),
                ],
                true,
            )
            .unwrap();
        assert_eq!(
            out,
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
    }
}

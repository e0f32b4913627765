//! Rubric files (`rubrics/*.toml`): the criteria a submission is judged by.
//!
//! A rubric is public (candidates may read it); `guidelines` are for graders only
//! and never appear in anything shown to a candidate.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::InputError;

/// One scoring level of a criterion.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Level {
    /// The score a grader gives at this level.
    pub score: u32,
    /// What a submission at this level looks like.
    pub descriptor: String,
}

/// One criterion of a rubric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Criterion {
    /// Stable id, used in drafts and exports.
    pub id: String,
    /// Short title.
    pub title: String,
    /// What the criterion judges.
    pub description: String,
    /// Relative weight in the total.
    pub weight: f64,
    /// Scoring levels, ascending by score.
    pub levels: Vec<Level>,
    /// Evidence kinds (prefixes such as `history`, `tests`, `repro`, `readme`) that inform it.
    pub evidence: Vec<String>,
    /// Notes for graders; never shown to candidates.
    pub guidelines: Option<String>,
}

/// A validated rubric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rubric {
    /// Rubric name.
    pub name: String,
    /// Criteria in file order.
    pub criteria: Vec<Criterion>,
    /// How many levels a draft's score may sit above what the automated
    /// evidence supports (`band_above`, default 1).
    pub band_above: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRubric {
    name: Spanned<String>,
    #[serde(default)]
    band_above: Option<u32>,
    #[serde(rename = "criterion", default)]
    criteria: Vec<Spanned<RawCriterion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    id: Spanned<String>,
    title: String,
    description: String,
    weight: Spanned<f64>,
    #[serde(rename = "level", default)]
    levels: Vec<Spanned<RawLevel>>,
    #[serde(default)]
    evidence: Vec<String>,
    guidelines: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    score: u32,
    descriptor: String,
}

impl Rubric {
    /// Reads and validates a rubric file.
    pub fn load(path: &Path) -> Result<Rubric, InputError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read rubric: {e}")))?;
        Rubric::parse(path, &text)
    }

    /// Parses and validates rubric text; `path` is used in errors only.
    pub fn parse(path: &Path, text: &str) -> Result<Rubric, InputError> {
        let raw: RawRubric = toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e))?;
        let err = |span: std::ops::Range<usize>, msg: String| InputError::at(path, text, span, msg);
        if raw.name.get_ref().trim().is_empty() {
            return Err(err(raw.name.span(), "rubric name is empty".into()));
        }
        if raw.criteria.is_empty() {
            return Err(InputError::file(path, "rubric has no [[criterion]]")
                .with_hint("add at least one [[criterion]] table with id, title, description, weight"));
        }
        let mut criteria: Vec<Criterion> = Vec::new();
        for c in raw.criteria {
            let span = c.span();
            let c = c.into_inner();
            let id = c.id.get_ref().clone();
            if !crate::cohort::is_plain_id(&id) {
                return Err(err(
                    c.id.span(),
                    format!("criterion id {id:?} must be letters, digits, '-', '_' or '.'"),
                ));
            }
            if criteria.iter().any(|k| k.id == id) {
                return Err(err(c.id.span(), format!("criterion id {id:?} is used twice")));
            }
            let weight = *c.weight.get_ref();
            if !(weight.is_finite() && weight > 0.0) {
                return Err(err(c.weight.span(), format!("weight must be above 0, found {weight}")));
            }
            let mut levels: Vec<Level> = Vec::new();
            for l in c.levels {
                let lspan = l.span();
                let l = l.into_inner();
                if levels.iter().any(|k| k.score == l.score) {
                    return Err(err(
                        lspan,
                        format!("level score {} is used twice in criterion {id:?}", l.score),
                    ));
                }
                levels.push(Level {
                    score: l.score,
                    descriptor: l.descriptor,
                });
            }
            if levels.len() < 2 {
                return Err(err(
                    span,
                    format!("criterion {id:?} needs at least two [[criterion.level]] tables"),
                )
                .with_hint("give each level a score and a descriptor"));
            }
            levels.sort_by_key(|l| l.score);
            criteria.push(Criterion {
                id,
                title: c.title,
                description: c.description,
                weight,
                levels,
                evidence: c.evidence,
                guidelines: c.guidelines,
            });
        }
        Ok(Rubric {
            band_above: raw.band_above.unwrap_or(1),
            name: raw.name.into_inner(),
            criteria,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rubrics_parse() {
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rubrics")).unwrap() {
            let path = entry.unwrap().path();
            let rubric = Rubric::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(rubric.criteria.len() >= 4, "{}", path.display());
        }
    }

    #[test]
    fn duplicate_criterion_is_reported_at_its_id() {
        let text = r#"name = "r"
[[criterion]]
id = "a"
title = "A"
description = "d"
weight = 1
level = [{ score = 0, descriptor = "no" }, { score = 1, descriptor = "yes" }]
[[criterion]]
id = "a"
title = "A"
description = "d"
weight = 1
level = [{ score = 0, descriptor = "no" }, { score = 1, descriptor = "yes" }]
"#;
        let e = Rubric::parse(Path::new("r.toml"), text).unwrap_err();
        assert_eq!((e.line, e.col), (Some(9), Some(6)), "{e}");
    }
}

//! Rubric files (`rubrics/*.toml`): the criteria a submission is judged by.
//!
//! A rubric is public (candidates may read it); `guidelines` are for graders only
//! and never appear in anything shown to a candidate.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::InputError;
use crate::facts::{Facts, SOURCES};

/// One scoring level of a criterion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Level {
    /// The score a grader gives at this level.
    pub score: u32,
    /// What a submission at this level looks like.
    pub descriptor: String,
}

/// One criterion of a rubric.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// How its automated score is computed from the facts.
    pub automated: Automated,
}

/// How a criterion's automated score is computed: the 1–4 estimates of some evidence sources
/// ([`Facts::estimate`]), combined, then mapped onto the criterion's levels.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Automated {
    /// Evidence sources (default: the criterion's `evidence`).
    pub from: Vec<String>,
    pub combine: Combine,
}

/// How the estimates of several sources combine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Their mean (default).
    #[default]
    Mean,
    /// The weakest source decides.
    Min,
    /// The strongest source decides.
    Max,
}

impl Criterion {
    /// The level score the automated evidence supports, or `None` when none of its sources is
    /// known for this submission (then only a draft or a grader can score it).
    pub fn automated_score(&self, facts: &Facts) -> Option<u32> {
        let est: Vec<f64> = self
            .automated
            .from
            .iter()
            .filter_map(|s| facts.estimate(s))
            .map(f64::from)
            .collect();
        if est.is_empty() {
            return None;
        }
        let v = match self.automated.combine {
            Combine::Mean => est.iter().sum::<f64>() / est.len() as f64,
            Combine::Min => est.iter().copied().fold(f64::INFINITY, f64::min),
            Combine::Max => est.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        Some(self.level_for(v))
    }

    /// The score of the level a 1–4 estimate maps to.
    pub fn level_for(&self, estimate: f64) -> u32 {
        self.levels[self.level_index_for(estimate)].score
    }

    /// The index (in `levels`) a 1–4 estimate maps to.
    pub fn level_index_for(&self, estimate: f64) -> usize {
        let n = self.levels.len();
        ((estimate - 1.0) / 3.0 * (n - 1) as f64)
            .round()
            .clamp(0.0, (n - 1) as f64) as usize
    }

    /// The index of the level with this score.
    pub fn level_index(&self, score: u32) -> Option<usize> {
        self.levels.iter().position(|l| l.score == score)
    }

    /// `score` on 0–1 between the lowest and the highest level.
    pub fn scaled(&self, score: u32) -> f64 {
        let (lo, hi) = self.range();
        if hi > lo {
            f64::from(score.clamp(lo, hi) - lo) / f64::from(hi - lo)
        } else {
            1.0
        }
    }

    /// Lowest and highest level scores.
    pub fn range(&self) -> (u32, u32) {
        (self.levels[0].score, self.levels[self.levels.len() - 1].score)
    }
}

/// A validated rubric (stored with the cohort as graded, so reviews and exports use the same one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    evidence: Vec<Spanned<String>>,
    guidelines: Option<String>,
    automated: Option<Spanned<RawAutomated>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutomated {
    #[serde(default)]
    from: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    combine: Combine,
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
            let known = |v: &Spanned<String>| -> Result<String, InputError> {
                if SOURCES.contains(&v.get_ref().as_str()) {
                    Ok(v.get_ref().clone())
                } else {
                    Err(err(
                        v.span(),
                        format!(
                            "unknown evidence source {:?} in criterion {id:?} (known: {})",
                            v.get_ref(),
                            SOURCES.join(", ")
                        ),
                    ))
                }
            };
            let evidence: Vec<String> = c.evidence.iter().map(known).collect::<Result<_, _>>()?;
            let automated = match c.automated {
                None => Automated {
                    from: evidence.clone(),
                    combine: Combine::Mean,
                },
                Some(a) => {
                    let aspan = a.span();
                    let a = a.into_inner();
                    let from: Vec<String> = match a.from {
                        Some(f) => f.iter().map(known).collect::<Result<_, _>>()?,
                        None => evidence.clone(),
                    };
                    if from.is_empty() {
                        return Err(err(
                            aspan,
                            format!("criterion {id:?}: automated scoring names no evidence source"),
                        )
                        .with_hint(format!("set from = [...] to some of: {}", SOURCES.join(", "))));
                    }
                    Automated {
                        from,
                        combine: a.combine,
                    }
                }
            };
            criteria.push(Criterion {
                id,
                title: c.title,
                description: c.description,
                weight,
                levels,
                evidence,
                guidelines: c.guidelines,
                automated,
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

    const ONE: &str = r#"name = "r"
[[criterion]]
id = "a"
title = "A"
description = "d"
weight = 1
evidence = ["tests", "repro"]
level = [{ score = 0, descriptor = "no" }, { score = 1, descriptor = "some" }, { score = 2, descriptor = "yes" }]
"#;

    #[test]
    fn an_unknown_evidence_source_is_reported_where_it_is_written() {
        let text = ONE.replace(r#"["tests", "repro"]"#, r#"["tests", "vibes"]"#);
        let e = Rubric::parse(Path::new("r.toml"), &text).unwrap_err();
        assert_eq!((e.line, e.col), (Some(7), Some(22)), "{e}");
        assert!(e.to_string().contains("\"vibes\""), "{e}");
        let text = format!("{ONE}automated = {{ from = [] }}\n");
        let e = Rubric::parse(Path::new("r.toml"), &text).unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
        let text = format!("{ONE}automated = {{ combine = \"median\" }}\n");
        let e = Rubric::parse(Path::new("r.toml"), &text).unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn automated_scores_combine_the_sources_estimates_onto_the_levels() {
        use crate::facts::TestFacts;
        use crate::outcome::OutcomeKind;
        use crate::repro::BadgeLevel;
        let mut r = Rubric::parse(Path::new("r.toml"), ONE).unwrap();
        let facts = Facts {
            tests: Some(TestFacts {
                outcome: OutcomeKind::Passed,
                passed: 3,
                total: 3,
                hidden: None,
                flaky: 0,
                install_cause: None,
                tests_cause: None,
            }),
            badge: Some(BadgeLevel::None),
            ..Facts::default()
        };
        // tests 4, repro 1: mean 2.5 lands on the middle level.
        assert_eq!(r.criteria[0].automated_score(&facts), Some(1));
        r.criteria[0].automated.combine = Combine::Min;
        assert_eq!(r.criteria[0].automated_score(&facts), Some(0));
        r.criteria[0].automated.combine = Combine::Max;
        assert_eq!(r.criteria[0].automated_score(&facts), Some(2));
        // Nothing known: no automated score.
        assert_eq!(r.criteria[0].automated_score(&Facts::default()), None);
    }
}

//! Rubric files (`rubrics/*.toml`): the criteria a submission is judged by.
//!
//! A rubric is public (candidates may read it); `guidelines` are for graders only
//! and never appear in anything shown to a candidate.
//!
//! A criterion may be a checklist: `[[criterion.item]]` tables, each a named deterministic
//! check ([`checks`]) or a yes/no question for the model with the evidence kinds it may read,
//! and a rule (`levels`) that gives the criterion's level from the items met.

pub mod assess;
pub mod checks;

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::InputError;
use crate::facts::{Facts, SOURCES};

/// The evidence a question may read: the stage sources, and `commits` (each commit's message).
pub const ASK_SOURCES: [&str; 5] = ["readme", "commits", "history", "tests", "repro"];

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
    /// Its checklist, in file order (empty for a criterion scored from `automated` alone).
    /// Left out of the serialised form when empty, and so is the default rule: a rubric
    /// without items serialises as before, so its hash (part of the draft stage's key) and
    /// the drafts stored under it stay valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    /// How its level follows from the items met.
    #[serde(default, skip_serializing_if = "LevelRule::is_count")]
    pub rule: LevelRule,
}

/// One checklist item: public text and how it is decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Item {
    /// Stable id within its criterion.
    pub id: String,
    /// What meeting it means (public: candidates see it).
    pub text: String,
    pub decide: Decide,
    /// What it counts towards the level (default 1).
    pub weight: f64,
}

/// How an item is decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Decide {
    /// A named deterministic check over the facts ([`checks::CHECKS`]).
    Check(String),
    /// A yes/no question the model answers, reading only these evidence sources; a yes counts
    /// only with a quote found in the cited item. `look_for`: phrases (lower case) whose README
    /// sentences are read alone when the first reading answers no.
    Ask {
        question: String,
        from: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        look_for: Vec<String>,
    },
}

impl Decide {
    /// `check` or `ask`, as item results, metrics and the review form name the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Decide::Check(_) => "check",
            Decide::Ask { .. } => "ask",
        }
    }
}

/// How a criterion's level follows from the weight of its items met.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LevelRule {
    /// The lowest level plus one level per item met, capped at the highest (`levels = "count"`).
    #[default]
    Count,
    /// Level `i` needs at least `at_least[i]` met (`levels = { at_least = [0, 1, 3, 4] }`).
    AtLeast(Vec<f64>),
}

impl LevelRule {
    fn is_count(&self) -> bool {
        *self == LevelRule::Count
    }
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

    /// The level score the items met give by the criterion's rule; `met` holds each item's
    /// answer in file order.
    pub fn level_from_items(&self, met: &[bool]) -> u32 {
        let weight: f64 = self
            .items
            .iter()
            .zip(met)
            .filter(|(_, m)| **m)
            .map(|(i, _)| i.weight)
            .sum();
        let top = self.levels.len() - 1;
        let index = match &self.rule {
            LevelRule::Count => (weight.floor().max(0.0) as usize).min(top),
            LevelRule::AtLeast(t) => t.iter().rposition(|need| weight + 1e-9 >= *need).unwrap_or(0),
        };
        self.levels[index].score
    }

    /// The level the rule gives when `met(item id)` tells which items are met.
    pub fn level_where(&self, met: impl Fn(&str) -> bool) -> u32 {
        let met: Vec<bool> = self.items.iter().map(|i| met(&i.id)).collect();
        self.level_from_items(&met)
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
    #[serde(rename = "item", default)]
    items: Vec<Spanned<RawItem>>,
    #[serde(rename = "levels")]
    rule: Option<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: Spanned<String>,
    text: String,
    check: Option<Spanned<String>>,
    ask: Option<Spanned<String>>,
    from: Option<Spanned<Vec<Spanned<String>>>>,
    look_for: Option<Spanned<Vec<Spanned<String>>>>,
    weight: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRule {
    Name(String),
    AtLeast { at_least: Vec<f64> },
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
    /// Every checklist item as `criterion.item`, in rubric order (export columns, labels).
    pub fn item_keys(&self) -> Vec<String> {
        self.criteria
            .iter()
            .flat_map(|c| c.items.iter().map(move |i| format!("{}.{}", c.id, i.id)))
            .collect()
    }

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
            if !crate::ids::is_plain_id(&id) {
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
            let known = |v: &Spanned<String>| source_in(&SOURCES, v, &format!("criterion {id:?}"), "known", &err);
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
            let items = items(&c.items, &id, &err)?;
            let rule = rule(c.rule, span, &id, &items, levels.len(), &err)?;
            criteria.push(Criterion {
                id,
                title: c.title,
                description: c.description,
                weight,
                levels,
                evidence,
                guidelines: c.guidelines,
                automated,
                items,
                rule,
            });
        }
        Ok(Rubric {
            band_above: raw.band_above.unwrap_or(1),
            name: raw.name.into_inner(),
            criteria,
        })
    }
}

/// `v` when it is one of `sources`, else an error at it naming `place` and the sources.
fn source_in(
    sources: &[&str],
    v: &Spanned<String>,
    place: &str,
    known: &str,
    err: &dyn Fn(std::ops::Range<usize>, String) -> InputError,
) -> Result<String, InputError> {
    if sources.contains(&v.get_ref().as_str()) {
        Ok(v.get_ref().clone())
    } else {
        Err(err(
            v.span(),
            format!(
                "unknown evidence source {:?} in {place} ({known}: {})",
                v.get_ref(),
                sources.join(", ")
            ),
        ))
    }
}

/// The checklist items of criterion `id`, validated.
fn items(
    raw: &[Spanned<RawItem>],
    id: &str,
    err: &dyn Fn(std::ops::Range<usize>, String) -> InputError,
) -> Result<Vec<Item>, InputError> {
    let mut out: Vec<Item> = Vec::new();
    for r in raw {
        let item = r.get_ref();
        let item_id = item.id.get_ref();
        if !crate::ids::is_plain_id(item_id) {
            return Err(err(
                item.id.span(),
                format!("item id {item_id:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        if out.iter().any(|k| &k.id == item_id) {
            return Err(err(
                item.id.span(),
                format!("item id {item_id:?} is used twice in criterion {id:?}"),
            ));
        }
        let decide = match (&item.check, &item.ask) {
            (Some(check), None) => {
                if let Some(from) = &item.from {
                    return Err(err(
                        from.span(),
                        format!(
                            "item {item_id:?}: `from` is for questions; a check reads what it is documented to read"
                        ),
                    ));
                }
                let name = check.get_ref();
                if checks::find(name).is_none() {
                    return Err(
                        err(check.span(), format!("unknown check {name:?} in item {item_id:?}")).with_hint(format!(
                            "known checks: {}",
                            checks::CHECKS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                        )),
                    );
                }
                if let Some(l) = &item.look_for {
                    return Err(err(
                        l.span(),
                        format!("item {item_id:?}: `look_for` is for questions; a check reads what it is documented to read"),
                    ));
                }
                Decide::Check(name.clone())
            }
            (None, Some(ask)) => {
                let question = ask.get_ref().trim().to_string();
                if question.is_empty() {
                    return Err(err(ask.span(), format!("item {item_id:?}: the question is empty")));
                }
                let known_to_ask = |v: &Spanned<String>| {
                    source_in(
                        &ASK_SOURCES,
                        v,
                        &format!("item {item_id:?}"),
                        "a question may read",
                        err,
                    )
                };
                let from: Vec<String> = match &item.from {
                    Some(f) if !f.get_ref().is_empty() => {
                        f.get_ref().iter().map(known_to_ask).collect::<Result<_, _>>()?
                    }
                    Some(f) => {
                        return Err(err(
                            f.span(),
                            format!("item {item_id:?}: `from` names no evidence source"),
                        ))
                    }
                    None => {
                        return Err(err(
                            r.span(),
                            format!("item {item_id:?}: a question needs `from`, the evidence sources it may read"),
                        )
                        .with_hint(format!("e.g. from = [\"readme\"]; sources: {}", ASK_SOURCES.join(", "))))
                    }
                };
                let mut look_for: Vec<String> = Vec::new();
                for phrase in item.look_for.iter().flat_map(|l| l.get_ref()) {
                    let p = phrase
                        .get_ref()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_lowercase();
                    if p.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
                        return Err(err(
                            phrase.span(),
                            format!("item {item_id:?}: a `look_for` phrase needs at least two letters or digits"),
                        ));
                    }
                    look_for.push(p);
                }
                Decide::Ask {
                    question,
                    from,
                    look_for,
                }
            }
            _ => {
                return Err(err(
                    r.span(),
                    format!("item {item_id:?} needs exactly one of `check = \"NAME\"` or `ask = \"QUESTION\"`"),
                ))
            }
        };
        let weight = match &item.weight {
            None => 1.0,
            Some(w) if w.get_ref().is_finite() && *w.get_ref() > 0.0 => *w.get_ref(),
            Some(w) => {
                return Err(err(
                    w.span(),
                    format!("item weight must be above 0, found {}", w.get_ref()),
                ))
            }
        };
        out.push(Item {
            id: item_id.clone(),
            text: item.text.clone(),
            decide,
            weight,
        });
    }
    Ok(out)
}

/// The level rule of criterion `id`, checked to reach every one of its `levels` levels.
fn rule(
    raw: Option<Spanned<RawRule>>,
    criterion_span: std::ops::Range<usize>,
    id: &str,
    items: &[Item],
    levels: usize,
    err: &dyn Fn(std::ops::Range<usize>, String) -> InputError,
) -> Result<LevelRule, InputError> {
    let total: f64 = items.iter().map(|i| i.weight).sum();
    let Some(raw) = raw else {
        return reachable(LevelRule::Count, criterion_span, id, total, levels, err);
    };
    let span = raw.span();
    if items.is_empty() {
        return Err(err(
            span,
            format!("criterion {id:?} has a level rule but no [[criterion.item]]"),
        ));
    }
    let rule = match raw.into_inner() {
        RawRule::Name(n) if n == "count" => LevelRule::Count,
        RawRule::Name(n) => {
            return Err(err(
                span,
                format!("unknown level rule {n:?} (known: \"count\", {{ at_least = [...] }})"),
            ))
        }
        RawRule::AtLeast { at_least } => {
            if at_least.len() != levels {
                return Err(err(
                    span,
                    format!(
                        "criterion {id:?}: at_least has {} thresholds for {levels} levels",
                        at_least.len()
                    ),
                ));
            }
            if at_least[0] != 0.0 {
                return Err(err(
                    span,
                    format!("criterion {id:?}: the lowest level's threshold must be 0"),
                ));
            }
            if at_least.iter().any(|t| !t.is_finite())
                || at_least
                    .windows(2)
                    .any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater))
            {
                return Err(err(
                    span,
                    format!("criterion {id:?}: thresholds must increase level by level"),
                ));
            }
            LevelRule::AtLeast(at_least)
        }
    };
    reachable(rule, criterion_span, id, total, levels, err)
}

/// `rule`, when items weighing `total` can reach the highest of `levels` levels (a criterion
/// without items is scored from `automated` and has nothing to reach).
fn reachable(
    rule: LevelRule,
    criterion_span: std::ops::Range<usize>,
    id: &str,
    total: f64,
    levels: usize,
    err: &dyn Fn(std::ops::Range<usize>, String) -> InputError,
) -> Result<LevelRule, InputError> {
    if total == 0.0 {
        return Ok(rule);
    }
    let needed = match &rule {
        LevelRule::Count => (levels - 1) as f64,
        LevelRule::AtLeast(t) => t[levels - 1],
    };
    if total + 1e-9 < needed {
        return Err(err(
            criterion_span,
            format!(
                "criterion {id:?}: its items weigh {total} in all, so its highest level (needing {needed}) cannot be reached"
            ),
        )
        .with_hint("add items, raise weights, or lower the thresholds"));
    }
    Ok(rule)
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
            // Every criterion is a checklist of 3-5 items, about twenty in all.
            for c in &rubric.criteria {
                assert!(
                    (3..=5).contains(&c.items.len()),
                    "{}: {} has {} items",
                    path.display(),
                    c.id,
                    c.items.len()
                );
            }
            let n: usize = rubric.criteria.iter().map(|c| c.items.len()).sum();
            assert!((18..=26).contains(&n), "{}: {n} items", path.display());
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
                unrun: 0,
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

    const CHECKLIST: &str = r#"name = "r"
[[criterion]]
id = "process"
title = "Process"
description = "d"
weight = 1
level = [{ score = 1, descriptor = "a" }, { score = 2, descriptor = "b" }, { score = 3, descriptor = "c" }]

[[criterion.item]]
id = "steps"
text = "Many small steps."
check = "many_small_steps"

[[criterion.item]]
id = "failures"
text = "A failed approach is described."
ask = "Does the README or a commit message describe an approach that failed and what changed?"
from = ["readme", "history"]
"#;

    fn parse_err(text: &str) -> InputError {
        Rubric::parse(Path::new("r.toml"), text).unwrap_err()
    }

    #[test]
    fn a_checklist_criterion_parses_and_its_level_counts_the_items_met() {
        let r = Rubric::parse(Path::new("r.toml"), CHECKLIST).unwrap();
        let c = &r.criteria[0];
        assert_eq!(c.items.len(), 2);
        assert_eq!(c.items[0].decide, Decide::Check("many_small_steps".into()));
        assert!(matches!(&c.items[1].decide, Decide::Ask { from, .. } if from == &["readme", "history"]));
        assert_eq!(c.rule, LevelRule::Count);
        assert_eq!(c.level_from_items(&[false, false]), 1);
        assert_eq!(c.level_from_items(&[false, true]), 2);
        assert_eq!(c.level_from_items(&[true, true]), 3);
        // Thresholds: the top level needs both, one is not enough for the middle.
        let text = CHECKLIST.replace("weight = 1\n", "weight = 1\nlevels = { at_least = [0, 1.5, 2] }\n");
        let text = text.replace(
            "check = \"many_small_steps\"",
            "check = \"many_small_steps\"\nweight = 1.5",
        );
        let r = Rubric::parse(Path::new("r.toml"), &text).unwrap();
        let c = &r.criteria[0];
        assert_eq!(c.rule, LevelRule::AtLeast(vec![0.0, 1.5, 2.0]));
        assert_eq!(c.level_from_items(&[false, true]), 1);
        assert_eq!(c.level_from_items(&[true, false]), 2);
        assert_eq!(c.level_from_items(&[true, true]), 3);
    }

    #[test]
    fn a_rubric_without_items_serialises_as_before_so_stored_drafts_stay_valid() {
        let r = Rubric::parse(Path::new("r.toml"), ONE).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&String> = v["criteria"][0].as_object().unwrap().keys().collect();
        assert!(!keys.iter().any(|k| *k == "items" || *k == "rule"), "{keys:?}");
        let back: Rubric = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let r = Rubric::parse(Path::new("r.toml"), CHECKLIST).unwrap();
        let back: Rubric = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn checklist_mistakes_are_reported_where_they_are_written() {
        let e = parse_err(&CHECKLIST.replace("\"many_small_steps\"", "\"vibes\""));
        assert_eq!((e.line, e.col), (Some(12), Some(9)), "{e}");
        assert!(e.to_string().contains("unknown check \"vibes\""), "{e}");
        assert!(e.hint.as_deref().is_some_and(|h| h.contains("tests_pass")), "{e:?}");

        // Both a check and a question, and neither.
        let e = parse_err(&CHECKLIST.replace(
            "check = \"many_small_steps\"",
            "check = \"many_small_steps\"\nask = \"Is it?\"",
        ));
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.to_string().contains("exactly one of"), "{e}");
        let e = parse_err(&CHECKLIST.replace("check = \"many_small_steps\"\n", ""));
        assert_eq!(e.line, Some(9), "{e}");

        // A question without its evidence, a check with some, an unknown source.
        let e = parse_err(&CHECKLIST.replace("from = [\"readme\", \"history\"]\n", ""));
        assert!(e.to_string().contains("needs `from`"), "{e}");
        let e = parse_err(&CHECKLIST.replace(
            "check = \"many_small_steps\"",
            "check = \"many_small_steps\"\nfrom = [\"history\"]",
        ));
        assert_eq!(e.line, Some(13), "{e}");
        let e = parse_err(&CHECKLIST.replace("[\"readme\", \"history\"]", "[\"readme\", \"gossip\"]"));
        assert_eq!((e.line, e.col), (Some(18), Some(19)), "{e}");

        // Phrases to look for: a question's, lower-cased; never a check's; never a lone letter.
        let ok = Rubric::parse(
            Path::new("r.toml"),
            &CHECKLIST.replace(
                "from = [\"readme\", \"history\"]\n",
                "from = [\"readme\", \"history\"]\nlook_for = [\"Did  not work\", \"f1\"]\n",
            ),
        )
        .unwrap();
        let asked = ok.criteria[0].items.iter().find_map(|i| match &i.decide {
            Decide::Ask { look_for, .. } => Some(look_for.clone()),
            _ => None,
        });
        assert_eq!(asked, Some(vec!["did not work".to_string(), "f1".to_string()]));
        let e = parse_err(&CHECKLIST.replace(
            "check = \"many_small_steps\"",
            "check = \"many_small_steps\"\nlook_for = [\"dump\"]",
        ));
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.to_string().contains("`look_for` is for questions"), "{e}");
        let e = parse_err(&CHECKLIST.replace(
            "from = [\"readme\", \"history\"]\n",
            "from = [\"readme\", \"history\"]\nlook_for = [\"tried\", \"x\"]\n",
        ));
        assert_eq!((e.line, e.col), (Some(19), Some(22)), "{e}");

        // The same id twice.
        let e = parse_err(&CHECKLIST.replace("id = \"failures\"", "id = \"steps\""));
        assert_eq!((e.line, e.col), (Some(15), Some(6)), "{e}");
        assert!(e.to_string().contains("used twice"), "{e}");
    }

    #[test]
    fn a_level_rule_that_cannot_reach_every_level_is_refused() {
        // Two items cannot lift four levels by counting.
        let four = CHECKLIST.replace(
            "{ score = 3, descriptor = \"c\" }]",
            "{ score = 3, descriptor = \"c\" }, { score = 4, descriptor = \"d\" }]",
        );
        let e = parse_err(&four);
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("cannot be reached"), "{e}");
        let with = |rule: &str| CHECKLIST.replace("weight = 1\n", &format!("weight = 1\nlevels = {rule}\n"));
        for (rule, says) in [
            ("{ at_least = [0, 1] }", "2 thresholds for 3 levels"),
            ("{ at_least = [1, 1.5, 2] }", "must be 0"),
            ("{ at_least = [0, 2, 2] }", "must increase"),
            ("{ at_least = [0, nan, 2] }", "must increase"),
            ("{ at_least = [0, 1, 3] }", "cannot be reached"),
            ("\"median\"", "unknown level rule"),
        ] {
            let e = parse_err(&with(rule));
            assert!(e.to_string().contains(says), "{rule}: {e}");
        }
        // A rule with nothing to count.
        let e = parse_err(&format!("{ONE}levels = \"count\"\n"));
        assert!(e.to_string().contains("no [[criterion.item]]"), "{e}");
    }
}

//! A checklist criterion assessed: each item met or not with its evidence, the level the
//! rubric's rule gives, and a rationale composed from the items alone (so it never claims more
//! than they show).

use serde::{Deserialize, Serialize};

use super::checks::{self, CheckInput};
use super::{Criterion, Decide};
use crate::ask::Answer;

/// One item as assessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub id: String,
    /// `check` or `ask`.
    pub kind: String,
    /// The item's public text.
    pub text: String,
    pub met: bool,
    /// Ids of the evidence items it rests on.
    pub evidence: Vec<String>,
    /// For a question met: the verified words of the cited item.
    pub quote: Option<String>,
    /// `cannot_tell`, `not_asked`, `unverified_quote: …`, `invalid_answer: …`, `cited_elsewhere: …`
    pub flags: Vec<String>,
    /// One line for the grader: why (a check's reading, or what the model claimed).
    pub note: String,
    /// What the model claimed, for a question (kept whether or not it counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed: Option<Claim>,
}

/// A question's answer as the model gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub answer: Option<String>,
    pub evidence: Option<String>,
    pub quote: Option<String>,
}

/// The items of `c`: checks computed from `input`, questions from `answers` (a question without
/// an answer is not met and flagged `not_asked`).
pub fn items(c: &Criterion, input: &CheckInput<'_>, answers: &[Answer]) -> Vec<ItemResult> {
    c.items
        .iter()
        .map(|item| match &item.decide {
            Decide::Check(name) => {
                let check = checks::find(name).expect("validated rubrics name known checks");
                let v = (check.eval)(input);
                ItemResult {
                    id: item.id.clone(),
                    kind: item.decide.kind().into(),
                    text: item.text.clone(),
                    met: v.met == Some(true),
                    evidence: v.evidence,
                    quote: None,
                    flags: if v.met.is_none() {
                        vec!["cannot_tell".into()]
                    } else {
                        vec![]
                    },
                    note: v.note,
                    claimed: None,
                }
            }
            Decide::Ask { .. } => {
                let a = answers.iter().find(|a| a.criterion == c.id && a.item == item.id);
                match a {
                    None => ItemResult {
                        id: item.id.clone(),
                        kind: item.decide.kind().into(),
                        text: item.text.clone(),
                        met: false,
                        evidence: vec![],
                        quote: None,
                        flags: vec!["not_asked".into()],
                        note: "the model was not asked (no draft stage)".into(),
                        claimed: None,
                    },
                    Some(a) => ItemResult {
                        id: item.id.clone(),
                        kind: item.decide.kind().into(),
                        text: item.text.clone(),
                        met: a.met,
                        evidence: if a.met {
                            a.evidence.iter().cloned().collect()
                        } else {
                            vec![]
                        },
                        quote: a.quote.clone().filter(|_| a.met),
                        flags: a.flags.clone(),
                        note: match (a.answer.as_deref(), a.met) {
                            (Some("yes"), true) if a.flags.iter().any(|f| f.starts_with("closer_reading")) => {
                                "the model's first quote did not count; read alone, the section cited answered \
yes with this quote, found there"
                                    .into()
                            }
                            (Some("yes"), true) => {
                                "the model answered yes; its quote was found in the cited item and confirmed".into()
                            }
                            (Some("yes"), false) if a.flags.iter().any(|f| f.starts_with("not_confirmed")) => {
                                "the model answered yes with a quote found in the cited item, but on a second \
reading of that passage alone it did not: not counted"
                                    .into()
                            }
                            (Some("yes"), false) => {
                                "the model answered yes, but its quote was not verified: not counted".into()
                            }
                            (Some(_), _) => "the model answered no".into(),
                            (None, _) => "the model's answer was unusable: not counted".into(),
                        },
                        claimed: Some(Claim {
                            answer: a.answer.clone(),
                            evidence: a.evidence.clone(),
                            quote: a.quote.clone(),
                        }),
                    },
                }
            }
        })
        .collect()
}

/// The level the rubric's rule gives these items.
pub fn level(c: &Criterion, items: &[ItemResult]) -> u32 {
    c.level_where(|id| items.iter().any(|r| r.id == id && r.met))
}

/// A rationale from the items alone: what is met (with ids and quotes), then what is not.
pub fn rationale(items: &[ItemResult]) -> String {
    let cite = |r: &ItemResult| {
        let mut s = r.text.trim_end_matches('.').to_string();
        match (&r.quote, r.evidence.as_slice()) {
            (Some(q), [id, ..]) => s.push_str(&format!(" ({id}: \"{q}\")")),
            (_, []) => {}
            (_, ids) => s.push_str(&format!(" ({})", ids.join(", "))),
        }
        s
    };
    let met: Vec<String> = items.iter().filter(|r| r.met).map(cite).collect();
    let unmet: Vec<String> = items
        .iter()
        .filter(|r| !r.met)
        .map(|r| {
            let why = if r.flags.iter().any(|f| f == "cannot_tell") {
                format!(" (cannot tell: {})", r.note)
            } else if r.kind == "check" {
                format!(" ({})", r.note)
            } else {
                String::new()
            };
            format!("{}{why}", r.text.trim_end_matches('.'))
        })
        .collect();
    let mut out = String::new();
    if !met.is_empty() {
        out.push_str(&format!("Met: {}.", met.join("; ")));
    }
    if !unmet.is_empty() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("Not met: {}.", unmet.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::EvidenceItem;
    use crate::facts::{Facts, HistoryFacts};
    use crate::rubric::Rubric;

    fn criterion() -> Criterion {
        let r = Rubric::parse(
            Path::new("r.toml"),
            r#"name = "r"
[[criterion]]
id = "iteration"
title = "Iteration"
description = "small steps"
weight = 1.0
level = [{ score = 1, descriptor = "a" }, { score = 2, descriptor = "b" }, { score = 3, descriptor = "c" }, { score = 4, descriptor = "d" }]
[[criterion.item]]
id = "steps"
text = "Many small steps."
check = "many_small_steps"
[[criterion.item]]
id = "dump"
text = "No single dump."
check = "no_single_dump"
[[criterion.item]]
id = "failures"
text = "A failed approach is described."
ask = "Does the README describe an approach that failed?"
from = ["readme", "commits"]
"#,
        )
        .unwrap();
        r.criteria[0].clone()
    }

    fn answer(met: bool, quote: &str) -> Answer {
        Answer {
            criterion: "iteration".into(),
            item: "failures".into(),
            answer: Some("yes".into()),
            evidence: Some("D2".into()),
            quote: Some(quote.into()),
            met,
            flags: if met {
                vec![]
            } else {
                vec!["unverified_quote: the quote is not in D2".into()]
            },
            prompt_hash: "h".into(),
            run: Default::default(),
            confirmation: None,
            closer: Vec::new(),
        }
    }

    #[test]
    fn a_dump_stays_at_the_lowest_levels_whatever_the_model_answers() {
        let c = criterion();
        let facts = Facts {
            history: Some(HistoryFacts {
                commit_count: 2,
                signals: vec!["single_dump".into()],
            }),
            ..Default::default()
        };
        let ev = vec![EvidenceItem {
            id: "H1".into(),
            kind: "single_dump".into(),
            source: "commit abc".into(),
            text: "one commit".into(),
        }];
        let input = CheckInput {
            facts: &facts,
            evidence: &ev,
        };
        let yes = [answer(true, "we first tried a CNN and it overfit")];
        let items = items(&c, &input, &yes);
        assert_eq!(items.iter().map(|i| i.met).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(level(&c, &items), 2, "count rule: 1 + one item met");
        let r = rationale(&items);
        assert!(
            r.starts_with("Met: A failed approach is described (D2: \"we first tried a CNN and it overfit\")."),
            "{r}"
        );
        assert!(
            r.contains("Not met: Many small steps (2 commits); No single dump (one commit holds 80% or more"),
            "{r}"
        );
        // An unverified yes counts for nothing, and the grader sees the claim.
        let items = super::items(&c, &input, &[answer(false, "invented words here")]);
        assert_eq!(level(&c, &items), 1);
        let q = &items[2];
        assert!(q.quote.is_none() && q.evidence.is_empty());
        assert_eq!(
            q.claimed.as_ref().unwrap().quote.as_deref(),
            Some("invented words here")
        );
        assert!(q.flags[0].starts_with("unverified_quote"));
        // No model: the question is not met and says so.
        let items = super::items(&c, &input, &[]);
        assert_eq!(items[2].flags, ["not_asked"]);
    }
}

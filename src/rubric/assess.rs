//! A checklist criterion assessed: each item met or not with its evidence, the level the
//! rubric's rule gives, and a rationale composed from the items alone (so it never claims more
//! than they show).

use serde::{Deserialize, Serialize};

use super::checks::{self, CheckInput};
use super::{Criterion, Decide};

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

/// The items of `c`: checks computed from `input`, questions as `asked` decided them (the model's
/// answers, read by [`crate::ask::item_results`]; a question not among them is not met and
/// flagged `not_asked`).
pub fn items(c: &Criterion, input: &CheckInput<'_>, asked: &[ItemResult]) -> Vec<ItemResult> {
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
            Decide::Ask { .. } => match asked.iter().find(|r| r.id == item.id) {
                Some(r) => r.clone(),
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
            },
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
pub(crate) mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::EvidenceItem;
    use crate::facts::{Facts, HistoryFacts};
    use crate::rubric::Rubric;

    /// A criterion of two checks (small steps, no dump) and one question (a failed approach).
    pub(crate) fn criterion() -> Criterion {
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

    /// A question item decided yes, as `ask::item_results` gives it.
    fn met(quote: &str) -> ItemResult {
        ItemResult {
            id: "failures".into(),
            kind: "ask".into(),
            text: "A failed approach is described.".into(),
            met: true,
            evidence: vec!["D2".into()],
            quote: Some(quote.into()),
            flags: vec![],
            note: "the model answered yes; its quote was found in the cited item and confirmed".into(),
            claimed: None,
        }
    }

    #[test]
    fn a_dump_stays_at_the_lowest_levels_whatever_the_questions_say() {
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
        let items = items(&c, &input, &[met("we first tried a CNN and it overfit")]);
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
        // No model: the question is not met and says so.
        let items = super::items(&c, &input, &[]);
        assert_eq!(items[2].flags, ["not_asked"]);
        assert_eq!(level(&c, &items), 1);
    }
}

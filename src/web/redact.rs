//! Blind review: who a submission belongs to is replaced, in everything a page shows, by its
//! anonymised id. Pure.
//!
//! What is known to identify a candidate: the cohort's candidate ids (and, for ids such as
//! `alice-smith`, the name written with a space, an underscore or run together), the repository
//! URLs or paths, ids that read like a name part by part (`Alice`), and the account a hosted URL names (`github.com/<owner>/…`). E-mail addresses
//! anywhere are replaced too. Git author names and e-mails never reach the store: the history
//! stage keeps only salted author ids. A name that appears nowhere in the cohort file (a README
//! signed with a full name the id does not spell) cannot be known and is not caught.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use crate::submission::SubmissionRecord;

/// Shown where a repository was.
pub const REPO: &str = "[repository hidden]";
/// Shown where an e-mail address was.
pub const EMAIL: &str = "[e-mail hidden]";
/// Shown where a repository owner's account was.
pub const ACCOUNT: &str = "[account hidden]";

/// Replaces the identities of a cohort's submissions.
pub struct Redactor {
    /// Every identity, matched leftmost-longest and ASCII-case-insensitively in one linear
    /// pass (a cohort of 1,000 has ~4,000 of them: a regex alternation that size is slow).
    names: Option<AhoCorasick>,
    /// Replacement by pattern index.
    replacement: Vec<String>,
    email: Regex,
}

impl Redactor {
    /// A redactor for the identities of `records` (a whole cohort: one submission's page must
    /// not name another candidate either).
    pub fn new(records: &[SubmissionRecord]) -> Redactor {
        let mut replacement = std::collections::HashMap::new();
        let mut add = |what: &str, with: &str| {
            let key = what.trim().to_lowercase();
            if key.chars().count() >= 3 {
                replacement.entry(key).or_insert_with(|| with.to_string());
            }
        };
        for r in records {
            add(&r.repo, REPO);
            if let Some(owner) = hosted_owner(&r.repo) {
                add(owner, ACCOUNT);
            }
            add(&r.candidate, &r.anon_id);
            let parts: Vec<&str> = r
                .candidate
                .split(['-', '_', '.', ' '])
                .filter(|p| !p.is_empty())
                .collect();
            if parts.len() > 1 {
                for sep in [" ", "_", "-", ".", ""] {
                    add(&parts.join(sep), &r.anon_id);
                }
                // An id that reads like a name (`alice-smith`, `jo-ann-lee`): each part alone
                // too. Over-redacting a word beats showing a first name.
                if parts.len() <= 3 && parts.iter().all(|p| p.len() >= 3 && p.chars().all(char::is_alphabetic)) {
                    for p in &parts {
                        add(p, &r.anon_id);
                    }
                }
            }
        }
        let (patterns, replacement): (Vec<String>, Vec<String>) = replacement.into_iter().unzip();
        let names = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("literal patterns build")
        });
        Redactor {
            names,
            replacement,
            email: Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
                .expect("e-mail regex"),
        }
    }

    /// `text` with every identity replaced. An identity counts only as a whole word: `c-01` is
    /// not replaced inside `c-012`.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = self.email.replace_all(text, EMAIL);
        if let Some(names) = &self.names {
            let mut changed = String::with_capacity(out.len());
            let mut last = 0;
            let mut any = false;
            for m in names.find_iter(out.as_ref()) {
                let before = out[..m.start()].chars().next_back();
                let after = out[m.end()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                if word(before) || word(after) {
                    continue;
                }
                changed.push_str(&out[last..m.start()]);
                changed.push_str(&self.replacement[m.pattern().as_usize()]);
                last = m.end();
                any = true;
            }
            if any {
                changed.push_str(&out[last..]);
                out = Cow::Owned(changed);
            }
        }
        out
    }

    /// Every string (and object key) in `value`, redacted in place.
    pub fn json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.text(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.json(&mut v);
                    map.insert(self.text(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }
}

/// The account a hosted repository URL names: `owner` in `https://host/owner/name(.git)` or
/// `git@host:owner/name`. Local paths name no account.
fn hosted_owner(repo: &str) -> Option<&str> {
    let rest = if let Some((_, rest)) = repo.split_once("://") {
        rest.split_once('/')?.1
    } else if let Some((host, rest)) = repo.split_once(':') {
        if host.contains('/') || !host.contains('@') {
            return None;
        }
        rest
    } else {
        return None;
    };
    rest.split('/').find(|s| !s.is_empty()).filter(|_| rest.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::SubmissionStatus;

    fn rec(candidate: &str, anon: &str, repo: &str) -> SubmissionRecord {
        SubmissionRecord {
            id: 1,
            cohort_id: 1,
            candidate: candidate.into(),
            anon_id: anon.into(),
            repo: repo.into(),
            git_ref: None,
            commit: None,
            status: SubmissionStatus::Done,
            outcome: None,
        }
    }

    #[test]
    fn identities_emails_and_accounts_are_replaced_as_whole_words() {
        let r = Redactor::new(&[
            rec("alice-smith", "s-1a2b", "https://github.com/asmith42/churn.git"),
            rec("c-01", "s-9f9f", "/srv/subs/c-01"),
        ]);
        assert_eq!(
            r.text("Alice Smith (alice@example.org) wrote this; see https://github.com/asmith42/churn.git"),
            "s-1a2b ([e-mail hidden]) wrote this; see [repository hidden]"
        );
        assert_eq!(
            r.text("forked from asmith42/other"),
            "forked from [account hidden]/other"
        );
        assert_eq!(r.text("ALICE_SMITH and alicesmith"), "s-1a2b and s-1a2b");
        assert_eq!(r.text("Thanks, Alice! Smithy"), "Thanks, s-1a2b! Smithy");
        assert_eq!(r.text("c-01 but not c-012 or xc-01"), "s-9f9f but not c-012 or xc-01");
        // `c-01`'s parts are no name: `01` stays.
        assert_eq!(r.text("step 01"), "step 01");
        assert_eq!(r.text("cloned /srv/subs/c-01 ok"), "cloned [repository hidden] ok");
        assert!(matches!(r.text("nothing to hide"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_is_redacted_in_strings_and_keys() {
        let r = Redactor::new(&[rec("bob-jones", "s-0001", "/tmp/x/bob-jones")]);
        let mut v =
            serde_json::json!({"s": {"candidate": "bob-jones", "n": 3, "list": ["by Bob Jones"]}, "bob-jones": 1});
        r.json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"s": {"candidate": "s-0001", "n": 3, "list": ["by s-0001"]}, "s-0001": 1})
        );
    }

    #[test]
    fn only_hosted_urls_name_an_account() {
        assert_eq!(hosted_owner("https://example.org/c-017/churn.git"), Some("c-017"));
        assert_eq!(hosted_owner("git@github.com:someone/repo.git"), Some("someone"));
        assert_eq!(hosted_owner("/home/me/repo"), None);
        assert_eq!(hosted_owner("C:/repo"), None);
        assert_eq!(hosted_owner("https://example.org/repo.git"), None);
    }
}

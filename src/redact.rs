//! Credentials kept out of every message assay stores, logs or shows. A leaf: it imports
//! nothing of assay's.

/// Removes credentials from every URL in `text` (`scheme://user:pass@host` →
/// `scheme://host`). Applied to every message that is stored, logged or shown,
/// because libgit2's errors may quote the URL they were given.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '"' | '\'' | '>' | ')'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_userinfo() {
        assert_eq!(
            redact("failed to fetch 'https://tok:x@h.org/a.git': 404; also ssh://git@h/b"),
            "failed to fetch 'https://h.org/a.git': 404; also ssh://h/b"
        );
    }
}

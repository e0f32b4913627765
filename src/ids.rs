//! The shape of the ids users write (cohort and candidate names, rubric criterion and item ids).
//! A leaf: it imports nothing of assay's.

/// True for ids made of ASCII letters, digits, `-`, `_` and `.`, 1 to 64 long,
/// not starting with `.`: safe as file names and in URLs.
pub fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_safe_as_file_names() {
        for ok in ["alice", "c-1", "a_b.c", "X9", &"a".repeat(64)] {
            assert!(is_plain_id(ok), "{ok:?}");
        }
        for bad in ["", ".hidden", "a/b", "../x", "a b", "é", &"a".repeat(65), "a:b"] {
            assert!(!is_plain_id(bad), "{bad:?}");
        }
    }
}

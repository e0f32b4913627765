//! Corrupt or partial repositories: a libgit2 error about a missing object becomes a
//! `repo_corrupt` failure that names the object and the commit that needs it, never "no
//! commits" or an infrastructure error that is retried for nothing.

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use crate::outcome::{Failure, OutcomeKind};

/// Commits searched for the one that needs a missing object, at most.
const MAX_SEARCHED: usize = 20_000;

/// What `repo_corrupt` says of a missing object described by `what` (its id, path, commit).
pub fn missing_message(what: &str) -> String {
    format!(
        "{what} is missing from the repository: it is damaged or a partial copy; ask for a complete clone (`git fsck --full` lists what is missing)"
    )
}

/// Whether the tree `id` is absent from `repo` (a partial copy): a walk skips it and lists it.
pub fn tree_missing(repo: &Repository, id: Oid) -> bool {
    repo.find_tree(id).is_err_and(|e| is_missing(&e))
}

/// Whether a libgit2 error says an object is missing (with or without naming it).
pub fn is_missing(e: &git2::Error) -> bool {
    missing_object(e).is_some() || e.code() == git2::ErrorCode::NotFound && e.class() == git2::ErrorClass::Odb
}

/// The object a libgit2 error says is missing, if it says so.
pub fn missing_object(e: &git2::Error) -> Option<Oid> {
    let m = e.message().to_ascii_lowercase();
    let missing = e.code() == git2::ErrorCode::NotFound && e.class() == git2::ErrorClass::Odb
        || m.contains("object not found")
        || m.contains("missing object")
        || m.contains("failed to find object")
        || m.contains("missing blob")
        || m.contains("missing tree");
    if !missing {
        return None;
    }
    m.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 40)
        .and_then(|w| Oid::from_str(w).ok())
}

/// Where `oid` is needed in the history of `repo` (every ref, newest first): the first commit
/// that is it, names it as a parent or tree, or holds it in its tree (with the path).
pub fn needed_by(repo: &Repository, oid: Oid) -> Option<(Oid, Option<String>)> {
    let mut walk = repo.revwalk().ok()?;
    walk.push_glob("*").ok()?;
    let _ = walk.push_head();
    for c in walk.take(MAX_SEARCHED).flatten() {
        let Ok(commit) = repo.find_commit(c) else {
            if c == oid {
                return None;
            }
            continue;
        };
        if commit.parent_ids().any(|p| p == oid) || commit.tree_id() == oid {
            return Some((c, None));
        }
        let Ok(tree) = commit.tree() else { continue };
        let mut found: Option<String> = None;
        let _ = tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.id() == oid {
                found = Some(format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes())));
                return TreeWalkResult::Abort;
            }
            // A missing subtree cannot be walked; it is named by its entry above.
            if entry.kind() == Some(ObjectType::Tree) && repo.find_tree(entry.id()).is_err() {
                return TreeWalkResult::Skip;
            }
            TreeWalkResult::Ok
        });
        if found.is_some() {
            return Some((c, found));
        }
    }
    None
}

/// The `repo_corrupt` failure for `e` if it is about a missing object, looking in `repo` (when
/// it can be opened) for the commit that needs the object. `context` says what was being read.
pub fn failure(e: &git2::Error, repo: Option<&Repository>, context: &str) -> Option<Failure> {
    let oid = missing_object(e)?;
    let needer = repo.and_then(|r| needed_by(r, oid));
    let what = match &needer {
        Some((commit, Some(path))) => format!("object {oid} ({path} in commit {commit})"),
        Some((commit, None)) => format!("object {oid} (needed by commit {commit})"),
        None => format!("object {oid}"),
    };
    Some(Failure::new(
        OutcomeKind::RepoCorrupt,
        format!("{context}: {}", missing_message(&what)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_object_is_read_from_libgit2_messages() {
        let e = git2::Error::new(
            git2::ErrorCode::NotFound,
            git2::ErrorClass::Odb,
            "object not found - cannot read header for (61780798228d17af2d34fce4cfbdf35556832472)",
        );
        assert_eq!(
            missing_object(&e).unwrap().to_string(),
            "61780798228d17af2d34fce4cfbdf35556832472"
        );
        let other = git2::Error::new(
            git2::ErrorCode::NotFound,
            git2::ErrorClass::Reference,
            "reference 'refs/heads/x' not found",
        );
        assert_eq!(missing_object(&other), None);
    }
}

//! Exporting hostile trees: the library call the fetch stage makes.

use assay::config::Limits;
use assay::git::export_tree;
use assay::outcome::OutcomeKind;

use crate::helpers::*;

fn export(r: &Scripted, limits: &Limits) -> (tempfile::TempDir, Result<assay::git::Exported, assay::outcome::Failure>) {
    let out = tempfile::tempdir().unwrap();
    let head = r.repo.head().unwrap().target().unwrap().to_string();
    let res = export_tree(&r.repo, &head, &out.path().join("x"), limits);
    (out, res)
}

#[test]
fn symlinks_outside_the_tree_are_not_written() {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("hi\n")), ("docs/guide.md", Some("guide\n"))]);
    r.put_entry("results.xml", b"/etc/passwd", 0o120000);
    r.put_entry("docs/up", b"../../../etc", 0o120000);
    r.put_entry("docs/readme", b"../README.md", 0o120000);
    // A chain: each link looks harmless alone, together they leave the tree.
    r.put_entry("here", b".", 0o120000);
    r.put_entry("sneaky", b"here/..", 0o120000);
    r.commit("links", DAY1);
    let (out, res) = export(&r, &Limits::default());
    let x = res.unwrap();
    let root = out.path().join("x");
    let skipped: Vec<&str> = x.skipped_symlinks.iter().map(|(p, _)| p.as_str()).collect();
    for p in ["results.xml", "docs/up", "sneaky"] {
        assert!(skipped.contains(&p), "{p} not skipped: {skipped:?}");
        assert!(std::fs::symlink_metadata(root.join(p)).is_err(), "{p} was written");
    }
    assert_eq!(std::fs::read_to_string(root.join("docs/readme")).unwrap(), "hi\n");
    assert!(root.join(assay::git::export::EXPORT_MARKER).is_file());
}

#[test]
fn dot_dot_and_dot_git_paths_fail_the_export() {
    for bad in [
        "../evil.sh",
        "src/../../evil.sh",
        ".GIT/hooks/post-checkout",
        "sub/.git/config",
        ".git /x",
    ] {
        let mut r = Scripted::new();
        r.put(&[("ok.py", Some("1\n")), (bad, Some("#!/bin/sh\nid\n"))]);
        r.commit("hostile", DAY1);
        let (out, res) = export(&r, &Limits::default());
        let f = res.expect_err(bad);
        assert_eq!(f.kind, OutcomeKind::UnsafePath, "{bad}: {f}");
        // Nothing is left behind, and nothing escaped.
        assert!(!out.path().join("x").exists());
        assert!(!out.path().join("evil.sh").exists());
    }
}

#[test]
fn size_and_count_limits_are_outcomes() {
    let mut r = Scripted::new();
    let big = "x".repeat(10_000);
    r.put(&[
        ("a.txt", Some("small\n")),
        ("big.bin", Some(&big)),
        ("c.txt", Some("more\n")),
    ]);
    r.commit("files", DAY1);
    let check = |limits: Limits, kind: OutcomeKind| {
        let (_out, res) = export(&r, &limits);
        assert_eq!(res.unwrap_err().kind, kind);
    };
    check(
        Limits {
            file_bytes: 5_000,
            ..Limits::default()
        },
        OutcomeKind::FileTooLarge,
    );
    check(
        Limits {
            export_files: 2,
            ..Limits::default()
        },
        OutcomeKind::TooManyFiles,
    );
    check(
        Limits {
            export_bytes: 8_000,
            ..Limits::default()
        },
        OutcomeKind::ExportTooLarge,
    );
    let (_out, res) = export(&r, &Limits::default());
    let x = res.unwrap();
    assert_eq!((x.files, x.bytes), (3, 10_011));
}

#[test]
fn an_interrupted_export_is_redone_and_a_finished_one_reused() {
    let r = iterative();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("x");
    let head = r.repo.head().unwrap().target().unwrap().to_string();
    // Half an export without its marker, as a crash would leave it.
    std::fs::create_dir_all(dest.join("junk")).unwrap();
    let x = export_tree(&r.repo, &head, &dest, &Limits::default()).unwrap();
    assert!(!dest.join("junk").exists());
    assert!(dest.join("churn/model.py").is_file());
    let again = export_tree(&r.repo, &head, &dest, &Limits::default()).unwrap();
    assert_eq!(x, again);
}

/// Commits the tree `tree` (written by hand) as HEAD of `r`.
fn commit_raw_tree(r: &Scripted, tree: git2::Oid) {
    let sig = git2::Signature::new("Sam Candidate", "sam@example.org", &git2::Time::new(DAY1, 0)).unwrap();
    let tree = r.repo.find_tree(tree).unwrap();
    r.repo.commit(Some("HEAD"), &sig, &sig, "crafted", &tree, &[]).unwrap();
}

/// A raw tree object of `entries` (mode, name, object), in the order given.
fn raw_tree(r: &Scripted, entries: &[(&str, &str, git2::Oid)]) -> git2::Oid {
    let mut bytes = Vec::new();
    for (mode, name, oid) in entries {
        bytes.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        bytes.extend_from_slice(oid.as_bytes());
    }
    r.repo.odb().unwrap().write(git2::ObjectType::Tree, &bytes).unwrap()
}

#[test]
fn directories_count_against_the_entry_limit() {
    // A bomb of empty directories: one tree object naming the empty tree 5,000 times.
    let r = Scripted::new();
    let empty = r.repo.treebuilder(None).unwrap().write().unwrap();
    let mut names: Vec<String> = (0..5_000).map(|k| format!("d{k:05}")).collect();
    names.sort();
    let entries: Vec<(&str, &str, git2::Oid)> = names.iter().map(|n| ("40000", n.as_str(), empty)).collect();
    let bomb = raw_tree(&r, &entries);
    commit_raw_tree(&r, bomb);
    let limits = Limits {
        export_files: 1_000,
        ..Limits::default()
    };
    let (out, res) = export(&r, &limits);
    let f = res.unwrap_err();
    assert_eq!(f.kind, OutcomeKind::TooManyFiles, "{f}");
    assert!(f.message.contains("files and directories"), "{f}");
    assert!(!out.path().join("x").exists() && !out.path().join("x.partial").exists());
    // Within the limit the directories are written and counted.
    let (_out, res) = export(&r, &Limits::default());
    assert_eq!(res.unwrap().dirs, 5_000);
}

/// A repository whose one file sits `depth` directories deep.
fn nested(depth: usize) -> Scripted {
    let r = Scripted::new();
    let blob = r.repo.blob(b"deep\n").unwrap();
    let mut tree = raw_tree(&r, &[("100644", "f.txt", blob)]);
    for _ in 0..depth {
        tree = raw_tree(&r, &[("40000", "d", tree)]);
    }
    commit_raw_tree(&r, tree);
    r
}

#[test]
fn a_tree_nested_past_the_depth_limit_is_an_outcome_not_our_error() {
    // 3,000 directories deep: past the system's path length, were it written.
    let r = nested(3_000);
    let (out, res) = export(&r, &Limits::default());
    let f = res.unwrap_err();
    assert_eq!(f.kind, OutcomeKind::TreeTooDeep, "{f}");
    assert!(!f.kind.is_retryable());
    assert!(!out.path().join("x").exists() && !out.path().join("x.partial").exists());
    // 64 deep is fine.
    let r = nested(assay::git::export::MAX_DEPTH);
    let (_out, res) = export(&r, &Limits::default());
    assert_eq!(res.unwrap().files, 1);
}

#[test]
fn a_name_given_twice_fails_the_export_as_unsafe() {
    let r = Scripted::new();
    let blob = r.repo.blob(b"payload\n").unwrap();
    let link = r.repo.blob(b"/etc").unwrap();
    let inner = raw_tree(&r, &[("100644", "f.txt", blob)]);
    // A link and a directory both named "a" (a link to itself stays inside the tree)...
    let same = r.repo.blob(b".").unwrap();
    for entries in [
        vec![("120000", "a", same), ("40000", "a", inner)],
        // ...a directory and a file both named "b"...
        vec![("40000", "b", inner), ("100644", "b", blob)],
        // ...and a file then a link outside under one name.
        vec![("100644", "c", blob), ("120000", "c", link)],
    ] {
        let r2 = Scripted::new();
        let copy = |oid: git2::Oid| {
            let data = r.repo.find_object(oid, None).unwrap();
            let kind = data.kind().unwrap();
            let bytes = r.repo.odb().unwrap().read(oid).unwrap().data().to_vec();
            r2.repo.odb().unwrap().write(kind, &bytes).unwrap()
        };
        let entries: Vec<(&str, &str, git2::Oid)> = entries.iter().map(|(m, n, o)| (*m, *n, copy(*o))).collect();
        let tree = raw_tree(&r2, &entries);
        commit_raw_tree(&r2, tree);
        let (out, res) = export(&r2, &Limits::default());
        match res {
            Err(f) => {
                assert_eq!(f.kind, OutcomeKind::UnsafePath, "{entries:?}: {f}");
                assert!(f.message.contains("twice"), "{f}");
                assert!(!out.path().join("x").exists());
            }
            // A link skipped as pointing outside writes nothing under the name.
            Ok(x) => assert!(
                entries[1].1 == "c" && x.skipped_symlinks.iter().any(|(p, _)| p == "c"),
                "{entries:?}: {x:?}"
            ),
        }
    }
}

#[test]
fn a_repository_with_more_branches_and_tags_than_the_limit_is_an_outcome() {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("hi\n"))]);
    let head = r.commit("one", DAY1);
    let commit = r.repo.find_commit(head).unwrap();
    for k in 0..300 {
        r.repo
            .tag_lightweight(&format!("t{k:04}"), commit.as_object(), false)
            .unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let source = assay::git::RepoSource::Local(r.dir.path().to_path_buf());
    let fetch = |refs: u64| {
        let limits = Limits {
            refs,
            ..Limits::default()
        };
        let settings = assay::config::Settings::default();
        let mut req = assay::git::FetchRequest::new(&source, &settings);
        req.data_dir = data.path();
        req.limits = &limits;
        assay::git::fetch(&req)
    };
    let f = fetch(100).unwrap_err();
    assert_eq!(f.kind, OutcomeKind::TooManyRefs, "{f}");
    assert!(f.message.contains("limits.refs (100)"), "{f}");
    // It stopped writing them at the limit.
    let mirror = assay::git::fetch::mirror_path(data.path(), &source);
    let written = git2::Repository::open_bare(&mirror)
        .unwrap()
        .references()
        .unwrap()
        .count();
    assert!(written <= 101, "{written} refs written");
    // Within the limit the fetch goes through.
    let ok = fetch(1_000).unwrap();
    assert_eq!(ok.commit, head.to_string());
}

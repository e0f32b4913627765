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

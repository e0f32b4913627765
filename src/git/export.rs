//! Export: writes the graded commit's tree into a fresh directory, blob by blob.
//!
//! No checkout machinery is involved, so no filters (LFS, smudge), no hooks and
//! no submodules run. Hostile trees are expected: names that could escape the
//! directory (`..`, `.git` in any case or disguise, separators) fail the export;
//! symlinks are written only when they resolve inside the tree; a name given twice fails
//! the export; sizes, entries (files and directories) and depth are capped. A partial copy (objects missing from the repository, as in a
//! mirror that left out its largest blobs) exports what it has: each missing file or
//! directory is listed in [`Exported::missing`], never silently dropped.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use serde::{Deserialize, Serialize};

use super::corrupt;
use crate::config::Limits;
use crate::outcome::{Failure, OutcomeKind};

/// Written last into a finished export; a directory without it is incomplete.
pub const EXPORT_MARKER: &str = ".assay-export-complete";

/// Directories a path of the graded tree may be nested in. Real projects stay far below; a
/// tree thousands deep would otherwise reach the system's path length limit, an error on our
/// side instead of a finding about the tree.
pub const MAX_DEPTH: usize = 64;

/// Bytes a path of the graded tree may have (the export directory's own path comes on top,
/// within the system's 4,096).
pub const MAX_PATH_BYTES: usize = 1024;

/// A submodule seen in the tree (recorded, never fetched).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubmoduleInfo {
    /// Path in the tree.
    pub path: String,
    /// The commit it pins.
    pub commit: String,
}

/// What an export wrote and what it left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Exported {
    /// The export directory.
    pub dir: PathBuf,
    /// Regular files written.
    pub files: u64,
    /// Directories written (they count with the files against `limits.export_files`).
    #[serde(default)]
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Symlinks left out because they point outside the tree (path → target).
    pub skipped_symlinks: Vec<(String, String)>,
    /// Submodules (metadata only).
    pub submodules: Vec<SubmoduleInfo>,
    /// Files that are Git LFS pointers rather than content.
    pub lfs_pointers: Vec<String>,
    /// Files and directories the tree names whose objects the repository lacks: left out
    /// of the export. Results measured on this export are not the candidate's alone.
    #[serde(default)]
    pub missing: Vec<MissingFile>,
}

/// A path of the exported tree whose object the repository lacks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MissingFile {
    /// Path in the tree (a directory ends in `/`).
    pub path: String,
    /// The missing object.
    pub object: String,
}

impl Exported {
    /// The `repo_corrupt` message for an export that lacks objects, naming the first few
    /// (`None` when nothing is missing).
    pub fn missing_message(&self, commit: &str) -> Option<String> {
        let first = self.missing.first()?;
        let more = match self.missing.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        Some(corrupt::missing_message(&format!(
            "object {} ({} in commit {commit}){more}",
            first.object, first.path
        )))
    }
}

/// True when `data` is a Git LFS pointer file.
pub fn is_lfs_pointer(data: &[u8]) -> bool {
    data.len() < 1024 && data.starts_with(b"version https://git-lfs.github.com/spec/")
}

/// Checks one path component of a tree entry. Refuses anything that could
/// escape the export or be taken for a repository directory on some file
/// system: `.`, `..`, separators, NUL, and `.git` in any case, with trailing
/// dots or spaces, its 8.3 short name, or with invisible characters that
/// HFS+ ignores.
pub fn is_safe_component(name: &[u8]) -> bool {
    if name.is_empty() || name == b"." || name == b".." {
        return false;
    }
    if name.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
        return false;
    }
    let Ok(s) = std::str::from_utf8(name) else {
        // Non-UTF-8 names are legal on Linux and cannot spell ".git".
        return true;
    };
    let visible: String = s
        .chars()
        .filter(
            |c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}'),
        )
        .collect();
    let trimmed = visible.trim_end_matches(['.', ' ']).to_ascii_lowercase();
    !(trimmed == ".git" || trimmed == "git~1")
}

/// Exports `commit`'s tree from `repo` into `dest`, which must not exist yet
/// unless it holds a finished export of the same commit (then it is reused).
pub fn export_tree(repo: &Repository, commit: &str, dest: &Path, limits: &Limits) -> Result<Exported, Failure> {
    let oid = Oid::from_str(commit).map_err(|e| Failure::infra(format!("bad commit id {commit}: {e}")))?;
    let marker = dest.join(EXPORT_MARKER);
    if let Ok(text) = std::fs::read_to_string(&marker) {
        if let Ok(done) = serde_json::from_str::<Exported>(&text) {
            return Ok(done);
        }
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Failure::infra(format!("cannot clear {}: {e}", dest.display())))?;
    }
    let partial = dest.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(|e| Failure::infra(format!("cannot clear {}: {e}", partial.display())))?;
    }
    std::fs::create_dir_all(&partial)
        .map_err(|e| Failure::infra(format!("cannot create {}: {e}", partial.display())))?;
    let result = write_tree(repo, oid, &partial, limits);
    let mut exported = match result {
        Ok(x) => x,
        Err(f) => {
            // Leave nothing half-written behind on a failed export.
            let _ = std::fs::remove_dir_all(&partial);
            return Err(f);
        }
    };
    std::fs::rename(&partial, dest)
        .map_err(|e| Failure::infra(format!("cannot move export to {}: {e}", dest.display())))?;
    exported.dir = dest.to_path_buf();
    let json = serde_json::to_string(&exported).expect("export summary serialises");
    std::fs::write(&marker, json).map_err(|e| Failure::infra(format!("cannot write {}: {e}", marker.display())))?;
    Ok(exported)
}

fn write_tree(repo: &Repository, commit: Oid, root: &Path, limits: &Limits) -> Result<Exported, Failure> {
    let tree = repo.find_commit(commit).and_then(|c| c.tree()).map_err(|e| {
        corrupt::failure(&e, Some(repo), &format!("exporting {commit}"))
            .unwrap_or_else(|| Failure::infra(format!("cannot read tree of {commit}: {}", e.message())))
    })?;
    let odb = repo
        .odb()
        .map_err(|e| Failure::infra(format!("cannot open object database: {}", e.message())))?;
    let mut out = Exported::default();
    let mut symlinks: Vec<(PathBuf, String, Vec<u8>)> = Vec::new();
    let mut failure: Option<Failure> = None;

    let walk = tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name_bytes();
        let display = format!("{dir}{}", String::from_utf8_lossy(name));
        if !is_safe_component(name)
            || !dir
                .split('/')
                .filter(|c| !c.is_empty())
                .all(|c| is_safe_component(c.as_bytes()))
        {
            failure = Some(Failure::new(
                OutcomeKind::UnsafePath,
                format!("the tree holds an unsafe path {display:?}"),
            ));
            return TreeWalkResult::Abort;
        }
        let rel: PathBuf =
            Path::new(std::ffi::OsStr::from_bytes(dir.as_bytes())).join(std::ffi::OsStr::from_bytes(name));
        let depth = dir.split('/').filter(|c| !c.is_empty()).count();
        if depth > MAX_DEPTH || rel.as_os_str().len() > MAX_PATH_BYTES {
            let shown: String = display.chars().take(120).collect();
            failure = Some(Failure::new(
                OutcomeKind::TreeTooDeep,
                format!(
                    "the tree holds a path {} directories deep and {} bytes long ({shown}…), over assay's \
limits of {MAX_DEPTH} directories and {MAX_PATH_BYTES} bytes",
                    depth,
                    rel.as_os_str().len()
                ),
            ));
            return TreeWalkResult::Abort;
        }
        let path = root.join(&rel);
        // A tree naming one entry twice (a directory and a link "a", crafted: git never writes
        // it) would have the second written through or over the first.
        if std::fs::symlink_metadata(&path).is_ok() {
            failure = Some(Failure::new(
                OutcomeKind::UnsafePath,
                format!("the tree names {display:?} twice"),
            ));
            return TreeWalkResult::Abort;
        }
        let mode = entry.filemode();
        // A subtree the repository lacks cannot be walked into: list it, skip it.
        if entry.kind() == Some(ObjectType::Tree) && corrupt::tree_missing(repo, entry.id()) {
            out.missing.push(MissingFile {
                path: format!("{display}/"),
                object: entry.id().to_string(),
            });
            return TreeWalkResult::Skip;
        }
        let step = (|| -> Result<(), Failure> {
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    out.dirs += 1;
                    if out.files + out.dirs > limits.export_files {
                        return Err(too_many(limits));
                    }
                    std::fs::create_dir(&path)
                        .map_err(|e| Failure::infra(format!("cannot create {}: {e}", path.display())))?;
                }
                Some(ObjectType::Commit) => {
                    out.submodules.push(SubmoduleInfo {
                        path: display.clone(),
                        commit: entry.id().to_string(),
                    });
                }
                Some(ObjectType::Blob) => {
                    let header = match odb.read_header(entry.id()) {
                        Err(e) if corrupt::is_missing(&e) => {
                            out.missing.push(MissingFile {
                                path: display.clone(),
                                object: entry.id().to_string(),
                            });
                            return Ok(());
                        }
                        other => other,
                    };
                    let (size, _) = header.map_err(|e| {
                        corrupt::failure(&e, Some(repo), &format!("exporting {display} of {commit}"))
                            .unwrap_or_else(|| Failure::infra(format!("cannot read {display}: {}", e.message())))
                    })?;
                    let size = size as u64;
                    if size > limits.file_bytes {
                        return Err(Failure::new(
                            OutcomeKind::FileTooLarge,
                            format!(
                                "{display} is {size} bytes, over limits.file_bytes ({})",
                                limits.file_bytes
                            ),
                        ));
                    }
                    out.files += 1;
                    out.bytes += size;
                    if out.files + out.dirs > limits.export_files {
                        return Err(too_many(limits));
                    }
                    if out.bytes > limits.export_bytes {
                        return Err(Failure::new(
                            OutcomeKind::ExportTooLarge,
                            format!("the tree is over limits.export_bytes ({} bytes)", limits.export_bytes),
                        ));
                    }
                    let blob = repo.find_blob(entry.id()).map_err(|e| {
                        corrupt::failure(&e, Some(repo), &format!("exporting {display} of {commit}"))
                            .unwrap_or_else(|| Failure::infra(format!("cannot read {display}: {}", e.message())))
                    })?;
                    if mode == 0o120000 {
                        symlinks.push((rel.clone(), display.clone(), blob.content().to_vec()));
                        return Ok(());
                    }
                    if is_lfs_pointer(blob.content()) {
                        out.lfs_pointers.push(display.clone());
                    }
                    std::fs::write(&path, blob.content())
                        .map_err(|e| Failure::infra(format!("cannot write {}: {e}", path.display())))?;
                    let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm))
                        .map_err(|e| Failure::infra(format!("cannot chmod {}: {e}", path.display())))?;
                }
                _ => {}
            }
            Ok(())
        })();
        match step {
            Ok(()) => TreeWalkResult::Ok,
            Err(f) => {
                failure = Some(f);
                TreeWalkResult::Abort
            }
        }
    });
    if let Some(f) = failure {
        return Err(f);
    }
    walk.map_err(|e| Failure::infra(format!("cannot walk tree of {commit}: {}", e.message())))?;

    // Symlinks go in last, so no file above was written through one; then each
    // is checked where it physically leads, which catches chains of links that
    // each look harmless on their own.
    let mut written = Vec::new();
    for (rel, display, target) in symlinks {
        let target_str = String::from_utf8_lossy(&target).into_owned();
        if !lexically_inside(&rel, Path::new(std::ffi::OsStr::from_bytes(&target))) {
            out.skipped_symlinks.push((display, target_str));
            continue;
        }
        let path = root.join(&rel);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Failure::new(
                OutcomeKind::UnsafePath,
                format!("the tree names {display:?} twice"),
            ));
        }
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
            .map_err(|e| Failure::infra(format!("cannot create symlink {}: {e}", path.display())))?;
        written.push((path, display, target_str));
    }
    let real_root = root
        .canonicalize()
        .map_err(|e| Failure::infra(format!("cannot resolve {}: {e}", root.display())))?;
    loop {
        let mut removed = false;
        for (path, display, target) in &written {
            if std::fs::symlink_metadata(path).is_err() {
                continue;
            }
            let inside = path.canonicalize().map(|p| p.starts_with(&real_root)).unwrap_or(true);
            if !inside {
                std::fs::remove_file(path)
                    .map_err(|e| Failure::infra(format!("cannot remove {}: {e}", path.display())))?;
                out.skipped_symlinks.push((display.clone(), target.clone()));
                removed = true;
            }
        }
        if !removed {
            break;
        }
    }
    Ok(out)
}

fn too_many(limits: &Limits) -> Failure {
    Failure::new(
        OutcomeKind::TooManyFiles,
        format!(
            "the tree has more than limits.export_files ({}) files and directories",
            limits.export_files
        ),
    )
}

/// Whether `target`, read relative to the directory of `link` (both relative to
/// the tree root), stays inside the tree.
fn lexically_inside(link: &Path, target: &Path) -> bool {
    let mut depth: Vec<&std::ffi::OsStr> = link.parent().map(|p| p.iter().collect()).unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_components_are_refused() {
        for bad in [
            &b".."[..],
            b".",
            b".git",
            b".GIT",
            b".Git.",
            b".git ",
            b"git~1",
            b"a/b",
            b"a\\b",
            ".g\u{200C}it".as_bytes(),
            b"",
        ] {
            assert!(!is_safe_component(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        for ok in [&b".github"[..], b".gitignore", b"git", b"src", b"..."] {
            assert!(is_safe_component(ok), "{:?}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn symlink_targets_are_checked_against_the_link_directory() {
        assert!(lexically_inside(Path::new("docs/readme"), Path::new("../README.md")));
        assert!(!lexically_inside(
            Path::new("docs/readme"),
            Path::new("../../etc/passwd")
        ));
        assert!(!lexically_inside(Path::new("x"), Path::new("/etc/passwd")));
        assert!(lexically_inside(Path::new("a/b/c"), Path::new("./d/../e")));
    }
}

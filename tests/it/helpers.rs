//! Scripted repositories and a runner for the `assay` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::{ObjectType, Oid, Repository, Signature, Time};
use tempfile::TempDir;

/// 2026-11-10 09:00:00 UTC: a fixed "day one" for scripted histories.
pub const DAY1: i64 = 1_794_301_200;
pub const HOUR: i64 = 3600;

/// A file in a scripted tree: content and mode.
#[derive(Clone)]
pub struct Entry {
    pub data: Vec<u8>,
    pub mode: i32,
}

/// A repository whose history a test writes commit by commit. Trees are
/// written as raw objects, so a test can put names in them that libgit2's
/// tree builder would refuse (`..`, `.GIT`), as a hostile repository would.
pub struct Scripted {
    pub dir: TempDir,
    pub repo: Repository,
    files: BTreeMap<String, Entry>,
    parent: Option<Oid>,
}

impl Scripted {
    pub fn new() -> Scripted {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        Scripted {
            dir,
            repo,
            files: BTreeMap::new(),
            parent: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets files (content `None` deletes) without committing.
    pub fn put(&mut self, files: &[(&str, Option<&str>)]) -> &mut Self {
        for (path, content) in files {
            match content {
                Some(c) => {
                    self.files.insert(
                        path.to_string(),
                        Entry {
                            data: c.as_bytes().to_vec(),
                            mode: 0o100644,
                        },
                    );
                }
                None => {
                    self.files.remove(*path);
                }
            }
        }
        self
    }

    pub fn put_entry(&mut self, path: &str, data: &[u8], mode: i32) -> &mut Self {
        self.files.insert(
            path.to_string(),
            Entry {
                data: data.to_vec(),
                mode,
            },
        );
        self
    }

    /// Commits the current files as the candidate at `when`.
    pub fn commit(&mut self, msg: &str, when: i64) -> Oid {
        self.commit_full("Sam Candidate", "sam@example.org", when, when, msg)
    }

    /// Commits with full control over identity and dates.
    pub fn commit_full(&mut self, name: &str, email: &str, author_time: i64, committer_time: i64, msg: &str) -> Oid {
        self.commit_by((name, email), (name, email), author_time, committer_time, msg)
    }

    /// Commits with an author and a committer of their own (GitHub's web editor commits as
    /// "GitHub <noreply@github.com>").
    pub fn commit_by(
        &mut self,
        (name, email): (&str, &str),
        (committer_name, committer_email): (&str, &str),
        author_time: i64,
        committer_time: i64,
        msg: &str,
    ) -> Oid {
        let tree = write_tree(&self.repo, &self.files);
        let tree = self.repo.find_tree(tree).unwrap();
        let author = Signature::new(name, email, &Time::new(author_time, 0)).unwrap();
        let committer = Signature::new(committer_name, committer_email, &Time::new(committer_time, 0)).unwrap();
        let parents: Vec<git2::Commit<'_>> = self
            .parent
            .map(|p| self.repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let oid = self
            .repo
            .commit(Some("refs/heads/main"), &author, &committer, msg, &tree, &refs)
            .unwrap();
        self.repo.set_head("refs/heads/main").unwrap();
        self.parent = Some(oid);
        oid
    }
}

/// Writes `files` as nested raw tree objects; returns the root tree.
pub fn write_tree(repo: &Repository, files: &BTreeMap<String, Entry>) -> Oid {
    let odb = repo.odb().unwrap();
    // Group by first component.
    let mut here: Vec<(Vec<u8>, i32, Oid)> = Vec::new();
    let mut sub: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
    for (path, entry) in files {
        match path.split_once('/') {
            Some((dir, rest)) => {
                sub.entry(dir.to_string())
                    .or_default()
                    .insert(rest.to_string(), entry.clone());
            }
            None => {
                let oid = odb.write(ObjectType::Blob, &entry.data).unwrap();
                here.push((path.as_bytes().to_vec(), entry.mode, oid));
            }
        }
    }
    for (dir, children) in &sub {
        here.push((dir.as_bytes().to_vec(), 0o040000, write_tree(repo, children)));
    }
    // Git orders entries by name, a directory as if it ended in '/'.
    here.sort_by(|a, b| {
        let key = |e: &(Vec<u8>, i32, Oid)| {
            let mut k = e.0.clone();
            if e.1 == 0o040000 {
                k.push(b'/');
            }
            k
        };
        key(a).cmp(&key(b))
    });
    let mut raw = Vec::new();
    for (name, mode, oid) in here {
        raw.extend_from_slice(format!("{mode:o} ").as_bytes());
        raw.extend_from_slice(&name);
        raw.push(0);
        raw.extend_from_slice(oid.as_bytes());
    }
    odb.write(ObjectType::Tree, &raw).unwrap()
}

/// An iterative candidate: a baseline with tests on day one, small steps over
/// three days, README results at the end.
pub fn iterative() -> Scripted {
    let mut r = Scripted::new();
    r.put(&[
        (
            "README.md",
            Some("# Churn\n\nPredict churn. Success metric: recall at 10% FPR.\n"),
        ),
        ("churn/model.py", Some("def predict(x):\n    return 0\n")),
        (
            "tests/test_model.py",
            Some("from churn.model import predict\n\ndef test_predict():\n    assert predict(1) == 0\n"),
        ),
        ("requirements.txt", Some("scikit-learn==1.5.0\n")),
    ]);
    r.commit("Add baseline model that predicts no churn, with a test", DAY1);
    let mut t = DAY1;
    for i in 0..9 {
        t += if i % 3 == 2 { 20 * HOUR } else { 40 * 60 };
        let body: String = (0..=i)
            .map(|k| format!("def feature_{k}(x):\n    return x * {k}\n"))
            .collect();
        let tests: String = (0..=i)
            .map(|k| format!("def test_feature_{k}():\n    assert True\n"))
            .collect();
        r.put(&[
            ("churn/features.py", Some(&body)),
            ("tests/test_features.py", Some(&tests)),
        ]);
        r.commit(&format!("Add feature {i} with its test"), t);
    }
    r.put(&[(
        "README.md",
        Some("# Churn\n\nPredict churn. Success metric: recall at 10% FPR.\n\n## Results\n\nRecall 0.71 vs baseline 0.0.\n\n## Trade-offs\n\nChose logistic regression for speed.\n"),
    )]);
    r.commit("Document results and trade-offs", t + HOUR);
    r
}

/// A candidate who committed everything at once.
pub fn single_dump() -> Scripted {
    let mut r = Scripted::new();
    r.put(&[("README.md", Some("# Project\n"))]);
    r.commit("Initial commit", DAY1);
    let big: String = (0..300).map(|k| format!("x_{k} = {k}\n")).collect();
    r.put(&[("app/main.py", Some(&big)), ("app/util.py", Some(&big))]);
    r.commit("final", DAY1 + 5 * 86400);
    r
}

/// Runs the `assay` binary with its own data directory; no ambient settings.
pub struct Assay {
    pub data: TempDir,
}

impl Assay {
    pub fn new() -> Assay {
        Assay {
            data: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_assay"));
        c.env_remove("ASSAY_CONFIG")
            .env("ASSAY_DATA_DIR", self.data.path())
            .env("ASSAY_RETRIES", "0")
            .current_dir(self.data.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("ASSAY_") && k != "ASSAY_DATA_DIR" {
                c.env_remove(k);
            }
        }
        c.env("ASSAY_RETRIES", "0");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn db(&self) -> PathBuf {
        self.data.path().join("assay.db")
    }
}

/// stdout of a successful run, parsed as JSON; panics with stderr otherwise.
pub fn json_ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Writes a cohort file (with the default rubric copied beside it).
pub fn write_cohort(dir: &Path, body: &str) -> PathBuf {
    let rubrics = dir.join("rubrics");
    std::fs::create_dir_all(&rubrics).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/rubrics/trial-project.toml"),
        rubrics.join("trial-project.toml"),
    )
    .unwrap();
    let path = dir.join("cohort.toml");
    std::fs::write(
        &path,
        format!("[assignment]\nname = \"demo\"\nrubric = \"rubrics/trial-project.toml\"\n{body}"),
    )
    .unwrap();
    path
}

/// A cohort file with `head` (cohort-level lines) and one `[[submission]]` per (candidate, repo).
pub fn cohort_of(dir: &Path, head: &str, subs: &[(&str, &Path)]) -> PathBuf {
    let mut body = head.to_string();
    for (candidate, repo) in subs {
        body.push_str(&format!(
            "\n[[submission]]\ncandidate = \"{candidate}\"\nrepo = \"{}\"\n",
            repo.display()
        ));
    }
    write_cohort(dir, &body)
}

/// Signals of a history document by kind.
pub fn kinds(history: &serde_json::Value) -> Vec<String> {
    history["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect()
}

pub fn signal<'a>(history: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    history["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} signal in {:?}", kinds(history)))
}

/// The kinds of a check or grade document's findings, in order.
pub fn finding_kinds(v: &serde_json::Value) -> Vec<&str> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

/// An `assay` started with its output piped, killed (and reaped) should the test fail before it
/// ends: never a process left running past its test.
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Running(Some(child))
    }

    /// Spawns `cmd` with its standard error written to `log` (a long-running process may
    /// write more than a pipe holds before anyone reads it) and its output thrown away.
    pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Running {
        let file = std::fs::File::create(log).unwrap();
        let child = cmd.stdout(std::process::Stdio::null()).stderr(file).spawn().unwrap();
        Running(Some(child))
    }

    fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a running child")
    }

    pub fn id(&mut self) -> u32 {
        self.child().id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child().try_wait().unwrap().is_none()
    }

    /// Sends `SIG<name>` (`INT`, `TERM`).
    pub fn signal(&mut self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Its output once it exits, which must be within `secs` seconds: past them the test fails
    /// saying `what` (and the process is killed).
    pub fn output_within(mut self, secs: u64, what: &str) -> Output {
        let started = std::time::Instant::now();
        while self.running() {
            assert!(started.elapsed().as_secs() < secs, "{what} (after {secs} s)");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

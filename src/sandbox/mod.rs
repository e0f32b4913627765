//! The sandbox: runs a candidate's install and test commands in Docker, with
//! the limits of the sandbox policy (shared/DESIGN.md).
//!
//! The pipeline holds a [`Sandbox`] trait object that speaks our own types
//! ([`PhaseSpec`], [`PhaseResult`]); [`docker::DockerSandbox`] implements it
//! with bollard. A job's files live in a named volume: the source is uploaded
//! once, the install phase writes dependencies next to it (network on), and
//! each test phase runs in a fresh container on the same volume with no
//! network, a read-only root and dropped capabilities.

pub mod diagnose;
pub mod disk;
pub mod docker;
pub mod egress;
pub mod images;
pub mod job;
pub mod ssh;
pub mod steps;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Policy limits. A runner or a cohort may lower them; only settings raise them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxLimits {
    /// Install phase wall time.
    pub install_seconds: u64,
    /// Install phase memory (= memory + swap), bytes.
    pub install_memory: i64,
    /// Install phase process limit.
    pub install_pids: i64,
    /// Test phase wall time (host-side timer).
    pub test_seconds: u64,
    /// Test phase memory (= memory + swap), bytes.
    pub test_memory: i64,
    /// Test phase process limit.
    pub test_pids: i64,
    /// CPUs per container.
    pub cpus: f64,
    /// Size of the /tmp tmpfs, bytes.
    pub tmpfs_bytes: u64,
    /// Files and directories the /tmp tmpfs holds, at most (each costs kernel memory that
    /// its size does not count).
    pub tmpfs_inodes: u64,
    /// stdout and stderr kept per phase, bytes (head and tail halves).
    pub output_bytes: usize,
    /// Result files copied out, at most.
    pub result_files: usize,
    /// Result bytes copied out, at most.
    pub result_bytes: u64,
    /// Bytes the install phase may write under /work (its own filesystem, see
    /// [`disk`]); 0 runs on a plain Docker volume with no size limit.
    pub install_disk: u64,
    /// Bytes each test phase may add under /work.
    pub test_disk: u64,
    /// Host names the install phase may reach, through its proxy (see [`egress`]).
    pub install_hosts: Vec<String>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            install_seconds: 600,
            install_memory: 2 << 30,
            install_pids: 512,
            test_seconds: 300,
            test_memory: 1 << 30,
            test_pids: 256,
            cpus: 1.0,
            tmpfs_bytes: 256 << 20,
            tmpfs_inodes: 1 << 17,
            output_bytes: 1 << 20,
            result_files: 100,
            result_bytes: 16 << 20,
            install_disk: 8 << 30,
            test_disk: 2 << 30,
            install_hosts: egress::DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect(),
        }
    }
}

impl SandboxLimits {
    /// The policy defaults with the disk sizes and the install's hosts the settings give.
    pub fn from_settings(settings: &crate::config::Settings) -> SandboxLimits {
        SandboxLimits {
            install_disk: settings.limits.install_disk,
            test_disk: settings.limits.test_disk,
            install_hosts: settings.install_hosts.clone(),
            ..SandboxLimits::default()
        }
    }
}

/// Which phase a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Dependencies: network on, caches writable.
    Install,
    /// Tests: no network, caches read-only.
    Test,
}

impl Phase {
    /// The snake_case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Install => "install",
            Phase::Test => "test",
        }
    }
}

/// One container run.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Install or test.
    pub phase: Phase,
    /// Image to run.
    pub image: String,
    /// Bash script run in /work.
    pub script: String,
    /// Environment, `KEY=VALUE`.
    pub env: Vec<String>,
    /// Cache directories (named volumes per runner).
    pub cache_dirs: Vec<String>,
    /// Runner name (names the cache volumes).
    pub runner: String,
    /// Directory under /work whose regular files are copied out afterwards.
    pub collect: Option<String>,
    /// Wall time.
    pub timeout: Duration,
    /// Memory (= memory + swap), bytes.
    pub memory: i64,
    /// Process limit.
    pub pids: i64,
}

/// A file copied out of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultFile {
    /// Path relative to the collected directory.
    pub path: String,
    /// Content (capped).
    pub data: Vec<u8>,
}

/// What one container run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// Exit status, when the process exited by itself.
    pub exit_code: Option<i64>,
    /// Killed by the host-side timer.
    pub timed_out: bool,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
    /// stdout (head and tail when capped).
    pub stdout: String,
    /// stderr (head and tail when capped).
    pub stderr: String,
    /// Output was cut to the cap.
    pub output_truncated: bool,
    /// Total output bytes seen.
    pub output_bytes: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// Regular files from the collected directory.
    pub files: Vec<ResultFile>,
    /// Entries of the collected directory left out (links, devices, over the caps).
    pub skipped_files: Vec<String>,
    /// The phase failed with /work full: its disk allowance was used up
    /// (measured after the run, not read from the output).
    #[serde(default)]
    pub disk_full: bool,
    /// Hosts the install's proxy refused (see [`egress`]): names not on the allow-list, or
    /// `host:port` for a tunnel to a port other than 443.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_refused: Vec<String>,
}

/// Sandbox failures on our side (infrastructure): the engine is down, an
/// image is missing. Never caused by the candidate; retried by the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The Docker engine refused or failed a request. Not a `source`: the message is whole
    /// here, with the causes the error's own text leaves out.
    #[error("docker: {}", whole(.0))]
    Docker(bollard::errors::Error),
    /// The runner image is not built.
    #[error("image {0} is missing; build it with `assay images build`")]
    MissingImage(String),
    /// Local I/O (packing the source).
    #[error("{0}")]
    Io(String),
    /// The job was cancelled (Ctrl-C, SIGTERM): its containers and volume were removed.
    #[error("cancelled while running; the job's containers and volume were removed")]
    Cancelled,
}

/// An error's text and each of its causes that the text does not already say ("client error
/// (Connect)" says nothing without "Connection refused"; a transparent wrapper's cause repeats
/// it word for word).
fn whole(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<bollard::errors::Error> for SandboxError {
    fn from(e: bollard::errors::Error) -> SandboxError {
        SandboxError::Docker(e)
    }
}

/// A job's working volume, created by [`Sandbox::prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// Volume name.
    pub volume: String,
    /// Job id (labels).
    pub job: String,
    /// The queue claim it runs under (labels), when a queue worker runs it.
    pub claim: Option<Claim>,
    /// The volume's own filesystem, when the job has a disk limit.
    pub disk: Option<disk::JobDisk>,
    /// Where the engine mounts the volume on this host while a container uses
    /// it (watched for a full disk).
    pub mountpoint: Option<std::path::PathBuf>,
}

/// The queue claim a sandbox job runs under: its containers, volumes and networks carry it, so
/// that a worker can tell the leftovers of a claim that is no longer current (its worker died,
/// on this host or another) from a live job, wherever the engine is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The queue's job id.
    pub job: i64,
    /// The claim's token.
    pub token: String,
}

impl Claim {
    /// As a label value: `JOB:TOKEN`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.job, self.token)
    }

    /// Parses a label value.
    pub fn parse(label: &str) -> Option<Claim> {
        let (job, token) = label.split_once(':')?;
        Some(Claim {
            job: job.parse().ok()?,
            token: token.to_string(),
        })
    }
}

/// Runs phases in isolation.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// Creates the job's volume (of `limits.install_disk + limits.test_disk`)
    /// and copies `source` into it as /work.
    async fn prepare(
        &self,
        job: &str,
        claim: Option<&Claim>,
        image: &str,
        source: &Path,
        limits: &SandboxLimits,
    ) -> Result<Work, SandboxError>;
    /// Copies `source` into the job's volume at `/work/<dest>` (after install:
    /// hidden tests).
    async fn upload(&self, work: &Work, image: &str, source: &Path, dest: &str) -> Result<(), SandboxError>;
    /// `on`: makes `dirs` (relative to /work) root-owned and read-only, so the runner uid can
    /// read them and not change them; off: gives them back to the runner uid, writable.
    async fn seal(&self, work: &Work, image: &str, dirs: &[String], on: bool) -> Result<(), SandboxError>;
    /// Runs one phase in a fresh container on the job's volume.
    async fn run(&self, work: &Work, spec: &PhaseSpec, limits: &SandboxLimits) -> Result<PhaseResult, SandboxError>;
    /// Removes the job's volume (and any container left on it).
    async fn cleanup(&self, work: &Work) -> Result<(), SandboxError>;
    /// Removes containers and volumes that a dead assay process left behind.
    async fn reap_orphans(&self) -> Result<usize, SandboxError>;
    /// The queue claims that containers, volumes or networks carry.
    async fn claims(&self) -> Result<Vec<Claim>, SandboxError>;
    /// Removes every container, volume and network of `claim`; how many containers.
    async fn remove_claim(&self, claim: &Claim) -> Result<usize, SandboxError>;
}

/// Keeps the head and the tail of a stream, up to `cap` bytes in all.
#[derive(Debug, Clone)]
pub struct CappedOutput {
    cap: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl CappedOutput {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CappedOutput {
            cap,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let half = self.cap / 2;
        let mut rest = data;
        if self.head.len() < half {
            let take = (half - self.head.len()).min(rest.len());
            self.head.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        let tail_cap = self.cap - half;
        if rest.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - tail_cap..]);
        } else {
            let overflow = (self.tail.len() + rest.len()).saturating_sub(tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(rest);
        }
    }

    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// Bytes seen in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept text, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.truncated() {
            let dropped = self.total - (self.head.len() + self.tail.len()) as u64;
            out.push_str(&format!("\n[… {dropped} bytes cut by assay …]\n"));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_error_says_each_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("Connection refused"));
        assert_eq!(whole(&e), "client error (Connect): Connection refused");
        let plain = std::io::Error::other("client error (Connect): Connection refused");
        assert_eq!(whole(&plain), "client error (Connect): Connection refused");
    }

    #[test]
    fn capped_output_keeps_head_and_tail() {
        let mut c = CappedOutput::new(10);
        c.push(b"0123");
        c.push(b"456789abcdef");
        c.push(b"XYZ");
        assert!(c.truncated());
        assert_eq!(c.total(), 19);
        let t = c.text();
        assert!(t.starts_with("01234"), "{t}");
        assert!(t.ends_with("efXYZ"), "{t}");
        assert!(t.contains("9 bytes cut"), "{t}");
        let mut small = CappedOutput::new(100);
        small.push(b"hello");
        assert!(!small.truncated());
        assert_eq!(small.text(), "hello");
    }
}

//! Fetching: a bare mirror per repository under the data directory, updated
//! incrementally, and the choice of the graded commit (ref + deadline).
//!
//! Everything here is blocking (libgit2); the pipeline calls it from
//! `spawn_blocking`. No git CLI is used, so no hooks, filters or config from the
//! candidate's repository ever run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, FetchOptions, Oid, RemoteCallbacks, RemoteRedirect,
    Repository,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::corrupt;
use super::known_hosts::KnownHosts;
use super::source::{RemoteUrl, RepoSource};
use crate::config::{Limits, Settings};
use crate::outcome::{Failure, OutcomeKind};

/// What a fetch needs to know.
#[derive(Debug, Clone)]
pub struct FetchRequest<'a> {
    /// Where the repository is.
    pub source: &'a RepoSource,
    /// Branch, tag or commit; `None` means the remote's HEAD.
    pub git_ref: Option<&'a str>,
    /// Grade the newest first-parent commit at or before this instant.
    pub deadline: Option<DateTime<Utc>>,
    /// The data directory (mirrors live in `DATA_DIR/mirrors`).
    pub data_dir: &'a Path,
    /// Size and time limits.
    pub limits: &'a Limits,
    /// Private key for ssh; the agent is used without one.
    pub ssh_key: Option<&'a Path>,
    /// The OpenSSH known_hosts file ssh host keys are checked against; `None`
    /// reads the user's and the system's ([`KnownHosts::default_files`]).
    pub known_hosts: Option<&'a Path>,
}

impl<'a> FetchRequest<'a> {
    /// A request for the remote's HEAD with no deadline, everything else from
    /// `settings`.
    pub fn new(source: &'a RepoSource, settings: &'a Settings) -> FetchRequest<'a> {
        FetchRequest {
            source,
            git_ref: None,
            deadline: None,
            data_dir: &settings.data_dir,
            limits: &settings.limits,
            ssh_key: settings.ssh_key.as_deref(),
            known_hosts: settings.known_hosts.as_deref(),
        }
    }
}

/// The result of a fetch: a mirror holding the graded commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fetched {
    /// The bare mirror.
    pub mirror: PathBuf,
    /// The graded commit.
    pub commit: String,
    /// The ref name that was resolved (`HEAD` when none was asked for).
    pub resolved_ref: String,
    /// The ref's tip (differs from `commit` when a deadline cut commits off).
    pub tip: String,
    /// First-parent commits after the deadline, newest first (at most 1,000).
    pub after_deadline: Vec<String>,
    /// Bytes received over the network (0 when the mirror was up to date).
    pub bytes_received: u64,
}

/// The directory of the mirror for `source` under `data_dir`.
pub fn mirror_path(data_dir: &Path, source: &RepoSource) -> PathBuf {
    let key = match source {
        RepoSource::Local(p) => format!(
            "local:{}",
            std::path::absolute(p).unwrap_or_else(|_| p.clone()).display()
        ),
        RepoSource::Remote(r) => format!("remote:{}", r.url),
    };
    let digest = Sha256::digest(key.as_bytes());
    data_dir
        .join("mirrors")
        .join(format!("{}.git", &hex::encode(digest)[..24]))
}

/// Fetches `req.source` into its mirror and picks the graded commit.
pub fn fetch(req: &FetchRequest<'_>) -> Result<Fetched, Failure> {
    let mirror = mirror_path(req.data_dir, req.source);
    let parent = mirror.parent().expect("mirror path has a parent");
    std::fs::create_dir_all(parent).map_err(|e| Failure::infra(format!("cannot create {}: {e}", parent.display())))?;
    // One fetch per mirror at a time, across threads and processes.
    let lock_path = mirror.with_extension("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Failure::infra(format!("cannot open {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| Failure::infra(format!("cannot lock {}: {e}", lock_path.display())))?;

    let repo = open_or_init_mirror(&mirror)?;
    let bytes_received = update_mirror(&repo, req)?;
    // Opened again: a partial local copy's fetch may have added alternates just now.
    let repo = Repository::open_bare(&mirror)
        .map_err(|e| Failure::infra(format!("cannot open mirror {}: {}", mirror.display(), e.message())))?;
    let (resolved_ref, tip) = resolve_ref(&repo, req.git_ref)?;
    let (commit, after_deadline) = apply_deadline(&repo, tip, req.deadline, req.limits.commits)?;
    Ok(Fetched {
        mirror,
        commit: commit.to_string(),
        resolved_ref,
        tip: tip.to_string(),
        after_deadline,
        bytes_received,
    })
}

fn open_or_init_mirror(mirror: &Path) -> Result<Repository, Failure> {
    // A mirror whose creation was interrupted lacks the marker; start it again.
    let marker = mirror.join("assay-mirror");
    if marker.is_file() {
        return Repository::open_bare(mirror)
            .map_err(|e| Failure::infra(format!("cannot open mirror {}: {}", mirror.display(), e.message())));
    }
    if mirror.exists() {
        std::fs::remove_dir_all(mirror)
            .map_err(|e| Failure::infra(format!("cannot remove broken mirror {}: {e}", mirror.display())))?;
    }
    let repo = Repository::init_bare(mirror)
        .map_err(|e| Failure::infra(format!("cannot create mirror {}: {}", mirror.display(), e.message())))?;
    std::fs::write(&marker, b"assay bare mirror\n")
        .map_err(|e| Failure::infra(format!("cannot write {}: {e}", marker.display())))?;
    Ok(repo)
}

/// Fetches every branch, tag and HEAD into the mirror; returns bytes received.
fn update_mirror(repo: &Repository, req: &FetchRequest<'_>) -> Result<u64, Failure> {
    let url = match req.source {
        RepoSource::Local(p) => {
            if !p.exists() {
                return Err(Failure::new(
                    OutcomeKind::RepoNotFound,
                    format!("{}: no such directory", p.display()),
                ));
            }
            // libgit2's local transport copies objects (no hard links), like
            // CloneLocal::None for a clone.
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        }
        RepoSource::Remote(r) => r.url.clone(),
    };
    let started = Instant::now();
    let max_time = Duration::from_secs(req.limits.fetch_seconds);
    let max_bytes = req.limits.fetch_bytes;
    let too_big = AtomicBool::new(false);
    let too_slow = AtomicBool::new(false);
    let received = std::sync::atomic::AtomicU64::new(0);
    let mut auth_attempts = 0u32;
    // Why the credentials callback gave up, when it did: the fetch then failed
    // for want of credentials the cohort gives (auth_failed), not on the way.
    let auth_refused: std::cell::Cell<Option<&'static str>> = std::cell::Cell::new(None);

    let remote_url: Option<&RemoteUrl> = match req.source {
        RepoSource::Remote(r) => Some(r),
        RepoSource::Local(_) => None,
    };
    // libgit2 overwrites a callback's message with a generic one, so the real
    // reason a host was refused is kept here.
    let refused: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let known_hosts = match remote_url {
        Some(r) if r.scheme == "ssh" => {
            let files = match req.known_hosts {
                Some(f) => vec![f.to_path_buf()],
                None => KnownHosts::default_files(),
            };
            Some(KnownHosts::load(&files).map_err(Failure::infra)?)
        }
        _ => None,
    };
    let max_refs = req.limits.refs;
    let refs_written = std::cell::Cell::new(0u64);
    let mut callbacks = RemoteCallbacks::new();
    // Each branch or tag the fetch writes (after the pack, bounded by the byte and time limits):
    // past the limit the fetch stops writing them.
    callbacks.update_tips(|_, _, _| {
        refs_written.set(refs_written.get() + 1);
        refs_written.get() <= max_refs
    });
    callbacks.transfer_progress(|stats| {
        received.store(stats.received_bytes() as u64, Ordering::Relaxed);
        if stats.received_bytes() as u64 > max_bytes {
            too_big.store(true, Ordering::Relaxed);
            return false;
        }
        if started.elapsed() > max_time {
            too_slow.store(true, Ordering::Relaxed);
            return false;
        }
        true
    });
    callbacks.sideband_progress(|_| {
        if started.elapsed() > max_time {
            too_slow.store(true, Ordering::Relaxed);
            return false;
        }
        true
    });
    callbacks.certificate_check(|cert, _host| {
        let (Some(r), Some(hostkey)) = (remote_url, cert.as_hostkey()) else {
            // TLS certificates: OpenSSL's verification (system CAs + ca_file) decides.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(key) = hostkey.hostkey() else {
            *refused.borrow_mut() = Some(format!("ssh host {} did not present a host key", r.host));
            return Err(git2::Error::from_str("no host key"));
        };
        let known = known_hosts.as_ref().expect("known hosts are loaded for ssh");
        match known.refusal(&r.host, r.port, key) {
            None => Ok(CertificateCheckStatus::CertificateOk),
            Some(why) => {
                let e = git2::Error::from_str(&why);
                *refused.borrow_mut() = Some(why);
                Err(e)
            }
        }
    });
    let ssh_key = req.ssh_key.map(Path::to_path_buf);
    let refuse_auth = |why: &'static str| auth_refused.set(Some(why));
    callbacks.credentials(move |_url, username_from_url, allowed| {
        auth_attempts += 1;
        if auth_attempts > 3 {
            refuse_auth("the server rejected the credentials the cohort gives");
            return Err(git2::Error::from_str("credentials rejected"));
        }
        let Some(r) = remote_url else {
            return Err(git2::Error::from_str("no credentials for a local path"));
        };
        let user = r.username.as_deref().or(username_from_url).unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY) {
            return match &ssh_key {
                Some(key) => Cred::ssh_key(user, None, key, None),
                None => Cred::ssh_key_from_agent(user),
            };
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(pw) = &r.password {
                return Cred::userpass_plaintext(user, pw.expose());
            }
            if let Some(u) = &r.username {
                // A token given as the user name alone (https://TOKEN@host/…).
                return Cred::userpass_plaintext(u, "");
            }
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        refuse_auth("the server asks for credentials the cohort does not give");
        Err(git2::Error::from_str(
            "the remote asks for credentials the cohort does not give",
        ))
    });

    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks);
    opts.download_tags(AutotagOption::None);
    // A redirect could lead to a host the SSRF check never saw.
    opts.follow_redirects(RemoteRedirect::None);
    let mut remote = repo
        .remote_anonymous(&url)
        .map_err(|e| Failure::infra(format!("cannot set up remote {url}: {}", e.message())))?;
    let refspecs = [
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
        "+HEAD:refs/assay/HEAD",
    ];
    let result = remote.fetch(&refspecs, Some(&mut opts), None);
    drop(opts);
    if let Err(e) = result {
        if refs_written.get() > max_refs {
            return Err(Failure::new(
                OutcomeKind::TooManyRefs,
                format!("{url}: the repository has more than limits.refs ({max_refs}) branches and tags"),
            ));
        }
        if too_big.load(Ordering::Relaxed) {
            return Err(Failure::new(
                OutcomeKind::FetchTooLarge,
                format!("{url}: fetch exceeded limits.fetch_bytes ({max_bytes} bytes)"),
            ));
        }
        if too_slow.load(Ordering::Relaxed) {
            return Err(Failure::new(
                OutcomeKind::FetchTimeout,
                format!(
                    "{url}: fetch took longer than limits.fetch_seconds ({}s)",
                    max_time.as_secs()
                ),
            ));
        }
        // A source that lacks objects its refs need is damaged, not empty.
        let source = match req.source {
            RepoSource::Local(p) => Repository::open(p).ok(),
            RepoSource::Remote(_) => None,
        };
        if let Some(f) = corrupt::failure(&e, source.as_ref(), &url) {
            // A local partial copy cannot be packed, but it can be read in place: the
            // mirror borrows its objects (alternates) and copies its refs, so the history
            // and export read what it has and list what it lacks.
            if let Some(src) = source.as_ref() {
                match borrow_local_objects(repo, src) {
                    Ok(()) => return Ok(0),
                    Err(why) => tracing::warn!("{url}: cannot read the partial copy in place: {why}"),
                }
            }
            return Err(f);
        }
        // An empty remote has no HEAD to fetch; that is a result, not an error.
        if repo.references().map(|mut r| r.next().is_none()).unwrap_or(false) && is_missing_head(&e) {
            return Err(Failure::new(
                OutcomeKind::EmptyRepository,
                format!("{url}: the repository has no commits"),
            ));
        }
        if let Some(why) = auth_refused.get() {
            return Err(Failure::new(OutcomeKind::AuthFailed, format!("{url}: {why}")));
        }
        if let Some(why) = refused.borrow_mut().take() {
            return Err(Failure::new(OutcomeKind::Unreachable, format!("{url}: {why}")));
        }
        // OpenSSL's verdict reaches us as ECERTIFICATE or, from the TLS stream,
        // as an SSL-class error about the certificate.
        let tls_refused = e.code() == git2::ErrorCode::Certificate
            || (e.class() == git2::ErrorClass::Ssl && e.message().to_ascii_lowercase().contains("certificate"));
        if tls_refused {
            let host = remote_url.map_or("the server", |r| r.host.as_str());
            return Err(Failure::new(
                OutcomeKind::Unreachable,
                format!(
                    "{url}: TLS certificate of {host} was refused ({}): it is not signed by a trusted CA, has expired or names another host; if the server uses a private CA, set ca_file to that CA's PEM file",
                    e.message()
                ),
            ));
        }
        let message = e.message().to_ascii_lowercase();
        let kind = match e.code() {
            git2::ErrorCode::Auth => OutcomeKind::AuthFailed,
            git2::ErrorCode::Certificate => OutcomeKind::Unreachable,
            git2::ErrorCode::NotFound => OutcomeKind::RepoNotFound,
            _ if message.contains("404") || message.contains("repository not found") => OutcomeKind::RepoNotFound,
            _ => match e.class() {
                git2::ErrorClass::Repository | git2::ErrorClass::Reference if remote_url.is_none() => {
                    OutcomeKind::RepoNotFound
                }
                git2::ErrorClass::Net
                | git2::ErrorClass::Http
                | git2::ErrorClass::Ssh
                | git2::ErrorClass::Ssl
                | git2::ErrorClass::Os => OutcomeKind::Unreachable,
                _ => OutcomeKind::InfraError,
            },
        };
        return Err(Failure::new(kind, format!("{url}: fetch failed: {}", e.message())));
    }
    Ok(received.load(Ordering::Relaxed))
}

/// Points `mirror` at the objects of the local repository `source` (an alternates entry) and
/// copies its branches, tags and HEAD under the names a fetch would have given them.
fn borrow_local_objects(mirror: &Repository, source: &Repository) -> Result<(), String> {
    let objects = source.path().join("objects");
    let objects = objects
        .canonicalize()
        .map_err(|e| format!("{}: {e}", objects.display()))?;
    let info = mirror.path().join("objects").join("info");
    std::fs::create_dir_all(&info).map_err(|e| format!("{}: {e}", info.display()))?;
    let alternates = info.join("alternates");
    std::fs::write(&alternates, format!("{}\n", objects.display()))
        .map_err(|e| format!("{}: {e}", alternates.display()))?;
    // The object database was opened before the alternates existed.
    let mirror = Repository::open(mirror.path()).map_err(|e| e.message().to_string())?;
    let refs = source.references().map_err(|e| e.message().to_string())?;
    for r in refs.flatten() {
        let (Some(name), Some(target)) = (r.name().ok(), r.resolve().ok().and_then(|r| r.target())) else {
            continue;
        };
        if name.starts_with("refs/heads/") || name.starts_with("refs/tags/") {
            mirror
                .reference(name, target, true, "assay: partial local copy")
                .map_err(|e| e.message().to_string())?;
        }
    }
    if let Some(head) = source.head().ok().and_then(|h| h.target()) {
        mirror
            .reference("refs/assay/HEAD", head, true, "assay: partial local copy")
            .map_err(|e| e.message().to_string())?;
    }
    Ok(())
}

fn is_missing_head(e: &git2::Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    m.contains("head") || m.contains("no match") || m.contains("not found") || m.contains("reference")
}

/// Resolves the requested ref (or HEAD) in the mirror to a commit.
fn resolve_ref(repo: &Repository, git_ref: Option<&str>) -> Result<(String, Oid), Failure> {
    let empty = || repo.references().map(|mut r| r.next().is_none()).unwrap_or(true);
    let Some(name) = git_ref else {
        return match repo.find_reference("refs/assay/HEAD").and_then(|r| r.peel_to_commit()) {
            Ok(c) => Ok(("HEAD".to_string(), c.id())),
            Err(_) if empty() => Err(Failure::new(
                OutcomeKind::EmptyRepository,
                "the repository has no commits",
            )),
            Err(_) => Err(Failure::new(
                OutcomeKind::RefNotFound,
                "the remote has no HEAD; name a branch with ref = \"...\" in the cohort",
            )),
        };
    };
    for candidate in [
        format!("refs/heads/{name}"),
        format!("refs/tags/{name}"),
        name.to_string(),
    ] {
        if let Ok(c) = repo.find_reference(&candidate).and_then(|r| r.peel_to_commit()) {
            return Ok((candidate, c.id()));
        }
    }
    if name.len() >= 7 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        if let Ok(c) = repo.revparse_single(name).and_then(|o| o.peel_to_commit()) {
            return Ok((c.id().to_string(), c.id()));
        }
    }
    if empty() {
        return Err(Failure::new(
            OutcomeKind::EmptyRepository,
            "the repository has no commits",
        ));
    }
    Err(Failure::new(
        OutcomeKind::RefNotFound,
        format!("no branch, tag or commit named {name:?} in the repository"),
    ))
}

/// Walks the first-parent chain from `tip` to the newest commit whose committer
/// date is at or before `deadline`. Returns it and the commits skipped.
fn apply_deadline(
    repo: &Repository,
    tip: Oid,
    deadline: Option<DateTime<Utc>>,
    max_commits: u64,
) -> Result<(Oid, Vec<String>), Failure> {
    let Some(deadline) = deadline else {
        return Ok((tip, Vec::new()));
    };
    let limit = deadline.timestamp();
    let mut after = Vec::new();
    let mut current = repo
        .find_commit(tip)
        .map_err(|e| Failure::infra(format!("cannot read commit {tip}: {}", e.message())))?;
    for _ in 0..max_commits {
        if current.committer().when().seconds() <= limit {
            return Ok((current.id(), after));
        }
        if after.len() < 1000 {
            after.push(current.id().to_string());
        }
        match current.parent(0) {
            Ok(p) => current = p,
            Err(_) => break,
        }
    }
    Err(Failure::new(
        OutcomeKind::NoCommitBeforeDeadline,
        format!(
            "no commit of the ref is dated at or before the deadline {}",
            deadline.to_rfc3339()
        ),
    ))
}

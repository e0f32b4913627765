//! [`Sandbox`] on a Docker engine, through bollard only.
//!
//! Every container is labelled `assay.job`, created fresh for one phase, and
//! removed afterwards whatever happened; [`Sandbox::reap_orphans`] removes what
//! a killed process left. `DOCKER_HOST` is honoured and the API version is
//! negotiated (Debian's engine speaks 1.41).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkConnectRequest,
    NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

mod engine_disk;

use super::{
    disk, egress, CappedOutput, Claim, Phase, PhaseResult, PhaseSpec, ResultFile, Sandbox, SandboxError, SandboxLimits,
    Work,
};

/// The label on everything assay creates.
pub const LABEL: &str = "assay.job";
/// The label naming the process that created a container (`host:pid`).
pub const OWNER_LABEL: &str = "assay.owner";
/// The label naming the queue claim a container runs under (`JOB:TOKEN`), when it does.
pub const CLAIM_LABEL: &str = "assay.claim";
/// The label saying what a container (or volume, network) is for: `install`, `test`, …
pub const ROLE_LABEL: &str = "assay.role";

/// Whether the process named by an owner label is alive on this host; an
/// owner on another host is assumed alive (its own process reaps it).
fn owner_alive(label: Option<&String>) -> bool {
    label.is_some_and(|l| crate::host::parse(l).is_some() && !crate::host::gone(l))
}

/// How a phase's free space on /work is watched: the mount point on this host, or a watcher
/// container on a remote engine.
enum Watch {
    Local(disk::Watch),
    Engine(engine_disk::EngineWatch),
}

/// An install's network and its proxy container (once created).
struct Egress {
    network: String,
    proxy: Option<String>,
}

/// Bytes of the proxy's log kept and read (its refusals are a few lines each).
const PROXY_LOG: usize = 1 << 20;

/// The non-root user tests run as (created in every runner image).
pub const RUNNER_UID: u64 = 10001;

/// A Docker engine.
#[derive(Debug, Clone)]
pub struct DockerSandbox {
    docker: Docker,
    /// The engine runs on another machine: job disks are made there (see [`engine_disk`]).
    remote: bool,
}

/// Whether the engine `docker_host` names runs on this machine: a Unix socket, or TCP to a
/// loopback address. Anything else (ssh://, TCP to another address) is another machine's.
fn engine_is_local(docker_host: &str) -> bool {
    let Ok(url) = url::Url::parse(docker_host) else {
        return false;
    };
    if url.scheme() == "unix" {
        return true;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d == "localhost" || d.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        }
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

impl DockerSandbox {
    /// Connects to the engine `DOCKER_HOST` names (this machine's socket without it) and
    /// negotiates the API version. An `ssh://[user@]host[:port]` engine is reached with
    /// `ssh_key` and checked against `known_hosts` when given (see [`super::ssh`]).
    pub async fn connect_with(
        ssh_key: Option<&Path>,
        known_hosts: Option<&Path>,
    ) -> Result<DockerSandbox, SandboxError> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let (docker, remote) = match host.as_deref() {
            Some(h) if h.starts_with("ssh://") => {
                let target = super::ssh::SshTarget::parse(h, ssh_key, known_hosts)?;
                (super::ssh::connect(target)?, true)
            }
            // bollard is built without TLS: a TLS engine would be spoken to in plain text.
            Some(h)
                if h.starts_with("https://")
                    || std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) =>
            {
                return Err(SandboxError::Io(format!(
                    "DOCKER_HOST={}: TLS to the engine (https://, DOCKER_TLS_VERIFY) is not supported; reach it over ssh:// instead",
                    crate::redact::redact(h)
                )));
            }
            Some(h) => (Docker::connect_with_defaults()?, !engine_is_local(h)),
            None => (Docker::connect_with_defaults()?, false),
        };
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        Ok(DockerSandbox { docker, remote })
    }

    /// [`Self::connect_with`] ssh's own key and known hosts (for an ssh:// engine).
    pub async fn connect() -> Result<DockerSandbox, SandboxError> {
        DockerSandbox::connect_with(None, None).await
    }

    /// The bollard client, for image builds.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    async fn remove_container(&self, id: &str) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).v(false).build();
        if let Err(e) = self.docker.remove_container(id, Some(opts)).await {
            tracing::warn!("cannot remove container {id}: {e}");
        }
    }

    /// The labels of what a job creates; `role` says what it is (`volume`, `upload`, `install`,
    /// `test`, `proxy`, `network`, `helper`; on a remote engine also `disk` and `watch`), for
    /// operators reading `docker ps`.
    fn labels(job: &str, claim: Option<&Claim>, role: &str) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL.to_string(), job.to_string()),
            (OWNER_LABEL.to_string(), crate::host::owner()),
            (ROLE_LABEL.to_string(), role.to_string()),
        ]);
        if let Some(c) = claim {
            labels.insert(CLAIM_LABEL.to_string(), c.label());
        }
        labels
    }
}

/// The job's volume at /work.
fn work_mount(work: &Work) -> Mount {
    Mount {
        target: Some("/work".into()),
        source: Some(work.volume.clone()),
        typ: Some(MountType::VOLUME),
        ..Default::default()
    }
}

/// Bytes an upload hands the engine at a time.
const UPLOAD_CHUNK: usize = 256 * 1024;
/// Chunks an upload holds in memory, at most, while the engine reads.
const UPLOAD_CHUNKS_IN_FLIGHT: usize = 4;

/// What a packed chunk of an upload is sent as.
type Chunk = Result<bytes::Bytes, std::io::Error>;

/// A `Write` that hands what is written to a channel in chunks of [`UPLOAD_CHUNK`] bytes: a tar
/// packed on a blocking thread streams to the engine with a few chunks in memory, never the
/// whole tree (up to limits.export_bytes per job).
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(UPLOAD_CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading the upload"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= UPLOAD_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Packs `dir` as a tar stream owned by the runner user, its entries under
/// `prefix` (empty: at the top), into `out`.
fn pack<W: std::io::Write>(dir: &Path, prefix: &str, out: W) -> Result<W, SandboxError> {
    let io = |e: std::io::Error| SandboxError::Io(format!("cannot pack {}: {e}", dir.display()));
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    if !prefix.is_empty() {
        let mut header = tar::Header::new_gnu();
        header.set_uid(RUNNER_UID);
        header.set_gid(RUNNER_UID);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        builder.append_data(&mut header, prefix, std::io::empty()).map_err(io)?;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            let rel = path.strip_prefix(dir).expect("inside dir");
            if rel.as_os_str() == crate::git::export::EXPORT_MARKER {
                continue;
            }
            let rel = &Path::new(prefix).join(rel);
            let meta = std::fs::symlink_metadata(&path).map_err(io)?;
            let mut header = tar::Header::new_gnu();
            header.set_uid(RUNNER_UID);
            header.set_gid(RUNNER_UID);
            header.set_mtime(0);
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(io)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mode(0o777);
                builder.append_link(&mut header, rel, &target).map_err(io)?;
            } else if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mode(0o755);
                builder.append_data(&mut header, rel, std::io::empty()).map_err(io)?;
                stack.push(path);
            } else if meta.is_file() {
                use std::os::unix::fs::PermissionsExt;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(meta.len());
                header.set_mode(if meta.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                });
                let f = std::fs::File::open(&path).map_err(io)?;
                builder.append_data(&mut header, rel, f).map_err(io)?;
            }
        }
    }
    builder.into_inner().map_err(io)
}

/// Reads a tar stream entry by entry: regular files only, links never
/// followed, counts and sizes capped.
pub fn unpack_results(tar_bytes: &[u8], limits: &SandboxLimits) -> (Vec<ResultFile>, Vec<String>) {
    use std::io::Read;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut total: u64 = 0;
    let mut archive = tar::Archive::new(tar_bytes);
    let Ok(entries) = archive.entries() else {
        return (files, vec!["<unreadable archive>".into()]);
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            skipped.push("<unreadable entry>".into());
            break;
        };
        let path = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "<bad path>".into());
        // Docker names entries after the directory copied: strip that first component.
        let rel = path.split_once('/').map(|(_, r)| r.to_string()).unwrap_or_default();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            skipped.push(format!("{rel} (not a regular file)"));
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if files.len() >= limits.result_files || total.saturating_add(size) > limits.result_bytes {
            skipped.push(format!("{rel} (over the copy-out caps)"));
            continue;
        }
        let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
        if (&mut entry).take(size).read_to_end(&mut data).is_err() {
            skipped.push(format!("{rel} (unreadable)"));
            continue;
        }
        total += data.len() as u64;
        files.push(ResultFile { path: rel, data });
    }
    (files, skipped)
}

#[async_trait]
impl Sandbox for DockerSandbox {
    async fn prepare(
        &self,
        job: &str,
        claim: Option<&Claim>,
        image: &str,
        source: &Path,
        limits: &SandboxLimits,
    ) -> Result<Work, SandboxError> {
        if self.docker.inspect_image(image).await.is_err() {
            return Err(SandboxError::MissingImage(image.to_string()));
        }
        let volume = format!("assay-work-{job}");
        let disk = if limits.install_disk == 0 {
            None
        } else if self.remote {
            Some(self.create_engine_disk(image, job, claim, limits).await?)
        } else {
            let (job, install, test) = (job.to_string(), limits.install_disk, limits.test_disk);
            Some(
                tokio::task::spawn_blocking(move || disk::create(&job, install, test, RUNNER_UID))
                    .await
                    .map_err(|e| SandboxError::Io(format!("job disk task failed: {e}")))??,
            )
        };
        let driver_opts = disk.as_ref().map(|d| {
            HashMap::from([
                ("type".to_string(), "ext4".to_string()),
                ("device".to_string(), d.device.clone()),
                ("o".to_string(), "nosuid,nodev".to_string()),
            ])
        });
        let created = self
            .docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                driver: Some("local".into()),
                driver_opts,
                labels: Some(DockerSandbox::labels(job, claim, "volume")),
                ..Default::default()
            })
            .await;
        let mut work = Work {
            volume,
            job: job.to_string(),
            claim: claim.cloned(),
            disk,
            mountpoint: None,
        };
        if let Err(e) = created {
            let _ = self.remove_disk(&work).await;
            return Err(e.into());
        }
        if work.disk.is_some() && !self.remote {
            work.mountpoint = self
                .docker
                .inspect_volume(&work.volume)
                .await
                .ok()
                .map(|v| std::path::PathBuf::from(v.mountpoint))
                .filter(|p| !p.as_os_str().is_empty());
        }
        if let Err(e) = self.upload(&work, image, source, "").await {
            let _ = self.cleanup(&work).await;
            return Err(e);
        }
        Ok(work)
    }

    async fn upload(&self, work: &Work, image: &str, source: &Path, dest: &str) -> Result<(), SandboxError> {
        let source = source.to_path_buf();
        let prefix = dest.trim_matches('/').to_string();
        // A container that never starts, only to copy files into the volume.
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["true".into()]),
            user: Some(format!("{RUNNER_UID}:{RUNNER_UID}")),
            labels: Some(DockerSandbox::labels(&work.job, work.claim.as_ref(), "upload")),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                mounts: Some(vec![work_mount(work)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self.create(body).await?;
        // Packed on a blocking thread while the engine reads it: a failure to pack ends the
        // stream with that error, and an engine that stops reading stops the packing.
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(UPLOAD_CHUNKS_IN_FLIGHT);
        let packer = tokio::task::spawn_blocking(move || {
            let out = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(UPLOAD_CHUNK),
            };
            let packed = pack(&source, &prefix, out).and_then(|mut out| {
                std::io::Write::flush(&mut out).map_err(|e| SandboxError::Io(format!("cannot stream the upload: {e}")))
            });
            if let Err(e) = &packed {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            // Closed: the engine stopped reading first (its error is the one to report).
            (packed, tx.is_closed())
        });
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let upload = self
            .docker
            .upload_to_container(
                &created.id,
                Some(UploadToContainerOptionsBuilder::default().path("/work").build()),
                bollard::body_try_stream(chunks),
            )
            .await;
        let packed = packer
            .await
            .map_err(|e| SandboxError::Io(format!("packing task failed: {e}")));
        self.remove_container(&created.id).await;
        match (packed?, upload) {
            ((Ok(()), _), Ok(())) => Ok(()),
            // The engine failed first: the packing only saw its stream cut.
            ((_, true), Err(e)) => Err(e.into()),
            ((Err(e), _), _) => Err(e),
            ((Ok(()), _), Err(e)) => Err(e.into()),
        }
    }

    async fn seal(&self, work: &Work, image: &str, dirs: &[String], on: bool) -> Result<(), SandboxError> {
        if dirs.is_empty() {
            return Ok(());
        }
        // Paths come from the runner spec (checked relative, no `..`); a symlink the install
        // left in their place is not followed (-h, and find does not descend into links).
        let quoted: Vec<String> = dirs
            .iter()
            .map(|d| format!("'/work/{}'", d.replace('\'', "")))
            .collect();
        let (owner, mode) = if on {
            ("0:0".to_string(), "a-w")
        } else {
            (format!("{RUNNER_UID}:{RUNNER_UID}"), "u+w")
        };
        let script = format!(
            "set -e\nfor d in {}; do\n  [ -e \"$d\" ] || continue\n  [ -L \"$d\" ] && {{ echo \"$d is a link\" >&2; exit 1; }}\n  chown -hR {owner} \"$d\"\n  find \"$d\" ! -type l -exec chmod {mode} {{}} +\ndone\n",
            quoted.join(" ")
        );
        let out = self
            .root_helper_with(work, image, &script, &["CHOWN", "FOWNER"])
            .await?;
        if out.exit_code != Some(0) {
            return Err(SandboxError::Io(format!(
                "cannot seal the installed environment: {}",
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    async fn run(&self, work: &Work, spec: &PhaseSpec, limits: &SandboxLimits) -> Result<PhaseResult, SandboxError> {
        let install = spec.phase == Phase::Install;
        if work.disk.is_some() {
            // This phase's allowance: the install's limit, or the tests' growth.
            let keep = if install { limits.install_disk } else { limits.test_disk };
            self.set_reserve(work, &spec.image, keep).await?;
        }
        // Whether /work ran full is measured while the phase runs (tools clean
        // up their temporary files after an ENOSPC, so afterwards it looks
        // fine), never read from what the candidate's tools printed.
        let watch = match (&work.disk, &work.mountpoint) {
            (Some(d), _) if d.helper.is_some() => {
                let size = disk::image_size(limits.install_disk, limits.test_disk);
                Some(Watch::Engine(self.watch_on_engine(work, &spec.image, size).await?))
            }
            (Some(d), Some(mp)) => Some(Watch::Local(disk::watch(mp.clone(), disk::image_size_of(d)))),
            _ => None,
        };
        let result = self.run_phase(work, spec, limits).await;
        let min_free = match watch {
            Some(Watch::Local(w)) => w.stop().await,
            Some(Watch::Engine(w)) => self.stop_engine_watch(w).await,
            None => None,
        };
        let mut result = result.map(|mut r| {
            r.disk_full = min_free.is_some_and(|f| f < 4 << 20);
            r
        })?;
        if result.exit_code == Some(0) && !result.timed_out {
            // A phase that worked did not fail for want of disk.
            result.disk_full = false;
        }
        Ok(result)
    }

    async fn cleanup(&self, work: &Work) -> Result<(), SandboxError> {
        for c in self.labelled_containers(&format!("{LABEL}={}", work.job)).await? {
            if let Some(id) = c.id {
                self.remove_container(&id).await;
            }
        }
        // An install's network (see `open_egress`), should its phase have been cancelled.
        for n in self.labelled_networks(&format!("{LABEL}={}", work.job)).await? {
            if let Some(name) = n.name {
                let _ = self.docker.remove_network(&name).await;
            }
        }
        let removed = self
            .docker
            .remove_volume(
                &work.volume,
                Some(RemoveVolumeOptionsBuilder::default().force(true).build()),
            )
            .await;
        self.remove_disk(work).await?;
        removed?;
        Ok(())
    }
    async fn reap_orphans(&self) -> Result<usize, SandboxError> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
        let list = self.labelled_containers(LABEL).await?;
        let mut n = 0;
        for c in list {
            if owner_alive(c.labels.as_ref().and_then(|l| l.get(OWNER_LABEL))) {
                continue;
            }
            if let Some(id) = c.id {
                self.remove_container(&id).await;
                n += 1;
            }
        }
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build()))
            .await?;
        for v in volumes.volumes.unwrap_or_default() {
            if owner_alive(v.labels.get(OWNER_LABEL)) {
                continue;
            }
            let _ = self
                .docker
                .remove_volume(&v.name, Some(RemoveVolumeOptionsBuilder::default().force(true).build()))
                .await;
        }
        for net in self.labelled_networks(LABEL).await? {
            if owner_alive(net.labels.as_ref().and_then(|l| l.get(OWNER_LABEL))) {
                continue;
            }
            if let Some(name) = net.name {
                let _ = self.docker.remove_network(&name).await;
            }
        }
        // Their volumes are gone: the images and loop devices under them can go too.
        n += tokio::task::spawn_blocking(disk::reap).await.unwrap_or(0);
        if self.remote {
            n += self.reap_engine_disks().await?;
        }
        Ok(n)
    }

    async fn claims(&self) -> Result<Vec<Claim>, SandboxError> {
        let mut labels: Vec<String> = Vec::new();
        for c in self.labelled_containers(CLAIM_LABEL).await? {
            labels.extend(c.labels.and_then(|mut l| l.remove(CLAIM_LABEL)));
        }
        let filters = HashMap::from([("label".to_string(), vec![CLAIM_LABEL.to_string()])]);
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build()))
            .await?;
        for mut v in volumes.volumes.unwrap_or_default() {
            labels.extend(v.labels.remove(CLAIM_LABEL));
        }
        for net in self.labelled_networks(CLAIM_LABEL).await? {
            labels.extend(net.labels.and_then(|mut l| l.remove(CLAIM_LABEL)));
        }
        labels.sort();
        labels.dedup();
        Ok(labels.iter().filter_map(|l| Claim::parse(l)).collect())
    }

    async fn remove_claim(&self, claim: &Claim) -> Result<usize, SandboxError> {
        let label = format!("{CLAIM_LABEL}={}", claim.label());
        let mut n = 0;
        for c in self.labelled_containers(&label).await? {
            if let Some(id) = c.id {
                self.remove_container(&id).await;
                n += 1;
            }
        }
        let filters = HashMap::from([("label".to_string(), vec![label.clone()])]);
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptionsBuilder::default().filters(&filters).build()))
            .await?;
        for v in volumes.volumes.unwrap_or_default() {
            let _ = self
                .docker
                .remove_volume(&v.name, Some(RemoveVolumeOptionsBuilder::default().force(true).build()))
                .await;
        }
        for net in self.labelled_networks(&label).await? {
            if let Some(name) = net.name {
                let _ = self.docker.remove_network(&name).await;
            }
        }
        Ok(n)
    }
}

impl DockerSandbox {
    /// One phase's container: create, run, collect, remove.
    async fn run_phase(
        &self,
        work: &Work,
        spec: &PhaseSpec,
        limits: &SandboxLimits,
    ) -> Result<PhaseResult, SandboxError> {
        let install = spec.phase == Phase::Install;
        let mut mounts = vec![work_mount(work)];
        for dir in &spec.cache_dirs {
            let name = format!(
                "assay-cache-{}-{}",
                spec.runner,
                dir.trim_matches('/').replace('/', "-")
            );
            mounts.push(Mount {
                target: Some(dir.clone()),
                source: Some(name),
                typ: Some(MountType::VOLUME),
                // Dependency caches are writable only while installing.
                read_only: Some(!install),
                ..Default::default()
            });
        }
        let mut env = spec.env.clone();
        env.push("HOME=/tmp/home".into());
        let egress = if install {
            let x = self.open_egress(work, limits).await?;
            env.extend(egress::proxy_env());
            Some(x)
        } else {
            None
        };
        let script = if install {
            // Installs unpack and build in TMPDIR (pip's build directories among
            // them): on /work, whose size is the install's limit, not the small
            // /tmp, which is the tests' scratch. Removed once the install is done.
            env.push(format!("TMPDIR={INSTALL_TMP}"));
            format!(
                "{}mkdir -p /tmp/home /work/.assay {INSTALL_TMP}\n( {}\n)\nstatus=$?\nrm -rf {INSTALL_TMP}\nexit $status\n",
                egress::wait_for_proxy(),
                spec.script
            )
        } else {
            format!("mkdir -p /tmp/home /work/.assay\n{}", spec.script)
        };
        // The phase's deadline inside the container too: should assay die (SIGKILL, a lost
        // engine connection) before its own timer fires, the phase still ends within a minute
        // of its timeout — `timeout` kills the script's process group, the container exits.
        let deadline = (spec.timeout + INNER_GRACE).as_secs().to_string();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(vec![
                "timeout".into(),
                "--signal=KILL".into(),
                deadline,
                "bash".into(),
                "-c".into(),
                script,
            ]),
            user: Some(format!("{RUNNER_UID}:{RUNNER_UID}")),
            working_dir: Some("/work".into()),
            env: Some(env),
            labels: Some(DockerSandbox::labels(
                &work.job,
                work.claim.as_ref(),
                if install { "install" } else { "test" },
            )),
            // No network through network_mode "none" alone: it keeps loopback and
            // an /etc/hosts naming localhost, which NetworkDisabled does not.
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some(match &egress {
                    Some(x) => x.network.clone(),
                    None => "none".into(),
                }),
                memory: Some(spec.memory),
                memory_swap: Some(spec.memory),
                nano_cpus: Some((limits.cpus * 1e9) as i64),
                pids_limit: Some(spec.pids),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    // exec: /work is executable anyway, and Go and some Python builds run
                    // what they compile in /tmp.
                    format!(
                        "rw,exec,nosuid,nodev,size={},nr_inodes={}",
                        limits.tmpfs_bytes, limits.tmpfs_inodes
                    ),
                )])),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                init: Some(true),
                log_config: Some(capped_log(limits.output_bytes)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = match self.create(body).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(x) = &egress {
                    self.close_egress(x).await;
                }
                return Err(e);
            }
        };
        let id = created.id;
        let result = self.run_created(&id, spec, limits).await;
        self.remove_container(&id).await;
        match &egress {
            Some(x) => {
                let refused = self.close_egress(x).await;
                result.map(|mut r| {
                    r.egress_refused = refused;
                    r
                })
            }
            None => result,
        }
    }

    /// The install's way out (see [`egress`]): an internal network of its own, with the bridge's
    /// host address withheld, and a proxy on it and on Docker's default bridge that lets
    /// through `limits.install_hosts` only. Whatever it created is removed when a step fails.
    async fn open_egress(&self, work: &Work, limits: &SandboxLimits) -> Result<Egress, SandboxError> {
        if self.docker.inspect_image(egress::PROXY_IMAGE).await.is_err() {
            return Err(SandboxError::MissingImage(egress::PROXY_IMAGE.to_string()));
        }
        let network = format!("assay-net-{}", work.job);
        // One left by this job's earlier phase whose removal failed would make the name taken.
        let _ = self.docker.remove_network(&network).await;
        self.docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                internal: Some(true),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.inhibit_ipv4".to_string(),
                    "true".to_string(),
                )])),
                labels: Some(DockerSandbox::labels(&work.job, work.claim.as_ref(), "network")),
                ..Default::default()
            })
            .await?;
        let mut x = Egress { network, proxy: None };
        if let Err(e) = self.start_proxy(work, limits, &mut x).await {
            self.close_egress(&x).await;
            return Err(e);
        }
        Ok(x)
    }

    async fn start_proxy(&self, work: &Work, limits: &SandboxLimits, x: &mut Egress) -> Result<(), SandboxError> {
        const FILTER: &str = "/tmp/filter";
        let script = format!(
            "printf '%s' \"$ASSAY_PROXY_FILTER\" > {FILTER} && printf '%s' \"$ASSAY_PROXY_CONF\" > /tmp/proxy.conf && exec tinyproxy -d -c /tmp/proxy.conf"
        );
        let body = ContainerCreateBody {
            image: Some(egress::PROXY_IMAGE.to_string()),
            cmd: Some(vec!["sh".into(), "-c".into(), script]),
            env: Some(vec![
                format!("ASSAY_PROXY_FILTER={}", egress::filter(&limits.install_hosts)),
                format!(
                    "ASSAY_PROXY_CONF={}",
                    egress::proxy_config(FILTER, limits.install_seconds + INNER_GRACE.as_secs())
                ),
            ]),
            labels: Some(DockerSandbox::labels(&work.job, work.claim.as_ref(), "proxy")),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".into()),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    "rw,noexec,nosuid,nodev,size=1m".to_string(),
                )])),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                memory: Some(128 << 20),
                memory_swap: Some(128 << 20),
                pids_limit: Some(128),
                log_config: Some(capped_log(PROXY_LOG)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create(body).await?.id;
        x.proxy = Some(id.clone());
        self.docker
            .connect_network(
                &x.network,
                NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(vec![egress::PROXY_HOST.to_string()]),
                        ..Default::default()
                    }),
                },
            )
            .await?;
        self.docker
            .start_container(&id, None::<bollard::query_parameters::StartContainerOptions>)
            .await?;
        Ok(())
    }

    /// Removes the install's proxy and network (the install's container is gone by then) and
    /// returns what the proxy refused.
    async fn close_egress(&self, x: &Egress) -> Vec<String> {
        let mut refused = Vec::new();
        if let Some(id) = &x.proxy {
            let mut log = CappedOutput::new(PROXY_LOG);
            let opts = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
            let mut logs = std::pin::pin!(self.docker.logs(id, Some(opts)));
            while let Some(Ok(item)) = logs.next().await {
                log.push(&item.into_bytes());
            }
            refused = egress::refused(&log.text());
            self.remove_container(id).await;
        }
        if let Err(e) = self.docker.remove_network(&x.network).await {
            tracing::warn!("cannot remove network {}: {e}", x.network);
        }
        refused
    }

    /// Runs one of assay's own scripts on the job's volume as root, with no
    /// capabilities (root cannot write the candidate's files, only the
    /// root-owned reserve) and no network. Output is captured whole (short).
    async fn root_helper(&self, work: &Work, image: &str, script: &str) -> Result<PhaseResult, SandboxError> {
        self.root_helper_with(work, image, script, &[]).await
    }

    /// [`Self::root_helper`] with the capabilities `caps` (our own script, no candidate code).
    async fn root_helper_with(
        &self,
        work: &Work,
        image: &str,
        script: &str,
        caps: &[&str],
    ) -> Result<PhaseResult, SandboxError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["bash".into(), "-c".into(), script.to_string()]),
            user: Some("0:0".into()),
            working_dir: Some("/work".into()),
            labels: Some(DockerSandbox::labels(&work.job, work.claim.as_ref(), "helper")),
            host_config: Some(HostConfig {
                mounts: Some(vec![work_mount(work)]),
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: (!caps.is_empty()).then(|| caps.iter().map(|c| c.to_string()).collect()),
                security_opt: Some(vec!["no-new-privileges".into()]),
                memory: Some(256 << 20),
                pids_limit: Some(64),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self.create(body).await?;
        let spec = engine_disk::helper_spec(image);
        let result = self.run_created(&created.id, &spec, &SandboxLimits::default()).await;
        self.remove_container(&created.id).await;
        result
    }
}

/// The container's log on the host, the log assay follows: one json-file of at most four times
/// the capture cap (at least 8 MiB), never rotated into more — a test printing gigabytes costs
/// the host's disk megabytes. Engines reject `max-size` under 1k, hence the floor.
fn capped_log(capture: usize) -> HostConfigLogConfig {
    let kib = (capture.saturating_mul(4) / 1024).max(8 * 1024);
    HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            ("max-size".to_string(), format!("{kib}k")),
            ("max-file".to_string(), "1".to_string()),
        ])),
    }
}

/// How long past its timeout a phase's container may outlive assay's own timer (see the
/// `timeout` a phase runs under): assay's timer fires first and records `timeout`.
const INNER_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The install phase's TMPDIR, on the job's volume.
pub const INSTALL_TMP: &str = "/work/.assay-tmp";

impl DockerSandbox {
    /// Sets the reserve on the job's disk to leave `keep` bytes free: from this host when the
    /// disk is here (a mount of a few milliseconds), else — a remote engine's disk, a host that
    /// may not mount, a reserve the candidate tampered with — from a root helper container.
    async fn set_reserve(&self, work: &Work, image: &str, keep: u64) -> Result<(), SandboxError> {
        if let Some(d) = work.disk.clone().filter(|d| d.helper.is_none()) {
            match tokio::task::spawn_blocking(move || disk::reserve(&d, keep)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => tracing::debug!("reserve from this host: {e}; from a container instead"),
                Err(e) => tracing::debug!("reserve task failed: {e}; from a container instead"),
            }
        }
        let out = self.root_helper(work, image, &disk::reserve_script(keep)).await?;
        if out.exit_code != Some(0) {
            return Err(SandboxError::Io(format!(
                "job disk: cannot set the reserve: {}",
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    /// Detaches and deletes the job's disk, where it is.
    async fn remove_disk(&self, work: &Work) -> Result<(), SandboxError> {
        match work.disk.clone() {
            None => Ok(()),
            Some(d) if d.helper.is_some() => self.remove_engine_disk(&d, work).await,
            // losetup and the file removal block: off the runtime.
            Some(d) => tokio::task::spawn_blocking(move || disk::remove(&d))
                .await
                .map_err(|e| SandboxError::Io(format!("job disk task failed: {e}")))?,
        }
    }

    /// Creates a container; its id.
    async fn create(
        &self,
        body: ContainerCreateBody,
    ) -> Result<bollard::models::ContainerCreateResponse, SandboxError> {
        Ok(self
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
            .await?)
    }

    /// Every container (running or not) carrying `label` (`key` or `key=value`).
    async fn labelled_containers(&self, label: &str) -> Result<Vec<bollard::models::ContainerSummary>, SandboxError> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        Ok(self.docker.list_containers(Some(opts)).await?)
    }

    /// Every network carrying `label` (`key` or `key=value`).
    async fn labelled_networks(&self, label: &str) -> Result<Vec<bollard::models::Network>, SandboxError> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let opts = bollard::query_parameters::ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self.docker.list_networks(Some(opts)).await?)
    }

    async fn run_created(
        &self,
        id: &str,
        spec: &PhaseSpec,
        limits: &SandboxLimits,
    ) -> Result<PhaseResult, SandboxError> {
        let started = Instant::now();
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await?;
        let mut stdout = CappedOutput::new(limits.output_bytes);
        let mut stderr = CappedOutput::new(limits.output_bytes);
        let logs = self.docker.logs(
            id,
            Some(
                LogsOptionsBuilder::default()
                    .follow(true)
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        // Past the capture cap a test phase's outcome is `output_truncated` whatever follows,
        // so it is killed there rather than left printing until its timeout. An install's output
        // decides nothing: it runs on (its log on the host is capped, see `capped_log`).
        let kill_on_overflow = spec.phase != Phase::Install;
        let mut overflowed = false;
        let collect = async {
            let mut logs = std::pin::pin!(logs);
            while let Some(item) = logs.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdErr { message }) => stderr.push(&message),
                    Ok(out) => stdout.push(&out.into_bytes()),
                    Err(_) => break,
                }
                if kill_on_overflow && (stdout.truncated() || stderr.truncated()) {
                    overflowed = true;
                    return;
                }
            }
            let mut wait = std::pin::pin!(self
                .docker
                .wait_container(id, Some(WaitContainerOptionsBuilder::default().build())));
            // The wait stream reports a non-zero exit as an error value; the
            // exit code is read from inspect below either way.
            let _ = wait.next().await;
        };
        let timed_out = tokio::time::timeout(spec.timeout, collect).await.is_err();
        if timed_out || overflowed {
            let _ = self
                .docker
                .kill_container(
                    id,
                    Some(KillContainerOptionsBuilder::default().signal("SIGKILL").build()),
                )
                .await;
        }
        let inspect = self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await?;
        let state = inspect.state.unwrap_or_default();
        let mut result = PhaseResult {
            exit_code: if timed_out || overflowed { None } else { state.exit_code },
            timed_out,
            oom_killed: state.oom_killed.unwrap_or(false),
            output_truncated: stdout.truncated() || stderr.truncated(),
            output_bytes: stdout.total() + stderr.total(),
            stdout: stdout.text(),
            stderr: stderr.text(),
            duration_ms: started.elapsed().as_millis() as u64,
            files: Vec::new(),
            skipped_files: Vec::new(),
            disk_full: false,
            egress_refused: Vec::new(),
        };
        if let Some(dir) = &spec.collect {
            let path = format!("/work/{}", dir.trim_matches('/'));
            let mut stream = self.docker.download_from_container(
                id,
                Some(DownloadFromContainerOptionsBuilder::default().path(&path).build()),
            );
            let mut buf = Vec::new();
            // Stop reading once the archive is larger than the caps could use.
            let ceiling = limits.result_bytes + 1024 * (limits.result_files as u64 + 1) + (1 << 20);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        buf.extend_from_slice(&bytes);
                        if buf.len() as u64 > ceiling {
                            result.skipped_files.push("<archive over the copy-out cap>".into());
                            break;
                        }
                    }
                    // A missing directory means no results: the caller decides what that means.
                    Err(_) => break,
                }
            }
            let limits = limits.clone();
            let (files, skipped) = tokio::task::spawn_blocking(move || unpack_results(&buf, &limits))
                .await
                .map_err(|e| SandboxError::Io(format!("unpack task failed: {e}")))?;
            result.files = files;
            result.skipped_files.extend(skipped);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs `dir` through a `ChunkWriter` whose chunks a reader thread collects; the tar and
    /// the largest chunk.
    fn stream_pack(dir: &Path) -> (Result<(), SandboxError>, Vec<u8>, usize) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(UPLOAD_CHUNKS_IN_FLIGHT);
        let reader = std::thread::spawn(move || {
            let (mut all, mut largest) = (Vec::new(), 0);
            while let Some(chunk) = rx.blocking_recv() {
                let chunk = chunk.unwrap();
                largest = largest.max(chunk.len());
                all.extend_from_slice(&chunk);
            }
            (all, largest)
        });
        let out = ChunkWriter { tx, buf: Vec::new() };
        let packed = pack(dir, "", out)
            .and_then(|mut w| std::io::Write::flush(&mut w).map_err(|e| SandboxError::Io(e.to_string())));
        let (all, largest) = reader.join().unwrap();
        (packed, all, largest)
    }

    #[test]
    fn an_upload_streams_in_bounded_chunks_and_is_a_whole_tar() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("data.bin"), &big).unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/app.py"), "print('hi')\n").unwrap();
        let (packed, tar_bytes, largest) = stream_pack(dir.path());
        packed.unwrap();
        // A chunk is sent once it reaches UPLOAD_CHUNK, so it is at most that and one write.
        assert!(largest <= UPLOAD_CHUNK + 64 * 1024, "{largest}");
        assert!(tar_bytes.len() > big.len());
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = std::collections::BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            seen.insert(
                e.path().unwrap().display().to_string(),
                (e.header().uid().unwrap(), data),
            );
        }
        assert_eq!(seen["data.bin"].1, big);
        assert_eq!(seen["src/app.py"].1, b"print('hi')\n");
        assert!(seen.values().all(|(uid, _)| *uid == RUNNER_UID));
    }

    #[test]
    fn an_engine_that_stops_reading_stops_the_packing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.bin"), vec![7u8; 4 * UPLOAD_CHUNK]).unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(1);
        drop(rx);
        let out = ChunkWriter { tx, buf: Vec::new() };
        let err = pack(dir.path(), "", out).err().expect("the packing stops");
        assert!(err.to_string().contains("stopped reading"), "{err}");
    }
}

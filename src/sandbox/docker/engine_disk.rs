//! Job disks on the engine's host, for an engine on another machine (`DOCKER_HOST=ssh://…`).
//!
//! A job's `/work` is the same ext4 image on a loop device as on a local engine (see
//! [`super::disk`]), but the image and the loop device must be where the engine mounts the
//! volume: a short container of assay's own (no network, no candidate code, the
//! runner image's e2fsprogs and util-linux, the loop devices and `CAP_SYS_ADMIN`) creates, attaches, detaches and reaps them under
//! the engine host's `/var/lib/assay/disks`. While a phase runs, a watcher container that
//! mounts the volume read-only records the least free space it saw (the local engine's watch
//! reads the mount point directly).
//!
//! Images are named `engine--HOST:PID--JOB.img` after the process that made them, so a later
//! run on the same host reaps what a killed one left; a local engine's reaper skips them.

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{KillContainerOptionsBuilder, LogsOptionsBuilder, WaitContainerOptionsBuilder};
use futures_util::StreamExt;

use super::super::disk::{self, JobDisk, RESERVE_DIR};
use super::super::{Claim, Phase, PhaseSpec, SandboxError, SandboxLimits, Work};
use super::{DockerSandbox, RUNNER_UID};

/// Where job images live on the engine's host.
const HOST_DIR: &str = disk::DEFAULT_DIR;
/// Prefix of images made for a remote engine.
const PREFIX: &str = "engine--";
/// Exit code of the create script when the engine host lacks the space.
const NO_SPACE: i64 = 3;

/// Single-quotes `s` for sh (our own names only, but never trusted to be plain).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The script that creates and attaches a job's image: the device on stdout.
fn create_script(name: &str, size: u64, need: u64, uid: u64) -> String {
    let img = quote(&format!("/disks/{name}"));
    format!(
        "set -e\n\
         avail=$(df -B1 --output=avail /disks | tail -n 1 | tr -d ' ')\n\
         if [ \"$avail\" -lt {need} ]; then echo \"$avail\"; exit {NO_SPACE}; fi\n\
         truncate -s {size} {img}\n\
         t=$(mktemp -d); mkdir \"$t/{RESERVE_DIR}\"\n\
         if ! {{ mkfs.ext4 -q -F -m 0 -O ^has_journal -E root_owner={uid}:{uid},nodiscard -d \"$t\" {img} >&2 \
         && debugfs -w -R 'rmdir lost+found' {img} >/dev/null \
         && losetup --find --show {img}; }}; then rm -f {img}; exit 1; fi\n"
    )
}

/// The script that detaches and deletes the images `names`.
fn remove_script(names: &[String]) -> String {
    let mut s = String::new();
    for name in names {
        let img = quote(&format!("/disks/{name}"));
        s.push_str(&format!(
            "for d in $(losetup -j {img} | cut -d: -f1); do losetup -d \"$d\"; done; rm -f {img}\n"
        ));
    }
    s
}

/// The watcher's script: the least free bytes /work showed while it ran (of a filesystem no
/// larger than `size`: before the volume is ours the path shows something else), printed when
/// it is told to stop; -1 when never seen.
fn watch_script(size: u64) -> String {
    format!(
        "m=-1\ntrap 'echo \"$m\"; exit 0' TERM\n\
         while :; do\n\
           set -- $(stat -f -c '%a %S %b' /work)\n\
           if [ \"$#\" -eq 3 ] && [ $(($3 * $2)) -le {size} ]; then\n\
             f=$(($1 * $2)); if [ \"$m\" -lt 0 ] || [ \"$f\" -lt \"$m\" ]; then m=$f; fi\n\
           fi\n\
           sleep 0.05 & wait $!\n\
         done\n"
    )
}

/// The owner (`host:pid`) in the name of an image made for a remote engine.
fn owner_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(".img")?;
    let (owner, _job) = rest.split_once("--")?;
    crate::host::parse(owner).map(|_| owner)
}

/// A running watcher (see [`DockerSandbox::watch_on_engine`]).
pub(super) struct EngineWatch {
    id: String,
}

impl DockerSandbox {
    /// A container of assay's own with the engine host's job-disk directory and
    /// devices: runs `script` to its end.
    async fn disk_helper(
        &self,
        image: &str,
        job: &str,
        claim: Option<&Claim>,
        script: &str,
    ) -> Result<super::PhaseResult, SandboxError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["bash".into(), "-c".into(), script.to_string()]),
            user: Some("0:0".into()),
            labels: Some(DockerSandbox::labels(job, claim, "disk")),
            host_config: Some(HostConfig {
                // Not `privileged` (engines in containers may not grant every capability): the
                // loop devices (block major 7, loop-control) and the one capability their
                // ioctls need.
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: Some(vec!["SYS_ADMIN".into()]),
                device_cgroup_rules: Some(vec!["b 7:* rwm".into(), "c 10:237 rwm".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                binds: Some(vec![format!("{HOST_DIR}:/disks"), "/dev:/dev".to_string()]),
                network_mode: Some("none".into()),
                memory: Some(256 << 20),
                pids_limit: Some(64),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self.create(body).await?;
        let spec = helper_spec(image);
        let result = self.run_created(&created.id, &spec, &SandboxLimits::default()).await;
        self.remove_container(&created.id).await;
        result
    }

    /// Creates and attaches a job's image on the engine's host (see [`disk::create`]).
    pub(super) async fn create_engine_disk(
        &self,
        image: &str,
        job: &str,
        claim: Option<&Claim>,
        limits: &SandboxLimits,
    ) -> Result<JobDisk, SandboxError> {
        let size = disk::image_size(limits.install_disk, limits.test_disk);
        let margin = 2u64 << 30;
        let name = format!("{PREFIX}{}--{job}.img", crate::host::owner());
        let script = create_script(&name, size, size.saturating_add(margin), RUNNER_UID);
        let out = self.disk_helper(image, job, claim, &script).await?;
        let device = out.stdout.trim();
        match out.exit_code {
            Some(0) if device.starts_with("/dev/") => Ok(JobDisk {
                image: std::path::Path::new(HOST_DIR).join(&name),
                device: device.to_string(),
                helper: Some(image.to_string()),
            }),
            Some(NO_SPACE) => Err(SandboxError::Io(format!(
                "job disk: the engine host's {HOST_DIR} has {} MiB free, a job needs {} MiB (limits.install_disk + limits.test_disk) plus {} MiB to spare; free space there or lower the limits",
                device.parse::<u64>().unwrap_or(0) >> 20,
                size >> 20,
                margin >> 20
            ))),
            _ => Err(SandboxError::Io(format!(
                "job disk: cannot create it on the engine's host (exit {:?}): {}",
                out.exit_code,
                out.stderr.trim()
            ))),
        }
    }

    /// Detaches and deletes a job's image on the engine's host.
    pub(super) async fn remove_engine_disk(&self, d: &JobDisk, work: &Work) -> Result<(), SandboxError> {
        let (Some(helper), Some(name)) = (&d.helper, d.image.file_name()) else {
            return Ok(());
        };
        let script = remove_script(&[name.to_string_lossy().into_owned()]);
        let out = self
            .disk_helper(helper, &work.job, work.claim.as_ref(), &script)
            .await?;
        if out.exit_code != Some(0) {
            return Err(SandboxError::Io(format!(
                "job disk: cannot remove {} on the engine's host: {}",
                d.image.display(),
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    /// Images on the engine's host whose owner (a process on this host) is dead: detached and
    /// deleted. Returns how many. Needs one of assay's images on the engine for its helper;
    /// without one no job can have run there.
    pub(super) async fn reap_engine_disks(&self) -> Result<usize, SandboxError> {
        let Some(image) = self.any_runner_image().await? else {
            return Ok(0);
        };
        let listed = self.disk_helper(&image, "reap", None, "ls -1 /disks").await?;
        let dead: Vec<String> = listed
            .stdout
            .lines()
            .filter(|n| owner_of(n).is_some_and(crate::host::gone))
            .map(str::to_string)
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        let out = self.disk_helper(&image, "reap", None, &remove_script(&dead)).await?;
        Ok(if out.exit_code == Some(0) { dead.len() } else { 0 })
    }

    /// One of the runner images the engine has, if any.
    async fn any_runner_image(&self) -> Result<Option<String>, SandboxError> {
        let images = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await?;
        Ok(images
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .find(|t| t.starts_with("assay-runner-")))
    }

    /// Starts watching the free space of the job's volume from a container on the engine.
    pub(super) async fn watch_on_engine(
        &self,
        work: &Work,
        image: &str,
        size: u64,
    ) -> Result<EngineWatch, SandboxError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["bash".into(), "-c".into(), watch_script(size)]),
            user: Some("0:0".into()),
            labels: Some(DockerSandbox::labels(&work.job, work.claim.as_ref(), "watch")),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some("/work".into()),
                    source: Some(work.volume.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                network_mode: Some("none".into()),
                readonly_rootfs: Some(true),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                memory: Some(64 << 20),
                pids_limit: Some(16),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self.create(body).await?;
        if let Err(e) = self
            .docker
            .start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
        {
            self.remove_container(&created.id).await;
            return Err(e.into());
        }
        Ok(EngineWatch { id: created.id })
    }

    /// Stops a watcher; the least free space it saw, if it saw the volume.
    pub(super) async fn stop_engine_watch(&self, w: EngineWatch) -> Option<u64> {
        let _ = self
            .docker
            .kill_container(
                &w.id,
                Some(KillContainerOptionsBuilder::default().signal("SIGTERM").build()),
            )
            .await;
        let mut wait = std::pin::pin!(self
            .docker
            .wait_container(&w.id, Some(WaitContainerOptionsBuilder::default().build())));
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait.next()).await;
        let mut text = Vec::new();
        let opts = LogsOptionsBuilder::default().stdout(true).build();
        let mut logs = std::pin::pin!(self.docker.logs(&w.id, Some(opts)));
        while let Some(Ok(item)) = logs.next().await {
            text.extend_from_slice(&item.into_bytes());
        }
        self.remove_container(&w.id).await;
        let text = String::from_utf8_lossy(&text);
        text.lines()
            .last()
            .and_then(|l| l.trim().parse::<i64>().ok())
            .and_then(|m| u64::try_from(m).ok())
    }
}

/// How one of assay's own helper containers runs (a minute at most, a small capture).
pub(super) fn helper_spec(image: &str) -> PhaseSpec {
    PhaseSpec {
        phase: Phase::Test,
        image: image.to_string(),
        script: String::new(),
        env: Vec::new(),
        cache_dirs: Vec::new(),
        runner: String::new(),
        collect: None,
        timeout: std::time::Duration::from_secs(60),
        memory: 256 << 20,
        pids: 64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_images_name_their_owner_and_scripts_quote_their_paths() {
        assert_eq!(owner_of("engine--box:4242--j-1.img"), Some("box:4242"));
        // A local engine's image, and names that are not images of this scheme.
        assert_eq!(owner_of("4242--j-1.img"), None);
        assert_eq!(owner_of("engine--box--j.img"), None);
        assert_eq!(owner_of("engine--box:1--j.txt"), None);
        let s = create_script("engine--b:1--j.img", 1 << 30, 3 << 30, 10001);
        assert!(s.contains("truncate -s 1073741824 '/disks/engine--b:1--j.img'"), "{s}");
        assert!(s.contains("-lt 3221225472"), "{s}");
        assert!(s.contains("root_owner=10001:10001"), "{s}");
        assert!(remove_script(&["it's.img".into()]).contains("'/disks/it'\\''s.img'"));
        assert!(watch_script(99).contains("-le 99"));
    }
}

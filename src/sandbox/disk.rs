//! A job's `/work` with a size that holds: an ext4 filesystem in a sparse image
//! file, attached to a loop device, mounted by Docker's local volume driver.
//!
//! Docker's local volumes have no size limit, so a candidate's install could
//! fill the host's disk. Here `/work` is a filesystem of its own: writes past
//! its size fail with ENOSPC inside the container, and the image file on the
//! host never grows past the size it was created with (it is checked against
//! the host's free space first).
//!
//! Within that size, the phase in progress gets exactly its share: before each
//! phase a root-owned reserve file (`.assay-reserve/fill`, fallocated, so it
//! costs the host nothing) takes everything but the phase's allowance — the
//! install's limit, or the test phase's growth. The candidate's uid cannot
//! remove it: the directory belongs to root.
//!
//! Needs root on the host (loop devices) and `mkfs.ext4`, `debugfs` (e2fsprogs)
//! and `losetup` (util-linux). All blocking; the sandbox calls it from
//! `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::SandboxError;

/// Where job images live unless `ASSAY_DISK_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/assay/disks";

/// The directory for job images.
pub fn dir() -> PathBuf {
    std::env::var_os("ASSAY_DISK_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

/// The reserve's directory inside the volume (root-owned).
pub const RESERVE_DIR: &str = ".assay-reserve";

/// A job's filesystem image on a loop device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDisk {
    /// The sparse image file.
    pub image: PathBuf,
    /// The loop device it is attached to (`/dev/loopN`).
    pub device: String,
    /// When the image is on a remote engine's host, not this one: the image its helper
    /// containers run (see `docker::engine_disk`).
    pub helper: Option<String>,
}

fn io(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Io(format!("job disk: {what}: {e}"))
}

/// Runs a host tool; its stdout, or an error naming it and its stderr.
fn tool(cmd: &mut Command) -> Result<String, SandboxError> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        io(
            &name,
            format!("{e} (job disks need e2fsprogs and util-linux, and root for loop devices; or set limits.install_disk = 0)"),
        )
    })?;
    if !out.status.success() {
        return Err(io(
            &name,
            format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// How large the image must be for `install` bytes of install and `test`
/// bytes of growth: ext4's own metadata (inode tables, bitmaps) takes a few
/// percent, which the phases must not lose.
pub fn image_size(install: u64, test: u64) -> u64 {
    let usable = install.saturating_add(test);
    usable.saturating_add(usable / 16).saturating_add(64 << 20)
}

/// Creates the image for `job` (named after this process, so a later run can
/// reap what a killed one left) and attaches it. Refuses when the host's free
/// space could not hold it whole.
pub fn create(job: &str, install: u64, test: u64, uid: u64) -> Result<JobDisk, SandboxError> {
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
    let size = image_size(install, test);
    let free = free_bytes(&dir)?;
    // The image grows as the candidate writes; it must be able to grow whole,
    // with room left for everything else on the host.
    let margin = 2u64 << 30;
    if free < size.saturating_add(margin) {
        return Err(SandboxError::Io(format!(
            "job disk: {} has {} MiB free, a job needs {} MiB (limits.install_disk + limits.test_disk) plus {} MiB to spare; free space or lower the limits",
            dir.display(),
            free >> 20,
            size >> 20,
            margin >> 20
        )));
    }
    let image = dir.join(format!("{}--{job}.img", std::process::id()));
    let template = tempfile::tempdir().map_err(|e| io("template", e))?;
    std::fs::create_dir(template.path().join(RESERVE_DIR)).map_err(|e| io("template", e))?;
    let f = std::fs::File::create(&image).map_err(|e| io(&format!("cannot create {}", image.display()), e))?;
    f.set_len(size)
        .map_err(|e| io(&format!("cannot size {}", image.display()), e))?;
    drop(f);
    let made = (|| {
        tool(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-m", "0", "-O", "^has_journal", "-E"])
                .arg(format!("root_owner={uid}:{uid},nodiscard"))
                .arg("-d")
                .arg(template.path())
                .arg(&image),
        )?;
        // lost+found would be the one directory of /work the candidate's uid
        // cannot read (test collectors trip over it).
        tool(
            Command::new("debugfs")
                .args(["-w", "-R", "rmdir lost+found"])
                .arg(&image),
        )?;
        tool(Command::new("losetup").args(["--find", "--show"]).arg(&image))
    })();
    match made {
        Ok(device) if device.starts_with("/dev/") => Ok(JobDisk {
            image,
            device,
            helper: None,
        }),
        Ok(other) => {
            let _ = std::fs::remove_file(&image);
            Err(io("losetup", format!("printed {other:?}, not a device")))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&image);
            Err(e)
        }
    }
}

/// Detaches the loop device and deletes the image.
pub fn remove(disk: &JobDisk) -> Result<(), SandboxError> {
    let detached = tool(Command::new("losetup").arg("-d").arg(&disk.device)).map(|_| ());
    let removed =
        std::fs::remove_file(&disk.image).map_err(|e| io(&format!("cannot remove {}", disk.image.display()), e));
    detached.and(removed)
}

/// Images whose owner (the pid their name starts with; images are local to this
/// host) is dead: detaches their loop devices and deletes them. Returns how many.
pub fn reap() -> usize {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_suffix(".img")
            .and_then(|s| s.split_once("--"))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(list) = tool(Command::new("losetup").arg("-j").arg(&path)) {
            for device in list.lines().filter_map(|l| l.split(':').next()) {
                let _ = tool(Command::new("losetup").arg("-d").arg(device));
            }
        }
        if std::fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    n
}

/// The size of a job's image file.
pub fn image_size_of(disk: &JobDisk) -> u64 {
    std::fs::metadata(&disk.image).map_or(0, |m| m.len())
}

/// Watches the free space of the filesystem mounted at `mountpoint` (ours only:
/// one no larger than `image_size`), every 50 ms, until stopped.
pub fn watch(mountpoint: PathBuf, image_size: u64) -> Watch {
    let min = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let seen = std::sync::Arc::clone(&min);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
        loop {
            tick.tick().await;
            // statvfs is one short syscall; not worth a blocking thread.
            if let Ok(st) = nix::sys::statvfs::statvfs(&mountpoint) {
                let frag = st.fragment_size();
                let total = st.blocks() * frag;
                // Before the engine mounts the volume the path shows the host's
                // filesystem, which is larger than the image.
                if total > 0 && total <= image_size {
                    seen.fetch_min(st.blocks_available() * frag, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    Watch { min, task }
}

/// A running [`watch`].
pub struct Watch {
    min: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Stops watching; the least free space seen, if the filesystem was seen.
    pub async fn stop(self) -> Option<u64> {
        self.task.abort();
        let _ = self.task.await;
        let min = self.min.load(std::sync::atomic::Ordering::Relaxed);
        (min != u64::MAX).then_some(min)
    }
}

/// Bytes free for unprivileged writers on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Result<u64, SandboxError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| io(&format!("statvfs {}", dir.display()), e))?;
    Ok(st.blocks_available() as u64 * st.fragment_size())
}

/// Leaves `keep` bytes free on a local job disk: everything else goes to the reserve file
/// (see [`reserve_script`]), written from this host through a mount of its own (a few
/// milliseconds; a helper container costs a container's start). Blocking. The disk's volume
/// is not in use between phases; a second mount of the same device would share its
/// filesystem anyway.
pub fn reserve(disk: &JobDisk, keep: u64) -> Result<(), SandboxError> {
    use nix::mount::{mount, umount, MsFlags};
    let at = tempfile::Builder::new()
        .prefix("assay-reserve-")
        .tempdir()
        .map_err(|e| io("reserve mount point", e))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(disk.device.as_str()), at.path(), Some("ext4"), flags, None::<&str>)
        .map_err(|e| io(&format!("cannot mount {}", disk.device), e))?;
    let set = set_reserve(at.path(), keep);
    let unmounted = umount(at.path()).map_err(|e| io(&format!("cannot unmount {}", at.path().display()), e));
    set.and(unmounted)
}

/// The reserve of the filesystem mounted at `root`, sized to leave `keep` bytes free. The
/// candidate owns the filesystem's root and may have replaced the reserve's directory, with a
/// link to a path of this host among other things: the directory is opened without following
/// links and must be root's own, and the file is reached only through it. Otherwise an error
/// (the caller sets the reserve from inside a container instead).
fn set_reserve(root: &Path, keep: u64) -> Result<(), SandboxError> {
    use nix::fcntl::{open, openat, OFlag};
    use nix::sys::stat::{fstat, Mode, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let dir = open(
        &root.join(RESERVE_DIR),
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("the reserve's directory", e))?;
    let st = fstat(&dir).map_err(|e| io("the reserve's directory", e))?;
    if st.st_uid != 0 || SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Err(io("the reserve's directory", "is not root's own directory"));
    }
    match unlinkat(&dir, "fill", UnlinkatFlags::NoRemoveDir) {
        Err(nix::errno::Errno::ENOENT) | Ok(()) => {}
        Err(e) => return Err(io("reserve", e)),
    }
    // What the last phase wrote is on the disk before its free space is read.
    nix::unistd::syncfs(&dir).map_err(|e| io("syncfs", e))?;
    let want = free_bytes(root)?.saturating_sub(keep);
    if want > 0 {
        let f = openat(
            &dir,
            "fill",
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| io("reserve", e))?;
        let len = i64::try_from(want).map_err(|e| io("reserve", e))?;
        nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, len).map_err(|e| io("fallocate", e))?;
    }
    Ok(())
}

/// The script (run as root, no capabilities, no network) that leaves `keep`
/// bytes free on /work: everything else goes to the reserve file.
pub fn reserve_script(keep: u64) -> String {
    format!(
        "set -e\nr=/work/{RESERVE_DIR}/fill\nrm -f \"$r\"\nsync -f /work\navail=$(df -B1 --output=avail /work | tail -n 1 | tr -d ' ')\nwant=$((avail - {keep}))\nif [ \"$want\" -gt 0 ]; then fallocate -l \"$want\" \"$r\"; fi\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_image_leaves_both_phases_their_whole_allowance() {
        let size = image_size(8 << 30, 2 << 30);
        // ext4 metadata on a 10 GiB filesystem is well under 5 %.
        assert!(size > (10u64 << 30) + (10u64 << 30) / 20, "{size}");
        assert!(size < 12u64 << 30, "{size}");
        assert!(reserve_script(5).contains("want=$((avail - 5))"));
    }

    #[test]
    fn a_reserve_directory_the_candidate_replaced_with_a_link_is_not_followed_on_this_host() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("fill"), b"the host's file").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join(RESERVE_DIR)).unwrap();
        let e = set_reserve(root.path(), u64::MAX).unwrap_err();
        assert!(e.to_string().contains("the reserve's directory"), "{e}");
        // Neither removed nor rewritten through the link.
        assert_eq!(
            std::fs::read(elsewhere.path().join("fill")).unwrap(),
            b"the host's file"
        );

        // A directory of the candidate's own (not root's) is refused as well; root's is used
        // (nothing to reserve when the whole disk is allowed).
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(RESERVE_DIR)).unwrap();
        std::fs::write(root.path().join(RESERVE_DIR).join("fill"), b"old").unwrap();
        let as_root = std::fs::metadata(root.path().join(RESERVE_DIR)).unwrap().uid() == 0;
        assert_eq!(set_reserve(root.path(), u64::MAX).is_ok(), as_root);
        assert_eq!(root.path().join(RESERVE_DIR).join("fill").exists(), !as_root);
    }
}

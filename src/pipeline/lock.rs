//! One grading process per database at a time.
//!
//! Stage runs left `running` can only be reaped as abandoned when no other
//! process is working the same database. For SQLite that is guaranteed with an
//! OS file lock held for the whole run (released by the kernel if the process
//! is killed, so a SIGKILL never leaves a stale lock).

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct WorkLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another assay process is grading with this database ({db}); wait for it to finish or use another --db")]
    Busy {
        /// The database (credential-free).
        db: String,
    },
    /// The lock file could not be created.
    #[error("cannot create lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl WorkLock {
    /// Takes the lock for `db_url`, with its lock file under `data_dir/locks`.
    pub fn acquire(data_dir: &Path, db_url: &str) -> Result<WorkLock, LockError> {
        let dir = data_dir.join("locks");
        let digest = hex::encode(Sha256::digest(db_url.as_bytes()));
        let path = dir.join(format!("{}.lock", &digest[..24]));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(WorkLock { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy {
                db: crate::git::redact(db_url),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkLock::acquire(dir.path(), "sqlite://x.db").unwrap();
        assert!(matches!(
            WorkLock::acquire(dir.path(), "sqlite://x.db"),
            Err(LockError::Busy { .. })
        ));
        assert!(WorkLock::acquire(dir.path(), "sqlite://y.db").is_ok());
        drop(first);
        assert!(WorkLock::acquire(dir.path(), "sqlite://x.db").is_ok());
    }
}

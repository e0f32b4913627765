//! Which certificate authorities https fetches trust: the system's store, plus
//! the one `ca_file` names (a hiring team's self-hosted GitLab behind a private
//! CA, or a test server).
//!
//! libgit2 verifies servers with OpenSSL, whose store is set up once per process
//! from `SSL_CERT_FILE` / `SSL_CERT_DIR` (git2 fills them from the system's
//! locations when unset). The only safe way to add a CA without `unsafe` calls
//! into libgit2 is to point those variables at a bundle that holds both, before
//! libgit2 is first used, which is why [`trust`] must run while the process has
//! one thread: `main` calls it right after loading the settings, before the
//! async runtime starts.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What [`trust`] set up, for `assay` to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The bundle `SSL_CERT_FILE` now names (system CAs and `ca_file`).
    pub bundle: PathBuf,
    /// Certificates read from `ca_file`.
    pub added: usize,
}

/// Makes https fetches trust the system's CAs and those in `ca_file`. Writes
/// the combined bundle under `data_dir/tls/`.
///
/// Call it before libgit2 is first used and before any other thread exists
/// (it sets environment variables).
pub fn trust(ca_file: &Path, data_dir: &Path) -> Result<Trust, String> {
    let extra =
        std::fs::read_to_string(ca_file).map_err(|e| format!("cannot read ca_file {}: {e}", ca_file.display()))?;
    let added = extra.matches("-----BEGIN CERTIFICATE-----").count();
    if added == 0 {
        return Err(format!(
            "ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ca_file.display()
        ));
    }
    // The system's store as OpenSSL would find it (or as the user set it).
    let probe = openssl_probe::probe();
    let mut bundle = match &probe.cert_file {
        Some(system) => std::fs::read_to_string(system).unwrap_or_default(),
        None => String::new(),
    };
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(&extra);
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Named by content, so concurrent processes write the same file and never
    // read a half-written one (written aside, then renamed into place).
    let name = format!(
        "ca-bundle-{}.pem",
        &hex::encode(Sha256::digest(bundle.as_bytes()))[..16]
    );
    let path = dir.join(name);
    if !path.is_file() {
        let tmp =
            tempfile::NamedTempFile::new_in(&dir).map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
        std::fs::write(tmp.path(), &bundle).map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
    }
    std::env::set_var("SSL_CERT_FILE", &path);
    if let Some(dir) = probe.cert_dir.filter(|_| std::env::var_os("SSL_CERT_DIR").is_none()) {
        std::env::set_var("SSL_CERT_DIR", dir);
    }
    Ok(Trust { bundle: path, added })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = trust(&f, dir.path()).unwrap_err();
        assert!(e.contains("ca.pem") && e.contains("no PEM certificate"), "{e}");
        let e = trust(&dir.path().join("missing.pem"), dir.path()).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }
}

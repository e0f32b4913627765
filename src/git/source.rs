//! Where a repository comes from: a local path or a remote URL, checked against
//! the fetch policy (schemes, hosts, credentials) before anything is contacted.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use url::Url;

use crate::outcome::{Failure, OutcomeKind};
use crate::redact::redact;

/// A password or token taken out of a URL. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for handing to libgit2's credential callback only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A remote repository URL with its credentials held apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// The URL without password (and, for https, without user name): safe to
    /// store, log and show; also what is handed to libgit2.
    pub url: String,
    /// Host name or address.
    pub host: String,
    /// Port, when the URL names one.
    pub port: Option<u16>,
    /// `https` or `ssh`.
    pub scheme: String,
    /// User name for ssh, or for https when the URL carried one.
    pub username: Option<String>,
    /// Password or token the URL carried (https).
    pub password: Option<Secret>,
}

/// A repository to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A repository on this machine (a work tree or a bare repository).
    Local(PathBuf),
    /// A remote repository.
    Remote(RemoteUrl),
}

/// What the fetch policy allows.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct SourcePolicy {
    /// Refuse local paths.
    pub remote_only: bool,
    /// Allow hosts resolving to loopback, private or link-local addresses.
    pub allow_private_hosts: bool,
}

impl RepoSource {
    /// Parses `spec` (a URL, an scp-like `user@host:path`, or a path resolved
    /// against `base_dir`) and applies the scheme part of `policy`. Host
    /// addresses are checked separately by [`RepoSource::check_host`], which
    /// resolves DNS and so must run off the async runtime.
    pub fn parse(spec: &str, base_dir: &Path, policy: SourcePolicy) -> Result<RepoSource, Failure> {
        let spec = spec.trim();
        let blocked = |why: &str| Failure::new(OutcomeKind::BlockedUrl, format!("{}: {why}", redact(spec)));
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("file:") {
            return Err(blocked(
                "file:// URLs are refused; give a plain path for a local repository",
            ));
        }
        if let Some(i) = spec.find("::") {
            if !spec[..i].contains('/') {
                return Err(blocked("transport helpers (ext::, fd::, ...) are refused"));
            }
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "https" && scheme != "ssh" {
                return Err(blocked(
                    "only https:// and ssh:// URLs (or user@host:path) are accepted",
                ));
            }
            let mut url = Url::parse(spec).map_err(|e| blocked(&format!("not a valid URL: {e}")))?;
            return RepoSource::from_url(&mut url, &scheme).map_err(|why| blocked(&why));
        }
        if let Some((userhost, path)) = scp_like(spec) {
            let mut url = Url::parse(&format!("ssh://{userhost}/{}", path.trim_start_matches('/')))
                .map_err(|e| blocked(&format!("not a valid ssh address: {e}")))?;
            return RepoSource::from_url(&mut url, "ssh").map_err(|why| blocked(&why));
        }
        if policy.remote_only {
            return Err(blocked("local paths are refused (settings: remote_only = true)"));
        }
        Ok(RepoSource::Local(base_dir.join(spec)))
    }

    fn from_url(url: &mut Url, scheme: &str) -> Result<RepoSource, String> {
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?
            .to_string();
        if host.starts_with('-') {
            return Err("a host may not start with '-'".into());
        }
        let password = url.password().map(|p| Secret(percent_decode(p)));
        let user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        // For https a user name is often a token itself, so it is held apart
        // like a password; for ssh it is only the login name.
        let _ = url.set_password(None);
        let username = if scheme == "https" {
            let _ = url.set_username("");
            user
        } else {
            user.or(Some("git".to_string()))
        };
        Ok(RepoSource::Remote(RemoteUrl {
            url: url.to_string(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: url.port(),
            scheme: scheme.to_string(),
            username,
            password,
        }))
    }

    /// What to show and store for this source: never holds credentials.
    pub fn display(&self) -> String {
        match self {
            RepoSource::Local(p) => p.display().to_string(),
            RepoSource::Remote(r) => r.url.clone(),
        }
    }

    /// Resolves the host of a remote and refuses loopback, private, link-local
    /// and other non-public addresses unless the policy allows them. Blocking
    /// (DNS); call it from a blocking context.
    pub fn check_host(&self, policy: SourcePolicy) -> Result<(), Failure> {
        let RepoSource::Remote(r) = self else {
            return Ok(());
        };
        if policy.allow_private_hosts {
            return Ok(());
        }
        let port = r.port.unwrap_or(if r.scheme == "https" { 443 } else { 22 });
        let addrs: Vec<SocketAddr> = (r.host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| {
                Failure::new(
                    OutcomeKind::Unreachable,
                    format!("{}: cannot resolve host {}: {e}", r.url, r.host),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Failure::new(
                OutcomeKind::Unreachable,
                format!("{}: host {} has no address", r.url, r.host),
            ));
        }
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(Failure::new(
                OutcomeKind::BlockedUrl,
                format!(
                    "{}: host {} resolves to {}, a loopback, private or link-local address (set allow_private_hosts = true to allow)",
                    r.url,
                    r.host,
                    bad.ip()
                ),
            ));
        }
        Ok(())
    }
}

/// `user@host:path` (scp-like ssh syntax), split into `user@host` and `path`.
fn scp_like(spec: &str) -> Option<(&str, &str)> {
    let colon = spec.find(':')?;
    let (userhost, path) = (&spec[..colon], &spec[colon + 1..]);
    // A '/' before the colon means a path such as ./a:b, not a host.
    if userhost.is_empty() || userhost.contains('/') || !userhost.contains('@') || path.is_empty() {
        return None;
    }
    Some((userhost, path))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80) // link-local
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<RepoSource, Failure> {
        RepoSource::parse(spec, Path::new("/base"), SourcePolicy::default())
    }

    #[test]
    fn credentials_are_held_apart_from_the_url() {
        let RepoSource::Remote(r) = parse("https://bob:s3cr%40t@git.example.org/x.git").unwrap() else {
            panic!("not remote")
        };
        assert_eq!(r.url, "https://git.example.org/x.git");
        assert_eq!(r.username.as_deref(), Some("bob"));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("s3cr@t"));
        assert!(!format!("{r:?}").contains("s3cr"));
    }

    #[test]
    fn scp_like_addresses_become_ssh_urls() {
        let RepoSource::Remote(r) = parse("git@github.com:org/repo.git").unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.url.as_str(), r.username.as_deref()),
            ("ssh://git@github.com/org/repo.git", Some("git"))
        );
    }

    #[test]
    fn refused_schemes_are_blocked() {
        for spec in [
            "file:///etc",
            "ext::sh -c id",
            "git://example.org/x",
            "http://example.org/x",
            "fd::3",
        ] {
            let e = parse(spec).unwrap_err();
            assert_eq!(e.kind, OutcomeKind::BlockedUrl, "{spec}");
        }
    }

    #[test]
    fn local_paths_resolve_against_the_cohort_and_obey_remote_only() {
        assert_eq!(
            parse("repos/a").unwrap(),
            RepoSource::Local(PathBuf::from("/base/repos/a"))
        );
        let policy = SourcePolicy {
            remote_only: true,
            ..SourcePolicy::default()
        };
        assert!(RepoSource::parse("repos/a", Path::new("/"), policy).is_err());
    }

    #[test]
    fn private_hosts_are_blocked_unless_allowed() {
        for spec in [
            "https://127.0.0.1/x.git",
            "https://localhost/x.git",
            "https://[::1]/x",
            "https://169.254.169.254/x",
            "https://10.1.2.3/x",
        ] {
            let src = parse(spec).unwrap();
            let e = src.check_host(SourcePolicy::default()).unwrap_err();
            assert_eq!(e.kind, OutcomeKind::BlockedUrl, "{spec}: {e}");
            let allow = SourcePolicy {
                allow_private_hosts: true,
                ..SourcePolicy::default()
            };
            assert!(src.check_host(allow).is_ok());
        }
    }
}

//! SSH host keys: which keys a host may present, read from OpenSSH `known_hosts`
//! files, and the check of the key a server presented.
//!
//! libgit2 would otherwise trust whatever `~/.ssh/known_hosts` it finds and say
//! only "invalid or unknown remote ssh hostkey"; here the files are the ones the
//! settings name (or the user's and the system's), a few well-known public hosts
//! are built in, and a failure says which host, which key and what to do.
//!
//! Pure apart from [`KnownHosts::load`], which reads the files it is given.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Digest;

/// Host keys published by the large public forges, so `ssh://git@github.com/…`
/// works on a machine whose `known_hosts` is empty. A `known_hosts` entry for the
/// same host replaces them (for example after a forge rotates its keys).
/// GitHub's from <https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints>.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "github.com",
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ),
    (
        "github.com",
        "ecdsa-sha2-nistp256",
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
    ),
    (
        "github.com",
        "ssh-rsa",
        "AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
    ),
];

/// Where a known key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` of a known_hosts file.
    File { path: PathBuf, line: usize },
    /// Built into assay.
    BuiltIn,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::BuiltIn => f.write_str("assay's built-in keys"),
        }
    }
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated patterns, each possibly negated (`!`) with `*`/`?` wildcards.
    Patterns(Vec<(bool, String)>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    hosts: Hosts,
    revoked: bool,
    key_type: String,
    key: Vec<u8>,
    origin: Origin,
}

/// The host keys assay trusts.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    /// The files that were read, for the "add it to …" advice.
    files: Vec<PathBuf>,
}

/// How a presented host key compares with the known ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// A known key of this host.
    Match,
    /// The key is marked `@revoked`.
    Revoked(Origin),
    /// The host is known with another key of the same type: the key changed, or
    /// someone is in between.
    Changed(Origin),
    /// No key of this type is known for the host.
    Unknown,
}

impl KnownHosts {
    /// The files read when the settings name none: the user's and the system's.
    pub fn default_files() -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            files.push(PathBuf::from(home).join(".ssh/known_hosts"));
        }
        files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
        files
    }

    /// Reads `files` (missing ones are skipped; unreadable ones are errors), then
    /// adds the built-in keys of hosts the files do not mention.
    pub fn load(files: &[PathBuf]) -> Result<KnownHosts, String> {
        let mut known = KnownHosts::default();
        for path in files {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read known_hosts file {}: {e}", path.display())),
            };
            known.add_text(&text, path);
            known.files.push(path.clone());
        }
        known.add_built_in();
        Ok(known)
    }

    /// Parses OpenSSH known_hosts text; lines it cannot read are skipped, as
    /// OpenSSH does.
    pub fn add_text(&mut self, text: &str, path: &Path) {
        for (i, line) in text.lines().enumerate() {
            if let Some(e) = parse_line(
                line,
                Origin::File {
                    path: path.to_path_buf(),
                    line: i + 1,
                },
            ) {
                self.entries.push(e);
            }
        }
    }

    fn add_built_in(&mut self) {
        // A host the files mention is theirs to describe.
        let mentioned: Vec<bool> = BUILT_IN
            .iter()
            .map(|(host, _, _)| self.entries.iter().any(|e| e.matches_host(host)))
            .collect();
        for ((host, key_type, key), _) in BUILT_IN.iter().zip(mentioned).filter(|(_, m)| !m) {
            let key = base64::engine::general_purpose::STANDARD
                .decode(key)
                .expect("built-in host keys are valid base64");
            self.entries.push(Entry {
                hosts: Hosts::Patterns(vec![(false, host.to_string())]),
                revoked: false,
                key_type: key_type.to_string(),
                key,
                origin: Origin::BuiltIn,
            });
        }
    }

    /// Compares the key `host:port` presented (the SSH wire-format blob) with
    /// the known keys.
    pub fn check(&self, host: &str, port: Option<u16>, key: &[u8]) -> HostKeyCheck {
        let name = host_name(host, port);
        let key_type = key_type_of(key).unwrap_or_default();
        let mut changed = None;
        for e in self.entries.iter().filter(|e| e.matches_host(&name)) {
            if e.key == key {
                if e.revoked {
                    return HostKeyCheck::Revoked(e.origin.clone());
                }
                return HostKeyCheck::Match;
            }
            if !e.revoked && e.key_type == key_type && changed.is_none() {
                changed = Some(e.origin.clone());
            }
        }
        match changed {
            Some(origin) => HostKeyCheck::Changed(origin),
            None => HostKeyCheck::Unknown,
        }
    }

    /// A sentence saying why `check`'s answer refuses the host, and how to fix
    /// it; `None` for a match.
    pub fn refusal(&self, host: &str, port: Option<u16>, key: &[u8]) -> Option<String> {
        let name = host_name(host, port);
        let key_type = key_type_of(key).unwrap_or_else(|| "unknown-type".into());
        let line = format!(
            "{name} {key_type} {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let fingerprint = fingerprint(key);
        let file = self.files.first().map_or(
            "the known_hosts file the settings name (known_hosts = ...)".to_string(),
            |f| f.display().to_string(),
        );
        match self.check(host, port, key) {
            HostKeyCheck::Match => None,
            HostKeyCheck::Revoked(origin) => Some(format!(
                "ssh host key of {name} ({key_type} {fingerprint}) is revoked ({origin})"
            )),
            HostKeyCheck::Changed(origin) => Some(format!(
                "ssh host key of {name} has changed: it presented {key_type} {fingerprint}, which does not match the key in {origin} (the server changed its key, or someone is in between); verify the new key with the server's administrator before replacing that line"
            )),
            HostKeyCheck::Unknown => Some(format!(
                "ssh host key of {name} is not known ({key_type} {fingerprint}); after verifying it with the server's administrator, add this line to {file}: {line}"
            )),
        }
    }
}

impl Entry {
    fn matches_host(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut hit = false;
                for (negated, p) in patterns {
                    if wildcard(p, &name) {
                        if *negated {
                            return false;
                        }
                        hit = true;
                    }
                }
                hit
            }
        }
    }
}

/// The name known_hosts files use: `host` on port 22, `[host]:port` otherwise.
fn host_name(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
}

fn parse_line(line: &str, origin: Origin) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // Certificate authorities sign host certificates, which libgit2 does
            // not pass on; such lines cannot vouch for a plain key.
            _ => return None,
        }
        first = fields.next()?;
    }
    let key_type = fields.next()?.to_string();
    let key = base64::engine::general_purpose::STANDARD.decode(fields.next()?).ok()?;
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Hosts::Hashed {
            salt: b64.decode(salt).ok()?,
            hash: b64.decode(hash).ok()?,
        }
    } else {
        Hosts::Patterns(
            first
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| match p.strip_prefix('!') {
                    Some(n) => (true, n.to_ascii_lowercase()),
                    None => (false, p.to_ascii_lowercase()),
                })
                .collect(),
        )
    };
    Some(Entry {
        hosts,
        revoked,
        key_type,
        key,
        origin,
    })
}

/// OpenSSH's pattern matching: `*` any run, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The key type named at the start of an SSH public-key blob.
fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `SHA256:…`, as `ssh-keygen -lf` prints it.
fn fingerprint(blob: &[u8]) -> String {
    let digest = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(key_type: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (key_type.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(key_type.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn known(text: &str) -> KnownHosts {
        let mut k = KnownHosts::default();
        k.add_text(text, Path::new("/k"));
        k.files.push(PathBuf::from("/k"));
        k.add_built_in();
        k
    }

    #[test]
    fn a_listed_key_matches_and_ports_other_than_22_are_bracketed() {
        let key = blob("ssh-ed25519", b"one");
        let k = known(&format!(
            "# comment\n\nexample.org,10.0.0.1 ssh-ed25519 {}\n[127.0.0.1]:2222 ssh-ed25519 {}\n",
            b64(&key),
            b64(&key)
        ));
        assert_eq!(k.check("example.org", None, &key), HostKeyCheck::Match);
        assert_eq!(k.check("EXAMPLE.org", Some(22), &key), HostKeyCheck::Match);
        assert_eq!(k.check("10.0.0.1", None, &key), HostKeyCheck::Match);
        assert_eq!(k.check("127.0.0.1", Some(2222), &key), HostKeyCheck::Match);
        // The bracketed entry names one port only.
        assert_eq!(k.check("127.0.0.1", Some(22), &key), HostKeyCheck::Unknown);
        assert_eq!(k.check("example.org", Some(2222), &key), HostKeyCheck::Unknown);
    }

    #[test]
    fn another_key_of_the_same_type_is_a_change_and_names_the_line() {
        let (old, new) = (blob("ssh-ed25519", b"old"), blob("ssh-ed25519", b"new"));
        let k = known(&format!("example.org ssh-ed25519 {}\n", b64(&old)));
        assert_eq!(
            k.check("example.org", None, &new),
            HostKeyCheck::Changed(Origin::File {
                path: PathBuf::from("/k"),
                line: 1
            })
        );
        let why = k.refusal("example.org", None, &new).unwrap();
        assert!(why.contains("has changed") && why.contains("/k:1"), "{why}");
        // A key of another type is not a change: the host is not known with it.
        let rsa = blob("ssh-rsa", b"x");
        assert_eq!(k.check("example.org", None, &rsa), HostKeyCheck::Unknown);
        let why = k.refusal("example.org", None, &rsa).unwrap();
        assert!(why.contains(&format!("example.org ssh-rsa {}", b64(&rsa))), "{why}");
        assert!(why.contains("SHA256:"), "{why}");
    }

    #[test]
    fn hashed_names_wildcards_negation_and_revocation() {
        let key = blob("ssh-ed25519", b"k");
        // `ssh-keygen -H` form: |1|base64(salt)|base64(hmac_sha1(salt, name)).
        let salt = b"0123456789abcdefghij";
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"hashed.example.org");
        let hash = mac.finalize().into_bytes();
        let k = known(&format!(
            "|1|{}|{} ssh-ed25519 {}\n*.corp.example,!evil.corp.example ssh-ed25519 {}\n@revoked revoked.example ssh-ed25519 {}\n@cert-authority *.example ssh-ed25519 {}\n",
            b64(salt),
            b64(&hash),
            b64(&key),
            b64(&key),
            b64(&key),
            b64(&key),
        ));
        assert_eq!(k.check("hashed.example.org", None, &key), HostKeyCheck::Match);
        assert_eq!(k.check("other.example.org", None, &key), HostKeyCheck::Unknown);
        assert_eq!(k.check("git.corp.example", None, &key), HostKeyCheck::Match);
        assert_eq!(k.check("evil.corp.example", None, &key), HostKeyCheck::Unknown);
        assert!(matches!(
            k.check("revoked.example", None, &key),
            HostKeyCheck::Revoked(_)
        ));
        // A CA line vouches for certificates only.
        assert_eq!(k.check("any.example", None, &key), HostKeyCheck::Unknown);
    }

    #[test]
    fn built_in_keys_have_the_fingerprints_github_publishes() {
        let published = [
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
            "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
            "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        ];
        for ((_, key_type, key), want) in BUILT_IN.iter().zip(published) {
            let blob = base64::engine::general_purpose::STANDARD.decode(key).unwrap();
            assert_eq!(fingerprint(&blob), want, "{key_type}");
            assert_eq!(key_type_of(&blob).as_deref(), Some(*key_type));
        }
    }

    #[test]
    fn built_in_keys_cover_github_until_a_file_names_it() {
        let ed25519 = base64::engine::general_purpose::STANDARD.decode(BUILT_IN[0].2).unwrap();
        assert_eq!(key_type_of(&ed25519).as_deref(), Some("ssh-ed25519"));
        assert_eq!(known("").check("github.com", None, &ed25519), HostKeyCheck::Match);
        let mine = blob("ssh-ed25519", b"mine");
        let k = known(&format!("github.com ssh-ed25519 {}\n", b64(&mine)));
        assert!(matches!(
            k.check("github.com", None, &ed25519),
            HostKeyCheck::Changed(_)
        ));
    }

    #[test]
    fn wildcards_match_like_openssh() {
        for (p, n, want) in [
            ("*", "a", true),
            ("a*c", "abbbc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.x", "y.x", true),
            ("*.x", "x", false),
            ("[h]:22*", "[h]:2222", true),
        ] {
            assert_eq!(wildcard(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let k = known("not-a-line\nhost ssh-ed25519\nhost ssh-ed25519 !!!notbase64\n");
        assert_eq!(k.entries.len(), BUILT_IN.len());
    }
}

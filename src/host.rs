//! This machine as the processes sharing a store or a Docker engine see one another: its host
//! name, a process's `host:pid` owner id, and whether the process an owner id names is known to
//! be gone.

use std::path::Path;

/// This machine's host name (its UTS namespace's), trimmed; empty when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// This process's owner id: `host:pid`.
pub fn owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// The host and pid an owner id starts with (`host:pid`, perhaps followed by `:more`).
pub fn parse(owner: &str) -> Option<(&str, u32)> {
    let mut parts = owner.split(':');
    let host = parts.next().filter(|h| !h.is_empty())?;
    let pid = parts.next()?.parse().ok()?;
    Some((host, pid))
}

/// Whether the process `owner` names is known to be gone: it ran on this host and no process
/// has its pid now. A process on another host, or an id of another shape, is not known to be
/// gone (its own host's processes tell).
pub fn gone(owner: &str) -> bool {
    match parse(owner) {
        Some((host, pid)) => host == hostname() && !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_say_which_process_on_which_host() {
        assert_eq!(parse("box:42"), Some(("box", 42)));
        assert_eq!(parse("box:42:ab12"), Some(("box", 42)));
        assert_eq!(parse("w1"), None);
        assert_eq!(parse(":42"), None);
        assert_eq!(parse("box:x"), None);
        // This process is alive; a pid no process has (above the kernel's maximum) is gone here,
        // and nothing on another host or of another shape is known to be gone.
        assert!(!gone(&owner()));
        assert!(gone(&format!("{}:4294967295:ab12", hostname())));
        assert!(!gone("another-host-entirely:4294967295"));
        assert!(!gone("w1"));
    }
}

//! The install phase's only way out: an internal network of its own whose one other member is a
//! forward proxy (Debian's tinyproxy, in the `assay-proxy` image) that lets through the package
//! registries' host names and refuses everything else.
//!
//! The network is created `internal` (no route out) with the bridge's host address withheld
//! (`inhibit_ipv4`): on a plain internal network a container still reaches every port the host
//! listens on through the bridge's address, and Docker's own bridge's address too. Names outside
//! the network do not resolve in it, so a package's install script can reach the registries, by
//! name and through the proxy, and nothing else: not the host, not the other containers, not the
//! networks the host reaches. What the proxy refused is read from its log and kept with the
//! install as evidence (`egress_refused`).
//!
//! Pure parts here (the proxy's configuration, the allow-list's filter, reading the log); the
//! containers and the network are [`super::docker`]'s.

/// The proxy's image, built from `docker/proxy.Dockerfile` by `assay images build`.
pub const PROXY_IMAGE: &str = "assay-proxy";
/// The proxy's name on an install's network.
pub const PROXY_HOST: &str = "assay-proxy";
/// The port it listens on.
pub const PROXY_PORT: u16 = 3128;
/// Refused hosts kept per install, at most (a hostile install may ask for thousands).
pub const MAX_REFUSED: usize = 20;

pub use crate::config::{valid_host, DEFAULT_INSTALL_HOSTS as DEFAULT_HOSTS};

/// The proxy's filter file: one anchored extended regular expression per allowed host (case is
/// ignored by the proxy; a dot matches only a dot).
pub fn filter(hosts: &[String]) -> String {
    let mut out = String::new();
    for h in hosts {
        let (sub, name) = match h.strip_prefix("*.") {
            Some(name) => ("([a-z0-9-]+\\.)+", name),
            None => ("", h.as_str()),
        };
        out.push_str(&format!("^{sub}{}$\n", name.to_ascii_lowercase().replace('.', "\\.")));
    }
    out
}

/// tinyproxy's configuration: the filter at `filter_path`, everything not on it refused, tunnels
/// (CONNECT) only to port 443, every request and refusal logged to stdout (`Info`: the level that
/// names a refused port), where assay reads it.
pub fn proxy_config(filter_path: &str, timeout_seconds: u64) -> String {
    format!(
        "Port {PROXY_PORT}\n\
         Timeout {timeout_seconds}\n\
         MaxClients 64\n\
         LogLevel Info\n\
         DisableViaHeader Yes\n\
         Filter \"{filter_path}\"\n\
         FilterType ere\n\
         FilterDefaultDeny Yes\n\
         FilterURLs Off\n\
         ConnectPort 443\n"
    )
}

/// The environment that sends an install's tools through the proxy: the variables pip, npm,
/// yarn, cargo (libcurl), Go and git read.
pub fn proxy_env() -> Vec<String> {
    let url = format!("http://{PROXY_HOST}:{PROXY_PORT}");
    [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "YARN_HTTP_PROXY",
        "YARN_HTTPS_PROXY",
        "CARGO_HTTP_PROXY",
    ]
    .iter()
    .map(|k| format!("{k}={url}"))
    // What the install reaches inside its own container (a server its script starts) is not
    // sent to the proxy.
    .chain(
        ["NO_PROXY", "no_proxy"]
            .iter()
            .map(|k| format!("{k}=localhost,127.0.0.1,::1")),
    )
    .collect()
}

/// A shell prelude for the install script: waits (up to about ten seconds) until the proxy
/// accepts connections, so the first download does not race its start.
pub fn wait_for_proxy() -> String {
    format!(
        "for _ in $(seq 100); do (exec 3<>/dev/tcp/{PROXY_HOST}/{PROXY_PORT}) 2>/dev/null && break; sleep 0.1; done\n"
    )
}

/// What the proxy refused, from its log: each host (and `host:port` for a tunnel to a port other
/// than 443) once, in the order first refused, at most [`MAX_REFUSED`].
pub fn refused(log: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |what: String| {
        if out.len() < MAX_REFUSED && !out.contains(&what) {
            out.push(what);
        }
    };
    // Tunnels asked for and not yet answered, the latest last (connections interleave).
    let mut tunnels: Vec<String> = Vec::new();
    for line in log.lines() {
        // tinyproxy: `CONNECT   Dec 07 06:00:00.000 [1]: Request (file descriptor 5): CONNECT
        // evil.example:22 HTTP/1.1`, later `INFO … Refused CONNECT method on port 22`; and
        // `NOTICE … Proxying refused on filtered domain "evil.example"`.
        if let Some(rest) = line.split("Proxying refused on filtered domain \"").nth(1) {
            if let Some(host) = rest.split('"').next() {
                push(clean(host));
            }
        } else if let Some(rest) = line.split("): CONNECT ").nth(1) {
            if let Some(target) = rest.split_whitespace().next() {
                if tunnels.len() == 64 {
                    tunnels.remove(0);
                }
                tunnels.push(clean(target));
            }
        } else if let Some(port) = line.split("Refused CONNECT method on port ").nth(1) {
            let suffix = format!(":{}", port.trim());
            if let Some(k) = tunnels.iter().rposition(|t| t.ends_with(&suffix)) {
                push(tunnels.remove(k));
            }
        }
    }
    out
}

/// A name from the proxy's log as the candidate sent it, kept printable and short.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_takes_names_and_wildcards_never_addresses() {
        for ok in ["pypi.org", "files.pythonhosted.org", "*.example.com", "a-b.c0.io"] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "127.0.0.1",
            "10.0.0.1",
            "pypi.org:443",
            "http://pypi.org",
            "-a.org",
            "a..org",
            "*",
            "*.org.",
            "ex ample.com",
            "[::1]",
            "pypi.org/simple",
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        for h in DEFAULT_HOSTS {
            assert!(valid_host(h), "{h}");
        }
    }

    #[test]
    fn the_filter_anchors_every_name_and_escapes_its_dots() {
        let f = filter(&["pypi.org".into(), "*.Example.com".into()]);
        assert_eq!(f, "^pypi\\.org$\n^([a-z0-9-]+\\.)+example\\.com$\n");
        let c = proxy_config("/tmp/filter", 600);
        for line in [
            "Filter \"/tmp/filter\"",
            "FilterDefaultDeny Yes",
            "ConnectPort 443",
            "FilterType ere",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} in\n{c}");
        }
    }

    #[test]
    fn refusals_are_read_from_the_log_once_each_and_bounded() {
        let log = "\
CONNECT   Dec 07 06:00:00.100 [7]: Connect (file descriptor 5): 172.30.0.3
CONNECT   Dec 07 06:00:00.101 [7]: Request (file descriptor 5): CONNECT pypi.org:443 HTTP/1.1
NOTICE    Dec 07 06:00:00.200 [7]: Proxying refused on filtered domain \"Evil.example.INVALID\"
CONNECT   Dec 07 06:00:00.300 [1]: Request (file descriptor 6): CONNECT pypi.org:22 HTTP/1.1
CONNECT   Dec 07 06:00:00.300 [1]: Request (file descriptor 7): CONNECT pypi.org:443 HTTP/1.1
INFO      Dec 07 06:00:00.301 [1]: Refused CONNECT method on port 22
NOTICE    Dec 07 06:00:00.400 [9]: Proxying refused on filtered domain \"evil.example.invalid\"
NOTICE    Dec 07 06:00:00.500 [9]: Proxying refused on filtered domain \"bad\u{1b}[2J.invalid\"
";
        assert_eq!(refused(log), ["evil.example.invalid", "pypi.org:22", "bad[2j.invalid"]);
        let flood: String = (0..1000)
            .map(|i| format!("NOTICE x: Proxying refused on filtered domain \"h{i}.invalid\"\n"))
            .collect();
        assert_eq!(refused(&flood).len(), MAX_REFUSED);
        assert!(refused("").is_empty());
    }

    #[test]
    fn every_tool_is_pointed_at_the_proxy() {
        let env = proxy_env();
        for k in [
            "HTTPS_PROXY",
            "https_proxy",
            "npm_config_https_proxy",
            "CARGO_HTTP_PROXY",
        ] {
            assert!(
                env.contains(&format!("{k}=http://{PROXY_HOST}:{PROXY_PORT}")),
                "{k}: {env:?}"
            );
        }
        assert!(env.contains(&"no_proxy=localhost,127.0.0.1,::1".to_string()), "{env:?}");
        assert!(wait_for_proxy().contains(&format!("/dev/tcp/{PROXY_HOST}/{PROXY_PORT}")));
    }
}

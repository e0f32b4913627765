//! A Docker engine on another machine, reached as `DOCKER_HOST=ssh://[user@]host[:port]`: the
//! way the Docker CLI does it, each API connection is `docker system dial-stdio` run on that
//! machine over ssh, with the engine's API spoken through its stdin and stdout.
//!
//! One ssh master connection (OpenSSH's own `ssh`, through the `openssh` crate) is opened per
//! engine and every API connection is a session multiplexed on it, so a burst of container
//! calls costs one handshake, not one each (bollard's own ssh transport launches a master per
//! connection and cannot carry a port). The master is opened again when it died (the engine
//! host rebooted, the network dropped). Host keys are checked strictly: against the
//! `known_hosts` setting (`ASSAY_KNOWN_HOSTS`) when given, else ssh's own files; the key is
//! the `ssh_key` setting (`ASSAY_SSH_KEY`) when given, else ssh's own configuration and agent.
//! The remote user needs the `docker` client and access to the engine's socket.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::Docker;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;

use super::SandboxError;

/// How long opening the ssh connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often ssh checks that the engine host still answers.
const ALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Seconds an API request may take (bollard's default for its own transports).
const REQUEST_TIMEOUT: u64 = 120;

/// What the engine's URL and the settings say about the ssh connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// `ssh://[user@]host[:port]`, as `DOCKER_HOST` gave it (no path).
    pub url: String,
    pub key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
}

impl SshTarget {
    /// The target `docker_host` names, or why it cannot be one: only `ssh://[user@]host[:port]`,
    /// no password and no path (the engine is the remote user's default socket).
    pub fn parse(docker_host: &str, key: Option<&Path>, known_hosts: Option<&Path>) -> Result<SshTarget, SandboxError> {
        let bad = |why: &str| SandboxError::Io(format!("DOCKER_HOST={}: {why}", crate::redact::redact(docker_host)));
        let url = url::Url::parse(docker_host).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if url.scheme() != "ssh" {
            return Err(bad("not an ssh:// URL"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("names no host"))?;
        if url.password().is_some() {
            return Err(bad(
                "passwords are not accepted: use a key (ASSAY_SSH_KEY) or the ssh agent",
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(bad(
                "a path or query is not supported: the remote user's default engine is used",
            ));
        }
        let user = match url.username() {
            "" => String::new(),
            u => format!("{u}@"),
        };
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(SshTarget {
            url: format!("ssh://{user}{host}{port}"),
            key: key.map(Path::to_path_buf),
            known_hosts: known_hosts.map(Path::to_path_buf),
        })
    }

    fn builder(&self) -> openssh::SessionBuilder {
        let mut b = openssh::SessionBuilder::default();
        b.known_hosts_check(openssh::KnownHosts::Strict)
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(ALIVE_INTERVAL)
            // The control socket in the temporary directory, not ~/.local/state.
            .control_directory(std::env::temp_dir());
        if let Some(k) = &self.key {
            b.keyfile(k);
        }
        if let Some(k) = &self.known_hosts {
            b.user_known_hosts_file(k);
        }
        b
    }
}

/// Opens API connections over one shared ssh master.
#[derive(Clone)]
struct Connector {
    target: Arc<SshTarget>,
    master: Arc<Mutex<Option<Arc<openssh::Session>>>>,
}

impl Connector {
    /// The live master, opened (again) when there is none or it died.
    async fn session(&self) -> Result<Arc<openssh::Session>, openssh::Error> {
        let mut master = self.master.lock().await;
        if let Some(s) = master.as_ref() {
            if s.check().await.is_ok() {
                return Ok(Arc::clone(s));
            }
            tracing::info!("ssh connection to {} lost; opening it again", self.target.url);
        }
        let s = Arc::new(self.target.builder().connect(&self.target.url).await?);
        *master = Some(Arc::clone(&s));
        Ok(s)
    }

    async fn dial(self) -> Result<Stream, io::Error> {
        let session = self
            .session()
            .await
            .map_err(|e| io::Error::other(describe(&self.target, &e)))?;
        let mut child = session
            .arc_command("docker")
            .args(["system", "dial-stdio"])
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::null())
            .spawn()
            .await
            .map_err(|e| {
                io::Error::other(format!(
                    "ssh {}: cannot run `docker system dial-stdio`: {e}",
                    self.target.url
                ))
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
            return Err(io::Error::other("ssh: the remote command has no stdin or stdout"));
        };
        Ok(Stream {
            _child: child,
            stdin: TokioIo::new(stdin),
            stdout: TokioIo::new(stdout),
        })
    }
}

/// What went wrong opening the connection, with the likely cause.
fn describe(target: &SshTarget, e: &openssh::Error) -> String {
    format!(
        "cannot open an ssh connection to {} ({e}); the host key must be in known_hosts (ASSAY_KNOWN_HOSTS) and a key accepted (ASSAY_SSH_KEY or the ssh agent)",
        target.url
    )
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

/// One API connection: the remote `docker system dial-stdio`'s stdin and stdout.
struct Stream {
    _child: openssh::Child<Arc<openssh::Session>>,
    stdin: TokioIo<openssh::ChildStdin>,
    stdout: TokioIo<openssh::ChildStdout>,
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stdin).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdin).poll_shutdown(cx)
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// A failed connection as the I/O error that says why (the ssh connection, the remote
/// command), not hyper's wrappers around it; anything else as hyper says it.
fn plain(e: hyper_util::client::legacy::Error) -> bollard::errors::Error {
    if e.is_connect() {
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                return io::Error::new(io.kind(), io.to_string()).into();
            }
            source = s.source();
        }
    }
    e.into()
}

/// A client of the engine `target` names (not yet contacted: the first request opens the ssh
/// connection).
pub fn connect(target: SshTarget) -> Result<Docker, SandboxError> {
    let connector = Connector {
        target: Arc::new(target),
        master: Arc::new(Mutex::new(None)),
    };
    let client = Arc::new(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    );
    let transport = move |req: bollard::BollardRequest| {
        let client = Arc::clone(&client);
        Box::pin(async move { client.request(req).await.map_err(plain) }) as Pin<Box<dyn Future<Output = _> + Send>>
    };
    // The host in the URL is never dialled: the connector ignores it.
    Ok(Docker::connect_with_custom_transport(
        transport,
        Some("http://docker.engine"),
        REQUEST_TIMEOUT,
        bollard::API_DEFAULT_VERSION,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<String, String> {
        SshTarget::parse(s, None, None)
            .map(|t| t.url)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_engine_url_keeps_user_host_and_port_and_refuses_what_ssh_cannot_use() {
        assert_eq!(parse("ssh://builder").unwrap(), "ssh://builder");
        assert_eq!(parse("ssh://ci@10.0.0.7:2222").unwrap(), "ssh://ci@10.0.0.7:2222");
        assert_eq!(parse("ssh://ci@engine.example/").unwrap(), "ssh://ci@engine.example");
        let e = parse("ssh://ci:hunter2@engine.example").unwrap_err();
        assert!(
            e.contains("passwords are not accepted") && !e.contains("hunter2"),
            "{e}"
        );
        assert!(parse("ssh://engine.example/var/run/docker.sock")
            .unwrap_err()
            .contains("path"));
        assert!(parse("tcp://engine.example:2375")
            .unwrap_err()
            .contains("not an ssh:// URL"));
        assert!(parse("ssh://").unwrap_err().contains("DOCKER_HOST=ssh://"));
    }
}

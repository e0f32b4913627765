//! A PostgreSQL server of its own, for `assay bench queue` and the integration tests: `initdb`
//! of Debian's binaries into a temporary directory, `postgres` on a free loopback port (as the
//! `postgres` user when run as root: the server refuses root), stopped and deleted on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// A running server with the database `assay` (user `assay`, trusted on the loopback).
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
    /// The `assay` database's URL.
    pub url: String,
}

impl TempPostgres {
    pub fn start() -> Result<TempPostgres> {
        TempPostgres::start_with(false)
    }

    /// With `tls`, the server accepts only TLS connections on the loopback (`hostssl` in
    /// pg_hba.conf; plain ones are rejected), with a self-signed certificate for 127.0.0.1 at
    /// [`TempPostgres::cert`].
    pub fn start_with(tls: bool) -> Result<TempPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (apt-get install postgresql)")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir()?;
        let as_root = root();
        if as_root {
            run(Command::new("chown").arg("postgres").arg(dir.path()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let pg = TempPostgres {
            url: format!("postgres://assay@127.0.0.1:{port}/assay"),
            dir,
            bin,
            port,
            as_root,
        };
        let data = pg.data();
        run(pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "assay", "-E", "UTF8", "--no-sync"]))?;
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            pg.dir.path().display()
        );
        if tls {
            opts.push_str(&pg.self_signed()?);
        }
        run(pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.path().join("log"))
            .args(["-o", &opts, "-w", "start"]))?;
        pg.database("assay")?;
        Ok(pg)
    }

    /// Makes the certificate, accepts only TLS on the loopback; the server's options for it.
    fn self_signed(&self) -> Result<String> {
        let (crt, key) = (self.cert(), self.dir.path().join("server.key"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&crt))?;
        if self.as_root {
            run(Command::new("chown").arg("postgres").arg(&crt).arg(&key))?;
        }
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )?;
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            key.display()
        ))
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The certificate of a TLS server.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> Result<String> {
        run(self.command("createdb").arg("-h").arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "assay",
            name,
        ]))?;
        Ok(format!("postgres://assay@127.0.0.1:{}/{name}", self.port))
    }

    /// Restarts the server the way an operator would (`pg_ctl restart -m fast`): every
    /// connection is cut, the server is back once this returns.
    pub fn restart(&self) -> Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-m", "fast", "-w", "restart"]))
    }

    /// One of the server's programs, as the user the server runs as.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut c = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        c
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether this process runs as root (its effective uid, from /proc/self/status).
fn root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs a set-up command; an error naming it and what it printed when it fails.
fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

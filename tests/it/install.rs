//! The install environment on real Docker and real images: /work is a
//! filesystem of its own whose size holds, installs build in it (not in the
//! small /tmp), native modules compile offline, install steps stop at the first
//! failure and name it, and every failed install says whose fault it was — on this
//! machine's engine and on one reached over ssh.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn repo(files: &[(&str, &str)]) -> Scripted {
    let mut r = Scripted::new();
    let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
    r.put(&files);
    r.commit("Project", DAY1);
    r
}

fn check_with(repo: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    check_out(repo, env, None)
}

fn check_out(repo: &Path, env: &[(&str, &str)], out: Option<&Path>) -> serde_json::Value {
    let assay = Assay::new();
    let mut cmd = assay.cmd();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["check", repo.to_str().unwrap(), "--json"]);
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    json_ok(&cmd.output().unwrap())
}

/// Free bytes of the filesystem holding the job images.
fn host_free() -> u64 {
    let dir = assay::sandbox::disk::dir();
    std::fs::create_dir_all(&dir).unwrap();
    assay::sandbox::disk::free_bytes(&dir).unwrap()
}

/// Job images that finished `assay check` processes left behind, and loop
/// devices whose image is gone (none should be; checks of other tests may be
/// running, so only images of exited processes count).
fn leftovers() -> Vec<String> {
    // `PID--JOB.img` on this host's engine, `engine--HOST:PID--JOB.img` made for an engine
    // reached over ssh (here the same machine's).
    let exited = |name: &str| {
        let name = name.strip_prefix("engine--").unwrap_or(name);
        name.split_once("--")
            .and_then(|(owner, _)| owner.rsplit(':').next())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let mut left: Vec<String> = std::fs::read_dir(assay::sandbox::disk::dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("--check-") && exited(n))
                .collect()
        })
        .unwrap_or_default();
    let loops = Command::new("losetup").arg("-a").output().unwrap();
    left.extend(
        String::from_utf8_lossy(&loops.stdout)
            .lines()
            .filter(|l| l.contains("--check-") && l.contains("(deleted)"))
            .map(str::to_string),
    );
    left
}

const ADD: &str = "def add(a, b):\n    return a + b\n";
const ADD_TEST: &str = "from adder import add\n\ndef test_add():\n    assert add(2, 3) == 5\n";
/// A setup.py that writes into the temporary directory until the disk is full.
const FILLS_TMP: &str = "import os, tempfile\nfrom setuptools import setup\n\
                         with open(os.path.join(tempfile.gettempdir(), 'huge.bin'), 'wb') as f:\n    while True:\n        f.write(b'\\0' * (1 << 20))\n";

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_test_that_writes_20_gb_into_work_is_stopped_at_its_limit_and_the_host_disk_is_unaffected() {
    let r = repo(&[
        ("requirements.txt", "pytest==8.3.3\n"),
        ("adder.py", ADD),
        (
            "tests/test_fill.py",
            "def test_fill():\n    chunk = b'x' * (1 << 20)\n    n = 0\n    try:\n        with open('/work/fill.bin', 'wb') as f:\n            for _ in range(20 * 1024):\n                f.write(chunk)\n                f.flush()\n                n += 1\n    finally:\n        print(f'wrote {n} MiB')\n",
        ),
    ]);
    let before = host_free();
    // 256 MiB of growth for the tests (the default is 2 GiB; the mechanism is the same).
    let out = tempfile::tempdir().unwrap();
    let v = check_out(r.path(), &[("ASSAY_LIMITS_TEST_DISK", "268435456")], Some(out.path()));
    assert_eq!(v["outcome"], "tests_failed", "{v}");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("No space left on device"), "{report}");
    // Stopped at the tests' allowance (the reserve holds the rest of the job's disk), not at the
    // disk's whole size.
    let wrote: Vec<u64> = report
        .match_indices("wrote ")
        .filter_map(|(i, _)| report[i + 6..].split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        !wrote.is_empty() && wrote.iter().all(|n| *n <= 256),
        "{wrote:?}\n{report}"
    );
    let after = host_free();
    // The job's image is gone again: the host lost nothing it had.
    assert!(
        after + (512 << 20) > before,
        "host free space went from {before} to {after}"
    );
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn an_install_that_needs_1_5_gib_of_temporary_disk_passes() {
    // setup.py writes 1.5 GiB into the temporary directory while it builds, as
    // pip does when it unpacks and builds large packages: more than the
    // 256 MiB /tmp, well within the install's disk.
    let setup = "import os, tempfile\nfrom setuptools import setup\n\
                 path = os.path.join(tempfile.gettempdir(), 'build-scratch.bin')\n\
                 with open(path, 'wb') as f:\n    for _ in range(1536):\n        f.write(b'\\0' * (1 << 20))\n\
                 os.remove(path)\n\
                 setup(name='adder', version='0.1', py_modules=['adder'])\n";
    let r = repo(&[
        ("setup.py", setup),
        ("requirements.txt", "pytest==8.3.3\n"),
        ("adder.py", ADD),
        ("tests/test_adder.py", ADD_TEST),
    ]);
    let v = check_with(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{}", v["sandbox"]["install"]);
    assert_eq!(v["install"]["ok"], true, "{v}");
    assert!(v["install"]["cause"].is_null());
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn an_install_that_fills_its_disk_is_a_resource_limit_with_the_fix() {
    let r = repo(&[
        ("setup.py", FILLS_TMP),
        ("adder.py", ADD),
        ("tests/test_adder.py", ADD_TEST),
        ("README.md", "# Adder\n\n    pip install -e .\n    python -m pytest\n"),
    ]);
    let v = check_with(r.path(), &[("ASSAY_LIMITS_INSTALL_DISK", "402653184")]);
    // The README's steps would only hit the limit again: reported, not run.
    let steps = v["readme_steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{v}");
    for s in steps {
        assert_eq!(s["status"], "cannot_run", "{s}");
        assert!(
            s["detail"].as_str().unwrap().starts_with("not run: the install failed"),
            "{s}"
        );
    }
    assert_eq!(v["outcome"], "install_failed", "{v}");
    let install = &v["install"];
    assert_eq!(install["cause"], "resource_limit", "{install}");
    // The editable install failed, then the plain one it falls back to.
    assert_eq!(install["step"], "pip install .", "{install}");
    assert!(
        install["fix"].as_str().unwrap().contains("limits.install_disk"),
        "{install}"
    );
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_failing_first_requirements_file_stops_the_install_and_names_the_step() {
    // The second file is fine; before, the loop went on to it and the install
    // "succeeded" with pytest missing.
    let r = repo(&[
        ("requirements.txt", "pytest==99.99.99\n"),
        ("requirements-dev.txt", "pytest==8.3.3\n"),
        ("adder.py", ADD),
        ("tests/test_adder.py", ADD_TEST),
    ]);
    let v = check_with(r.path(), &[]);
    assert_eq!(v["outcome"], "install_failed", "{v}");
    let install = &v["install"];
    assert_eq!(install["ok"], false);
    assert_eq!(install["step"], "pip install -r requirements.txt", "{install}");
    // A pin that does not exist is the candidate's to fix.
    assert_eq!(install["cause"], "candidate", "{install}");
    assert!(
        install["diagnosis"].as_str().unwrap().contains("pytest==99.99.99"),
        "{install}"
    );
    assert!(install["fix"].is_null());
}

#[test]
#[ignore = "full lane: needs the Docker engine and the runner images"]
fn a_node_project_with_bcrypt_builds_it_offline_and_passes() {
    let r = repo(&[
        (
            "package.json",
            "{\"name\":\"auth\",\"version\":\"1.0.0\",\"scripts\":{\"test\":\"node --test\"},\"dependencies\":{\"bcrypt\":\"5.1.1\"}}\n",
        ),
        (
            "test/hash.test.js",
            "const test = require('node:test');\nconst assert = require('node:assert');\nconst bcrypt = require('bcrypt');\ntest('hashes and verifies', () => {\n  const h = bcrypt.hashSync('secret', 4);\n  assert.ok(bcrypt.compareSync('secret', h));\n  assert.ok(!bcrypt.compareSync('other', h));\n});\n",
        ),
    ]);
    let v = check_with(r.path(), &[]);
    assert_eq!(v["outcome"], "passed", "{}", v["sandbox"]["install"]);
    assert_eq!(v["tests"]["passed"], 1, "{v}");
}

/// Containers of assay's own created with a role label, counted from the engine's live event
/// stream. Not `docker events --since`: the engine keeps only its last 256 events, which tests
/// running beside this one overrun (CI counted 3 of at least 7).
struct Created {
    child: std::process::Child,
    ids: std::sync::mpsc::Receiver<String>,
}

impl Created {
    fn watch() -> Self {
        use std::io::BufRead;
        let mut child = Command::new("docker")
            .args(["events", "--filter", "type=container", "--filter", "event=create"])
            .args(["--format", "{{index .Actor.Attributes \"assay.role\"}} {{.ID}}"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, ids) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Live once it reports a container of the test's own.
        let probe = Command::new("docker")
            .args(["create", "--label", "assay.role=probe", "assay-base:bookworm", "true"])
            .output()
            .unwrap();
        assert!(probe.status.success(), "{probe:?}");
        let id = String::from_utf8_lossy(&probe.stdout).trim().to_string();
        // Other tests' containers may come first: before any of this test's.
        let probe = format!("probe {id}");
        while ids.recv_timeout(std::time::Duration::from_secs(30)).unwrap() != probe {}
        Command::new("docker").args(["rm", &id]).output().unwrap();
        Created { child, ids }
    }

    /// How many were created with `assay.role=ROLE`: waits up to 30 s for `want` of them (the
    /// engine's events arrive a moment after the calls that caused them), then says how many.
    fn count(&self, seen: &mut Vec<String>, role: &str, want: usize) -> usize {
        let n = |seen: &[String]| {
            seen.iter()
                .filter(|l| l.split_once(' ').is_some_and(|(r, _)| r == role))
                .count()
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        seen.extend(self.ids.try_iter());
        while n(seen) < want {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.ids.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        n(seen)
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "full lane: needs sshd, the Docker engine and the runner images"]
fn an_engine_reached_over_ssh_runs_the_checks_with_job_disks_on_its_own_host() {
    use crate::remote::SshServer;
    // Commands allowed (`docker system dial-stdio`), no forwarding, no terminal.
    let server = SshServer::start_with("restrict");
    let key = server.client_key();
    let known = server.known_hosts();
    let host = format!("ssh://{}@127.0.0.1:{}", server.user, server.port);
    let env = [
        ("DOCKER_HOST", host.as_str()),
        ("ASSAY_SSH_KEY", key.to_str().unwrap()),
        ("ASSAY_KNOWN_HOSTS", known.to_str().unwrap()),
    ];
    // What a killed check left on the engine's host: reaped when the next one connects.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let disks = Path::new(assay::sandbox::disk::DEFAULT_DIR);
    std::fs::create_dir_all(disks).unwrap();
    let stale = disks.join(format!("engine--{}:{dead}--check-stale.img", assay::host::hostname()));
    std::fs::write(&stale, b"").unwrap();
    let created = Created::watch();

    let ok = repo(&[
        ("requirements.txt", "pytest==8.3.3\n"),
        ("adder.py", ADD),
        ("tests/test_adder.py", ADD_TEST),
    ]);
    let v = check_with(ok.path(), &env);
    assert_eq!(v["outcome"], "passed", "{v}");
    assert!(
        !stale.exists(),
        "the dead process's image on the engine's host was not reaped"
    );

    // The install's disk is the engine host's: filling it is the same resource limit, seen by
    // the watcher container there.
    let fills = repo(&[
        ("setup.py", FILLS_TMP),
        ("adder.py", ADD),
        ("tests/test_adder.py", ADD_TEST),
    ]);
    let mut small = env.to_vec();
    small.push(("ASSAY_LIMITS_INSTALL_DISK", "402653184"));
    let v = check_with(fills.path(), &small);
    assert_eq!(v["outcome"], "install_failed", "{v}");
    assert_eq!(v["install"]["cause"], "resource_limit", "{}", v["install"]);
    // Made, watched and removed through the engine: its helpers ran there.
    // Per check: list the engine's images for the dead, create, remove; the first also
    // removes the stale one.
    let mut seen = Vec::new();
    let disk = created.count(&mut seen, "disk", 7);
    let watch = created.count(&mut seen, "watch", 2);
    assert!(disk >= 7, "disk helpers: {disk} ({seen:?})");
    assert!(watch >= 2, "watchers: {watch}");
    assert!(leftovers().is_empty(), "{:?}", leftovers());

    // A host key that is not the one known: refused, with what to do, before any container.
    let other = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    server.write_known_hosts(&other.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    let assay = Assay::new();
    let mut cmd = assay.cmd();
    cmd.envs(env).args(["check", ok.path().to_str().unwrap(), "--json"]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        // The user is left out, like every URL's credentials.
        stderr.contains(&format!(
            "cannot open an ssh connection to ssh://127.0.0.1:{}",
            server.port
        )) && stderr.contains("ASSAY_KNOWN_HOSTS"),
        "{stderr}"
    );
}

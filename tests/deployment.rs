//! What `docs/deployment.md` tells an operator to run, run for real on loopback:
//! - HAProxy (Debian's `haproxy`, with `docs/deployment/haproxy.cfg`) in front of two express
//!   instances, health-checking `/server-metrics?health`; a bounded load runs through it while
//!   each instance in turn is drained (its drain file: health 503, HAProxy takes it out), restarted
//!   gracefully, and put back (health 200): no request fails;
//! - `docs/deployment/rswsgi-express.logrotate` rotates an instance's logs and its graceful
//!   restart makes httpd write to the new files;
//! - `docs/deployment/rswsgi-express@.service` passes `systemd-analyze verify`.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::express::Express;
use common::{free_port, http, procs, repo_root, Stage};

const APP: &str = r#"
import os

def application(environ, start_response):
    body = ('%s pid=%d\n' % (os.environ.get('INSTANCE', '?'), os.getpid())).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// How long any one wait of this test may take.
const WAIT: Duration = Duration::from_secs(20);

/// An express instance named `name` with the metrics endpoint (and its health check).
fn instance(name: &str) -> Express {
    let mut e = Express::start(
        &format!("deploy-{name}"),
        APP,
        &[
            "--server-metrics",
            "--setenv",
            "INSTANCE",
            name,
            "--processes",
            "1",
            "--threads",
            "4",
        ],
    );
    e.wait_serving();
    e
}

fn health(e: &Express) -> u16 {
    e.get("/server-metrics?health").map_or(0, |r| r.status)
}

/// The documented HAProxy configuration, bound to `port` and pointed at the two instances,
/// with its runtime API socket at `sock`.
fn haproxy_config(port: u16, a: u16, b: u16, sock: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/deployment/haproxy.cfg"))
        .expect("docs/deployment/haproxy.cfg");
    let replaced = [
        ("bind *:80", format!("bind 127.0.0.1:{port}")),
        ("192.0.2.11:8000", format!("127.0.0.1:{a}")),
        ("192.0.2.12:8000", format!("127.0.0.1:{b}")),
        ("/run/haproxy/admin.sock", sock.to_owned()),
    ];
    let mut conf = doc.clone();
    for (from, to) in &replaced {
        assert!(conf.contains(from), "haproxy.cfg no longer has {from:?}");
        conf = conf.replace(from, to);
    }
    conf
}

/// HAProxy, run in the foreground by this test; killed (by pid) when dropped.
struct Haproxy {
    child: Child,
    sock: String,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn start(stage: &Stage, port: u16, a: u16, b: u16) -> Haproxy {
        let sock = stage.dir.join("haproxy.sock").display().to_string();
        let cfg = stage.write("haproxy.cfg", &haproxy_config(port, a, b, &sock));
        let check = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output();
        let check =
            check.expect("haproxy (Debian's haproxy package; scripts/setup.sh installs it)");
        assert!(
            check.status.success(),
            "haproxy -c refused the documented config:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stage.dir.join("haproxy.err")).unwrap())
            .spawn()
            .expect("spawn haproxy");
        Haproxy { child, sock }
    }

    /// `show stat` through the runtime API: the status (UP, DOWN, …) of server `name`.
    fn status(&self, name: &str) -> Option<String> {
        let mut s = UnixStream::connect(&self.sock).ok()?;
        s.write_all(b"show stat\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        // CSV: pxname,svname,…, with `status` at the column the header names.
        let header = out.lines().next()?.trim_start_matches("# ");
        let col = header.split(',').position(|c| c == "status")?;
        out.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&"rswsgi") && f.get(1) == Some(&name))
            .and_then(|f| f.get(col).map(|s| s.to_string()))
    }

    fn wait_status(&self, name: &str, want: &str) {
        let ok = procs::wait_until(WAIT, || {
            self.status(name).is_some_and(|s| s.starts_with(want))
        });
        assert!(
            ok,
            "HAProxy never saw {name} {want}: {:?}",
            self.status(name)
        );
    }
}

/// The load: `threads` clients sending GETs through HAProxy one after another until told to
/// stop (or 90 s pass), counting successes by instance and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    served: Arc<Mutex<Vec<String>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let served = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs(90);
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
                let (failures, served) = (Arc::clone(&failures), Arc::clone(&served));
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match http::get(addr, "/") {
                            Ok(r) if r.status == 200 && r.complete => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                served.lock().unwrap().push(r.text());
                            }
                            Ok(r) => {
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("{} {}", r.status, r.text()))
                            }
                            Err(e) => failures.lock().unwrap().push(e.to_string()),
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failures,
            served,
            threads,
        }
    }

    fn finish(self) -> (u64, Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        let served = self.served.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures, served)
    }
}

/// The daemon pid an instance's `/` reports.
fn daemon_pid(e: &Express) -> Option<String> {
    let r = e.get("/")?;
    (r.status == 200).then(|| r.text().split("pid=").nth(1).map(|p| p.trim().to_owned()))?
}

/// Drains `e` (server `name` in HAProxy), restarts it gracefully and puts it back, while the
/// load runs; checks each step as an operator would.
fn roll(hap: &Haproxy, e: &Express, name: &str) {
    let drain = e.root.join("drain");
    let before = daemon_pid(e).expect("daemon pid");
    std::fs::write(&drain, b"").unwrap();
    assert_eq!(
        health(e),
        503,
        "health with the drain file: {:?}",
        e.get("/server-metrics?health")
    );
    hap.wait_status(name, "DOWN");
    let ctl = Command::new(e.root.join("apachectl"))
        .arg("graceful")
        .output()
        .unwrap();
    assert!(ctl.status.success(), "apachectl graceful: {ctl:?}");
    let restarted = procs::wait_until(WAIT, || daemon_pid(e).is_some_and(|p| p != before));
    assert!(
        restarted,
        "no new daemon after the graceful restart:\n{}",
        e.logs()
    );
    std::fs::remove_file(&drain).unwrap();
    assert!(
        procs::wait_until(WAIT, || health(e) == 200),
        "health did not come back"
    );
    hap.wait_status(name, "UP");
}

#[test]
fn rolling_restart_behind_haproxy_loses_no_request() {
    if !common::require(
        "haproxy",
        Command::new("haproxy").arg("-v").output().is_ok(),
    ) {
        return;
    }
    let (a, b) = (instance("web1"), instance("web2"));
    let stage = Stage::new("deploy-haproxy");
    let port = free_port();
    let hap = Haproxy::start(&stage, port, a.port, b.port);
    hap.wait_status("web1", "UP");
    hap.wait_status("web2", "UP");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let load = Load::start(addr, 4);
    thread::sleep(Duration::from_millis(500));
    roll(&hap, &a, "web1");
    thread::sleep(Duration::from_millis(500));
    roll(&hap, &b, "web2");
    thread::sleep(Duration::from_millis(500));
    let (ok, failures, served) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {:?}\n{}",
        failures.len(),
        ok + failures.len() as u64,
        &failures[..failures.len().min(10)],
        std::fs::read_to_string(stage.dir.join("haproxy.err")).unwrap_or_default()
    );
    assert!(ok >= 200, "only {ok} requests went through");
    for name in ["web1", "web2"] {
        assert!(
            served.iter().any(|s| s.starts_with(name)),
            "{name} served nothing"
        );
    }
    eprintln!("{ok} requests through HAProxy during two drained graceful restarts, 0 failed");
}

#[test]
fn logrotate_config_rotates_and_the_graceful_restart_reopens_the_logs() {
    if !common::require(
        "logrotate",
        Command::new("logrotate").arg("--version").output().is_ok(),
    ) {
        return;
    }
    let stage = Stage::new("deploy-logs");
    let logs = stage.subdir("log/site");
    let script = stage.write("app/wsgi.py", APP);
    let mut e = Express::start_script(
        stage,
        script,
        &["--log-directory", logs.to_str().unwrap(), "--access-log"],
    );
    e.wait_serving();
    assert_eq!(e.get("/before").map(|r| r.status), Some(200));
    let access = logs.join("access_log");
    assert!(procs::wait_until(WAIT, || std::fs::read_to_string(&access)
        .is_ok_and(|l| l.contains("/before"))));
    // The documented file, pointed at this instance's directories.
    let doc = std::fs::read_to_string(repo_root().join("docs/deployment/rswsgi-express.logrotate"))
        .unwrap();
    let conf = doc
        .replace(
            "/var/log/rswsgi/*/*_log",
            &format!("{}/*_log", logs.display()),
        )
        .replace(
            "/var/lib/rswsgi/*/apachectl",
            &e.root.join("apachectl").display().to_string(),
        );
    let conf_path = e.stage.write("logrotate.conf", &conf);
    let state = e.stage.dir.join("logrotate.state");
    let out = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(&state)
        .arg(&conf_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "logrotate: {out:?}");
    let rotated = logs.join("access_log.1");
    let old = std::fs::read_to_string(&rotated).expect("access_log.1 (delaycompress)");
    assert!(old.contains("/before"));
    // httpd reopens its logs on the graceful restart: new lines go to the new file.
    let fresh = procs::wait_until(WAIT, || {
        let _ = e.get("/after");
        std::fs::read_to_string(&access).is_ok_and(|l| l.contains("/after"))
    });
    assert!(fresh, "no /after in the new access_log:\n{}", e.logs());
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("/after"));
}

#[test]
fn systemd_unit_verifies() {
    if !common::require(
        "systemd-analyze",
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
    ) {
        return;
    }
    let stage = Stage::new("deploy-unit");
    // The server root the unit names, written by `setup-server` as `start-server` would
    // (ExecReload runs its apachectl).
    let script = stage.write("app/wsgi.py", APP);
    let root = stage.subdir("lib").join("site");
    let bins = stage.binaries();
    let mut setup = Command::new(&bins.express);
    setup.arg("setup-server").arg(&script);
    if let Some(user) = common::test_user() {
        setup.args(["--user", &user]);
    }
    let setup = setup
        .arg("--server-root")
        .arg(&root)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon)
        .output()
        .unwrap();
    assert!(setup.status.success(), "setup-server: {setup:?}");
    let env = stage.write("site.env", "EXPRESS_ARGS=/srv/site/wsgi.py --port 8000\n");
    // The packaged binary is /usr/bin/rswsgi-express; here, the one just built.
    let unit = std::fs::read_to_string(repo_root().join("docs/deployment/rswsgi-express@.service"))
        .unwrap()
        .replace(
            "/usr/bin/rswsgi-express",
            &bins.express.display().to_string(),
        )
        .replace("/var/lib/rswsgi/", &format!("{}/lib/", stage.dir.display()))
        .replace("/etc/rswsgi/%i.env", &env.display().to_string());
    let path = stage.write("rswsgi-express@site.service", &unit);
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Only complaints about this unit count (not the machine's other units).
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("rswsgi-express"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

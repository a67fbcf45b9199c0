//! Operator lines that need a system call to fail (issue 19), provoked for real from outside:
//! `tests/fault/fault.c`, compiled here and loaded with `LD_PRELOAD` into httpd (whose
//! environment the daemons inherit), makes one named libc call fail with a chosen errno under
//! the conditions of `RSWSGI_FAULT` (see the library's header). Each test asserts the code and
//! what `docs/errors.md` says follows (the request's status, serving on, a restarted daemon).
//! `RSWSGI0201`/`RSWSGI0203` need no fault: express run as the test user, so httpd is not root.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::express::Express;
use common::{http, procs, repo_root, Builder, Stage, TestServer};
use rswsgi_express::Timeouts;
use std::os::unix::process::CommandExt;

/// The compiled fault library and a directory every process may create its marks in.
struct Fault {
    stage: Stage,
    lib: PathBuf,
}

impl Fault {
    /// Compiles `tests/fault/fault.c` with `cc` (build-essential, which `scripts/setup.sh`
    /// installs); `None` (the skip line) without a compiler.
    fn build(tag: &str) -> Option<Fault> {
        let cc = Command::new("cc").arg("--version").output().is_ok();
        if !common::require("cc (build-essential; run make setup)", cc) {
            return None;
        }
        let stage = Stage::new(&format!("fault-{tag}"));
        let marks = stage.subdir("marks");
        fs::set_permissions(&marks, fs::Permissions::from_mode(0o777)).unwrap();
        let lib = stage.dir.join("fault.so");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(repo_root().join("tests/fault/fault.c"))
            .arg("-ldl")
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::set_permissions(&lib, fs::Permissions::from_mode(0o755)).unwrap();
        Some(Fault { stage, lib })
    }

    /// A path in the marks directory (for `once=` and `when=`).
    fn mark(&self, name: &str) -> PathBuf {
        self.stage.dir.join("marks").join(name)
    }

    /// A server of `tests/fault/app.py` with the library loaded and `rules` in force.
    fn builder(&self, rules: &str) -> Builder {
        TestServer::builder(&app())
            .env("LD_PRELOAD", self.lib.to_str().unwrap())
            .env("RSWSGI_FAULT", rules)
    }
}

fn app() -> String {
    repo_root().join("tests/fault/app.py").display().to_string()
}

/// Waits up to 10 s for `code` in the server's logs.
fn logged(srv: &TestServer, code: &str) -> bool {
    procs::wait_until(Duration::from_secs(10), || srv.logs().contains(code))
}

/// `GET /` answers 200 with the serving daemon's pid.
fn served_pid(srv: &TestServer) -> i32 {
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    r.kv("pid").and_then(|p| p.parse().ok()).expect("pid=")
}

/// The metrics endpoint has no sample (only `# HELP`/`# TYPE` lines) and `?health` reports
/// no group: nothing counted, as docs/errors.md says for RSWSGI0212 and RSWSGI0213.
fn assert_metrics_count_nothing(srv: &TestServer) {
    let text = srv.get("/server-metrics").text();
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        samples.is_empty(),
        "samples without a statistics area: {samples:?}"
    );
    let health = srv.get("/server-metrics?health");
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        health.text().contains("0 daemon group(s)"),
        "{}",
        health.text()
    );
}

/// `RSWSGI0212`: httpd's parent cannot create the module-wide statistics area; requests are
/// served as usual (and no group area is made without it).
#[test]
fn no_module_statistics_area_still_serves() {
    require!(venv);
    let Some(f) = Fault::build("0212") else {
        return;
    };
    serves_uncounted(&f, "rswsgi-stats", "RSWSGI0212", "RSWSGI0213");
}

/// `RSWSGI0213`: one group's statistics area cannot be made; its daemons serve, uncounted.
#[test]
fn no_group_statistics_area_still_serves() {
    require!(venv);
    let Some(f) = Fault::build("0213") else {
        return;
    };
    serves_uncounted(&f, "rswsgi-group-stats", "RSWSGI0213", "RSWSGI0212");
}

/// With httpd's `memfd_create` of the area named `area` failing: requests are served, the
/// metrics count nothing, and the line is `code`, not `other`.
fn serves_uncounted(f: &Fault, area: &str, code: &str, other: &str) {
    let srv =
        with_metrics(f.builder(&format!("memfd_create:ENOMEM,exe=apache2,name={area}"))).start();
    served_pid(&srv);
    served_pid(&srv);
    assert_metrics_count_nothing(&srv);
    assert!(logged(&srv, code), "{}", srv.logs());
    assert!(!srv.logs().contains(other), "{}", srv.logs());
}

/// `builder` with the metrics endpoint at `/server-metrics`.
fn with_metrics(builder: Builder) -> Builder {
    builder
        .directive("<Location /server-metrics>")
        .directive("  SetHandler rswsgi-metrics")
        .directive("</Location>")
}

/// `RSWSGI0402`: the daemon cannot make a connection's response ring; a large body still
/// arrives whole, through the socket.
#[test]
fn no_response_ring_sends_large_bodies_through_the_socket() {
    require!(venv);
    let Some(f) = Fault::build("0402") else {
        return;
    };
    let srv = f
        .builder("memfd_create:ENOMEM,exe=rswsgi-daemon,name=rswsgi-ring")
        .start();
    let expected: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    for _ in 0..2 {
        let r = srv.get("/big");
        assert_eq!(r.status, 200, "{}", srv.logs());
        assert!(r.body == expected, "the large body arrived damaged");
    }
    assert!(logged(&srv, "RSWSGI0402"), "{}", srv.logs());
}

/// `RSWSGI0425`: the daemon cannot map its group's statistics area; it serves, uncounted.
#[test]
fn a_daemon_that_cannot_map_its_statistics_serves() {
    require!(venv);
    let Some(f) = Fault::build("0425") else {
        return;
    };
    let srv = f
        .builder("mmap:ENOMEM,exe=rswsgi-daemon,name=rswsgi-group-stats")
        .start();
    served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0425"), "{}", srv.logs());
}

/// `RSWSGI0404`: re-arming an idle connection in the daemon's epoll fails (`EPOLL_CTL_MOD`,
/// op 3, the first time): that connection is closed and the module reconnects, so every
/// request is still answered.
#[test]
fn a_connection_that_cannot_be_parked_is_closed_and_replaced() {
    require!(venv);
    let Some(f) = Fault::build("0404") else {
        return;
    };
    let srv = f
        .builder("epoll_ctl:ENOMEM,exe=rswsgi-daemon,arg=3,times=1")
        .processes(1)
        .threads(2)
        .timeouts(Timeouts {
            socket_timeout: 10,
            ..Timeouts::default()
        })
        .start();
    // Each within a few seconds: a request sent on a connection the daemon no longer watches
    // would wait out socket-timeout instead.
    for _ in 0..4 {
        let began = Instant::now();
        served_pid(&srv);
        assert!(began.elapsed() < Duration::from_secs(5), "{}", srv.logs());
    }
    assert!(logged(&srv, "RSWSGI0404"), "{}", srv.logs());
}

/// `RSWSGI0405`: the daemon's epoll_wait fails (three times); it retries and serves.
#[test]
fn a_failing_epoll_wait_is_retried() {
    require!(venv);
    let Some(f) = Fault::build("0405") else {
        return;
    };
    let srv = f
        .builder("epoll_wait:EBADF,exe=rswsgi-daemon,times=3")
        .start();
    served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0405"), "{}", srv.logs());
}

/// `RSWSGI0406`: accept fails for lack of descriptors (`EMFILE`, twice); the daemon retries
/// and the connection waiting in the backlog is served.
#[test]
fn accept_out_of_descriptors_is_retried() {
    require!(venv);
    let Some(f) = Fault::build("0406") else {
        return;
    };
    let srv = f
        .builder("accept4:EMFILE,exe=rswsgi-daemon,times=2")
        .processes(1)
        .start();
    let pid = served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0406"), "{}", srv.logs());
    assert!(srv.logs().contains("retrying"), "{}", srv.logs());
    // The same daemon: retrying is not exiting.
    assert_eq!(served_pid(&srv), pid);
}

/// `RSWSGI0407`: accept on the listening socket fails as on a broken socket (`EINVAL`, once
/// across processes): the daemon exits and the supervisor starts another, which serves.
#[test]
fn a_broken_listening_socket_ends_the_daemon_which_is_replaced() {
    require!(venv);
    let Some(f) = Fault::build("0407") else {
        return;
    };
    let once = f.mark("0407");
    let srv = f
        .builder(&format!(
            "accept4:EINVAL,exe=rswsgi-daemon,once={}",
            once.display()
        ))
        .processes(1)
        .start();
    served_pid(&srv);
    assert!(once.exists(), "the fault never fired:\n{}", srv.logs());
    assert!(logged(&srv, "RSWSGI0407"), "{}", srv.logs());
    assert!(logged(&srv, "RSWSGI0207"), "no restart:\n{}", srv.logs());
    assert_eq!(srv.daemons(1).len(), 1, "{}", srv.logs());
}

/// `RSWSGI0415`: setting `send-buffer-size` on a connection fails (`SO_SNDBUF`, option 7);
/// the connection is served with the system's defaults.
#[test]
fn failing_socket_buffer_sizes_fall_back_to_defaults() {
    require!(venv);
    let Some(f) = Fault::build("0415") else {
        return;
    };
    let srv = f
        .builder("setsockopt:ENOBUFS,exe=rswsgi-daemon,arg=7")
        .daemon_option("send-buffer-size=262144")
        .start();
    served_pid(&srv);
    served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0415"), "{}", srv.logs());
}

/// `RSWSGI0412`: the daemon cannot make itself non-dumpable (`PR_SET_DUMPABLE`, option 4,
/// once): it exits rather than serve with its secret readable; its replacement serves.
#[test]
fn a_daemon_that_cannot_be_non_dumpable_exits() {
    require!(venv);
    let Some(f) = Fault::build("0412") else {
        return;
    };
    let once = f.mark("0412");
    let srv = f
        .builder(&format!(
            "prctl:EPERM,exe=rswsgi-daemon,arg=4,once={}",
            once.display()
        ))
        .processes(1)
        .start();
    let pid = served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0412"), "{}", srv.logs());
    assert!(logged(&srv, "RSWSGI0207"), "no restart:\n{}", srv.logs());
    assert!(once.exists(), "the fault never fired:\n{}", srv.logs());
    // The replacement, whose prctl succeeded, keeps serving.
    assert_eq!(served_pid(&srv), pid);
}

/// `RSWSGI0206`: httpd's parent cannot fork a daemon (`EAGAIN`, once); the group's other
/// daemon starts and serves. The parent's first two forks are the python-home checks of
/// Apache's two configuration passes (`cannot run ... to check python-home`, RSWSGI0301,
/// if they failed), so the third, daemon #1's, is the one that fails; the parent forks #1
/// again later.
#[test]
fn a_daemon_that_cannot_be_forked_is_reported() {
    require!(venv);
    let Some(f) = Fault::build("0206") else {
        return;
    };
    let once = f.mark("0206");
    let srv = f
        .builder(&format!(
            "fork:EAGAIN,exe=apache2,after=2,once={}",
            once.display()
        ))
        .processes(2)
        .start();
    served_pid(&srv);
    assert!(logged(&srv, "RSWSGI0206"), "{}", srv.logs());
    assert!(srv.logs().contains("(#2) of group"), "{}", srv.logs());
    // httpd's monitor hook (about every ten seconds) starts #1 again: the fault was once.
    procs::wait_until(Duration::from_secs(25), || {
        srv.logs().contains("(#1) of group")
    });
    assert!(srv.logs().contains("(#1) of group"), "{}", srv.logs());
    assert!(srv.logs().contains("trying again in"), "{}", srv.logs());
}

/// `RSWSGI0211`: after a graceful restart the statistics area the previous generation kept
/// cannot be mapped (`mmap` of the carried `rswsgi-stats` memfd fails, once, armed just
/// before the restart): the new generation serves with a new area, its counters from zero
/// (where `tests/metrics.rs` shows they otherwise carry on).
#[test]
fn unusable_carried_statistics_start_from_zero() {
    const BEFORE: u64 = 40;
    require!(venv);
    let Some(f) = Fault::build("0211") else {
        return;
    };
    let armed = f.mark("armed");
    let once = f.mark("0211");
    let srv = with_metrics(f.builder(&format!(
        "mmap:ENOMEM,exe=apache2,name=rswsgi-stats,when={},once={}",
        armed.display(),
        once.display()
    )))
    .processes(1)
    .start();
    let old = served_pid(&srv);
    for _ in 0..BEFORE {
        served_pid(&srv);
    }
    assert!(
        procs::wait_until(Duration::from_secs(5), || served_2xx(&srv) >= BEFORE),
        "{}",
        srv.logs()
    );
    assert!(!srv.logs().contains("RSWSGI0211"));
    fs::write(&armed, "").unwrap();
    // SAFETY: kill has no memory-safety preconditions; httpd is this test's child.
    unsafe { libc::kill(srv.pid(), libc::SIGUSR1) };
    let renewed = procs::wait_until(Duration::from_secs(30), || {
        matches!(http::get(srv.addr, "/"), Ok(r) if r.status == 200
            && r.kv("pid").and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| p != old))
    });
    assert!(renewed, "no new daemon after the restart:\n{}", srv.logs());
    assert!(once.exists(), "the fault never fired:\n{}", srv.logs());
    assert!(logged(&srv, "RSWSGI0211"), "{}", srv.logs());
    assert!(!srv.logs().contains("RSWSGI0212"), "{}", srv.logs());
    // Counted again, from zero: the few requests since the restart, not the ones before.
    // (An Apache child of the old generation may still serve the first ones, into the old
    // area: ask until the new children have counted some.)
    procs::wait_until(Duration::from_secs(10), || {
        served_pid(&srv);
        served_2xx(&srv) > 0
    });
    let counted = served_2xx(&srv);
    assert!(
        (1..BEFORE).contains(&counted),
        "{counted} 2xx counted after the restart"
    );
}

/// `rswsgi_requests_total{class="2xx"}` from the metrics endpoint (0 when absent).
fn served_2xx(srv: &TestServer) -> u64 {
    let r = srv.get("/server-metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter(|l| l.starts_with("rswsgi_requests_total{") && l.contains("class=\"2xx\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// `RSWSGI0203` and `RSWSGI0201`: httpd not running as root (express started as the test
/// user) cannot give a group another user or its socket another owner; both are ignored with
/// the lines, and every daemon runs as httpd's own user.
#[test]
fn httpd_not_root_ignores_user_and_socket_user() {
    let venv = require!(venv);
    require!(root);
    let user = common::test_user().expect("root has a test user");
    let id = rswsgi_express::Identity::lookup(&user, None).unwrap();
    let stage = Stage::new("not-root");
    // express (as the test user) creates its server root in here.
    std::os::unix::fs::chown(&stage.dir, Some(id.uid), Some(id.gid)).unwrap();
    let script = stage.copy(&repo_root().join("tests/fault/app.py"), "app/app.py", 0o644);
    let conf = stage.write(
        "other.conf",
        "WSGIDaemonProcess other user=nobody socket-user=nobody threads=1\n",
    );
    let home = stage.dir.clone();
    let mut e = Express::launch_with(
        stage,
        &home.clone(),
        &[
            script.to_str().unwrap(),
            "--python-home",
            venv.to_str().unwrap(),
            "--include-file",
            conf.to_str().unwrap(),
        ],
        |cmd| {
            cmd.uid(id.uid).gid(id.gid).env("HOME", &home);
        },
    );
    e.wait_serving();
    assert_eq!(e.get("/").map(|r| r.status), Some(200), "{}", e.logs());
    let log = e.error_log();
    assert!(log.contains("RSWSGI0203"), "{}", e.logs());
    assert!(log.contains("RSWSGI0201"), "{}", e.logs());
    // Everything runs as one user: that its children are dumpable is no news.
    assert!(!log.contains("are dumpable"), "{}", e.logs());
    // Both groups' daemons (the application's and `other`) run as httpd's user.
    let mut daemons = Vec::new();
    procs::wait_until(Duration::from_secs(10), || {
        daemons = procs::running(&e.bins.daemon);
        daemons.len() == 2
    });
    assert_eq!(daemons.len(), 2, "{daemons:?}\n{}", e.logs());
    for d in &daemons {
        let uids = procs::status_ids(d.pid, "Uid").unwrap_or_default();
        assert!(uids.iter().all(|&u| u == id.uid), "daemon {d:?}: {uids:?}");
    }
}

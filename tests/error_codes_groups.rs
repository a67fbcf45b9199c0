//! Operator lines about a daemon group's processes that only unusual conditions produce, each
//! provoked for real through Apache or express and matched by its code (`docs/errors.md`):
//! - `RSWSGI0210`: the daemon binary is missing, so the supervisor cannot start at all and
//!   httpd refuses to start;
//! - `RSWSGI0416`: an extension holds Python's GIL past `deadlock-timeout`: the daemon exits,
//!   its request gets `RSWSGI0102`, and the group serves again;
//! - `RSWSGI0423`: `--reload-on-changes` cannot watch a module whose `__file__` has no
//!   file-system encoding (said once; the others are watched);
//! - `RSWSGI0401`: the application raises its descriptor limit and uses the low descriptors,
//!   so the daemon's next connection is past the fork-safety registry;
//! - `RSWSGI0509`: running the `atexit` handlers raises as a daemon exits;
//! - and requests that waited in a daemon which then recycled are served by its
//!   replacements (where they once got 503 past their `connect-timeout`).

mod common;

use std::os::unix::process::CommandExt;
use std::thread;
use std::time::Duration;

use common::express::Express;
use common::{procs, Stage};

/// The lines of `log` that hold every one of `needles`.
fn lines_with<'a>(log: &'a str, needles: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

/// Waits up to `limit` for a line of express's error log holding every one of `needles`.
fn wait_line(e: &Express, limit: Duration, needles: &[&str]) -> String {
    let mut found = None;
    procs::wait_until(limit, || {
        found = lines_with(&e.error_log(), needles)
            .first()
            .map(|l| l.to_string());
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no line with {needles:?}:\n{}", e.logs()))
}

/// The pid of a `[pid P:tid T]` log line.
fn line_pid(line: &str) -> i32 {
    line.split("[pid ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

/// `RSWSGI0210`: the daemon binary `RSWSGIDaemonExecutable` names was removed after the
/// configuration was written (an upgrade that removed it, say). The configuration check does
/// not look for it; the real start fails as a whole and httpd exits, saying why.
#[test]
fn a_missing_daemon_binary_stops_httpd_with_its_line() {
    require!(venv);
    let stage = Stage::new("code-0210");
    let bins = stage.binaries();
    let script = stage.copy(
        &common::repo_root().join("tests/apps/probe.py"),
        "app/wsgi.py",
        0o644,
    );
    let mut opts = rswsgi_express::ServerOptions::new(&script);
    opts.port = common::free_port().into();
    opts.server_root = Some(stage.dir.join("root"));
    opts.user = common::test_user();
    opts.module_path = Some(bins.module.clone());
    opts.daemon_executable = Some(bins.daemon.clone());
    opts.python_home = Some(common::test_venv());
    let root = rswsgi_express::setup_server(&opts).unwrap_or_else(|e| panic!("{e:#}"));
    let missing = bins.daemon.clone();
    std::fs::remove_file(&missing).unwrap();
    let text = common::express::start_refused(&root);
    let missing = missing.display().to_string();
    assert!(
        !lines_with(
            &text,
            &["RSWSGI0210: mod_rswsgi:", &missing, "does not exist"]
        )
        .is_empty(),
        "{text}"
    );
}

/// The application: `/hold` calls libc's `sleep` through `ctypes.PyDLL`, which (unlike
/// `ctypes.CDLL`) keeps the GIL for the call, as a C extension that never releases it does.
const GIL_HOLDER: &str = r#"
import ctypes, os

def application(environ, start_response):
    if environ['PATH_INFO'] == '/hold':
        ctypes.PyDLL('libc.so.6').sleep(30)
    body = ('pid %d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// `RSWSGI0416`: with `--deadlock-timeout 2`, a request whose extension holds the GIL makes its
/// daemon exit; the request fails as the daemon's death (`RSWSGI0102` with the daemon's pid),
/// the supervisor restarts the process (`RSWSGI0207`), and the group serves again.
#[test]
fn a_gil_held_past_deadlock_timeout_restarts_the_daemon() {
    let mut e = Express::start(
        "code-0416",
        GIL_HOLDER,
        &["--processes", "1", "--deadlock-timeout", "2"],
    );
    e.wait_serving();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    let held = thread::spawn(move || common::http::get(addr, "/hold"));
    let line = wait_line(
        &e,
        Duration::from_secs(20),
        &[
            "RSWSGI0416: Python's GIL could not be obtained",
            "deadlock-timeout",
        ],
    );
    let pid = line_pid(&line);
    // The held request ends with its daemon, never as a success.
    let r = held.join().unwrap();
    assert!(
        !matches!(&r, Ok(r) if r.status == 200),
        "{r:?}\n{}",
        e.logs()
    );
    wait_line(
        &e,
        Duration::from_secs(10),
        &["RSWSGI0102", &format!("(daemon pid {pid})")],
    );
    wait_line(
        &e,
        Duration::from_secs(10),
        &[
            &format!("RSWSGI0207: daemon process {pid} of group"),
            "status 3",
        ],
    );
    let mut served = None;
    procs::wait_until(Duration::from_secs(20), || {
        served = e.get("/").filter(|r| r.status == 200);
        served.is_some()
    });
    let served = served.unwrap_or_else(|| panic!("the group never served again:\n{}", e.logs()));
    assert_ne!(served.text(), format!("pid {pid}\n"), "{}", e.logs());
}

/// The application: at import, a module whose `__file__` has a lone surrogate (a name no file
/// can have) joins `sys.modules`; it serves `helper.VERSION`, from the file next to it.
const UNLISTABLE: &str = r#"
import sys, types

import helper

weird = types.ModuleType('weird_module')
weird.__file__ = '/nowhere/\ud800.py'
sys.modules['weird_module'] = weird

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [helper.VERSION.encode()]
"#;

/// `RSWSGI0423`: `--reload-on-changes` cannot watch a module whose `__file__` cannot be a
/// file name; the line names it, once, and the other modules are watched all the same.
#[test]
fn reload_on_changes_that_cannot_watch_a_module_says_so_once_and_watches_the_others() {
    let stage = Stage::new("code-0423");
    let helper = stage.write("app/helper.py", "VERSION = 'one'\n");
    let script = stage.write("app/wsgi.py", UNLISTABLE);
    let mut e = Express::start_script(stage, script, &["--processes", "1", "--reload-on-changes"]);
    e.wait_serving();
    let warning = ["RSWSGI0423: reload-on-changes: cannot watch module 'weird_module'"];
    let line = wait_line(&e, Duration::from_secs(15), &warning);
    assert!(line.contains("[wsgi:warn]"), "{line}");
    // The monitor looks every second: three more looks, no second line.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lines_with(&e.error_log(), &warning).len(),
        1,
        "{}",
        e.logs()
    );
    assert_eq!(
        e.get("/").map(|r| r.text()),
        Some("one".into()),
        "{}",
        e.logs()
    );
    std::fs::write(&helper, "VERSION = 'two!'\n").unwrap();
    let mut body = None;
    procs::wait_until(Duration::from_secs(10), || {
        body = e.get("/").map(|r| r.text());
        body.as_deref() == Some("two!")
    });
    assert_eq!(body.as_deref(), Some("two!"), "{}", e.logs());
}

/// The application: `/fill` raises its soft descriptor limit past the one it started with and
/// takes every descriptor under 1100 (kept open); `/slow` takes a second.
const FILLER: &str = r#"
import os, resource, time

KEPT = []

def application(environ, start_response):
    if environ['PATH_INFO'] == '/fill':
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
        while True:
            fd = os.open('/dev/null', os.O_RDONLY)
            KEPT.append(fd)
            if fd >= 1100:
                break
    elif environ['PATH_INFO'] == '/slow':
        time.sleep(1)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
"#;

/// `RSWSGI0401`: the daemons start with a soft descriptor limit of 1024 (so the registry has
/// 1024 slots); once the application raised it and took the low descriptors, the connections
/// the daemon accepts next have numbers past the registry: the line, and they are served.
#[test]
fn a_descriptor_past_the_fork_safety_registry_is_reported() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max >= 4096,
        "the hard descriptor limit ({}) leaves the application no room to raise its own",
        lim.rlim_max
    );
    let stage = Stage::new("code-0401");
    let script = stage.write("app/wsgi.py", FILLER);
    let cwd = stage.dir.clone();
    let script = script.to_str().unwrap().to_string();
    let args = [script.as_str(), "--processes", "1", "--threads", "4"];
    let mut e = Express::launch_with(stage, &cwd, &args, |cmd| {
        // SAFETY: between fork and exec the closure only calls setrlimit, which is
        // async-signal-safe; it lowers this one child's soft limit (its httpd and daemons
        // inherit it), the hard limit unchanged.
        unsafe {
            cmd.pre_exec(|| {
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lim.rlim_cur = lim.rlim_cur.min(1024);
                if lim.rlim_max < 4096 || libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::other("cannot set RLIMIT_NOFILE"));
                }
                Ok(())
            });
        }
    });
    e.wait_serving();
    assert_eq!(e.get("/fill").map(|r| r.status), Some(200), "{}", e.logs());
    assert!(
        !e.error_log().contains("RSWSGI0401"),
        "reported before any descriptor passed the registry:\n{}",
        e.logs()
    );
    // Concurrent requests: the module opens new connections, which the daemon accepts on
    // descriptors past 1100.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    let slow: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || common::http::get(addr, "/slow")))
        .collect();
    for t in slow {
        assert_eq!(
            t.join().unwrap().ok().map(|r| r.status),
            Some(200),
            "{}",
            e.logs()
        );
    }
    let line = wait_line(
        &e,
        Duration::from_secs(10),
        &["RSWSGI0401: descriptor", "is past the fork-safety registry"],
    );
    let fd: i32 = line
        .split("descriptor ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no descriptor in {line}"));
    assert!(fd >= 1024, "{line}");
}

/// The application: `/slow` takes two seconds.
const SLOW: &str = r#"
import time

def application(environ, start_response):
    if environ['PATH_INFO'] == '/slow':
        time.sleep(2)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
"#;

/// One daemon process of `threads` threads that recycles after each request
/// (`--maximum-requests 1`), with a `connect-timeout` of `connect` seconds; returns once its
/// first replacement (after `wait_serving`'s request) is ready.
fn recycling_after_each_request(tag: &str, threads: &str, connect: &str) -> Express {
    let args = [
        "--processes",
        "1",
        "--threads",
        threads,
        "--maximum-requests",
        "1",
    ];
    let mut args = args.to_vec();
    args.extend(["--connect-timeout", connect]);
    let mut e = Express::start(tag, SLOW, &args);
    e.wait_serving();
    wait_for_replacement(&e);
    e
}

/// `GET path` on `e`'s port from a thread of its own.
fn get_in_thread(e: &Express, path: &'static str) -> thread::JoinHandle<Option<u16>> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    thread::spawn(move || common::http::get(addr, path).ok().map(|r| r.status))
}

/// Requests that waited inside a daemon (behind its one busy thread, which accepted them when
/// they arrived together) longer than `connect-timeout`, and are then declined as that daemon
/// recycles, go to the replacements: the wait belongs to `queue-timeout`, not to
/// `connect-timeout`, as under mod_wsgi, where they wait in the socket's queue.
#[test]
fn requests_that_waited_in_a_recycling_daemon_are_served_by_its_replacements() {
    let e = recycling_after_each_request("recycle-queued", "1", "1");
    let slow: Vec<_> = (0..4).map(|_| get_in_thread(&e, "/slow")).collect();
    let statuses: Vec<_> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, [Some(200); 4], "{}", e.logs());
    assert!(
        !e.error_log().contains("kept shutting down"),
        "{}",
        e.logs()
    );
}

/// The application: its module replaces the function the daemon calls to run the `atexit`
/// handlers with one that raises.
const BROKEN_ATEXIT: &str = r#"
import atexit

def broken():
    raise RuntimeError('no exit functions today')

atexit._run_exitfuncs = broken

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
"#;

/// `RSWSGI0509`: running the `atexit` handlers raises as a daemon exits (here at its
/// recycle, `--maximum-requests 1`): the line says why, and the replacement serves.
#[test]
fn atexit_handlers_that_cannot_run_are_reported_and_the_daemon_still_exits() {
    let mut e = Express::start(
        "code-0509",
        BROKEN_ATEXIT,
        &["--processes", "1", "--maximum-requests", "1"],
    );
    e.wait_serving();
    let line = wait_line(
        &e,
        Duration::from_secs(15),
        &[
            "RSWSGI0509: running atexit handlers failed",
            "no exit functions today",
        ],
    );
    assert!(line.contains("[wsgi:error]"), "{line}");
    wait_for_replacement(&e);
    assert_eq!(e.get("/").map(|r| r.status), Some(200), "{}", e.logs());
}

/// Waits until a second daemon has started (the first one's replacement) and is ready.
fn wait_for_replacement(e: &Express) {
    assert!(
        procs::wait_until(Duration::from_secs(20), || e
            .error_log()
            .matches("ready pid=")
            .count()
            >= 2),
        "{}",
        e.logs()
    );
}

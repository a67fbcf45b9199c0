//! `express start-server` waits for the daemons' first load of the script: a script that
//! fails to import stops it at once with the reason (unless `--keep-serving-on-load-error`),
//! a good or slow one starts as before, and the wait is bounded (`--load-wait`).
//! `--startup-log` sends httpd's own start-up messages to `<root>/startup_log`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::express::{assert_all_gone, Express};
use common::{procs, repo_root, Stage};
use rswsgi_protocol::StartupReport;

/// A script that imports a module nobody has.
const IMPORTS_MISSING: &str = "import rswsgi_no_such_module\n\n\
def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'x']\n";

const GOOD: &str = "def application(environ, start_response):\n    \
start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'good\\n']\n";

#[test]
fn a_script_that_fails_to_import_stops_express_with_the_reason() {
    let bound = 30;
    let started = Instant::now();
    let mut express = Express::start(
        "imp",
        IMPORTS_MISSING,
        &["--processes", "2", "--load-wait", &bound.to_string()],
    );
    let status = express.wait_exit(Duration::from_secs(bound + 10));
    let took = started.elapsed();
    let logs = express.logs();
    let status = status.unwrap_or_else(|| panic!("express still runs after {took:?}:\n{logs}"));
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(took < Duration::from_secs(bound), "took {took:?}\n{logs}");
    let err = express.stderr();
    let error_log = express.root.join("error_log");
    for needle in [
        "ModuleNotFoundError: No module named 'rswsgi_no_such_module'",
        &error_log.display().to_string(),
        "--python-home",
        "--keep-serving-on-load-error",
    ] {
        assert!(err.contains(needle), "{needle:?} not in stderr:\n{logs}");
    }
    // It started as usual first, and the traceback is in the log.
    assert!(express.stdout().contains("Server URL"), "{logs}");
    assert!(express.error_log().contains("Traceback"), "{logs}");
    let pids = express.started_pids();
    assert_eq!(
        pids.len(),
        3,
        "httpd and 2 daemons expected: {pids:?}\n{logs}"
    );
    assert_all_gone(&pids, &express.bins, &logs);
}

#[test]
fn keep_serving_on_load_error_serves_500s_and_shows_the_error() {
    let mut express = Express::start("keep", IMPORTS_MISSING, &["--keep-serving-on-load-error"]);
    let shown = express.wait_stderr("serving anyway", Duration::from_secs(30));
    assert!(shown, "{}", express.logs());
    assert!(express.running(), "{}", express.logs());
    let err = express.stderr();
    assert!(
        err.contains("ModuleNotFoundError: No module named 'rswsgi_no_such_module'"),
        "{}",
        express.logs()
    );
    let response = express.get("/");
    assert_eq!(response.map(|r| r.status), Some(500), "{}", express.logs());
    express.stop();
}

/// A good script with two daemons, and one whose import takes 3 s: both serve, express
/// says nothing more than before, and each daemon reported `ready`.
#[test]
fn good_and_slow_scripts_start_as_before() {
    let slow = format!("import time\ntime.sleep(3)\n{GOOD}");
    for (tag, source, processes) in [("good", GOOD.to_owned(), 2), ("slow", slow, 1)] {
        let mut express = Express::start(tag, &source, &["--processes", &processes.to_string()]);
        let served = procs::wait_until(Duration::from_secs(30), || {
            express.get("/").is_some_and(|r| r.status == 200) || !express.running()
        });
        assert!(served && express.running(), "{tag}: {}", express.logs());
        assert!(
            express.stdout().contains("Server URL"),
            "{}",
            express.logs()
        );
        assert_eq!(express.stderr(), "", "{tag}: {}", express.logs());
        // The first daemon may serve before the second has logged its report.
        procs::wait_until(Duration::from_secs(10), || {
            express.reports().len() >= processes
        });
        let ready = express.reports();
        assert_eq!(
            ready.len(),
            processes,
            "{tag}: {ready:?}\n{}",
            express.logs()
        );
        assert!(ready.iter().all(StartupReport::is_ready), "{ready:?}");
        express.stop();
    }
}

/// An import that outlasts `--load-wait`: express says so and serves on.
#[test]
fn the_wait_for_the_first_load_is_bounded() {
    let stage = Stage::new("wait");
    let script = stage.copy(
        &repo_root().join("tests/apps/slow_import.py"),
        "app/wsgi.py",
        0o644,
    );
    let started = Instant::now();
    let mut express = Express::start_script(stage, script, &["--load-wait", "2"]);
    let said = express.wait_stderr("have not finished loading", Duration::from_secs(20));
    assert!(said, "{}", express.logs());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        express.stderr().contains("--load-wait"),
        "{}",
        express.logs()
    );
    assert!(express.running(), "{}", express.logs());
    express.stop();
}

/// `--startup-log`: httpd's start-up messages (here a configuration error) go to
/// `<root>/startup_log` (mode 0640), not to the terminal; with `--log-to-terminal` they go
/// to standard error, as mod_wsgi-express does.
#[test]
fn startup_log_takes_httpds_start_up_messages() {
    for to_terminal in [false, true] {
        let stage = Stage::new("slog");
        let bad = stage.write("bad.conf", "BogusDirective on\n");
        fs::set_permissions(&bad, fs::Permissions::from_mode(0o644)).unwrap();
        let script = stage.write("app/wsgi.py", GOOD);
        let bad = bad.to_str().unwrap().to_owned();
        let mut args = vec!["--startup-log", "--include-file", &bad];
        if to_terminal {
            args.push("--log-to-terminal");
        }
        let mut express = Express::start_script(stage, script, &args);
        let status = express.wait_exit(Duration::from_secs(20));
        let logs = express.logs();
        assert!(status.is_some_and(|s| !s.success()), "{logs}");
        let startup_log = express.root.join("startup_log");
        let message = "Invalid command 'BogusDirective'";
        if to_terminal {
            assert!(
                express
                    .stdout()
                    .contains("Startup Log File   : /dev/stderr"),
                "{logs}"
            );
            assert!(express.stderr().contains(message), "{logs}");
            assert!(!startup_log.exists());
        } else {
            let shown = format!("Startup Log File   : {}", startup_log.display());
            assert!(express.stdout().contains(&shown), "{logs}");
            let written = fs::read_to_string(&startup_log).unwrap_or_default();
            assert!(
                written.contains(message),
                "startup_log: {written:?}\n{logs}"
            );
            assert!(!express.stderr().contains(message), "{logs}");
            let mode = fs::metadata(&startup_log).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
    }
}

//! The daemons keep to Apache's log level (issue 18): at `LogLevel warn` or `error` they write
//! no `[wsgi:info]` line, while the application's `wsgi.errors` and `sys.stderr` output still
//! reaches the error log (at `error`, as mod_wsgi logs it); at `info` their info lines are
//! there. The daemons write to the error log's descriptor themselves, so httpd's own
//! filtering never sees their lines: without `--log-level` they wrote info lines at any level.

mod common;

use std::time::Duration;

use common::express::Express;
use common::{procs, repo_root, TestServer};

const APP: &str = "tests/apps/log_levels.py";

/// The lines of `log` the daemons wrote at Apache level `level`.
fn daemon_lines<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!("] [wsgi:{level}] ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

/// The application's two lines for a request to `path` are in `log`, at error level.
fn assert_app_output(log: &str, path: &str) {
    let errors = daemon_lines(log, "error");
    for line in [
        format!("wsgi-errors-line {path}"),
        format!("stderr-line {path}"),
    ] {
        assert!(
            errors.iter().any(|l| l.ends_with(&line)),
            "no [wsgi:error] line ending {line:?}:\n{log}"
        );
    }
}

/// Runs express with `--log-level level`, serves one request, stops express (SIGTERM) and
/// returns the whole error log: the daemons' lines from start-up to exit.
fn express_error_log(level: &str) -> String {
    let source = std::fs::read_to_string(repo_root().join(APP)).unwrap();
    let mut express = Express::start("loglevel", &source, &["--log-level", level]);
    express.wait_serving();
    let path = format!("/at-{level}");
    assert_eq!(express.get(&path).map(|r| r.status), Some(200));
    let logged = procs::wait_until(Duration::from_secs(10), || {
        express.error_log().contains(&format!("stderr-line {path}"))
    });
    assert!(logged, "{}", express.logs());
    // SAFETY: kill has no memory-safety preconditions; express is our child.
    unsafe { libc::kill(express.child.id() as i32, libc::SIGTERM) };
    let status = express.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", express.logs());
    let daemon = express.bins.daemon.clone();
    let gone = procs::wait_until(Duration::from_secs(5), || {
        procs::running(&daemon).is_empty()
    });
    assert!(gone, "daemons left running:\n{}", express.logs());
    let log = express.error_log();
    assert_app_output(&log, &path);
    log
}

#[test]
fn express_log_level_error_keeps_the_daemons_info_lines_out() {
    require!(venv);
    let log = express_error_log("error");
    let info = daemon_lines(&log, "info");
    assert!(
        info.is_empty(),
        "info lines at --log-level error: {info:#?}\n{log}"
    );
    // The start-up report is still there (express waited for it), as a notice.
    assert!(
        !daemon_lines(&log, "notice").is_empty(),
        "no start-up report:\n{log}"
    );
}

#[test]
fn express_log_level_info_shows_the_daemons_info_lines() {
    require!(venv);
    let log = express_error_log("info");
    let info = daemon_lines(&log, "info");
    assert!(
        info.iter().any(|l| l.contains("daemon for group")),
        "no start-up info line at --log-level info:\n{log}"
    );
    assert!(
        info.iter().any(|l| l.ends_with("] exiting")),
        "no exit info line at --log-level info:\n{log}"
    );
}

/// A server configured by hand: `LogLevel` as written in the configuration (the last one
/// wins, as in Debian's `apache2.conf` with its `LogLevel warn`), serves one request and
/// stops; returns the error log.
fn configured_error_log(log_level: &str) -> String {
    let server = TestServer::builder(APP)
        .directive(&format!("LogLevel {log_level}"))
        .start();
    assert_eq!(server.get("/configured").status, 200);
    let logged = procs::wait_until(Duration::from_secs(10), || {
        server
            .root
            .read_error_log()
            .contains("stderr-line /configured")
    });
    assert!(logged, "{}", server.logs());
    // Opened before the stop, which removes the server's directory: the open file still
    // reads, up to the daemons' last lines.
    let path = server.root.error_log.clone().expect("an error log file");
    let mut file = std::fs::File::open(path).unwrap();
    server.stop();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut file, &mut log).unwrap();
    assert_app_output(&log, "/configured");
    log
}

#[test]
fn configured_log_level_warn_keeps_the_daemons_info_lines_out() {
    require!(venv);
    let log = configured_error_log("warn");
    let info = daemon_lines(&log, "info");
    assert!(
        info.is_empty(),
        "info lines at LogLevel warn: {info:#?}\n{log}"
    );
}

/// `LogLevel warn rswsgi:info`: the module's own level applies to its daemons.
#[test]
fn a_per_module_log_level_applies_to_the_daemons() {
    require!(venv);
    let log = configured_error_log("warn rswsgi:info");
    let info = daemon_lines(&log, "info");
    assert!(
        info.iter().any(|l| l.contains("daemon for group")),
        "no daemon info line at LogLevel warn rswsgi:info:\n{log}"
    );
}

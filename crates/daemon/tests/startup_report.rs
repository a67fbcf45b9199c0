//! Each daemon process logs one start-up report ([`rswsgi_protocol::startup`]) when its
//! start-up is over: `ready`, `load-failed` with the exception's last line, or
//! `start-failed`.

mod common;

use std::time::Duration;

use common::Daemon;
use rswsgi_protocol::StartupReport;

/// The reports in the daemon's log, once the first is there.
fn reports(d: &Daemon) -> Vec<StartupReport> {
    d.wait_log(rswsgi_protocol::startup::MARKER);
    d.log()
        .lines()
        .filter_map(StartupReport::find_in_log_line)
        .collect()
}

#[test]
fn a_script_that_loads_is_reported_ready() {
    let d = Daemon::start(include_str!("apps/hello.py"), &[]);
    let pid = d.pid() as u32;
    assert_eq!(reports(&d), [StartupReport::Ready { pid }], "{}", d.log());
}

#[test]
fn a_failed_import_is_reported_with_the_exceptions_last_line() {
    let d = Daemon::start("import nonexistent_module_xyz\n", &[]);
    let expected = StartupReport::LoadFailed {
        pid: d.pid() as u32,
        script: d.script.to_string_lossy().into_owned(),
        error: "ModuleNotFoundError: No module named 'nonexistent_module_xyz'".into(),
    };
    assert_eq!(reports(&d), [expected], "{}", d.log());
    // The traceback is still logged, before the report.
    assert!(d.log().contains("Traceback"), "{}", d.log());
}

#[test]
fn a_syntax_error_is_reported_by_its_last_line() {
    let d = Daemon::start("def broken(:\n", &[]);
    let got = reports(&d);
    assert!(
        matches!(&got[..], [StartupReport::LoadFailed { error, .. }] if error.starts_with("SyntaxError: ")),
        "{got:?}\n{}",
        d.log()
    );
}

#[test]
fn a_daemon_that_cannot_start_reports_it_once() {
    let mut d = Daemon::start("", &["--python-home", "/nonexistent/venv"]);
    d.wait_exit(Duration::from_secs(10)).expect("daemon exits");
    let got = reports(&d);
    assert!(
        matches!(&got[..], [StartupReport::StartFailed { pid, error }]
            if *pid == d.pid() as u32 && error.contains("/nonexistent/venv")),
        "{got:?}\n{}",
        d.log()
    );
    assert!(d.log().contains("RSWSGI0413:"), "{}", d.log());
}

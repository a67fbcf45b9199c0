//! The start-up report ([`rswsgi_protocol::startup`]): once per process, the line that says
//! how start-up ended, written to the error log for `express` to read.

use std::sync::atomic::{AtomicBool, Ordering};

use rswsgi_protocol::StartupReport;

static REPORTED: AtomicBool = AtomicBool::new(false);

/// Logs `report`, unless this process already reported (the first report wins: a failure
/// after `ready`, or a start-up timeout racing the end of start-up, is not a start-up outcome).
/// It is written at any log level (`ready` as a `notice`, a failure as an `error`), so that
/// express finds it at `--log-level error` too.
pub fn report(report: StartupReport) {
    if REPORTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let label = if report.is_ready() { "notice" } else { "error" };
    crate::log::always(label, &report.to_string());
}

/// Reports that this process could not start serving, for `error`.
pub fn report_start_failed(error: &str) {
    report(StartupReport::StartFailed {
        pid: std::process::id(),
        error: error.to_owned(),
    });
}

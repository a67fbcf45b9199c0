//! Waiting for the daemons' first load of the script: each daemon process logs one start-up
//! report when its start-up is over ([`rswsgi_protocol::startup`]), and express reads them
//! from the error log — the file, or httpd's standard error relayed through express with
//! `--log-to-terminal` — until every process is ready, one failed, httpd exited, or the bound
//! (`--load-wait`) passed.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::process::ChildStderr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rswsgi_protocol::StartupReport;

use crate::root::ServerRoot;

/// How long express waits for the daemons' first load by default (`--load-wait`).
pub const DEFAULT_LOAD_WAIT: u64 = 60;

/// How often the error log is looked at while waiting.
const POLL: Duration = Duration::from_millis(20);

/// How the daemons' first load of the script ended, as far as express waited for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Every daemon process reported ready.
    Loaded,
    /// A daemon process reported that the script failed to load, or that it could not start.
    Failed(StartupReport),
    /// Not every process had reported when the bound passed.
    TimedOut(Duration),
    /// httpd exited first (its own error is in the log; its status says how).
    HttpdExited,
}

/// Where the daemons' log lines are read from.
pub enum LogSource {
    /// The error log file, from where it ended before httpd started.
    File {
        /// The log, open for reading at the next unread byte.
        file: File,
        /// The start of a line not complete yet.
        partial: Vec<u8>,
        /// Its path: with `--rotate-logs`, `rotatelogs -L` makes it a link to a new file
        /// once httpd starts writing, which is then read from its start.
        path: std::path::PathBuf,
    },
    /// httpd's standard error, which a thread copies to express's (see [`LogSource::relay`]).
    Relay(Receiver<StartupReport>),
}

impl LogSource {
    /// Reads `path` from its current end: only lines written after this call count.
    pub fn from_end_of(path: &Path) -> Result<LogSource> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.seek(SeekFrom::End(0))
            .with_context(|| format!("seeking to the end of {}", path.display()))?;
        Ok(LogSource::File {
            file,
            partial: Vec::new(),
            path: path.to_path_buf(),
        })
    }

    /// Copies `stream` (httpd's standard error) line by line to express's standard error
    /// until its end, on a thread of its own, and hands the start-up reports among the lines
    /// to the returned source. A line that cannot be written is dropped; the thread always
    /// reads on, so httpd never blocks on a full pipe.
    pub fn relay(stream: ChildStderr) -> Result<(LogSource, thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("stderr-relay".into())
            .spawn(move || relay_lines(stream, tx))
            .context("starting the standard error relay")?;
        Ok((LogSource::Relay(rx), thread))
    }

    /// The reports that arrived since the last call.
    fn new_reports(&mut self) -> Vec<StartupReport> {
        match self {
            LogSource::Relay(rx) => rx.try_iter().collect(),
            LogSource::File {
                file,
                partial,
                path,
            } => {
                if replaced(file, path) {
                    // Finish the old file, then read the new one from its start.
                    let _ = file.read_to_end(partial);
                    if let Ok(new) = File::open(&*path) {
                        *file = new;
                    }
                }
                if file.read_to_end(partial).is_err() {
                    return Vec::new();
                }
                let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
                    return Vec::new();
                };
                let rest = partial.split_off(end + 1);
                let lines = std::mem::replace(partial, rest);
                String::from_utf8_lossy(&lines)
                    .lines()
                    .filter_map(StartupReport::find_in_log_line)
                    .collect()
            }
        }
    }
}

/// Whether `path` now names another file than `file` (a rotated log's new file).
fn replaced(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(old), Ok(new)) => (old.dev(), old.ino()) != (new.dev(), new.ino()),
        _ => false,
    }
}

fn relay_lines(stream: ChildStderr, reports: Sender<StartupReport>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let _ = std::io::stderr().lock().write_all(&line);
        if let Some(report) = StartupReport::find_in_log_line(&String::from_utf8_lossy(&line)) {
            // Nobody listens once start-up is over: that is fine.
            let _ = reports.send(report);
        }
    }
}

/// Waits until each of `processes` daemon processes reported ready, one reported a failure,
/// `httpd_exited()` holds, or `bound` passed. A process that is replaced before it reports
/// (it crashed) is made up for by its replacement's report.
pub fn wait_for_load(
    source: &mut LogSource,
    processes: u32,
    bound: Duration,
    mut httpd_exited: impl FnMut() -> bool,
) -> LoadOutcome {
    let deadline = Instant::now() + bound;
    let mut ready = std::collections::BTreeSet::new();
    loop {
        for report in source.new_reports() {
            if !report.is_ready() {
                return LoadOutcome::Failed(report);
            }
            ready.insert(report.pid());
        }
        if ready.len() >= processes as usize {
            return LoadOutcome::Loaded;
        }
        if httpd_exited() {
            return LoadOutcome::HttpdExited;
        }
        if Instant::now() >= deadline {
            return LoadOutcome::TimedOut(bound);
        }
        thread::sleep(POLL);
    }
}

/// Says on standard error what `outcome` means for the user (nothing when it loaded or httpd
/// exited), and whether express stops or serves on. Returns whether it stops.
pub fn tell(outcome: &LoadOutcome, root: &ServerRoot) -> bool {
    let c = &root.config;
    let log = match &root.error_log {
        Some(path) => format!("the error log, {}", path.display()),
        None => "the error log (standard error, above)".to_owned(),
    };
    let report = match outcome {
        LoadOutcome::Loaded | LoadOutcome::HttpdExited => return false,
        LoadOutcome::TimedOut(bound) => {
            crate::errln!(
                "express: the daemons have not finished loading {} after {} s (--load-wait); \
                 serving anyway: {log} says how the load ends",
                c.script.display(),
                bound.as_secs()
            );
            return false;
        }
        LoadOutcome::Failed(report) => report,
    };
    match report {
        StartupReport::LoadFailed { pid, script, error } => {
            crate::errln!("express: {script} failed to load in daemon process {pid}: {error}");
            crate::errln!("express: the traceback is in {log}");
            if c.python_home.is_none() && !c.is_native() {
                crate::errln!(
                    "express: no Python home is set, so the daemons' Python sees only its own \
                     packages: if the application's are in a virtualenv, pass --python-home DIR \
                     (or activate the virtualenv, which sets $VIRTUAL_ENV)"
                );
            }
        }
        StartupReport::StartFailed { pid, error } => {
            crate::errln!("express: daemon process {pid} failed to start: {error}");
            crate::errln!("express: the details are in {log}");
        }
        StartupReport::Ready { .. } => return false,
    }
    if c.keep_serving_on_load_error {
        match report {
            StartupReport::LoadFailed { .. } => crate::errln!(
                "express: serving anyway (--keep-serving-on-load-error): each request for the \
                 script tries to load it again and gets a 500 while it fails"
            ),
            _ => crate::errln!(
                "express: serving anyway (--keep-serving-on-load-error): the daemons are \
                 started again after a growing pause, and requests get a 503 until one starts"
            ),
        }
        return false;
    }
    crate::errln!(
        "express: stopping httpd; pass --keep-serving-on-load-error to serve with the error"
    );
    true
}

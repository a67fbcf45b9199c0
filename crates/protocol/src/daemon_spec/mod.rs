//! The daemon's command line: what `mod_rswsgi`'s supervisor execs `rswsgi-daemon` with, and
//! what the daemon reads back (ARCHITECTURE.md, "Daemon command line").
//!
//! [`DaemonSpec`] is the one declaration of that contract: the supervisor builds one and
//! calls [`DaemonSpec::to_args`]; the daemon calls [`DaemonSpec::parse`]. [`FLAGS`] lists
//! every flag with its value and help (the daemon's `--help`). `--check-python-home DIR` is a
//! separate mode of the daemon, not part of the spec.

pub mod flags;
mod log_level;
mod parse;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

// The flags by name (`flags::LISTEN_FD`, `flags::SECRET_FD` and `flags::STATS_FD` by path: the names are
// also the descriptors').
use flags::*;
pub use flags::{Flag, FLAGS};
pub use log_level::{LogLevel, UnknownLogLevel};
pub use parse::SpecError;

/// The descriptor the listening socket is inherited at.
pub const LISTEN_FD: RawFd = 3;
/// The descriptor the pipe holding the connection secret is inherited at.
pub const SECRET_FD: RawFd = 4;
/// The descriptor the group's statistics memfd is inherited at (`--stats-fd`).
pub const STATS_FD: RawFd = 5;
/// `--listen-backlog` (mod_wsgi's `listen-backlog`) when none is given.
pub const DEFAULT_LISTEN_BACKLOG: i32 = 100;
/// The smallest `--send-buffer-size`/`--receive-buffer-size` (mod_wsgi's).
pub const MIN_SOCKET_BUFFER: u32 = 512;
/// The largest size in bytes a flag takes (mod_wsgi's `atoi`'s).
pub const MAX_SIZE: u32 = i32::MAX as u32;
/// `--callable` when none is given.
pub const DEFAULT_CALLABLE: &str = "application";
/// `--graceful-timeout` when none is given.
pub const DEFAULT_GRACEFUL_TIMEOUT: Duration = Duration::from_secs(15);
/// `--deadlock-timeout` when none is given.
pub const DEFAULT_DEADLOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// The recycling limits and timeouts, as flags: see [`LIMITS`].
const LIMIT_FLAGS: [Flag; 15] = [
    MAXIMUM_REQUESTS,
    MAXIMUM_REQUESTS_JITTER,
    RESTART_INTERVAL,
    INACTIVITY_TIMEOUT,
    REQUEST_TIMEOUT,
    INTERRUPT_TIMEOUT,
    GRACEFUL_TIMEOUT,
    EVICTION_TIMEOUT,
    STARTUP_TIMEOUT,
    DEADLOCK_TIMEOUT,
    QUEUE_TIMEOUT,
    MEMORY_LIMIT,
    CPU_TIME_LIMIT,
    HEADER_BUFFER_SIZE,
    RESPONSE_BUFFER_SIZE,
];

/// The recycling limits and timeouts: `WSGIDaemonProcess` options of the same names, and the
/// daemon's flags `--NAME N` (seconds, bytes or a count; 0 turns one off). See
/// [`DaemonSpec::set_limit`].
pub const LIMITS: &[&str] = &flags::options(LIMIT_FLAGS);

/// Whose scripts the daemon may load (`--script-user` or `--script-group`, never both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOwner {
    /// `--script-user UID`.
    User(u32),
    /// `--script-group GID`.
    Group(u32),
}

/// Everything a daemon is started with. Durations are whole seconds on the command line;
/// `None` (0 on the command line) turns a limit off.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSpec {
    /// `--listen-fd`: the inherited listening UNIX socket.
    pub listen_fd: RawFd,
    /// `--secret-fd`: the inherited pipe holding the connection secret.
    pub secret_fd: RawFd,
    /// `--stats-fd`: the inherited memfd of the group's statistics area
    /// ([`crate::stats::GroupArea`]); none: the daemon counts nothing.
    pub stats_fd: Option<RawFd>,
    /// `--peer-uid`: the uid connections must come from (default: the daemon's own).
    pub peer_uid: Option<u32>,
    /// `--listen-backlog`: backlog of the listening socket.
    pub listen_backlog: i32,
    /// `--group`: the daemon process group's name.
    pub group: String,
    /// `--processes`: how many daemon processes the group runs (1 to 100000).
    pub processes: u32,
    /// `--threads`: worker threads in this process (1 to 10000).
    pub threads: u32,
    /// `--parent-pid`: the supervisor's pid; the daemon exits when its parent changes.
    pub parent_pid: i32,
    /// `--script` (repeatable): WSGI scripts loaded at start-up.
    pub scripts: Vec<PathBuf>,
    /// `--allow-script` (repeatable): other scripts requests may name.
    pub allow_scripts: Vec<PathBuf>,
    /// `--allow-dir` (repeatable): directories whose scripts requests may name.
    pub allow_dirs: Vec<PathBuf>,
    /// `--callable`: the callable looked up when a request names none.
    pub callable: String,
    /// `--python-home`: a Python prefix or virtualenv.
    pub python_home: Option<PathBuf>,
    /// `--python-path` (colon-separated, repeatable): the front of `sys.path`.
    pub python_path: Vec<PathBuf>,
    /// `--home`: the working directory.
    pub home: Option<PathBuf>,
    /// `--verbose`: also log debug lines, whatever `log_level` says.
    pub verbose: bool,
    /// `--log-level`: the Apache log level that applies to the module; the daemon writes no
    /// line less severe ([`LogLevel::DEFAULT`]: info).
    pub log_level: LogLevel,
    /// Recycle when a loaded script changes on disk (`--no-script-reloading` turns it off).
    pub script_reloading: bool,
    /// `--reload-on-changes`: watch the file of every imported module, the scripts and
    /// `reload_files`, and recycle gracefully when one changes.
    pub reload_on_changes: bool,
    /// `--reload-file` (repeatable): more files to watch (only with `reload_on_changes`).
    pub reload_files: Vec<PathBuf>,
    /// `--maximum-requests`: recycle after this many requests.
    pub maximum_requests: Option<u64>,
    /// `--maximum-requests-jitter`: up to this many extra requests, per process (0: none).
    pub maximum_requests_jitter: u64,
    /// `--restart-interval`: recycle after running this long.
    pub restart_interval: Option<Duration>,
    /// `--inactivity-timeout`: recycle after this long without a request.
    pub inactivity_timeout: Option<Duration>,
    /// `--request-timeout`: give up a request running this long (504) and recycle.
    pub request_timeout: Option<Duration>,
    /// `--interrupt-timeout`: after request-timeout, raise `mod_wsgi.RequestTimeout` and
    /// recycle only if the request still runs this long afterwards.
    pub interrupt_timeout: Option<Duration>,
    /// `--graceful-timeout`: how long a stop or recycle lets requests finish.
    pub graceful_timeout: Duration,
    /// `--eviction-timeout`: replaces graceful-timeout for a SIGUSR1 recycle.
    pub eviction_timeout: Option<Duration>,
    /// `--startup-timeout`: exit when start-up takes longer.
    pub startup_timeout: Option<Duration>,
    /// `--deadlock-timeout`: exit when Python's GIL cannot be had for this long.
    pub deadlock_timeout: Option<Duration>,
    /// `--queue-timeout`: answer 504 unserved a request that waited longer for a worker.
    pub queue_timeout: Option<Duration>,
    /// `--memory-limit`: recycle when resident memory exceeds this many bytes.
    pub memory_limit: Option<u64>,
    /// `--cpu-time-limit`: recycle after using this much CPU time.
    pub cpu_time_limit: Option<Duration>,
    /// `--header-buffer-size`: largest response head, in bytes (`None`: 1 MiB).
    pub header_buffer_size: Option<usize>,
    /// `--response-buffer-size`: largest body piece sent at once, in bytes (`None`: 1 MiB).
    pub response_buffer_size: Option<usize>,
    /// `--send-buffer-size`: `SO_SNDBUF` of each connection ([`MIN_SOCKET_BUFFER`] to [`MAX_SIZE`]).
    pub send_buffer_size: Option<u32>,
    /// `--receive-buffer-size`: `SO_RCVBUF` of each connection (as send-buffer-size).
    pub receive_buffer_size: Option<u32>,
    /// `--stack-size`: worker threads' stack, in bytes (1 to [`MAX_SIZE`]; default 8 MiB).
    pub stack_size: Option<u64>,
    /// `--switch-interval`: `sys.setswitchinterval()`, positive seconds.
    pub switch_interval: Option<f64>,
    /// `--slow-requests`: log a request that runs longer than this many seconds (at least 0).
    pub slow_requests: Option<f64>,
    /// `--script-user` / `--script-group`: the owner rule for loaded scripts.
    pub script_owner: Option<ScriptOwner>,
    /// `--restrict-stdin`: `sys.stdin` raises OSError on any use.
    pub restrict_stdin: bool,
    /// `--restrict-stdout`: `sys.stdout` raises OSError on any use.
    pub restrict_stdout: bool,
    /// `--apache-version X.Y.Z`: the running httpd's version.
    pub apache_version: Option<(u32, u32, u32)>,
}

impl DaemonSpec {
    /// A spec with the required values and every other one at its default, at the inherited
    /// descriptors [`LISTEN_FD`] and [`SECRET_FD`].
    pub fn new(group: impl Into<String>, processes: u32, threads: u32, parent_pid: i32) -> Self {
        DaemonSpec {
            listen_fd: LISTEN_FD,
            secret_fd: SECRET_FD,
            stats_fd: None,
            peer_uid: None,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            group: group.into(),
            processes,
            threads,
            parent_pid,
            scripts: Vec::new(),
            allow_scripts: Vec::new(),
            allow_dirs: Vec::new(),
            callable: DEFAULT_CALLABLE.to_string(),
            python_home: None,
            python_path: Vec::new(),
            home: None,
            verbose: false,
            log_level: LogLevel::DEFAULT,
            script_reloading: true,
            reload_on_changes: false,
            reload_files: Vec::new(),
            maximum_requests: None,
            maximum_requests_jitter: 0,
            restart_interval: None,
            inactivity_timeout: None,
            request_timeout: None,
            interrupt_timeout: None,
            graceful_timeout: DEFAULT_GRACEFUL_TIMEOUT,
            eviction_timeout: None,
            startup_timeout: None,
            deadlock_timeout: Some(DEFAULT_DEADLOCK_TIMEOUT),
            queue_timeout: None,
            memory_limit: None,
            cpu_time_limit: None,
            header_buffer_size: None,
            response_buffer_size: None,
            send_buffer_size: None,
            receive_buffer_size: None,
            stack_size: None,
            switch_interval: None,
            slow_requests: None,
            script_owner: None,
            restrict_stdin: false,
            restrict_stdout: false,
            apache_version: None,
        }
    }

    /// The command line after `argv[0]`: the required flags, then each other value that is
    /// not its default.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a = Args(Vec::new());
        a.value(flags::LISTEN_FD, self.listen_fd);
        a.value(flags::SECRET_FD, self.secret_fd);
        a.opt(flags::STATS_FD, self.stats_fd);
        a.opt(PEER_UID, self.peer_uid);
        if self.listen_backlog != DEFAULT_LISTEN_BACKLOG {
            a.value(LISTEN_BACKLOG, self.listen_backlog);
        }
        a.value(GROUP, &self.group);
        a.value(PROCESSES, self.processes);
        a.value(THREADS, self.threads);
        a.value(PARENT_PID, self.parent_pid);
        a.paths(SCRIPT, &self.scripts);
        a.paths(ALLOW_SCRIPT, &self.allow_scripts);
        a.paths(ALLOW_DIR, &self.allow_dirs);
        if self.callable != DEFAULT_CALLABLE {
            a.value(CALLABLE, &self.callable);
        }
        a.path(PYTHON_HOME, self.python_home.as_ref());
        if !self.python_path.is_empty() {
            let joined = std::env::join_paths(&self.python_path);
            // join_paths fails only on a path holding ':'; pass those one by one.
            match joined {
                Ok(p) => a.path(PYTHON_PATH, Some(&p.into())),
                Err(_) => a.paths(PYTHON_PATH, &self.python_path),
            }
        }
        a.path(HOME, self.home.as_ref());
        a.switch(VERBOSE, self.verbose);
        if self.log_level != LogLevel::DEFAULT {
            a.value(LOG_LEVEL, self.log_level);
        }
        a.switch(NO_SCRIPT_RELOADING, !self.script_reloading);
        a.switch(RELOAD_ON_CHANGES, self.reload_on_changes);
        a.paths(RELOAD_FILE, &self.reload_files);
        self.limit_args(&mut a);
        a.opt(SEND_BUFFER_SIZE, self.send_buffer_size);
        a.opt(RECEIVE_BUFFER_SIZE, self.receive_buffer_size);
        a.opt(STACK_SIZE, self.stack_size);
        a.opt(SWITCH_INTERVAL, self.switch_interval);
        a.opt(SLOW_REQUESTS, self.slow_requests);
        match self.script_owner {
            Some(ScriptOwner::User(uid)) => a.value(SCRIPT_USER, uid),
            Some(ScriptOwner::Group(gid)) => a.value(SCRIPT_GROUP, gid),
            None => {}
        }
        a.switch(RESTRICT_STDIN, self.restrict_stdin);
        a.switch(RESTRICT_STDOUT, self.restrict_stdout);
        if let Some((x, y, z)) = self.apache_version {
            a.value(APACHE_VERSION, format!("{x}.{y}.{z}"));
        }
        a.0
    }

    /// The recycling limits and timeouts, each only when set (0 turns one off).
    fn limit_args(&self, a: &mut Args) {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        a.opt(MAXIMUM_REQUESTS, self.maximum_requests);
        if self.maximum_requests_jitter > 0 {
            a.value(MAXIMUM_REQUESTS_JITTER, self.maximum_requests_jitter);
        }
        a.opt(RESTART_INTERVAL, secs(self.restart_interval));
        a.opt(INACTIVITY_TIMEOUT, secs(self.inactivity_timeout));
        a.opt(REQUEST_TIMEOUT, secs(self.request_timeout));
        a.opt(INTERRUPT_TIMEOUT, secs(self.interrupt_timeout));
        if self.graceful_timeout != DEFAULT_GRACEFUL_TIMEOUT {
            a.value(GRACEFUL_TIMEOUT, self.graceful_timeout.as_secs());
        }
        a.opt(EVICTION_TIMEOUT, secs(self.eviction_timeout));
        a.opt(STARTUP_TIMEOUT, secs(self.startup_timeout));
        if self.deadlock_timeout != Some(DEFAULT_DEADLOCK_TIMEOUT) {
            a.value(DEADLOCK_TIMEOUT, secs(self.deadlock_timeout).unwrap_or(0));
        }
        a.opt(QUEUE_TIMEOUT, secs(self.queue_timeout));
        a.opt(MEMORY_LIMIT, self.memory_limit);
        a.opt(CPU_TIME_LIMIT, secs(self.cpu_time_limit));
        a.opt(HEADER_BUFFER_SIZE, self.header_buffer_size);
        a.opt(RESPONSE_BUFFER_SIZE, self.response_buffer_size);
    }

    /// Sets the limit called `name` (one of [`LIMITS`]) to `n`, 0 turning it off (for
    /// `graceful-timeout`: no grace); false when `name` is no limit.
    pub fn set_limit(&mut self, name: &str, n: u64) -> bool {
        match LIMIT_FLAGS.iter().find(|f| f.option() == name) {
            Some(flag) => {
                self.set_limit_flag(*flag, n);
                true
            }
            None => false,
        }
    }

    /// Sets the limit of `flag` (one of [`LIMIT_FLAGS`]) to `n`, 0 turning it off.
    fn set_limit_flag(&mut self, flag: Flag, n: u64) {
        let on = (n > 0).then_some(n);
        let secs = on.map(Duration::from_secs);
        let bytes = on.map(|b| usize::try_from(b).unwrap_or(usize::MAX));
        match flag {
            MAXIMUM_REQUESTS => self.maximum_requests = on,
            MAXIMUM_REQUESTS_JITTER => self.maximum_requests_jitter = n,
            RESTART_INTERVAL => self.restart_interval = secs,
            INACTIVITY_TIMEOUT => self.inactivity_timeout = secs,
            REQUEST_TIMEOUT => self.request_timeout = secs,
            INTERRUPT_TIMEOUT => self.interrupt_timeout = secs,
            GRACEFUL_TIMEOUT => self.graceful_timeout = Duration::from_secs(n),
            EVICTION_TIMEOUT => self.eviction_timeout = secs,
            STARTUP_TIMEOUT => self.startup_timeout = secs,
            DEADLOCK_TIMEOUT => self.deadlock_timeout = secs,
            QUEUE_TIMEOUT => self.queue_timeout = secs,
            MEMORY_LIMIT => self.memory_limit = on,
            CPU_TIME_LIMIT => self.cpu_time_limit = secs,
            HEADER_BUFFER_SIZE => self.header_buffer_size = bytes,
            RESPONSE_BUFFER_SIZE => self.response_buffer_size = bytes,
            other => unreachable!("{} is no limit", other.name),
        }
    }

    /// The daemon's `--help`: a usage line and one line per flag of [`FLAGS`].
    pub fn help() -> String {
        let mut out = String::from(
            "rswsgi daemon process (started by mod_rswsgi)\n\nUsage: rswsgi-daemon [OPTIONS]",
        );
        for f in FLAGS.iter().filter(|f| f.required) {
            out.push_str(&format!(" {} <{}>", f.name, f.value.unwrap_or_default()));
        }
        out.push_str("\n       rswsgi-daemon --check-python-home <DIR>\n\nOptions:\n");
        for f in FLAGS {
            let head = match f.value {
                Some(v) => format!("{} <{v}>", f.name),
                None => f.name.to_string(),
            };
            let more = if f.repeatable { " (repeatable)" } else { "" };
            out.push_str(&format!("  {head:<32} {}{more}\n", f.help));
        }
        out.push_str("  -h, --help                       Print help\n");
        out.push_str("  -V, --version                    Print version\n");
        out
    }
}

/// The command line as it is built.
struct Args(Vec<OsString>);

impl Args {
    fn value(&mut self, flag: Flag, v: impl ToString) {
        self.0.extend([flag.name.into(), v.to_string().into()]);
    }
    fn opt(&mut self, flag: Flag, v: Option<impl ToString>) {
        if let Some(v) = v {
            self.value(flag, v);
        }
    }
    fn path(&mut self, flag: Flag, p: Option<&PathBuf>) {
        if let Some(p) = p {
            self.0
                .extend([flag.name.into(), p.clone().into_os_string()]);
        }
    }
    fn paths(&mut self, flag: Flag, ps: &[PathBuf]) {
        for p in ps {
            self.path(flag, Some(p));
        }
    }
    fn switch(&mut self, flag: Flag, on: bool) {
        if on {
            self.0.push(flag.name.into());
        }
    }
}

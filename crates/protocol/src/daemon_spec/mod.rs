//! The daemon's command line: what `mod_rswsgi`'s supervisor execs `rswsgi-daemon` with, and
//! what the daemon reads back (ARCHITECTURE.md, "Daemon command line").
//!
//! [`DaemonSpec`] is the one declaration of that contract: the supervisor builds one and
//! calls [`DaemonSpec::to_args`]; the daemon calls [`DaemonSpec::parse`]. [`FLAGS`] lists
//! every flag with its value and help (the daemon's `--help`). `--check-python-home DIR` is a
//! separate mode of the daemon, not part of the spec.

mod parse;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::SpecError;

/// The descriptor the listening socket is inherited at.
pub const LISTEN_FD: RawFd = 3;
/// The descriptor the pipe holding the connection secret is inherited at.
pub const SECRET_FD: RawFd = 4;
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

/// The recycling limits and timeouts: `WSGIDaemonProcess` options of the same names, and the
/// daemon's flags `--NAME N` (seconds, bytes or a count; 0 turns one off). See
/// [`DaemonSpec::set_limit`].
pub const LIMITS: &[&str] = &[
    "maximum-requests",
    "maximum-requests-jitter",
    "restart-interval",
    "inactivity-timeout",
    "request-timeout",
    "interrupt-timeout",
    "graceful-timeout",
    "eviction-timeout",
    "startup-timeout",
    "deadlock-timeout",
    "queue-timeout",
    "memory-limit",
    "cpu-time-limit",
    "header-buffer-size",
    "response-buffer-size",
];

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
    /// `--verbose`: also log debug lines.
    pub verbose: bool,
    /// Recycle when a loaded script changes on disk (`--no-script-reloading` turns it off).
    pub script_reloading: bool,
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
    /// `--script-user` / `--script-group`: the owner rule for loaded scripts.
    pub script_owner: Option<ScriptOwner>,
    /// `--restrict-stdin`: `sys.stdin` raises OSError on any use.
    pub restrict_stdin: bool,
    /// `--restrict-stdout`: `sys.stdout` raises OSError on any use.
    pub restrict_stdout: bool,
    /// `--apache-version X.Y.Z`: the running httpd's version.
    pub apache_version: Option<(u32, u32, u32)>,
}

/// One flag of the command line, for `--help` and the documentation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// `--name`.
    pub name: &'static str,
    /// The value's placeholder, or `None` for a switch.
    pub value: Option<&'static str>,
    /// Whether the flag may be given more than once.
    pub repeatable: bool,
    /// Whether a command line without it is refused.
    pub required: bool,
    /// One line of help.
    pub help: &'static str,
}

const fn flag(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeatable: false,
        required: false,
        help,
    }
}

const fn need(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        required: true,
        ..flag(name, value, help)
    }
}

const fn many(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        repeatable: true,
        ..flag(name, value, help)
    }
}

const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: None,
        repeatable: false,
        required: false,
        help,
    }
}

/// Every flag [`DaemonSpec::to_args`] can write and [`DaemonSpec::parse`] reads.
pub const FLAGS: &[Flag] = &[
    need("--listen-fd", "FD", "The inherited listening UNIX socket"),
    need(
        "--secret-fd",
        "FD",
        "The inherited pipe holding the connection secret",
    ),
    flag(
        "--peer-uid",
        "UID",
        "The uid connections must come from (default: this process's)",
    ),
    flag(
        "--listen-backlog",
        "N",
        "Backlog of the listening socket [default: 100]",
    ),
    need("--group", "NAME", "The daemon process group's name"),
    need(
        "--processes",
        "N",
        "How many daemon processes the group runs",
    ),
    need("--threads", "M", "Worker threads in this process"),
    need(
        "--parent-pid",
        "PID",
        "The supervisor's pid: exit when the parent changes",
    ),
    many("--script", "FILE", "A WSGI script to load at start-up"),
    many(
        "--allow-script",
        "FILE",
        "Another script requests may name, loaded on first use",
    ),
    many(
        "--allow-dir",
        "DIR",
        "A directory whose scripts requests may name",
    ),
    flag(
        "--callable",
        "NAME",
        "The callable requests get by default [default: application]",
    ),
    flag(
        "--python-home",
        "DIR",
        "A Python prefix or virtualenv to use",
    ),
    many(
        "--python-path",
        "DIR[:DIR]",
        "Directories to put at the front of sys.path",
    ),
    flag("--home", "DIR", "Working directory of the process"),
    switch("--verbose", "Also log debug lines"),
    switch(
        "--no-script-reloading",
        "Do not recycle when a loaded script changes",
    ),
    flag(
        "--maximum-requests",
        "N",
        "Recycle after this many requests (0: never)",
    ),
    flag(
        "--maximum-requests-jitter",
        "N",
        "Up to this many extra requests, per process",
    ),
    flag(
        "--restart-interval",
        "S",
        "Recycle after running this many seconds (0: never)",
    ),
    flag(
        "--inactivity-timeout",
        "S",
        "Recycle after this many idle seconds (0: never)",
    ),
    flag(
        "--request-timeout",
        "S",
        "Give up a request after this many seconds (0: never)",
    ),
    flag(
        "--interrupt-timeout",
        "S",
        "Raise mod_wsgi.RequestTimeout first, recycle later",
    ),
    flag(
        "--graceful-timeout",
        "S",
        "Seconds a stop lets requests finish [default: 15]",
    ),
    flag(
        "--eviction-timeout",
        "S",
        "Seconds a SIGUSR1 recycle lets requests finish",
    ),
    flag(
        "--startup-timeout",
        "S",
        "Exit when start-up takes longer (0: never)",
    ),
    flag(
        "--deadlock-timeout",
        "S",
        "Exit when the GIL is stuck this long [default: 300]",
    ),
    flag(
        "--queue-timeout",
        "S",
        "504 a request that waited longer for a worker (0: never)",
    ),
    flag(
        "--memory-limit",
        "BYTES",
        "Recycle above this resident memory (0: never)",
    ),
    flag(
        "--cpu-time-limit",
        "S",
        "Recycle after this much CPU time (0: never)",
    ),
    flag(
        "--header-buffer-size",
        "BYTES",
        "Largest response head (0: 1 MiB)",
    ),
    flag(
        "--response-buffer-size",
        "BYTES",
        "Largest body piece sent at once (0: 1 MiB)",
    ),
    flag(
        "--send-buffer-size",
        "BYTES",
        "SO_SNDBUF of each accepted connection",
    ),
    flag(
        "--receive-buffer-size",
        "BYTES",
        "SO_RCVBUF of each accepted connection",
    ),
    flag("--stack-size", "BYTES", "Stack size of the worker threads"),
    flag(
        "--switch-interval",
        "S",
        "sys.setswitchinterval() at start-up",
    ),
    flag(
        "--script-user",
        "UID",
        "Only load scripts owned by this uid",
    ),
    flag("--script-group", "GID", "Only load scripts of this gid"),
    switch("--restrict-stdin", "sys.stdin raises OSError on any use"),
    switch("--restrict-stdout", "sys.stdout raises OSError on any use"),
    flag(
        "--apache-version",
        "X.Y.Z",
        "The version of the Apache that started this process",
    ),
];

impl DaemonSpec {
    /// A spec with the required values and every other one at its default, at the inherited
    /// descriptors [`LISTEN_FD`] and [`SECRET_FD`].
    pub fn new(group: impl Into<String>, processes: u32, threads: u32, parent_pid: i32) -> Self {
        DaemonSpec {
            listen_fd: LISTEN_FD,
            secret_fd: SECRET_FD,
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
            script_reloading: true,
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
        a.value("--listen-fd", self.listen_fd);
        a.value("--secret-fd", self.secret_fd);
        a.opt("--peer-uid", self.peer_uid);
        if self.listen_backlog != DEFAULT_LISTEN_BACKLOG {
            a.value("--listen-backlog", self.listen_backlog);
        }
        a.value("--group", &self.group);
        a.value("--processes", self.processes);
        a.value("--threads", self.threads);
        a.value("--parent-pid", self.parent_pid);
        a.paths("--script", &self.scripts);
        a.paths("--allow-script", &self.allow_scripts);
        a.paths("--allow-dir", &self.allow_dirs);
        if self.callable != DEFAULT_CALLABLE {
            a.value("--callable", &self.callable);
        }
        a.path("--python-home", self.python_home.as_ref());
        if !self.python_path.is_empty() {
            let joined = std::env::join_paths(&self.python_path);
            // join_paths fails only on a path holding ':'; pass those one by one.
            match joined {
                Ok(p) => a.path("--python-path", Some(&p.into())),
                Err(_) => a.paths("--python-path", &self.python_path),
            }
        }
        a.path("--home", self.home.as_ref());
        a.switch("--verbose", self.verbose);
        a.switch("--no-script-reloading", !self.script_reloading);
        self.limit_args(&mut a);
        a.opt("--send-buffer-size", self.send_buffer_size);
        a.opt("--receive-buffer-size", self.receive_buffer_size);
        a.opt("--stack-size", self.stack_size);
        a.opt("--switch-interval", self.switch_interval);
        match self.script_owner {
            Some(ScriptOwner::User(uid)) => a.value("--script-user", uid),
            Some(ScriptOwner::Group(gid)) => a.value("--script-group", gid),
            None => {}
        }
        a.switch("--restrict-stdin", self.restrict_stdin);
        a.switch("--restrict-stdout", self.restrict_stdout);
        if let Some((x, y, z)) = self.apache_version {
            a.value("--apache-version", format!("{x}.{y}.{z}"));
        }
        a.0
    }

    /// The recycling limits and timeouts, each only when set (0 turns one off).
    fn limit_args(&self, a: &mut Args) {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        a.opt("--maximum-requests", self.maximum_requests);
        if self.maximum_requests_jitter > 0 {
            a.value("--maximum-requests-jitter", self.maximum_requests_jitter);
        }
        a.opt("--restart-interval", secs(self.restart_interval));
        a.opt("--inactivity-timeout", secs(self.inactivity_timeout));
        a.opt("--request-timeout", secs(self.request_timeout));
        a.opt("--interrupt-timeout", secs(self.interrupt_timeout));
        if self.graceful_timeout != DEFAULT_GRACEFUL_TIMEOUT {
            a.value("--graceful-timeout", self.graceful_timeout.as_secs());
        }
        a.opt("--eviction-timeout", secs(self.eviction_timeout));
        a.opt("--startup-timeout", secs(self.startup_timeout));
        if self.deadlock_timeout != Some(DEFAULT_DEADLOCK_TIMEOUT) {
            a.value(
                "--deadlock-timeout",
                secs(self.deadlock_timeout).unwrap_or(0),
            );
        }
        a.opt("--queue-timeout", secs(self.queue_timeout));
        a.opt("--memory-limit", self.memory_limit);
        a.opt("--cpu-time-limit", secs(self.cpu_time_limit));
        a.opt("--header-buffer-size", self.header_buffer_size);
        a.opt("--response-buffer-size", self.response_buffer_size);
    }

    /// Sets the limit called `name` (one of [`LIMITS`]) to `n`, 0 turning it off (for
    /// `graceful-timeout`: no grace); false when `name` is no limit.
    pub fn set_limit(&mut self, name: &str, n: u64) -> bool {
        let on = (n > 0).then_some(n);
        let secs = on.map(Duration::from_secs);
        let bytes = on.map(|b| usize::try_from(b).unwrap_or(usize::MAX));
        match name {
            "maximum-requests" => self.maximum_requests = on,
            "maximum-requests-jitter" => self.maximum_requests_jitter = n,
            "restart-interval" => self.restart_interval = secs,
            "inactivity-timeout" => self.inactivity_timeout = secs,
            "request-timeout" => self.request_timeout = secs,
            "interrupt-timeout" => self.interrupt_timeout = secs,
            "graceful-timeout" => self.graceful_timeout = Duration::from_secs(n),
            "eviction-timeout" => self.eviction_timeout = secs,
            "startup-timeout" => self.startup_timeout = secs,
            "deadlock-timeout" => self.deadlock_timeout = secs,
            "queue-timeout" => self.queue_timeout = secs,
            "memory-limit" => self.memory_limit = on,
            "cpu-time-limit" => self.cpu_time_limit = secs,
            "header-buffer-size" => self.header_buffer_size = bytes,
            "response-buffer-size" => self.response_buffer_size = bytes,
            _ => return false,
        }
        true
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
    fn value(&mut self, flag: &str, v: impl ToString) {
        self.0.extend([flag.into(), v.to_string().into()]);
    }
    fn opt(&mut self, flag: &str, v: Option<impl ToString>) {
        if let Some(v) = v {
            self.value(flag, v);
        }
    }
    fn path(&mut self, flag: &str, p: Option<&PathBuf>) {
        if let Some(p) = p {
            self.0.extend([flag.into(), p.clone().into_os_string()]);
        }
    }
    fn paths(&mut self, flag: &str, ps: &[PathBuf]) {
        for p in ps {
            self.path(flag, Some(p));
        }
    }
    fn switch(&mut self, flag: &str, on: bool) {
        if on {
            self.0.push(flag.into());
        }
    }
}

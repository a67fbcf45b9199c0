//! [`FLAGS`]: every flag of the daemon's command line, each declared once here. The
//! constants of this module name them where [`DaemonSpec::to_args`](super::DaemonSpec::to_args)
//! writes and [`DaemonSpec::parse`](super::DaemonSpec::parse) reads them, so no flag's name is
//! written anywhere else.

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

impl Flag {
    /// The name without its leading `--`: for a recycling limit, the `WSGIDaemonProcess`
    /// option of the same name (see [`LIMITS`](super::LIMITS)).
    pub const fn option(&self) -> &'static str {
        self.name.split_at(2).1
    }
}

/// The [`Flag::option`] names of `flags`.
pub(super) const fn options<const N: usize>(flags: [Flag; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = flags[i].option();
        i += 1;
    }
    out
}

const fn value(name: &'static str, value: &'static str, help: &'static str) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeatable: false,
        required: false,
        help,
    }
}

const fn need(name: &'static str, value_name: &'static str, help: &'static str) -> Flag {
    Flag {
        required: true,
        ..value(name, value_name, help)
    }
}

const fn many(name: &'static str, value_name: &'static str, help: &'static str) -> Flag {
    Flag {
        repeatable: true,
        ..value(name, value_name, help)
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

/// Declares each flag as a constant of this module and lists them all in [`FLAGS`].
macro_rules! flags {
    ($($id:ident = $kind:ident($name:literal, $($arg:literal),+);)+) => {
        $(
            #[doc = concat!("`", $name, "`.")]
            pub const $id: Flag = $kind($name, $($arg),+);
        )+
        /// Every flag [`DaemonSpec::to_args`](super::DaemonSpec::to_args) can write and
        /// [`DaemonSpec::parse`](super::DaemonSpec::parse) reads, in `--help`'s order.
        pub const FLAGS: &[Flag] = &[$($id),+];
    };
}

flags! {
    LISTEN_FD = need("--listen-fd", "FD", "The inherited listening UNIX socket");
    SECRET_FD = need("--secret-fd", "FD", "The inherited pipe holding the connection secret");
    STATS_FD = value("--stats-fd", "FD", "The inherited memfd of the group's statistics area (rswsgi_protocol::stats)");
    PEER_UID = value("--peer-uid", "UID", "The uid connections must come from (default: this process's)");
    LISTEN_BACKLOG = value("--listen-backlog", "N", "Backlog of the listening socket [default: 100]");
    GROUP = need("--group", "NAME", "The daemon process group's name");
    PROCESSES = need("--processes", "N", "How many daemon processes the group runs");
    THREADS = need("--threads", "M", "Worker threads in this process");
    PARENT_PID = need("--parent-pid", "PID", "The supervisor's pid: exit when the parent changes");
    SCRIPT = many("--script", "FILE", "A WSGI script to load at start-up");
    ALLOW_SCRIPT = many("--allow-script", "FILE", "Another script requests may name, loaded on first use");
    ALLOW_DIR = many("--allow-dir", "DIR", "A directory whose scripts requests may name");
    CALLABLE = value("--callable", "NAME", "The callable requests get by default [default: application]");
    PYTHON_HOME = value("--python-home", "DIR", "A Python prefix or virtualenv to use");
    PYTHON_PATH = many("--python-path", "DIR[:DIR]", "Directories to put at the front of sys.path");
    HOME = value("--home", "DIR", "Working directory of the process");
    VERBOSE = switch("--verbose", "Also log debug lines, whatever --log-level says");
    LOG_LEVEL = value("--log-level", "LEVEL", "Apache's LogLevel: write no line less severe [default: info]");
    NO_SCRIPT_RELOADING = switch("--no-script-reloading", "Do not recycle when a loaded script changes");
    RELOAD_ON_CHANGES = switch("--reload-on-changes", "Recycle when a file of an imported module (or a --reload-file) changes");
    RELOAD_FILE = many("--reload-file", "FILE", "Another file whose change recycles (needs --reload-on-changes)");
    MAXIMUM_REQUESTS = value("--maximum-requests", "N", "Recycle after this many requests (0: never)");
    MAXIMUM_REQUESTS_JITTER = value("--maximum-requests-jitter", "N", "Up to this many extra requests, per process");
    RESTART_INTERVAL = value("--restart-interval", "S", "Recycle after running this many seconds (0: never)");
    INACTIVITY_TIMEOUT = value("--inactivity-timeout", "S", "Recycle after this many idle seconds (0: never)");
    REQUEST_TIMEOUT = value("--request-timeout", "S", "Give up a request after this many seconds (0: never)");
    INTERRUPT_TIMEOUT = value("--interrupt-timeout", "S", "Raise mod_wsgi.RequestTimeout first, recycle later");
    GRACEFUL_TIMEOUT = value("--graceful-timeout", "S", "Seconds a stop lets requests finish [default: 15]");
    EVICTION_TIMEOUT = value("--eviction-timeout", "S", "Seconds a SIGUSR1 recycle lets requests finish");
    STARTUP_TIMEOUT = value("--startup-timeout", "S", "Exit when start-up takes longer (0: never)");
    DEADLOCK_TIMEOUT = value("--deadlock-timeout", "S", "Exit when the GIL is stuck this long [default: 300]");
    QUEUE_TIMEOUT = value("--queue-timeout", "S", "504 a request that waited longer for a worker (0: never)");
    MEMORY_LIMIT = value("--memory-limit", "BYTES", "Recycle above this resident memory (0: never)");
    CPU_TIME_LIMIT = value("--cpu-time-limit", "S", "Recycle after this much CPU time (0: never)");
    HEADER_BUFFER_SIZE = value("--header-buffer-size", "BYTES", "Largest response head (0: 1 MiB)");
    RESPONSE_BUFFER_SIZE = value("--response-buffer-size", "BYTES", "Largest body piece sent at once (0: 1 MiB)");
    SEND_BUFFER_SIZE = value("--send-buffer-size", "BYTES", "SO_SNDBUF of each accepted connection");
    RECEIVE_BUFFER_SIZE = value("--receive-buffer-size", "BYTES", "SO_RCVBUF of each accepted connection");
    STACK_SIZE = value("--stack-size", "BYTES", "Stack size of the worker threads");
    SWITCH_INTERVAL = value("--switch-interval", "S", "sys.setswitchinterval() at start-up");
    SLOW_REQUESTS = value("--slow-requests", "S", "Log requests that run longer than this many seconds (0: every one)");
    SCRIPT_USER = value("--script-user", "UID", "Only load scripts owned by this uid");
    SCRIPT_GROUP = value("--script-group", "GID", "Only load scripts of this gid");
    RESTRICT_STDIN = switch("--restrict-stdin", "sys.stdin raises OSError on any use");
    RESTRICT_STDOUT = switch("--restrict-stdout", "sys.stdout raises OSError on any use");
    APACHE_VERSION = value("--apache-version", "X.Y.Z", "The version of the Apache that started this process");
}

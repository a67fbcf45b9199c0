//! Stable error codes: every warning and error line rswsgi writes for an operator (the
//! module, the supervisor and the daemons) carries one, right before its text:
//!
//! ```text
//! [..] [rswsgi:error] [pid 1234:tid 5678] [client 127.0.0.1:4242] [request YhqX] RSWSGI0102: daemon process …
//! ```
//!
//! The code is the contract (tests, alerting and `docs/errors.md` match it, never the prose);
//! the text after it may change. Codes are grouped by where a line comes from: `01xx` the
//! module's request dispatch and relay, `02xx` the supervisor, `03xx` configuration checks,
//! `04xx` a daemon process and its workers, `05xx` the application as the daemon sees it
//! (its exceptions, a script that fails to load). The application's own text (`wsgi.errors`,
//! its standard error, the lines of a traceback) carries no code, as mod_wsgi writes it.
//!
//! A line about a request names it the same way in the module's and the daemons' lines:
//! [`request_tag`], `[request ID] ` before the code, `ID` being Apache's log id (`%L`,
//! `mod_wsgi.request_id`), so the error log joins the access log.
//!
//! Adding a code is one line in the table below and one section in `docs/errors.md` (a unit
//! test requires both to name the same set).

use std::fmt::{self, Write as _};

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal,)*) => {
        /// A stable error code, written `RSWSGI` and four digits (see the [module](self) docs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code's number (`102` for `RSWSGI0102`).
            pub const fn number(self) -> u16 {
                match self {
                    $(Code::$name => $num,)*
                }
            }
        }
    };
}

codes! {
    // 01xx: the module's request dispatch and relay.
    /// No answer from the daemon within the group's `socket-timeout`.
    RelayTimeout = 101,
    /// The daemon closed the connection before the response was complete (it may have died).
    RelayClosed = 102,
    /// The daemon sent a frame that breaks the protocol.
    RelayProtocol = 103,
    /// The daemon refused the request's script (`script-user`, `script-group`).
    RelayRefused = 104,
    /// The application failed (the daemon sent an `Error` frame).
    RelayAppFailed = 105,
    /// The application's response head cannot be sent.
    RelayBadHead = 106,
    /// The daemon gave the request up (`request-timeout`, `queue-timeout`).
    RelayGivenUp = 107,
    /// The daemon could not take the request.
    RelayUnavailable = 108,
    /// The application sent more body than its `Content-Length`.
    ContentLengthExceeded = 109,
    /// The application ended its body short of its `Content-Length`.
    ContentLengthShort = 110,
    /// A request is mapped to rswsgi but names no daemon process group.
    NoProcessGroup = 111,
    /// `WSGIRestrictProcess` forbids the group here.
    GroupRestricted = 112,
    /// The request's daemon group is not running.
    GroupNotRunning = 113,
    /// The daemons were not started, so there is no connection secret.
    NoSecret = 114,
    /// The group's daemons kept shutting down for `connect-timeout`.
    GroupShuttingDown = 115,
    /// No daemon of the group could be connected to.
    ConnectFailed = 116,
    /// The request head is too large to forward.
    HeadTooLarge = 117,
    /// A file handled by `wsgi-script` is refused (`Options ExecCGI`, not a file).
    HandledFileRefused = 118,
    /// An auth or dispatch script has no daemon group to run in.
    HookNoGroup = 119,
    /// An auth or dispatch script failed.
    HookFailed = 120,
    /// An auth provider is used but no script is configured for it.
    AuthNoScript = 121,
    /// `Require wsgi-group`: the user is in none of the groups.
    AuthzGroupDenied = 122,
    /// `WSGIAccessScript` denied the client.
    AccessDenied = 123,
    /// An internal error (a panic) in the module while serving a request.
    ModulePanic = 124,

    // 02xx: the supervisor.
    /// `socket-user` is ignored: httpd does not run as root.
    SocketUserIgnored = 201,
    /// A `WSGIDaemonProcess` option is accepted but not carried out.
    OptionIgnored = 202,
    /// `user=` is ignored: httpd does not run as root.
    UserIgnored = 203,
    /// A group's socket was deleted or replaced since the last start.
    SocketReplaced = 204,
    /// A daemon group could not be started.
    GroupNotStarted = 205,
    /// A daemon process could not be started.
    DaemonSpawnFailed = 206,
    /// A daemon process exited or was killed; it is restarted.
    DaemonDied = 207,
    /// A daemon did not exit within `shutdown-timeout` and is killed.
    ShutdownKill = 208,
    /// Apache's children are dumpable (`CoreDumpDirectory`).
    DumpableChildren = 209,
    /// Starting the daemon processes failed.
    StartFailed = 210,
    /// The statistics area carried over a graceful restart cannot be used; counting restarts
    /// from zero.
    StatsCarriedUnusable = 211,
    /// The module's statistics area could not be created: the metrics endpoint counts nothing.
    StatsAreaMissing = 212,
    /// A daemon group's statistics area could not be created: its daemons are not counted.
    GroupStatsMissing = 213,

    // 03xx: configuration checks.
    /// The configuration cannot be carried out.
    ConfigError = 301,
    /// A directive warning.
    DirectiveWarning = 302,
    /// Several applications share one interpreter.
    SharedInterpreter = 303,
    /// An internal error while reading a directive.
    DirectiveInternal = 304,

    // 04xx: a daemon process and its workers.
    /// A descriptor is past the fork-safety registry.
    ForkRegistryFull = 401,
    /// A connection gets no response ring.
    NoResponseRing = 402,
    /// Too many connections had not answered their challenge.
    UnansweredChallenges = 403,
    /// Waiting on an idle connection failed.
    IdleWaitFailed = 404,
    /// Waiting for connections failed.
    PollFailed = 405,
    /// `accept` failed.
    AcceptFailed = 406,
    /// The listening socket is broken; the daemon exits.
    ListenerBroken = 407,
    /// A request waited longer than `queue-timeout` for a worker.
    QueueTimeout = 408,
    /// The request handler panicked.
    HandlerPanicked = 409,
    /// A bad frame from the module.
    BadFrame = 410,
    /// A connection from a process that is not this Apache's child was refused.
    PeerRefused = 411,
    /// The process cannot be made non-dumpable.
    NotDumpable = 412,
    /// The daemon could not start.
    StartupFailed = 413,
    /// Start-up took longer than `startup-timeout`.
    StartupTimeout = 414,
    /// The socket buffer sizes cannot be set.
    SocketBuffers = 415,
    /// Python's GIL could not be obtained for `deadlock-timeout`.
    Deadlock = 416,
    /// A request passed `request-timeout` and is given up.
    RequestTimeout = 417,
    /// `mod_wsgi.RequestTimeout` was raised in a request's thread (`interrupt-timeout`).
    RequestInterrupted = 418,
    /// The daemon exits with requests still in progress.
    ExitWithRequests = 419,
    /// One in-flight request of a stuck-request report (`SIGUSR2`, `request-timeout`).
    InFlightRequest = 420,
    /// A request took longer than `slow-requests`.
    SlowRequest = 421,
    /// The virtual environment has no `site-packages`.
    VirtualenvIncomplete = 422,
    /// `reload-on-changes` cannot list the modules' files, or watch one of them.
    ReloadListFailed = 423,
    /// `--stats-fd` is not a statistics area of the expected size.
    StatsFdInvalid = 424,
    /// The daemon cannot map its group's statistics area.
    StatsMapFailed = 425,
    /// Every process slot of the group's statistics area is taken.
    StatsSlotsFull = 426,

    // 05xx: the application, as the daemon sees it.
    /// The application raised (the traceback follows, uncoded).
    AppException = 501,
    /// A request names no WSGI script.
    NoScript = 502,
    /// The request's script is refused (`script-user`, `script-group`, ownership).
    ScriptRefused = 503,
    /// A WSGI script cannot be read.
    ScriptLoadFailed = 504,
    /// The script has no such callable.
    CallableMissing = 505,
    /// A bad auth or dispatch hook call.
    BadHookCall = 506,
    /// An auth or dispatch hook failed in the daemon.
    DaemonHookFailed = 507,
    /// A native handler failed.
    NativeHandlerError = 508,
    /// Running the `atexit` handlers failed.
    AtexitFailed = 509,
}

impl fmt::Display for Code {
    /// `RSWSGI0102`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RSWSGI{:04}", self.number())
    }
}

impl Code {
    /// The code named `RSWSGI` and four digits, if it is one.
    pub fn parse(text: &str) -> Option<Code> {
        let digits = text.strip_prefix("RSWSGI")?;
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u16 = digits.parse().ok()?;
        Code::ALL.iter().copied().find(|c| c.number() == n)
    }
}

/// `[request ID] `: how a line names its request, in the module's and the daemons' lines alike.
/// Bytes other than printable ASCII are escaped (`\xNN`), so an id cannot forge a line.
pub fn request_tag(id: &[u8]) -> String {
    let mut tag = String::with_capacity(id.len() + 11);
    tag.push_str("[request ");
    for &b in id {
        match b {
            0x21..=0x7e if b != b']' => tag.push(char::from(b)),
            _ => {
                let _ = write!(tag, "\\x{b:02x}");
            }
        }
    }
    tag.push_str("] ");
    tag
}

/// `msg` with its control characters but tab written as `\xNN`: a line of the module's about a
/// request may hold bytes a daemon or a client sent, and must stay one line.
pub fn one_line(msg: &str) -> std::borrow::Cow<'_, str> {
    if !msg.chars().any(|c| c.is_control() && c != '\t') {
        return msg.into();
    }
    let mut out = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            c if c.is_control() && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests;

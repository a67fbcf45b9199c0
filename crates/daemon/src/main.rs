//! `rswsgi-daemon`: the process that hosts a WSGI application behind `mod_rswsgi`.
//!
//! The module's supervisor starts it (already running as the group's user) with the group's
//! listening UNIX socket as an inherited file descriptor. See `ARCHITECTURE.md`.

mod allow;
mod backend;
mod conn;
mod fork;
mod gate;
mod io_error;
mod lifecycle;
mod log;
mod owner;
mod pyhome;
mod request;
mod server;
mod sockopts;
mod startup;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockopt, sockopt, Backlog};
use nix::unistd::Pid;

use backend::native::{is_native, NativeBackend};
use backend::wsgi::{WsgiBackend, WsgiConfig};
use backend::Backend;
use rswsgi_protocol::StartupReport;

/// Command line, as the module's supervisor passes it.
#[derive(Debug, Parser)]
#[command(
    name = "rswsgi-daemon",
    version,
    about = "rswsgi daemon process (started by mod_rswsgi)"
)]
struct Cli {
    /// The inherited listening UNIX socket.
    #[arg(long, value_name = "FD")]
    listen_fd: RawFd,
    /// The inherited descriptor holding the connection secret httpd's parent drew (read at
    /// start-up, then closed). Connections that cannot prove it are refused.
    #[arg(long, value_name = "FD")]
    secret_fd: RawFd,
    /// The uid connections must come from: Apache's `User` (default: this process's uid).
    #[arg(long, value_name = "UID")]
    peer_uid: Option<u32>,
    /// Backlog of the listening socket (mod_wsgi's listen-backlog).
    #[arg(long, value_name = "N", default_value_t = 100)]
    listen_backlog: i32,
    /// The daemon process group's name (for log lines).
    #[arg(long, value_name = "NAME")]
    group: String,
    /// How many daemon processes the group runs (sets `wsgi.multiprocess`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    processes: u32,
    /// Worker threads in this process.
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    threads: u32,
    /// The supervisor's pid: the daemon exits when its parent is no longer this process.
    #[arg(long, value_name = "PID")]
    parent_pid: i32,
    /// A WSGI script to load at start-up (repeatable).
    #[arg(long = "script", value_name = "FILE")]
    scripts: Vec<PathBuf>,
    /// Another script requests may name, loaded on first use (repeatable).
    #[arg(long = "allow-script", value_name = "FILE")]
    allow_scripts: Vec<PathBuf>,
    /// A directory whose scripts requests may name, loaded on first use (repeatable).
    #[arg(long = "allow-dir", value_name = "DIR")]
    allow_dirs: Vec<PathBuf>,
    /// The callable to look up in a script when the request does not name one.
    #[arg(long, value_name = "NAME", default_value = "application")]
    callable: String,
    /// A Python prefix or virtualenv to use.
    #[arg(long, value_name = "DIR")]
    python_home: Option<PathBuf>,
    /// Directories to put at the front of `sys.path` (colon-separated; repeatable).
    #[arg(long, value_name = "DIR[:DIR]")]
    python_path: Vec<String>,
    /// Working directory of the process.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Also log debug lines.
    #[arg(long)]
    verbose: bool,
    /// Recycle after this many requests (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    maximum_requests: u64,
    /// Up to this many extra requests before recycling, chosen at random per process.
    #[arg(long, value_name = "N", default_value_t = 0)]
    maximum_requests_jitter: u64,
    /// Recycle after running this many seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    restart_interval: u64,
    /// Recycle after this many seconds without a request (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    inactivity_timeout: u64,
    /// Give up a request after this many seconds (504), log its stack, recycle (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    request_timeout: u64,
    /// After request-timeout, raise mod_wsgi.RequestTimeout in the request's thread and recycle
    /// only if it is still running this many seconds later (0: recycle at once).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    interrupt_timeout: u64,
    /// Recycle when resident memory exceeds this many bytes (0: never).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    memory_limit: u64,
    /// Recycle after using this many seconds of CPU time (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    cpu_time_limit: u64,
    /// Seconds a stop or recycle lets requests in progress finish.
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    graceful_timeout: u64,
    /// Seconds a SIGUSR1 recycle lets requests finish, instead of graceful-timeout (0: same).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    eviction_timeout: u64,
    /// Exit (to be restarted) when start-up — Python and the scripts — takes longer (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    startup_timeout: u64,
    /// Exit (to be restarted) when Python's GIL cannot be obtained for this long (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    deadlock_timeout: u64,
    /// Answer 504 without running the app when a request waited longer for a worker (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    queue_timeout: u64,
    /// Largest response head, in bytes, before the request fails with a 500 (0: 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    header_buffer_size: usize,
    /// Largest piece of response body sent to Apache at once, in bytes (0: 1 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    response_buffer_size: usize,
    /// Do not recycle when a loaded script changes on disk (WSGIScriptReloading Off).
    #[arg(long)]
    no_script_reloading: bool,
    /// sys.stdin raises OSError on any use (WSGIRestrictStdin On).
    #[arg(long)]
    restrict_stdin: bool,
    /// sys.stdout raises OSError on any use (WSGIRestrictStdout On).
    #[arg(long)]
    restrict_stdout: bool,
    /// Only load scripts (and handler libraries) owned by this uid, in a directory owned by
    /// it, neither writable by anyone else (`script-user`); others are answered 403.
    #[arg(long, value_name = "UID", conflicts_with = "script_group")]
    script_user: Option<u32>,
    /// Only load scripts whose group, and whose directory's group, is this gid and which
    /// others cannot write to (`script-group`); others are answered 403.
    #[arg(long, value_name = "GID")]
    script_group: Option<u32>,
    /// `SO_SNDBUF` of each accepted connection, in bytes (`send-buffer-size`).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(512..=i32::MAX as i64))]
    send_buffer_size: Option<u32>,
    /// `SO_RCVBUF` of each accepted connection, in bytes (`receive-buffer-size`).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(512..=i32::MAX as i64))]
    receive_buffer_size: Option<u32>,
    /// Stack size of the worker threads, in bytes (`stack-size`; default 8 MiB).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    stack_size: Option<u64>,
    /// `sys.setswitchinterval()` at start-up, in seconds (`switch-interval`).
    #[arg(long, value_name = "SECS", value_parser = parse_switch_interval)]
    switch_interval: Option<f64>,
    /// The version of the Apache that started this process (`apache.version`).
    #[arg(long, value_name = "X.Y.Z", value_parser = parse_version)]
    apache_version: Option<(u32, u32, u32)>,
}

/// A positive number of seconds.
fn parse_switch_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?}: expected a positive number of seconds")),
    }
}

/// `X.Y.Z` as three numbers.
fn parse_version(s: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<u32> = s
        .split('.')
        .map(|p| p.parse().map_err(|e| format!("{s:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [x, y, z] => Ok((x, y, z)),
        _ => Err(format!("{s:?}: expected three numbers, X.Y.Z")),
    }
}

impl Cli {
    fn limits(&self) -> lifecycle::Limits {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let jitter = if self.maximum_requests_jitter > 0 {
            // Spread recycling of a group's processes: a per-process offset from the pid and
            // the clock is random enough, and needs no RNG crate.
            let seed = u64::from(std::process::id())
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0) as u64);
            seed % (self.maximum_requests_jitter + 1)
        } else {
            0
        };
        lifecycle::Limits {
            maximum_requests: (self.maximum_requests > 0).then(|| self.maximum_requests + jitter),
            restart_interval: secs(self.restart_interval),
            inactivity_timeout: secs(self.inactivity_timeout),
            request_timeout: secs(self.request_timeout),
            interrupt_timeout: secs(self.interrupt_timeout),
            memory_limit: (self.memory_limit > 0).then_some(self.memory_limit),
            cpu_time_limit: secs(self.cpu_time_limit),
            graceful_timeout: Duration::from_secs(self.graceful_timeout),
            eviction_timeout: secs(self.eviction_timeout),
            queue_timeout: secs(self.queue_timeout),
            deadlock_timeout: secs(self.deadlock_timeout),
        }
    }
}

fn main() {
    if let Some(code) = pyhome::check_command(&std::env::args_os().collect::<Vec<_>>()) {
        std::process::exit(code);
    }
    let cli = Cli::parse();
    log::init(cli.verbose);
    // Before anything else: nothing running as this user may read this process's memory
    // (the connection secret) through ptrace or /proc/PID/mem.
    // SAFETY: prctl(PR_SET_DUMPABLE) only changes this process's dumpable flag.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::error!(
            "cannot make the process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    if let Err(e) = run(cli) {
        tracing::error!("{e:#}");
        // A no-op when start-up was over (reported) before the error.
        startup::report_start_failed(&format!("{e:#}"));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    fork::install().context("installing the fork handler")?;
    let peer_uid = cli
        .peer_uid
        .unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let gate = gate::Gate::from_fd(cli.secret_fd, peer_uid)?;
    let limits = cli.limits();
    let owner = match (cli.script_user, cli.script_group) {
        (Some(uid), _) => Some(owner::OwnerRule::User(uid)),
        (None, Some(gid)) => Some(owner::OwnerRule::Group(gid)),
        (None, None) => None,
    };
    let policy = allow::ScriptPolicy::new(
        cli.scripts.iter().chain(&cli.allow_scripts).cloned(),
        cli.allow_dirs.clone(),
    )
    .with_owner(owner);
    conn::set_buffer_sizes(cli.header_buffer_size, cli.response_buffer_size);
    if let Some(home) = &cli.home {
        std::env::set_current_dir(home).with_context(|| {
            format!(
                "cannot change directory to {} as user {}",
                home.display(),
                log::effective_user()
            )
        })?;
    }
    let listener = inherited_listener(cli.listen_fd)?;
    lifecycle::install_signal_handlers().context("installing signal handlers")?;

    let python_path = cli
        .python_path
        .iter()
        .flat_map(|p| p.split(':'))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if cli.startup_timeout > 0 {
        let (started, limit) = (Arc::clone(&started), cli.startup_timeout);
        std::thread::Builder::new().name("startup-timeout".into()).spawn(move || {
            std::thread::sleep(Duration::from_secs(limit));
            if !started.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::error!("start-up took longer than startup-timeout ({limit}s); exiting so the process is restarted");
                startup::report_start_failed(&format!("start-up took longer than startup-timeout ({limit}s)"));
                std::process::exit(1);
            }
        })?;
    }
    let (backend, report) = start_backend(&cli, policy, python_path)?;

    let life = Arc::new(lifecycle::Lifecycle::new(limits).context("creating the stop pipe")?);
    // Ready to serve: open the group's socket for connections (see `inherited_listener`).
    nix::sys::socket::listen(
        &listener,
        Backlog::new(cli.listen_backlog).context("--listen-backlog")?,
    )
    .context("listening on the inherited socket")?;
    startup::report(report);
    let buffers = sockopts::SocketBuffers {
        send: cli.send_buffer_size.map(|n| n as usize),
        receive: cli.receive_buffer_size.map(|n| n as usize),
    };
    let server = Arc::new(
        server::Server::new(listener, backend, Arc::clone(&life), gate)
            .context("setting up the worker event set")?
            .with_buffers(buffers),
    );
    let for_exit = Arc::clone(&server);
    life.on_exit(Box::new(move || for_exit.decline_idle()));
    started.store(true, std::sync::atomic::Ordering::SeqCst);
    life.probed();
    if life.limits().deadlock_timeout.is_some() {
        let (backend, life) = (Arc::clone(&server.backend), Arc::clone(&life));
        std::thread::Builder::new()
            .name("gil-probe".into())
            .spawn(move || loop {
                backend.probe();
                life.probed();
                std::thread::sleep(Duration::from_secs(1));
            })?;
    }
    let stack = cli.stack_size.map(|n| n as usize);
    server::spawn_workers(Arc::clone(&server), cli.threads as usize, stack)
        .context("starting worker threads")?;
    tracing::info!(
        "daemon for group '{}' started: {} thread(s), {} process(es) in the group",
        cli.group,
        cli.threads,
        cli.processes
    );
    lifecycle::supervise(
        &life,
        Arc::clone(&server.backend),
        Pid::from_raw(cli.parent_pid),
    )
}

/// Loads the handler: handler libraries when every script is one (Python never starts), else
/// Python with the scripts preloaded. Returns it with the start-up report to log once the
/// socket listens: `ready`, or `load-failed` for the first script that did not load.
fn start_backend(
    cli: &Cli,
    policy: allow::ScriptPolicy,
    python_path: Vec<PathBuf>,
) -> anyhow::Result<(Arc<dyn Backend>, StartupReport)> {
    let pid = std::process::id();
    if !cli.scripts.is_empty() && cli.scripts.iter().all(|s| is_native(s)) {
        let backend = NativeBackend::new(&cli.scripts, policy)?;
        return Ok((Arc::new(backend), StartupReport::Ready { pid }));
    }
    let backend = WsgiBackend::new(WsgiConfig {
        scripts: cli.scripts.clone(),
        callable: cli.callable.clone(),
        python_home: cli.python_home.clone(),
        python_path,
        home: cli.home.clone(),
        multithread: cli.threads > 1,
        multiprocess: cli.processes > 1,
        run_once: cli.threads == 1 && cli.maximum_requests == 1,
        apache_version: cli.apache_version,
        process: backend::wsgi::ProcessFacts {
            group: cli.group.clone(),
            processes: cli.processes,
            threads: cli.threads,
        },
        script_reloading: !cli.no_script_reloading,
        switch_interval: cli.switch_interval,
        restrict_stdin: cli.restrict_stdin,
        restrict_stdout: cli.restrict_stdout,
        policy,
    })?;
    let report = match backend.preload_failure() {
        Some(failed) => StartupReport::LoadFailed {
            pid,
            script: failed.script.to_string_lossy().into_owned(),
            error: failed.error.clone(),
        },
        None => StartupReport::Ready { pid },
    };
    Ok((Arc::new(backend), report))
}

/// Takes ownership of the inherited socket, checking that it is one.
fn inherited_listener(fd: RawFd) -> anyhow::Result<UnixListener> {
    if fd < 3 {
        bail!("--listen-fd {fd}: refusing to use a standard stream as the listening socket");
    }
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`; any integer is a valid argument.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        bail!("--listen-fd {fd}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and was inherited for this process to own: nothing
    // else in the process uses or closes it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // The supervisor hands over a bound socket that is not listening yet: the daemon starts
    // listening once it can serve (see `run`), so until some daemon of the group is ready,
    // connections are refused and the module answers 503 after its connect timeout.
    getsockopt(&owned, sockopt::AcceptConn)
        .with_context(|| format!("--listen-fd {fd} is not a socket"))?;
    // Keep it out of processes the application starts.
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).context("setting FD_CLOEXEC")?;
    Ok(UnixListener::from(owned))
}

//! `rswsgi-daemon`: the process that hosts a WSGI application behind `mod_rswsgi`.
//!
//! The module's supervisor starts it (already running as the group's user) with the group's
//! listening UNIX socket as an inherited file descriptor. See `ARCHITECTURE.md`.

mod allow;
mod backend;
mod conn;
mod fork;
mod gate;
mod inflight;
mod io_error;
mod lifecycle;
mod log;
mod owner;
mod pyhome;
mod reload;
mod request;
mod server;
mod sockopts;
mod startup;
mod stats;

use rswsgi_protocol::Code;
use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockopt, sockopt, Backlog};
use nix::unistd::Pid;

use backend::native::{is_native, NativeBackend};
use backend::wsgi::{WsgiBackend, WsgiConfig};
use backend::Backend;
use rswsgi_protocol::{DaemonSpec, ScriptOwner, StartupReport};

/// Reads the command line the supervisor wrote (`--help` and `--version` print and exit 0; a
/// bad command line exits 2, as clap did).
fn command_line() -> DaemonSpec {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", DaemonSpec::help());
        std::process::exit(0);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("rswsgi-daemon {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    DaemonSpec::parse(args).unwrap_or_else(|e| {
        eprintln!("error: {e}\n\nFor more information, try '--help'.");
        std::process::exit(2);
    })
}

fn main() {
    if let Some(code) = pyhome::check_command(&std::env::args_os().collect::<Vec<_>>()) {
        std::process::exit(code);
    }
    let spec = command_line();
    log::init(spec.log_level, spec.verbose);
    // Before anything else: nothing running as this user may read this process's memory
    // (the connection secret) through ptrace or /proc/PID/mem.
    // SAFETY: prctl(PR_SET_DUMPABLE) only changes this process's dumpable flag.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::error!(
            "{}: cannot make the process non-dumpable: {}",
            Code::NotDumpable,
            std::io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    if let Err(e) = run(spec) {
        tracing::error!("{}: {e:#}", Code::StartupFailed);
        // A no-op when start-up was over (reported) before the error.
        startup::report_start_failed(&format!("{e:#}"));
        std::process::exit(1);
    }
}

fn run(spec: DaemonSpec) -> anyhow::Result<()> {
    fork::install().context("installing the fork handler")?;
    let peer_uid = spec
        .peer_uid
        .unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let gate = gate::Gate::from_fd(spec.secret_fd, peer_uid)?;
    let limits = lifecycle::Limits::from_spec(&spec);
    let owner = spec.script_owner.map(|o| match o {
        ScriptOwner::User(uid) => owner::OwnerRule::User(uid),
        ScriptOwner::Group(gid) => owner::OwnerRule::Group(gid),
    });
    let policy = allow::ScriptPolicy::new(
        spec.scripts.iter().chain(&spec.allow_scripts).cloned(),
        spec.allow_dirs.clone(),
    )
    .with_owner(owner);
    conn::set_buffer_sizes(
        spec.header_buffer_size.unwrap_or(0),
        spec.response_buffer_size.unwrap_or(0),
    );
    if let Some(home) = &spec.home {
        std::env::set_current_dir(home).with_context(|| {
            format!(
                "cannot change directory to {} as user {}",
                home.display(),
                log::effective_user()
            )
        })?;
    }
    let listener = inherited_listener(spec.listen_fd)?;
    if let Some(fd) = spec.stats_fd {
        stats::init(fd, spec.threads);
    }
    lifecycle::install_signal_handlers().context("installing signal handlers")?;

    let python_path = spec.python_path.clone();
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(timeout) = spec.startup_timeout {
        let (started, limit) = (Arc::clone(&started), timeout.as_secs());
        std::thread::Builder::new().name("startup-timeout".into()).spawn(move || {
            std::thread::sleep(timeout);
            if !started.load(std::sync::atomic::Ordering::SeqCst) {
                tracing::error!("{}: start-up took longer than startup-timeout ({limit}s); exiting so the process is restarted", Code::StartupTimeout);
                startup::report_start_failed(&format!("start-up took longer than startup-timeout ({limit}s)"));
                std::process::exit(1);
            }
        })?;
    }
    let (backend, report) = start_backend(&spec, policy, python_path)?;

    let life = Arc::new(
        lifecycle::Lifecycle::new(limits, spec.threads as usize)
            .context("creating the stop pipe")?,
    );
    // Ready to serve: open the group's socket for connections (see `inherited_listener`).
    nix::sys::socket::listen(
        &listener,
        Backlog::new(spec.listen_backlog).context("--listen-backlog")?,
    )
    .context("listening on the inherited socket")?;
    stats::listening();
    startup::report(report);
    let buffers = sockopts::SocketBuffers {
        send: spec.send_buffer_size.map(|n| n as usize),
        receive: spec.receive_buffer_size.map(|n| n as usize),
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
    spawn_watchers(&spec, &server, &life)?;
    let trimmer = Arc::clone(&server);
    std::thread::Builder::new()
        .name("ring-trim".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            trimmer.trim_idle_rings();
        })
        .context("starting the ring trimmer")?;
    let stack = spec.stack_size.map(|n| n as usize);
    server::spawn_workers(Arc::clone(&server), spec.threads as usize, stack)
        .context("starting worker threads")?;
    tracing::info!(
        "daemon for group '{}' started: {} thread(s), {} process(es) in the group",
        spec.group,
        spec.threads,
        spec.processes
    );
    lifecycle::supervise(
        &life,
        Arc::clone(&server.backend),
        Pid::from_raw(spec.parent_pid),
    )
}

/// Starts the threads that watch the process besides the main thread: the GIL probe of
/// `--deadlock-timeout` and the change monitor of `--reload-on-changes`.
fn spawn_watchers(
    spec: &DaemonSpec,
    server: &server::Server,
    life: &Arc<lifecycle::Lifecycle>,
) -> anyhow::Result<()> {
    if life.limits().deadlock_timeout.is_some() {
        let (backend, life) = (Arc::clone(&server.backend), Arc::clone(life));
        std::thread::Builder::new()
            .name("gil-probe".into())
            .spawn(move || loop {
                backend.probe();
                life.probed();
                std::thread::sleep(Duration::from_secs(1));
            })?;
    }
    if spec.reload_on_changes {
        let files = spec.scripts.iter().chain(&spec.reload_files).cloned();
        reload::spawn(
            Arc::clone(life),
            Arc::clone(&server.backend),
            files.collect(),
        )
        .context("starting the reload-on-changes monitor")?;
    }
    Ok(())
}

/// Loads the handler: handler libraries when every script is one (Python never starts), else
/// Python with the scripts preloaded. Returns it with the start-up report to log once the
/// socket listens: `ready`, or `load-failed` for the first script that did not load.
fn start_backend(
    spec: &DaemonSpec,
    policy: allow::ScriptPolicy,
    python_path: Vec<PathBuf>,
) -> anyhow::Result<(Arc<dyn Backend>, StartupReport)> {
    let pid = std::process::id();
    if !spec.scripts.is_empty() && spec.scripts.iter().all(|s| is_native(s)) {
        let backend = NativeBackend::new(&spec.scripts, policy)?;
        return Ok((Arc::new(backend), StartupReport::Ready { pid }));
    }
    let backend = WsgiBackend::new(WsgiConfig {
        scripts: spec.scripts.clone(),
        callable: spec.callable.clone(),
        python_home: spec.python_home.clone(),
        python_path,
        home: spec.home.clone(),
        multithread: spec.threads > 1,
        multiprocess: spec.processes > 1,
        run_once: spec.threads == 1 && spec.maximum_requests == Some(1),
        apache_version: spec.apache_version,
        process: backend::wsgi::ProcessFacts {
            group: spec.group.clone(),
            processes: spec.processes,
            threads: spec.threads,
        },
        script_reloading: spec.script_reloading,
        switch_interval: spec.switch_interval,
        restrict_stdin: spec.restrict_stdin,
        restrict_stdout: spec.restrict_stdout,
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

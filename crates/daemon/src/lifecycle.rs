//! Process lifecycle: SIGTERM/SIGINT start a graceful stop, and the daemon exits when the
//! process that started it (httpd's parent) goes away.
//!
//! Signals are caught by a handler that only records them; the main thread polls. (Blocking
//! them for `sigwait` instead would leak the blocked mask into every subprocess the application
//! starts.)

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// How long a graceful stop waits for requests in progress.
pub const GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
const PARENT_EVERY: u32 = 5;

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// Shared state of the process: is it stopping, how many requests are in progress, how many
/// workers are still running, and a pipe that becomes readable when the stop begins (so
/// workers waiting for connections wake up without polling).
#[derive(Debug)]
pub struct Lifecycle {
    stopping: AtomicBool,
    busy: AtomicUsize,
    workers: AtomicUsize,
    stop_read: OwnedFd,
    stop_write: OwnedFd,
}

/// Counts a worker thread as running until dropped.
pub struct WorkerGuard<'a>(&'a Lifecycle);

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request as in progress until dropped.
pub struct BusyGuard<'a>(&'a Lifecycle);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Lifecycle {
    /// A running process's state.
    pub fn new() -> nix::Result<Self> {
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(Lifecycle {
            stopping: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            stop_read,
            stop_write,
        })
    }

    /// Readable once a stop has begun; never read, so it stays readable.
    pub fn stop_fd(&self) -> BorrowedFd<'_> {
        self.stop_read.as_fd()
    }

    /// Marks a worker thread as running.
    pub fn worker(&self) -> WorkerGuard<'_> {
        self.workers.fetch_add(1, Ordering::SeqCst);
        WorkerGuard(self)
    }

    /// Begins a graceful stop: no new connections are accepted; waiting workers wake up.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = nix::unistd::write(&self.stop_write, b"x");
    }

    /// True once a graceful stop has begun: take no new connections or requests.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks a request as in progress.
    pub fn busy(&self) -> BusyGuard<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self)
    }

    fn in_progress(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }
}

/// Installs the SIGTERM/SIGINT handler.
pub fn install_signal_handlers() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe, and it
        // replaces the default disposition (there is no previous handler to chain to).
        unsafe { signal::sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Runs on the main thread for the life of the process: exits when a stop signal arrives
/// (after up to [`GRACE`] for requests in progress) or when the parent `parent` goes away.
pub fn supervise(life: &Lifecycle, parent: Pid) -> ! {
    let mut ticks = 0u32;
    loop {
        thread::sleep(POLL);
        let sig = CAUGHT.load(Ordering::SeqCst);
        if sig != 0 {
            let name = Signal::try_from(sig).map_or("a signal", |s| s.as_str());
            tracing::info!("received {name}, stopping");
            stop(life);
        }
        ticks += 1;
        if ticks % PARENT_EVERY == 0 && nix::unistd::getppid() != parent {
            tracing::info!("parent process {parent} went away, exiting");
            std::process::exit(0);
        }
    }
}

fn stop(life: &Lifecycle) -> ! {
    life.begin_stop();
    // Workers finish the connection they hold (every connection accepted is served) and
    // then return; a connection nobody accepted stays queued for the group's other daemons.
    let deadline = Instant::now() + GRACE;
    while life.workers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let left = life.in_progress();
    if left > 0 {
        tracing::warn!("exiting with {left} request(s) still in progress");
    } else {
        tracing::info!("exiting");
    }
    std::process::exit(0);
}

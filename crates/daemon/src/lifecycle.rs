//! Process lifecycle: graceful stops (SIGTERM/SIGINT), the stuck-request report (SIGUSR2: see
//! [`crate::inflight`]), graceful recycling (SIGUSR1 and the
//! `WSGIDaemonProcess` limits: maximum-requests, restart-interval, inactivity-timeout,
//! memory-limit, cpu-time-limit, request-timeout), and exiting when the process that started
//! it (httpd's parent) goes away.
//!
//! A stop and a recycle are the same to this process: it stops accepting, lets the workers
//! finish the connections they hold (at most `graceful-timeout`), and exits 0; the supervisor
//! starts a replacement at once for a recycle. Meanwhile the group's other daemons (or, with
//! one process, the backlog until the replacement listens) take new connections.
//!
//! Signals are caught by a handler that only records them; the main thread polls. (Blocking
//! them for `sigwait` instead would leak the blocked mask into every subprocess the application
//! starts.)

use rswsgi_protocol::Code;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use rswsgi_protocol::DaemonSpec;

use crate::backend::Backend;
use crate::conn::{Request, RequestIo};
use crate::inflight::Registry;

const POLL: Duration = Duration::from_millis(100);
/// Checks that read /proc or call getrusage run every this many polls.
const SLOW_EVERY: u32 = 10;

static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// Set by SIGUSR2: log the stuck-request report.
static REPORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    if sig == libc::SIGUSR2 {
        REPORT.store(true, Ordering::SeqCst);
    } else {
        CAUGHT.store(sig, Ordering::SeqCst);
    }
}

/// The `WSGIDaemonProcess` limits that make a process recycle itself.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Recycle after this many requests (jitter already applied).
    pub maximum_requests: Option<u64>,
    /// Recycle after running this long.
    pub restart_interval: Option<Duration>,
    /// Recycle after this long with no request.
    pub inactivity_timeout: Option<Duration>,
    /// Give up a request running this long (504), log its stack and recycle.
    pub request_timeout: Option<Duration>,
    /// Instead of recycling at once, raise `mod_wsgi.RequestTimeout` in the request's thread
    /// and recycle only if the request has not ended this long afterwards.
    pub interrupt_timeout: Option<Duration>,
    /// Recycle when resident memory exceeds this many bytes.
    pub memory_limit: Option<u64>,
    /// Recycle when the process has used this much CPU time.
    pub cpu_time_limit: Option<Duration>,
    /// How long a stop or recycle lets requests in progress finish.
    pub graceful_timeout: Duration,
    /// Replaces `graceful_timeout` for a recycle asked for with SIGUSR1.
    pub eviction_timeout: Option<Duration>,
    /// A request that waited longer than this for a worker is answered 504 unserved.
    pub queue_timeout: Option<Duration>,
    /// The process exits when Python's GIL cannot be obtained for this long.
    pub deadlock_timeout: Option<Duration>,
    /// A request that ran longer than this is logged when it ends (`slow-requests`).
    pub slow_requests: Option<Duration>,
}

impl Limits {
    /// The limits of the command line, with this process's share of
    /// `--maximum-requests-jitter` added to `--maximum-requests`.
    pub fn from_spec(spec: &DaemonSpec) -> Self {
        let jitter = if spec.maximum_requests_jitter > 0 {
            // Spread recycling of a group's processes: a per-process offset from the pid and
            // the clock is random enough, and needs no RNG crate.
            let seed = u64::from(std::process::id())
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0) as u64);
            seed % spec.maximum_requests_jitter.saturating_add(1)
        } else {
            0
        };
        Limits {
            maximum_requests: spec.maximum_requests.map(|n| n.saturating_add(jitter)),
            restart_interval: spec.restart_interval,
            inactivity_timeout: spec.inactivity_timeout,
            request_timeout: spec.request_timeout,
            interrupt_timeout: spec.interrupt_timeout,
            memory_limit: spec.memory_limit,
            cpu_time_limit: spec.cpu_time_limit,
            graceful_timeout: spec.graceful_timeout,
            eviction_timeout: spec.eviction_timeout,
            queue_timeout: spec.queue_timeout,
            deadlock_timeout: spec.deadlock_timeout,
            slow_requests: spec
                .slow_requests
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        }
    }
}

/// Shared state of the process: is it stopping, how many requests are in progress, how many
/// workers are still running, and a pipe that becomes readable when the stop begins (so
/// workers waiting for connections wake up without polling).
pub struct Lifecycle {
    stopping: AtomicBool,
    busy: AtomicUsize,
    workers: AtomicUsize,
    stop_read: OwnedFd,
    stop_write: OwnedFd,
    limits: Limits,
    started: Instant,
    requests: AtomicU64,
    /// Milliseconds since `started` when the last request ended.
    last_active_ms: AtomicU64,
    /// The requests in progress, a slot per worker.
    in_flight: Registry,
    /// Runs once the workers are done, just before the process exits.
    on_exit: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Why the process recycles (unset for a plain stop).
    reason: std::sync::OnceLock<&'static str>,
    /// Set when the recycle was asked for with SIGUSR1 (`eviction-timeout` applies).
    evicting: AtomicBool,
    /// Milliseconds since `started` when the runtime lock (Python's GIL) was last obtained.
    last_probe_ms: AtomicU64,
}

/// Counts a worker thread as running until dropped.
pub struct WorkerGuard<'a>(&'a Lifecycle);

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request as in progress (and visible to the request-timeout monitor) until
/// dropped; dropping it also counts the request as done.
pub struct RequestGuard<'a> {
    life: &'a Lifecycle,
    worker: usize,
    /// Whether the request counts as activity for `inactivity-timeout` (not under
    /// `WSGIIgnoreActivity On`).
    activity: bool,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        let slow = self.life.limits.slow_requests;
        self.life.in_flight.leave(self.worker, slow);
        self.life.busy.fetch_sub(1, Ordering::SeqCst);
        crate::stats::finished();
        if self.activity {
            let ms = self.life.started.elapsed().as_millis() as u64;
            self.life.last_active_ms.store(ms, Ordering::SeqCst);
        }
        let done = self.life.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(max) = self.life.limits.maximum_requests {
            if done == max {
                self.life.recycle(
                    "maximum_requests",
                    &format!("maximum-requests ({max}) reached"),
                );
            }
        }
    }
}

impl Lifecycle {
    /// A running process's state, for `workers` worker threads.
    pub fn new(limits: Limits, workers: usize) -> nix::Result<Self> {
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // Kept for the life of the process: a process the application forks loses them.
        for fd in [&stop_read, &stop_write] {
            crate::fork::register(std::os::fd::AsRawFd::as_raw_fd(fd));
        }
        Ok(Lifecycle {
            stopping: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            stop_read,
            stop_write,
            limits,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            in_flight: Registry::new(workers),
            on_exit: std::sync::OnceLock::new(),
            reason: std::sync::OnceLock::new(),
            evicting: AtomicBool::new(false),
            last_probe_ms: AtomicU64::new(0),
        })
    }

    /// Sets what runs just before the process exits (declining idle connections).
    pub fn on_exit(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_exit.set(f);
    }

    /// The limits this process runs with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Records that the runtime lock (Python's GIL) was just obtained.
    pub fn probed(&self) {
        self.last_probe_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    /// Exits (for the supervisor to restart the process) when the runtime lock has not been
    /// obtainable for `deadlock-timeout`.
    fn check_deadlock(&self) {
        let Some(limit) = self.limits.deadlock_timeout else {
            return;
        };
        let since = self.started.elapsed().saturating_sub(Duration::from_millis(
            self.last_probe_ms.load(Ordering::SeqCst),
        ));
        if since >= limit {
            tracing::error!(
                "{}: Python's GIL could not be obtained for {}s (deadlock-timeout); exiting so the process is restarted",
                Code::Deadlock,
                since.as_secs()
            );
            crate::stats::exiting("deadlock_timeout");
            std::process::exit(3);
        }
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
        if !self.stopping.swap(true, Ordering::SeqCst) {
            let _ = nix::unistd::write(&self.stop_write, b"x");
        }
    }

    /// Begins a graceful recycle (logged once, with `message`); the supervisor starts a
    /// replacement. `reason` is mod_wsgi's name for it (the `process_stopping` event's
    /// `shutdown_reason`).
    pub fn recycle(&self, reason: &'static str, message: &str) {
        if !self.stopping() {
            let _ = self.reason.set(reason);
            crate::stats::exiting(reason);
            tracing::info!("recycling this process: {message}");
        }
        self.begin_stop();
    }

    /// True once a graceful stop has begun: take no new connections or requests.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Marks a request as in progress on `worker` until the guard drops.
    pub fn request(&self, worker: usize, req: &Request, io: &RequestIo) -> RequestGuard<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        crate::stats::picked_up(req.meta.request_start);
        let keep_io = self.limits.request_timeout.is_some().then_some(io);
        self.in_flight.enter(worker, req, keep_io);
        let activity = req
            .get(rswsgi_protocol::carriers::IGNORE_ACTIVITY)
            .is_none();
        RequestGuard {
            life: self,
            worker,
            activity,
        }
    }

    fn in_progress(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// The time-based and resource limits; called from the main thread.
    fn check_limits(&self) {
        let l = &self.limits;
        if let Some(t) = l.restart_interval.filter(|t| self.started.elapsed() >= *t) {
            self.recycle(
                "restart_interval",
                &format!("restart-interval ({}s) reached", t.as_secs()),
            );
        }
        if let Some(t) = l.inactivity_timeout {
            let idle = self.started.elapsed().saturating_sub(Duration::from_millis(
                self.last_active_ms.load(Ordering::SeqCst),
            ));
            if self.in_progress() == 0 && idle >= t {
                self.recycle(
                    "inactivity_timeout",
                    &format!("inactivity-timeout ({}s) reached", t.as_secs()),
                );
            }
        }
        if let Some(max) = l.memory_limit {
            if let Some(rss) = resident_bytes().filter(|rss| *rss > max) {
                self.recycle(
                    "memory_limit",
                    &format!("memory-limit ({max} bytes) exceeded: {rss} bytes resident"),
                );
            }
        }
        if let Some(max) = l.cpu_time_limit {
            if let Some(used) = cpu_time().filter(|used| *used > max) {
                self.recycle(
                    "cpu_time_limit",
                    &format!(
                        "cpu-time-limit ({}s) exceeded: {:.1}s used",
                        max.as_secs(),
                        used.as_secs_f64()
                    ),
                );
            }
        }
    }

    /// Gives up requests past `request-timeout`: logs their stack, answers 504, and recycles
    /// (with `interrupt-timeout`: raises `mod_wsgi.RequestTimeout` in the request's thread and
    /// recycles only if the request is still running that long afterwards).
    fn check_request_timeouts(&self, backend: &dyn Backend) {
        let Some(limit) = self.limits.request_timeout else {
            return;
        };
        let mut late = Vec::new();
        let mut stuck = false;
        self.in_flight.for_each_active(|_, f| {
            if !f.given_up && f.started.elapsed() >= limit {
                f.given_up = true;
                let url = crate::inflight::escape(&f.url);
                late.push((url, f.id.clone(), f.thread, f.io.clone()));
            }
            if let (Some(at), Some(grace)) = (f.interrupted, self.limits.interrupt_timeout) {
                stuck |= at.elapsed() >= grace;
            }
        });
        if !late.is_empty() {
            // Before the recycle or interrupt that follows: what every request was doing.
            self.in_flight
                .report(backend, &format!("request-timeout of {}s", limit.as_secs()));
        }
        if stuck {
            self.recycle(
                "request_timeout",
                "a request exceeded request-timeout and had not ended within interrupt-timeout",
            );
        }
        for (url, id, thread, io) in late {
            tracing::error!(
                request_id = id.as_str(),
                "{}: request-timeout of {}s exceeded by {url}; giving it up (504); its stack is \
                 in the in-flight report above",
                Code::RequestTimeout,
                limit.as_secs()
            );
            let message = format!("request-timeout of {}s exceeded", limit.as_secs());
            if !io.is_some_and(|io| io.give_up(&message)) {
                tracing::info!(
                    request_id = id.as_str(),
                    "{url} was doing I/O when it timed out; it ends with its connection"
                );
            }
            if self.interrupt(backend, &url, &id, thread) {
                continue;
            }
            self.recycle("request_timeout", "a request exceeded request-timeout");
        }
    }

    /// With `interrupt-timeout`: raises `mod_wsgi.RequestTimeout` in `thread` and notes when;
    /// false when there is no interrupt-timeout or the backend cannot interrupt.
    fn interrupt(&self, backend: &dyn Backend, url: &str, id: &str, thread: u64) -> bool {
        let Some(grace) = self.limits.interrupt_timeout else {
            return false;
        };
        if !backend.interrupt(thread) {
            return false;
        }
        tracing::error!(
            request_id = id,
            "{}: raised mod_wsgi.RequestTimeout in the thread of {url}; the process recycles \
             if the request has not ended within interrupt-timeout ({}s)",
            Code::RequestInterrupted,
            grace.as_secs()
        );
        self.in_flight.for_each_active(|_, f| {
            if f.thread == thread && f.interrupted.is_none() {
                f.interrupted = Some(Instant::now());
            }
        });
        true
    }
}

/// This process's resident memory, from `/proc/self/statm`.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Option<Duration> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, (t.tv_usec() as u32) * 1000);
    Some(tv(u.user_time()) + tv(u.system_time()))
}

/// Installs the SIGTERM/SIGINT (stop), SIGUSR1 (recycle) and SIGUSR2 (stuck-request report)
/// handler.
pub fn install_signal_handlers() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe, and it
        // replaces the default disposition (there is no previous handler to chain to).
        unsafe { signal::sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Runs on the main thread for the life of the process: watches signals, limits and request
/// timeouts; once a stop or recycle has begun, waits for the workers and exits; exits at once
/// when the parent `parent` goes away.
pub fn supervise(life: &Lifecycle, backend: Arc<dyn Backend>, parent: Pid) -> ! {
    let mut ticks = 0u32;
    loop {
        thread::sleep(POLL);
        let sig = CAUGHT.swap(0, Ordering::SeqCst);
        if sig == libc::SIGUSR1 {
            life.evicting.store(true, Ordering::SeqCst);
            life.recycle("eviction_signal", "SIGUSR1");
        } else if sig != 0 {
            let name = Signal::try_from(sig).map_or("a signal", |s| s.as_str());
            tracing::info!("received {name}, stopping");
            crate::stats::stopped_by_signal();
            life.begin_stop();
        }
        if REPORT.swap(false, Ordering::SeqCst) {
            life.in_flight.report(&*backend, "SIGUSR2");
        }
        life.check_request_timeouts(&*backend);
        if let Some(limit) = life.limits.slow_requests {
            life.in_flight.check_slow(limit);
        }
        ticks += 1;
        if ticks.is_multiple_of(SLOW_EVERY) {
            if nix::unistd::getppid() != parent {
                tracing::info!("parent process {parent} went away, exiting");
                std::process::exit(0);
            }
            life.check_limits();
            life.check_deadlock();
        }
        if life.stopping() {
            finish(life, &*backend);
        }
    }
}

fn finish(life: &Lifecycle, backend: &dyn Backend) -> ! {
    // As mod_wsgi: the shutdown callbacks run as the stop begins, exit handlers at the end.
    backend.stopping(life.reason.get().copied().unwrap_or(""));
    // Workers finish the connection they hold (every connection accepted is served) and
    // then return; a connection nobody accepted stays queued for the group's other daemons.
    let grace = match life.limits.eviction_timeout {
        Some(t) if life.evicting.load(Ordering::SeqCst) => t,
        _ => life.limits.graceful_timeout,
    };
    let deadline = Instant::now() + grace;
    while life.workers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if let Some(f) = life.on_exit.get() {
        f();
    }
    let left = life.in_progress();
    if left > 0 {
        // A request still running may hold Python's GIL: exit handlers could wait for ever.
        tracing::warn!(
            "{}: exiting with {left} request(s) still in progress after the graceful timeout \
             ({}s); atexit handlers not run",
            Code::ExitWithRequests,
            grace.as_secs()
        );
    } else {
        backend.exiting();
        tracing::info!("exiting");
    }
    std::process::exit(0);
}

//! Daemon groups in httpd's parent: listening sockets, forking, restarts with backoff,
//! graceful restarts and stopping.
//!
//! The supervisor state is a process-wide static, so it outlives httpd's configuration pool:
//! on a graceful restart (`apachectl graceful`, `restart`) the old daemons are told to finish
//! their requests and exit while the new ones start at once on the *same* listening sockets,
//! so nothing queued on a socket is lost and Apache children of either generation find their
//! group at the same path. On stop the daemons get a shutdown timeout, then SIGKILL.
//! Apache children inherit the [`endpoints`] table and the connection [`secret`] by fork and
//! use them to connect. The secret is drawn from the OS when httpd starts and kept across
//! graceful restarts; each daemon reads it from an inherited pipe (fd 4), never from its
//! command line or environment.

mod callbacks;
mod credentials;
mod exits;
mod handoff;
mod prepare;
mod socket;
mod socket_dir;
mod spawn;

use rswsgi_protocol::Code;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rswsgi_protocol::Secret;
use tracing::{error, info, warn};

use crate::config::{socket_path, DaemonGroupConfig};
use crate::ffi;
pub use credentials::resolve as daemon_credentials;
use handoff::Handoff;
use spawn::LaunchSpec;

pub use callbacks::{child_init, monitor};
use callbacks::{config_cleanup, watch};

pub use socket_dir::check_prefix as check_socket_prefix;

/// Where the daemons of one group listen.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its listening UNIX socket.
    pub socket: String,
    /// How long a request waits for a daemon to accept it (`connect-timeout`).
    pub connect_timeout: Duration,
    /// How long the module waits on the daemon (`socket-timeout`); else Apache's `Timeout`.
    pub socket_timeout: Option<Duration>,
    /// `response-socket-timeout`, else `socket-timeout`: how long each write of a response
    /// to the client may take; else Apache's `Timeout`.
    pub response_socket_timeout: Option<Duration>,
    /// The uid the group's daemons run as: whatever listens on the socket must be it.
    pub daemon_uid: u32,
    /// The group's entry in the statistics area (`crate::metrics::group`).
    pub stats: Option<usize>,
    /// The group runs one daemon process, so a connection's peer credentials (those of the
    /// last process that called `listen()` on the shared socket) name the daemon serving it;
    /// with several, they may name another of the group's daemons.
    pub single_process: bool,
}

/// What the supervisor needs to start one group.
pub struct GroupPlan {
    /// The group as configured.
    pub config: DaemonGroupConfig,
    /// Scripts mounted on this group, preloaded by its daemons.
    pub scripts: Vec<String>,
    /// Other scripts Apache may route to this group (mounts without `process-group=`).
    pub allowed_scripts: Vec<String>,
    /// Directories whose scripts Apache may route to this group (`<Directory>` sections whose
    /// `WSGIProcessGroup` names it).
    pub allowed_dirs: Vec<String>,
    /// `WSGIScriptReloading`: recycle a daemon when its script changes.
    pub script_reloading: bool,
    /// `WSGIRestrictStdin On`, `WSGIRestrictStdout On`.
    pub restrict_streams: (bool, bool),
    /// `WSGIVerboseDebugging On`: the daemons log their debug lines (`--verbose`).
    pub verbose: bool,
    /// The Apache log level of the module's lines in the main server, whose error log the
    /// daemons write to (`--log-level`).
    pub log_level: rswsgi_protocol::LogLevel,
    /// `NAME=value` settings for the daemons' Python (`WSGIPythonOptimize` ...).
    pub python_env: Vec<String>,
}

/// A daemon that died within this long of starting counts as a start-up failure.
const QUICK_DEATH: Duration = Duration::from_secs(10);
/// Longest wait before retrying a daemon that keeps failing at start-up.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long stopping daemons get to finish in-flight requests before SIGKILL, unless their
/// group sets `shutdown-timeout`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(crate::config::DEFAULT_SHUTDOWN_TIMEOUT);

static ENDPOINTS: RwLock<Option<Arc<HashMap<String, Endpoint>>>> = RwLock::new(None);
static STATE: Mutex<Option<Supervisor>> = Mutex::new(None);
static SECRET: RwLock<Option<Secret>> = RwLock::new(None);
/// Whether httpd's parent ran as root (set in [`start`]; its children inherit it): only then
/// do the children run as another user than the parent and need not be dumpable.
static PARENT_ROOT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The endpoints of every daemon group of the current configuration.
pub fn endpoints() -> Option<Arc<HashMap<String, Endpoint>>> {
    ENDPOINTS.read().clone()
}

/// The secret every connection to a daemon must prove it knows.
pub fn secret() -> Option<Secret> {
    SECRET.read().clone()
}

struct Slot {
    proc_: ffi::apr_proc_t,
    /// Index into `Supervisor::groups`; meaningless once `retiring`.
    group: usize,
    group_name: String,
    index: usize,
    started: Instant,
    quick_failures: u32,
    /// Set when its fork failed: when [`monitor`] tries again.
    retry_at: Option<Instant>,
    /// From an earlier configuration: finishing its requests, not to be restarted.
    retiring: bool,
    /// `shutdown-timeout` of its group.
    shutdown_timeout: Duration,
}

struct Group {
    name: String,
    /// Bound; the first daemon that is ready calls listen().
    listener: OwnedFd,
    socket: String,
    /// The socket file bound at `socket`.
    id: socket::FileId,
    spec: LaunchSpec,
    /// Its statistics areas (`crate::metrics`).
    stats: Option<Arc<crate::metrics::GroupStats>>,
}

struct Supervisor {
    owner: i32,
    /// The configuration pool of this generation: other-child registrations live there.
    pconf: *mut ffi::apr_pool_t,
    /// httpd's process pool, where the handoff to the next generation is kept.
    ppool: *mut ffi::apr_pool_t,
    groups: Vec<Group>,
    /// Boxed: APR keeps a pointer to each slot's `apr_proc_t`, so slots must not move.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
    /// Sockets of the previous configuration, by path, for this one to reuse while the
    /// socket file at the path is still theirs.
    carried: HashMap<String, (OwnedFd, Option<socket::FileId>)>,
    /// The connection secret, handed on to the next generation.
    secret: Secret,
    /// The statistics areas of the previous configuration's groups, by name.
    carried_stats: HashMap<String, OwnedFd>,
}

// SAFETY: the supervisor lives in httpd's parent and is only touched from its main thread
// (hooks, pool cleanups and other-child callbacks); the Mutex exists to satisfy `static`.
unsafe impl Send for Supervisor {}

fn backoff(quick_failures: u32) -> Duration {
    match quick_failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

fn this_process() -> i32 {
    std::process::id() as i32
}

/// Creates (or takes over from the previous configuration) the sockets and starts the daemons
/// of every group. Supervision is registered on `pconf`, whose cleanup retires the daemons on
/// a restart or stops them on a stop; `ppool` (httpd's process pool) carries the handoff.
pub fn start(
    pconf: *mut ffi::apr_pool_t,
    ppool: *mut ffi::apr_pool_t,
    plans: Vec<GroupPlan>,
    prefix: &str,
    daemon_exe: &str,
) -> Result<(), String> {
    PARENT_ROOT.store(
        nix::unistd::geteuid().is_root(),
        std::sync::atomic::Ordering::Relaxed,
    );
    // Registered first, so it runs after APR's other-child cleanups (pool cleanups run in
    // reverse order), when no registration points at our slots any more.
    // SAFETY: pconf is httpd's live configuration pool; the cleanup only touches STATE.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pconf,
            std::ptr::null_mut(),
            Some(config_cleanup),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
    exits::install();
    let previous = Handoff::take(ppool);
    let secret = previous.secret_or_new()?;
    *SECRET.write() = Some(secret.clone());
    // SAFETY: these descriptors were left open for us by the previous generation of this
    // same process (see `retire`), and nothing else owns them.
    let own = |fd: i32| unsafe { OwnedFd::from_raw_fd(fd) };
    crate::metrics::begin_generation(previous.stats_module.map(own));
    let carried_stats = previous
        .stats_groups
        .into_iter()
        .map(|(fd, name)| (name, own(fd)))
        .collect();
    let mut sup = Supervisor {
        owner: this_process(),
        pconf,
        ppool,
        groups: Vec::new(),
        slots: Vec::new(),
        // SAFETY: these descriptors were left open for us by the previous generation of this
        // same process (see `retire`), and nothing else owns them.
        carried: previous
            .sockets
            .into_iter()
            .map(|(fd, path, id)| (path, (unsafe { OwnedFd::from_raw_fd(fd) }, id)))
            .collect(),
        secret,
        carried_stats,
    };
    for (pid, group) in previous.retiring {
        sup.adopt_retiring(pid, group);
    }
    let result = sup.start_generation(plans, prefix, daemon_exe);
    *STATE.lock() = Some(sup);
    result
}

impl Supervisor {
    fn start_generation(
        &mut self,
        plans: Vec<GroupPlan>,
        prefix: &str,
        daemon_exe: &str,
    ) -> Result<(), String> {
        if !std::path::Path::new(daemon_exe).is_file() {
            return Err(format!(
                "the daemon binary {daemon_exe} does not exist: install rswsgi-daemon next to mod_rswsgi.so \
                 or set RSWSGIDaemonExecutable"
            ));
        }
        // Socket problems are configuration errors: httpd refuses to start and says why.
        let mut bound = Vec::new();
        for plan in plans {
            let path = socket_path(prefix, self.owner as u32, &plan.config.name);
            let owner = credentials::socket_owner(&plan.config)?;
            let (listener, id) = match self.carried.remove(&path) {
                Some((fd, Some(id))) if socket::file_id(&path) == Some(id) => {
                    socket::reown(&path, &owner).map(|()| (fd, id))
                }
                // Our old socket stays open in the retiring daemons only; they finish.
                Some(_) => {
                    warn!(
                        "{}: daemon group '{}': its socket {path} was deleted or replaced since \
                         the last start (requests could not reach the group); binding a new one",
                        Code::SocketReplaced,
                        plan.config.name
                    );
                    socket::bind_socket(&path, &owner)
                }
                None => socket::bind_socket(&path, &owner),
            }
            .map_err(|e| format!("daemon group '{}': {e}", plan.config.name))?;
            bound.push((plan, path, listener, id));
        }
        for (path, (_, id)) in self.carried.drain() {
            remove_if_ours(&path, id);
        }
        // Identity problems (a user deleted since the configuration was written, ...) only
        // stop their group: its requests get 503 and the reason is logged here.
        let mut endpoints = HashMap::new();
        for (plan, path, listener, id) in bound {
            let spec = match prepare::prepare_group(&plan, daemon_exe, self.owner) {
                Ok(spec) => spec,
                Err(e) => {
                    error!(
                        "{}: daemon group '{}' not started: {e}",
                        Code::GroupNotStarted,
                        plan.config.name
                    );
                    remove_if_ours(&path, Some(id));
                    continue;
                }
            };
            let g = &plan.config;
            let stats = crate::metrics::add_group(
                &g.name,
                self.carried_stats.remove(&g.name),
                &listener,
                (g.processes, g.threads),
            );
            endpoints.insert(
                g.name.clone(),
                Endpoint {
                    socket: path.clone(),
                    connect_timeout: Duration::from_secs(g.connect_timeout.into()),
                    socket_timeout: g.socket_timeout.map(Duration::from_secs),
                    response_socket_timeout: g
                        .conn
                        .response_socket_timeout
                        .or(g.socket_timeout)
                        .map(Duration::from_secs),
                    daemon_uid: spec
                        .creds
                        .as_ref()
                        .map_or_else(|| nix::unistd::geteuid().as_raw(), |c| c.uid.as_raw()),
                    stats: stats.as_ref().and_then(|s| s.index),
                    single_process: g.processes == 1,
                },
            );
            let gi = self.groups.len();
            self.groups.push(Group {
                name: g.name.clone(),
                listener,
                socket: path,
                id,
                spec,
                stats,
            });
            for index in 0..g.processes as usize {
                self.slots.push(Box::new(Slot {
                    proc_: ffi::apr_proc_t::default(),
                    group: gi,
                    group_name: g.name.clone(),
                    index,
                    started: Instant::now(),
                    quick_failures: 0,
                    retry_at: None,
                    retiring: false,
                    shutdown_timeout: Duration::from_secs(g.shutdown_timeout),
                }));
                self.launch(self.slots.len() - 1, Duration::ZERO);
            }
        }
        *ENDPOINTS.write() = Some(Arc::new(endpoints));
        // Areas of groups no longer configured: their retiring daemons keep their mappings.
        self.carried_stats.clear();
        Ok(())
    }

    fn launch(&mut self, slot: usize, delay: Duration) {
        let s = &mut self.slots[slot];
        let g = &self.groups[s.group];
        let held = exits::Hold::new();
        match spawn::spawn(
            &g.spec,
            (
                g.listener.as_raw_fd(),
                g.stats.as_ref().map(|s| s.area.fd.as_raw_fd()),
            ),
            &self.secret,
            self.owner,
            delay,
        ) {
            Ok(pid) => {
                exits::track(pid);
                drop(held);
                s.retry_at = None;
                s.proc_.pid = pid;
                s.started = Instant::now() + delay;
                watch(s, self.pconf);
                info!(
                    "started daemon process {pid} (#{}) of group '{}'",
                    s.index + 1,
                    g.name
                );
            }
            Err(e) => {
                // No process, so no exit to restart it from: the monitor hook tries again.
                s.quick_failures += 1;
                let wait = backoff(s.quick_failures).max(Duration::from_secs(1));
                s.retry_at = Some(Instant::now() + wait);
                error!(
                    "{}: group '{}': {e}; trying again in {}s or more",
                    Code::DaemonSpawnFailed,
                    g.name,
                    wait.as_secs()
                );
            }
        }
    }

    fn on_death(&mut self, data: *mut Slot, status: i32) {
        let Some(i) = self.slots.iter().position(|s| std::ptr::eq(&**s, data)) else {
            return;
        };
        // SAFETY: data is the registered Slot, still alive in self.slots.
        unsafe { ffi::apr_proc_other_child_unregister(data.cast()) };
        if self.slots[i].retiring {
            let s = self.slots.remove(i);
            crate::metrics::retired_exit(&s.group_name, s.proc_.pid);
            info!(
                "daemon process {} of group '{}' from the previous configuration has exited",
                s.proc_.pid, s.group_name
            );
            return;
        }
        let s = &mut self.slots[i];
        let uptime = s.started.elapsed();
        let exit = exits::take(s.proc_.pid, status);
        if let Some(stats) = &self.groups[s.group].stats {
            let (killed, code) = match exit {
                exits::Exit::Signal(..) => (true, 0),
                exits::Exit::Code(c) | exits::Exit::Unknown(c) => (false, c),
            };
            crate::metrics::daemon_died(stats, s.proc_.pid, killed, code);
        }
        let how = exit.describe();
        if exit.is_clean() {
            // A planned recycle (maximum-requests, restart-interval, SIGUSR1, ...): the daemon
            // said why in its own log line; replace it at once.
            s.quick_failures = 0;
            info!(
                "daemon process {} of group '{}' recycled after {:.1}s; starting its replacement",
                s.proc_.pid,
                s.group_name,
                uptime.as_secs_f64()
            );
            s.proc_.pid = 0;
            self.launch(i, Duration::ZERO);
            return;
        }
        s.quick_failures = if uptime < QUICK_DEATH {
            s.quick_failures + 1
        } else {
            0
        };
        let delay = backoff(s.quick_failures);
        warn!(
            "{}: daemon process {} of group '{}' {how} after {:.1}s; restarting{}",
            Code::DaemonDied,
            s.proc_.pid,
            s.group_name,
            uptime.as_secs_f64(),
            if delay.is_zero() {
                String::new()
            } else {
                format!(" in {}s (it keeps failing at start-up)", delay.as_secs())
            }
        );
        s.proc_.pid = 0;
        self.launch(i, delay);
    }

    /// Keeps track of a daemon from an earlier generation until it exits.
    fn adopt_retiring(&mut self, pid: i32, group_name: String) {
        let mut slot = Box::new(Slot {
            proc_: ffi::apr_proc_t {
                pid,
                ..Default::default()
            },
            group: usize::MAX,
            group_name,
            index: 0,
            started: Instant::now(),
            quick_failures: 0,
            retry_at: None,
            retiring: true,
            shutdown_timeout: SHUTDOWN_TIMEOUT,
        });
        watch(&mut slot, self.pconf);
        self.slots.push(slot);
    }

    /// Graceful restart: the current daemons finish their requests and exit on their own (a
    /// daemon that is stopping answers new connections with `Retry`); the sockets stay open
    /// for the next configuration, which starts its daemons at once. Nothing waits here.
    fn retire(self) {
        let mut handoff = Handoff::default();
        for s in &self.slots {
            if s.proc_.pid > 0 {
                if !s.retiring {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(s.proc_.pid),
                        nix::sys::signal::Signal::SIGTERM,
                    );
                }
                handoff.retiring.push((s.proc_.pid, s.group_name.clone()));
            }
        }
        for g in self.groups {
            handoff
                .sockets
                .push((g.listener.into_raw_fd(), g.socket, Some(g.id)));
        }
        for (path, (fd, id)) in self.carried {
            handoff.sockets.push((fd.into_raw_fd(), path, id));
        }
        handoff.secret = Some(*self.secret.as_bytes());
        (handoff.stats_module, handoff.stats_groups) = crate::metrics::end_generation(true);
        handoff.store(self.ppool);
        info!("daemon processes told to finish their requests; the new configuration's daemons are starting");
    }

    /// Stop: every daemon gets SIGTERM and the shutdown timeout to finish, then SIGKILL.
    fn stop_all(self) {
        let _ = crate::metrics::end_generation(false);
        let pids: Vec<i32> = self
            .slots
            .iter()
            .map(|s| s.proc_.pid)
            .filter(|&p| p > 0)
            .collect();
        let timeout = self
            .slots
            .iter()
            .map(|s| s.shutdown_timeout)
            .max()
            .unwrap_or(SHUTDOWN_TIMEOUT);
        for &pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + timeout;
        let mut left = pids;
        while !left.is_empty() {
            left.retain(|&pid| {
                matches!(
                    nix::sys::wait::waitpid(
                        nix::unistd::Pid::from_raw(pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG)
                    ),
                    Ok(nix::sys::wait::WaitStatus::StillAlive)
                )
            });
            if Instant::now() >= deadline {
                for &pid in &left {
                    warn!(
                        "{}: daemon process {pid} did not exit within shutdown-timeout ({}s); \
                         killing it",
                        Code::ShutdownKill,
                        timeout.as_secs()
                    );
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (path, id) in self
            .groups
            .iter()
            .map(|g| (&g.socket, Some(g.id)))
            .chain(self.carried.iter().map(|(p, (_, id))| (p, *id)))
        {
            remove_if_ours(path, id);
        }
    }
}

/// Removes the socket file at `path` unless something else has been put there since it was
/// bound as `id`.
fn remove_if_ours(path: &str, id: Option<socket::FileId>) {
    if id.is_some() && socket::file_id(path) == id {
        let _ = std::fs::remove_file(path);
    }
}

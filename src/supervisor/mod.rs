//! Daemon groups in httpd's parent: listening sockets, forking, restarts with backoff,
//! graceful restarts and stopping.
//!
//! The supervisor state is a process-wide static, so it outlives httpd's configuration pool:
//! on a graceful restart (`apachectl graceful`, `restart`) the old daemons are told to finish
//! their requests and exit while the new ones start at once on the *same* listening sockets,
//! so nothing queued on a socket is lost and Apache children of either generation find their
//! group at the same path. On stop the daemons get a shutdown timeout, then SIGKILL.
//! Apache children inherit the [`endpoints`] table by fork and use it to connect.

mod credentials;
mod handoff;
mod socket;
mod spawn;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tracing::{error, info, warn};

use crate::config::{socket_path, DaemonGroupConfig};
use crate::ffi;
pub use credentials::resolve as daemon_credentials;
use handoff::Handoff;
use spawn::LaunchSpec;

/// Where the daemons of one group listen.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its listening UNIX socket.
    pub socket: String,
    /// How long a request waits for a daemon to accept it (`connect-timeout`).
    pub connect_timeout: Duration,
    /// How long the module waits on the daemon (`socket-timeout`); else Apache's `Timeout`.
    pub socket_timeout: Option<Duration>,
}

/// What the supervisor needs to start one group.
pub struct GroupPlan {
    /// The group as configured.
    pub config: DaemonGroupConfig,
    /// Scripts mounted on this group, preloaded by its daemons.
    pub scripts: Vec<String>,
    /// `WSGIScriptReloading`: recycle a daemon when its script changes.
    pub script_reloading: bool,
}

/// A daemon that died within this long of starting counts as a start-up failure.
const QUICK_DEATH: Duration = Duration::from_secs(10);
/// Longest wait before retrying a daemon that keeps failing at start-up.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long stopping daemons get to finish in-flight requests before SIGKILL, unless their
/// group sets `shutdown-timeout`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

static ENDPOINTS: RwLock<Option<Arc<HashMap<String, Endpoint>>>> = RwLock::new(None);
static STATE: Mutex<Option<Supervisor>> = Mutex::new(None);

/// The endpoints of every daemon group of the current configuration.
pub fn endpoints() -> Option<Arc<HashMap<String, Endpoint>>> {
    ENDPOINTS.read().clone()
}

struct Slot {
    proc_: ffi::apr_proc_t,
    /// Index into `Supervisor::groups`; meaningless once `retiring`.
    group: usize,
    group_name: String,
    index: usize,
    started: Instant,
    quick_failures: u32,
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
    spec: LaunchSpec,
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
    /// Sockets of the previous configuration, by path, for this one to reuse.
    carried: HashMap<String, OwnedFd>,
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

/// `exited with status N` or `was killed by signal SIGKILL`, from a raw wait status.
fn describe_exit(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = nix::sys::signal::Signal::try_from(sig)
            .map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
        format!("was killed by signal {name}")
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
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
    let previous = Handoff::take(ppool);
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
            .map(|(fd, path)| (path, unsafe { OwnedFd::from_raw_fd(fd) }))
            .collect(),
    };
    for (pid, group) in previous.retiring {
        sup.adopt_retiring(pid, group);
    }
    let result = sup.start_generation(plans, prefix, daemon_exe);
    *STATE.lock() = Some(sup);
    result
}

fn prepare_group(plan: &GroupPlan, daemon_exe: &str, owner: i32) -> Result<LaunchSpec, String> {
    let g = &plan.config;
    let creds = credentials::resolve(g)?;
    if let Some(c) = &creds {
        credentials::check_can_exec(daemon_exe, c)?;
    }
    let mut argv = vec![
        g.display_name
            .clone()
            .unwrap_or_else(|| "rswsgi-daemon".into()),
        "--listen-fd".into(),
        "3".into(),
        "--listen-backlog".into(),
        g.listen_backlog.to_string(),
        "--group".into(),
        g.name.clone(),
        "--processes".into(),
        g.processes.to_string(),
        "--threads".into(),
        g.threads.to_string(),
        "--parent-pid".into(),
        owner.to_string(),
    ];
    for s in &plan.scripts {
        argv.extend(["--script".into(), s.clone()]);
    }
    for (option, value) in &g.limits {
        argv.extend([format!("--{option}"), value.to_string()]);
    }
    if !plan.script_reloading {
        argv.push("--no-script-reloading".into());
    }
    for (flag, value) in [
        ("--python-home", &g.python_home),
        ("--python-path", &g.python_path),
        ("--home", &g.home),
    ] {
        if let Some(v) = value {
            argv.extend([flag.into(), v.clone()]);
        }
    }
    let mut env = credentials::daemon_env(creds.as_ref());
    for (name, value) in [("LANG", &g.lang), ("LC_ALL", &g.locale)] {
        if let Some(v) = value {
            env.retain(|e| !e.starts_with(&format!("{name}=")));
            env.push(format!("{name}={v}"));
        }
    }
    if !g.ignored.is_empty() {
        warn!(
            "WSGIDaemonProcess {}: options not implemented yet, ignored: {}",
            g.name,
            g.ignored.join(" ")
        );
    }
    LaunchSpec::new(daemon_exe, &argv, &env, creds, g.umask)
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
            let listener = match self.carried.remove(&path) {
                Some(fd) => socket::reown(&path).map(|()| fd),
                None => socket::bind_socket(&path),
            }
            .map_err(|e| format!("daemon group '{}': {e}", plan.config.name))?;
            bound.push((plan, path, listener));
        }
        for (path, _) in self.carried.drain() {
            let _ = std::fs::remove_file(path);
        }
        // Identity problems (a user deleted since the configuration was written, ...) only
        // stop their group: its requests get 503 and the reason is logged here.
        let mut endpoints = HashMap::new();
        for (plan, path, listener) in bound {
            let spec = match prepare_group(&plan, daemon_exe, self.owner) {
                Ok(spec) => spec,
                Err(e) => {
                    error!("daemon group '{}' not started: {e}", plan.config.name);
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
            };
            let g = &plan.config;
            endpoints.insert(
                g.name.clone(),
                Endpoint {
                    socket: path.clone(),
                    connect_timeout: Duration::from_secs(g.connect_timeout.into()),
                    socket_timeout: g.socket_timeout.map(Duration::from_secs),
                },
            );
            let gi = self.groups.len();
            self.groups.push(Group {
                name: g.name.clone(),
                listener,
                socket: path,
                spec,
            });
            for index in 0..g.processes as usize {
                self.slots.push(Box::new(Slot {
                    proc_: ffi::apr_proc_t::default(),
                    group: gi,
                    group_name: g.name.clone(),
                    index,
                    started: Instant::now(),
                    quick_failures: 0,
                    retiring: false,
                    shutdown_timeout: Duration::from_secs(g.shutdown_timeout),
                }));
                self.launch(self.slots.len() - 1, Duration::ZERO);
            }
        }
        *ENDPOINTS.write() = Some(Arc::new(endpoints));
        Ok(())
    }

    fn launch(&mut self, slot: usize, delay: Duration) {
        let s = &mut self.slots[slot];
        let g = &self.groups[s.group];
        match spawn::spawn(&g.spec, g.listener.as_raw_fd(), self.owner, delay) {
            Ok(pid) => {
                s.proc_.pid = pid;
                s.started = Instant::now() + delay;
                watch(s, self.pconf);
                info!(
                    "started daemon process {pid} (#{}) of group '{}'",
                    s.index + 1,
                    g.name
                );
            }
            Err(e) => error!("group '{}': {e}", g.name),
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
            info!(
                "daemon process {} of group '{}' from the previous configuration has exited",
                s.proc_.pid, s.group_name
            );
            return;
        }
        let s = &mut self.slots[i];
        let uptime = s.started.elapsed();
        let how = describe_exit(status);
        if status == 0 {
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
            "daemon process {} of group '{}' {how} after {:.1}s; restarting{}",
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
            handoff.sockets.push((g.listener.into_raw_fd(), g.socket));
        }
        for (path, fd) in self.carried {
            handoff.sockets.push((fd.into_raw_fd(), path));
        }
        handoff.store(self.ppool);
        info!("daemon processes told to finish their requests; the new configuration's daemons are starting");
    }

    /// Stop: every daemon gets SIGTERM and the shutdown timeout to finish, then SIGKILL.
    fn stop_all(self) {
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
                        "daemon process {pid} did not exit within shutdown-timeout ({}s); killing it",
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
        for path in self
            .groups
            .iter()
            .map(|g| &g.socket)
            .chain(self.carried.keys())
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Registers `slot`'s process with httpd's other-child mechanism, so `maintenance` hears of
/// its death. The slot must be boxed and stay in `Supervisor::slots` until it is unregistered
/// (on its death, or when httpd stops).
fn watch(slot: &mut Slot, pconf: *mut ffi::apr_pool_t) {
    let data: *mut Slot = slot;
    // SAFETY: per this function's contract the Slot outlives the registration; `proc_` is
    // inside it, and `data` is what `maintenance` gets back.
    unsafe {
        ffi::apr_proc_other_child_register(
            &mut (*data).proc_,
            Some(maintenance),
            data.cast(),
            std::ptr::null_mut(),
            pconf,
        );
    }
}

unsafe extern "C" fn maintenance(reason: i32, data: *mut std::ffi::c_void, status: i32) {
    let _ = std::panic::catch_unwind(|| {
        if reason as u32 != ffi::APR_OC_REASON_DEATH && reason as u32 != ffi::APR_OC_REASON_LOST {
            return;
        }
        let mut state = STATE.lock();
        if let Some(sup) = state.as_mut().filter(|s| s.owner == this_process()) {
            sup.on_death(data.cast(), status);
        }
    });
}

/// Runs when httpd clears its configuration pool: a restart retires the daemons, a stop ends
/// them. Forked Apache children run pool cleanups too; they touch nothing.
unsafe extern "C" fn config_cleanup(_: *mut std::ffi::c_void) -> ffi::apr_status_t {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: ap_state_query only reads httpd's main-state variable.
        let restarting = unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as i32) }
            == ffi::AP_SQ_MS_DESTROY_CONFIG as i32;
        let mut state = STATE.lock();
        if state.as_ref().map(|s| s.owner) != Some(this_process()) {
            return;
        }
        let Some(sup) = state.take() else { return };
        drop(state);
        *ENDPOINTS.write() = None;
        if restarting {
            sup.retire();
        } else {
            sup.stop_all();
        }
    });
    0
}

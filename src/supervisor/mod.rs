//! Daemon groups in httpd's parent: listening sockets, forking, restarts with backoff, and
//! stopping the daemons when httpd stops or restarts.
//!
//! Apache children inherit the [`endpoints`] table by fork and use it to connect.

mod credentials;
mod spawn;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tracing::{error, info, warn};

use crate::config::{socket_path, DaemonGroupConfig};
use crate::ffi;
use spawn::LaunchSpec;

/// Where the daemons of one group listen.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its listening UNIX socket.
    pub socket: String,
    /// How long a request waits for a daemon to accept it (`connect-timeout`).
    pub connect_timeout: Duration,
}

/// What the supervisor needs to start one group.
pub struct GroupPlan {
    /// The group as configured.
    pub config: DaemonGroupConfig,
    /// Scripts mounted on this group, preloaded by its daemons.
    pub scripts: Vec<String>,
}

/// A daemon that died within this long of starting counts as a start-up failure.
const QUICK_DEATH: Duration = Duration::from_secs(10);
/// Longest wait before retrying a daemon that keeps failing at start-up.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long stopping daemons get to finish in-flight requests before SIGKILL.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

static ENDPOINTS: RwLock<Option<Arc<HashMap<String, Endpoint>>>> = RwLock::new(None);
static STATE: Mutex<Option<Supervisor>> = Mutex::new(None);

/// The endpoints of every daemon group of the current configuration.
pub fn endpoints() -> Option<Arc<HashMap<String, Endpoint>>> {
    ENDPOINTS.read().clone()
}

struct Slot {
    proc_: ffi::apr_proc_t,
    group: usize,
    index: usize,
    started: Instant,
    quick_failures: u32,
}

struct Group {
    name: String,
    /// Bound, not listening: the first daemon that is ready calls listen().
    listener: OwnedFd,
    socket: String,
    spec: LaunchSpec,
}

struct Supervisor {
    owner: i32,
    pool: *mut ffi::apr_pool_t,
    groups: Vec<Group>,
    /// Boxed: APR keeps a pointer to each slot's `apr_proc_t`, so slots must not move.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
}

// SAFETY: the supervisor lives in httpd's parent and is only touched from its main thread
// (hooks and other-child callbacks); the Mutex exists to satisfy `static`.
unsafe impl Send for Supervisor {}

fn backoff(quick_failures: u32) -> Duration {
    match quick_failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

/// Creates the sockets and starts the daemons of every group, registering their supervision
/// on `pconf`, whose cleanup stops them.
pub fn start(
    pconf: *mut ffi::apr_pool_t,
    plans: Vec<GroupPlan>,
    prefix: &str,
    daemon_exe: &str,
) -> Result<(), String> {
    let owner = std::process::id() as i32;
    if !std::path::Path::new(daemon_exe).is_file() {
        return Err(format!(
            "the daemon binary {daemon_exe} does not exist: install rswsgi-daemon next to mod_rswsgi.so \
             or set RSWSGIDaemonExecutable"
        ));
    }
    // Socket problems are configuration errors: httpd refuses to start and says why.
    let mut bound = Vec::new();
    for (i, plan) in plans.into_iter().enumerate() {
        let socket = socket_path(prefix, owner as u32, i);
        let listener = bind_socket(&socket)
            .map_err(|e| format!("daemon group '{}': {e}", plan.config.name))?;
        bound.push((plan, socket, listener));
    }
    // Identity problems (a user deleted since the configuration was written, ...) only stop
    // their group: its requests get 503 and the reason is logged here.
    let mut groups = Vec::new();
    let mut endpoints = HashMap::new();
    for (plan, socket, listener) in bound {
        match prepare_group(&plan, daemon_exe, owner) {
            Ok(spec) => {
                endpoints.insert(
                    plan.config.name.clone(),
                    Endpoint {
                        socket: socket.clone(),
                        connect_timeout: Duration::from_secs(plan.config.connect_timeout.into()),
                    },
                );
                groups.push((
                    plan.config.processes,
                    Group {
                        name: plan.config.name,
                        listener,
                        socket,
                        spec,
                    },
                ));
            }
            Err(e) => {
                error!("daemon group '{}' not started: {e}", plan.config.name);
                let _ = std::fs::remove_file(&socket);
            }
        }
    }
    *ENDPOINTS.write() = Some(Arc::new(endpoints));
    let mut sup = Supervisor {
        owner,
        pool: pconf,
        groups: Vec::new(),
        slots: Vec::new(),
    };
    for (gi, (processes, group)) in groups.into_iter().enumerate() {
        for index in 0..processes as usize {
            sup.slots.push(Box::new(Slot {
                proc_: ffi::apr_proc_t::default(),
                group: gi,
                index,
                started: Instant::now(),
                quick_failures: 0,
            }));
        }
        sup.groups.push(group);
    }
    for slot in 0..sup.slots.len() {
        sup.launch(slot, Duration::ZERO);
    }
    *STATE.lock() = Some(sup);
    // SAFETY: pconf is httpd's live configuration pool; the cleanup only reads STATE.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pconf,
            std::ptr::null_mut(),
            Some(stop_cleanup),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
    Ok(())
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
    for (flag, value) in [
        ("--python-home", &g.python_home),
        ("--python-path", &g.python_path),
        ("--home", &g.home),
    ] {
        if let Some(v) = value {
            argv.extend([flag.into(), v.clone()]);
        }
    }
    let env = credentials::daemon_env(creds.as_ref());
    if !g.ignored.is_empty() {
        warn!(
            "WSGIDaemonProcess {}: options not implemented yet, ignored: {}",
            g.name,
            g.ignored.join(" ")
        );
    }
    LaunchSpec::new(daemon_exe, &argv, &env, creds)
}

/// Binds the group's socket, replacing a stale one, owned by Apache's `User` with mode 0600.
fn bind_socket(path: &str) -> Result<OwnedFd, String> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot chmod socket directory {}: {e}", dir.display()))?;
        }
        if nix::unistd::geteuid().is_root() {
            let who = credentials::apache_child();
            crate::access::check_searchable(dir, &who).map_err(|e| {
                format!(
                    "Apache's children (user {}) could not reach the daemon socket in {}: {e}; \
                     set WSGISocketPrefix to a directory they can reach",
                    who.name,
                    dir.display()
                )
            })?;
        }
    }
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(p)
            .map_err(|e| format!("cannot remove stale socket {path}: {e}"))?,
        Ok(_) => {
            return Err(format!(
                "{path} exists and is not a socket; refusing to replace it"
            ))
        }
        Err(_) => {}
    }
    // Bound but not listening: connections are refused until a daemon of the group is ready
    // to serve and calls listen(), so a group that cannot start gives 503s, not hung requests.
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let listener = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create the daemon socket: {e}"))?;
    let addr = UnixAddr::new(p).map_err(|e| format!("bad daemon socket path {path}: {e}"))?;
    bind(listener.as_raw_fd(), &addr)
        .map_err(|e| format!("cannot bind daemon socket {path}: {e}"))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod daemon socket {path}: {e}"))?;
    if nix::unistd::geteuid().is_root() {
        let (uid, gid) = credentials::apache_child_ids();
        nix::unistd::chown(p, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown daemon socket {path}: {e}"))?;
    }
    Ok(listener)
}

impl Supervisor {
    fn launch(&mut self, slot: usize, delay: Duration) {
        let s = &mut self.slots[slot];
        let g = &self.groups[s.group];
        match spawn::spawn(&g.spec, g.listener.as_raw_fd(), self.owner, delay) {
            Ok(pid) => {
                s.proc_.pid = pid;
                s.started = Instant::now() + delay;
                let data: *mut Slot = &mut **s;
                // SAFETY: the Slot is boxed and lives in STATE until the pool cleanup, which runs
                // before APR's registration is gone; `proc_` is inside that box.
                unsafe {
                    ffi::apr_proc_other_child_register(
                        &mut (*data).proc_,
                        Some(maintenance),
                        data.cast(),
                        std::ptr::null_mut(),
                        self.pool,
                    );
                }
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
        let s = &mut self.slots[i];
        // SAFETY: data is the registered Slot, still alive in self.slots.
        unsafe { ffi::apr_proc_other_child_unregister(data.cast()) };
        let uptime = s.started.elapsed();
        s.quick_failures = if uptime < QUICK_DEATH {
            s.quick_failures + 1
        } else {
            0
        };
        let delay = backoff(s.quick_failures);
        let group = &self.groups[s.group].name;
        warn!(
            "daemon process {} of group '{group}' exited (status {status}) after {:.1}s; restarting{}",
            s.proc_.pid,
            uptime.as_secs_f64(),
            if delay.is_zero() { String::new() } else { format!(" in {}s (it keeps failing at start-up)", delay.as_secs()) }
        );
        s.proc_.pid = 0;
        self.launch(i, delay);
    }

    fn stop_all(self) {
        let pids: Vec<i32> = self
            .slots
            .iter()
            .map(|s| s.proc_.pid)
            .filter(|&p| p > 0)
            .collect();
        for &pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
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
                        "daemon process {pid} did not exit within {}s; killing it",
                        SHUTDOWN_TIMEOUT.as_secs()
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
        for g in &self.groups {
            let _ = std::fs::remove_file(&g.socket);
        }
    }
}

unsafe extern "C" fn maintenance(reason: i32, data: *mut std::ffi::c_void, status: i32) {
    let _ = std::panic::catch_unwind(|| {
        if reason as u32 != ffi::APR_OC_REASON_DEATH && reason as u32 != ffi::APR_OC_REASON_LOST {
            return;
        }
        let mut state = STATE.lock();
        if let Some(sup) = state
            .as_mut()
            .filter(|s| s.owner == std::process::id() as i32)
        {
            sup.on_death(data.cast(), status);
        }
    });
}

unsafe extern "C" fn stop_cleanup(_: *mut std::ffi::c_void) -> ffi::apr_status_t {
    let _ = std::panic::catch_unwind(|| {
        let sup = {
            let mut state = STATE.lock();
            match state.as_ref() {
                Some(s) if s.owner == std::process::id() as i32 => state.take(),
                _ => None,
            }
        };
        if let Some(sup) = sup {
            sup.stop_all();
        }
    });
    0
}

//! How each daemon ended, learnt from `SIGCHLD` before httpd reaps it.
//!
//! httpd's event MPM reaps every child with `apr_proc_wait_all_procs`, which decodes the wait
//! status into an exit code *or* a signal number (and says which in `exitwhy`), and then calls
//! `apr_proc_other_child_alert(&pid, APR_OC_REASON_DEATH, status)` with only that number:
//! `os._exit(1)` and SIGHUP both arrive as 1. (`apr_proc_other_child_refresh`, run when httpd
//! stops, passes the raw `waitpid` status instead.) So the status the maintenance callback gets
//! cannot say what happened. The kernel can: httpd's parent installs no `SIGCHLD` handler, so
//! while daemons run this one records, for every daemon it tracks, `si_code` and `si_status`
//! of the signal and of a `waitid(WNOWAIT)` peek (which sees deaths whose signals coalesced)
//! without reaping anything.

use std::sync::atomic::{AtomicI32, Ordering};

/// How a daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (and dumped core).
    Signal(i32, bool),
    /// Not recorded: what httpd passed, an exit status or a signal number.
    Unknown(i32),
}

impl Exit {
    /// How the death is described in the log.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("exited with status {c}"),
            Exit::Signal(sig, core) => {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
                let core = if core { " (core dumped)" } else { "" };
                format!("was killed by signal {name}{core}")
            }
            Exit::Unknown(s) => format!("ended with exit status or signal {s}"),
        }
    }

    /// A deliberate, clean exit (a recycle).
    pub fn is_clean(self) -> bool {
        matches!(self, Exit::Code(0) | Exit::Unknown(0))
    }
}

struct Entry {
    pid: AtomicI32,
    /// 0 until recorded, else `CLD_EXITED`, `CLD_KILLED` or `CLD_DUMPED`.
    code: AtomicI32,
    status: AtomicI32,
}

const SLOTS: usize = 512;
static TABLE: [Entry; SLOTS] = [const {
    Entry {
        pid: AtomicI32::new(0),
        code: AtomicI32::new(0),
        status: AtomicI32::new(0),
    }
}; SLOTS];
/// The process that installed the handler (httpd's parent), or 0.
static INSTALLER: AtomicI32 = AtomicI32::new(0);

fn record(pid: i32, code: i32, status: i32) {
    if !matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED) {
        return;
    }
    if let Some(e) = TABLE.iter().find(|e| e.pid.load(Ordering::Acquire) == pid) {
        e.status.store(status, Ordering::Relaxed);
        e.code.store(code, Ordering::Release);
    }
}

/// The `SIGCHLD` handler: only atomics and `waitid`, which is async-signal-safe.
extern "C" fn on_sigchld(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: errno is this thread's; the handler leaves it as it found it.
        let saved = unsafe { *libc::__errno_location() };
        if !info.is_null() {
            // SAFETY: the kernel passes a valid siginfo for SIGCHLD (SA_SIGINFO), whose
            // si_pid and si_status are the ones to read.
            let (pid, code, status) =
                unsafe { ((*info).si_pid(), (*info).si_code, (*info).si_status()) };
            record(pid, code, status);
        }
        for e in &TABLE {
            let pid = e.pid.load(Ordering::Acquire);
            if pid <= 0 || e.code.load(Ordering::Acquire) != 0 {
                continue;
            }
            // SAFETY: si is a zeroed siginfo the call fills in; WNOWAIT leaves the child for
            // httpd to reap.
            unsafe {
                let mut si: libc::siginfo_t = std::mem::zeroed();
                let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
                if libc::waitid(libc::P_PID, pid as libc::id_t, &mut si, flags) == 0
                    && si.si_pid() == pid
                {
                    record(pid, si.si_code, si.si_status());
                }
            }
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = saved };
    });
}

/// [`on_sigchld`] as `sa_sigaction` takes it.
fn handler() -> libc::sighandler_t {
    on_sigchld as *const () as libc::sighandler_t
}

fn action(handler: libc::sighandler_t, flags: libc::c_int) -> libc::sigaction {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); fields are set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = flags;
    sa
}

/// Installs the handler in httpd's parent, unless `SIGCHLD` is already handled by someone
/// else (then deaths are described from the status httpd passes, as [`Exit::Unknown`]).
pub fn install() {
    let ours = action(
        handler(),
        libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_NOCLDSTOP,
    );
    // SAFETY: plain sigaction calls with valid structures; httpd's parent is one thread here.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) != 0
            || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != handler())
        {
            tracing::debug!("SIGCHLD is handled elsewhere; daemon exits are not told from signals");
            return;
        }
        if libc::sigaction(libc::SIGCHLD, &ours, std::ptr::null_mut()) == 0 {
            INSTALLER.store(std::process::id() as i32, Ordering::Relaxed);
        }
    }
}

/// Puts back the default `SIGCHLD` disposition, before httpd unloads this module (a restart)
/// or in a forked Apache child, and forgets every tracked daemon.
pub fn uninstall() {
    if INSTALLER.swap(0, Ordering::Relaxed) == 0 {
        return;
    }
    let dfl = action(libc::SIG_DFL, 0);
    // SAFETY: restores the default action with a valid structure.
    unsafe { libc::sigaction(libc::SIGCHLD, &dfl, std::ptr::null_mut()) };
    for e in &TABLE {
        e.pid.store(0, Ordering::Release);
    }
}

/// Blocks `SIGCHLD` while alive, so a daemon that dies before [`track`] is still recorded
/// (the signal is delivered when the guard drops). Forked children unblock it themselves.
pub struct Hold(libc::sigset_t);

impl Hold {
    pub fn new() -> Hold {
        // SAFETY: sigset operations on local sets; sigprocmask on httpd's only thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
            Hold(old)
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Starts recording how `pid` ends. A full table records nothing (deaths become `Unknown`).
pub fn track(pid: i32) {
    if INSTALLER.load(Ordering::Relaxed) == 0 {
        return;
    }
    if let Some(e) = TABLE.iter().find(|e| e.pid.load(Ordering::Acquire) == 0) {
        e.code.store(0, Ordering::Relaxed);
        e.status.store(0, Ordering::Relaxed);
        e.pid.store(pid, Ordering::Release);
    }
}

/// How `pid` ended, from the record, else from `status` as httpd passed it; stops tracking it.
pub fn take(pid: i32, status: i32) -> Exit {
    let Some(e) = TABLE
        .iter()
        .find(|e| pid > 0 && e.pid.load(Ordering::Acquire) == pid)
    else {
        return Exit::Unknown(status);
    };
    let code = e.code.load(Ordering::Acquire);
    let value = e.status.load(Ordering::Relaxed);
    e.pid.store(0, Ordering::Release);
    match code {
        libc::CLD_EXITED => Exit::Code(value),
        libc::CLD_KILLED => Exit::Signal(value, false),
        libc::CLD_DUMPED => Exit::Signal(value, true),
        _ => Exit::Unknown(status),
    }
}

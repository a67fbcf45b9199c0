//! httpd's calls into the supervisor: the other-child callback for a daemon's death, the
//! configuration pool's cleanup (restart or stop), `child_init` in each Apache child, and the
//! parent's `monitor` hook.

use std::time::{Duration, Instant};

use rswsgi_protocol::Code;
use tracing::warn;

use super::{exits, this_process, Slot, ENDPOINTS, PARENT_ROOT, STATE};
use crate::ffi;

/// Registers `slot`'s process with httpd's other-child mechanism, so `maintenance` hears of
/// its death. The slot must be boxed and stay in `Supervisor::slots` until it is unregistered
/// (on its death, or when httpd stops).
pub(super) fn watch(slot: &mut Slot, pconf: *mut ffi::apr_pool_t) {
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
pub(super) unsafe extern "C" fn config_cleanup(_: *mut std::ffi::c_void) -> ffi::apr_status_t {
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
        exits::uninstall();
        *ENDPOINTS.write() = None;
        if restarting {
            sup.retire();
        } else {
            sup.stop_all();
        }
    });
    0
}

/// In each Apache child, from `child_init`: closes the daemons' listening sockets the child
/// inherited by fork (only the daemons may hold them: a socket some orphaned Apache child keeps
/// open stays in LISTEN after the daemons are gone, and a request queues there instead of being
/// refused) and puts back the default `SIGCHLD` action.
pub fn child_init() {
    let mut state = STATE.lock();
    if let Some(sup) = state.as_mut().filter(|s| s.owner != this_process()) {
        sup.groups.clear();
        sup.carried.clear();
    }
    drop(state);
    exits::uninstall();
    warn_if_dumpable();
}

/// Apache's `monitor` hook, in httpd's parent: starts again the daemons whose fork failed,
/// once their wait is over.
pub fn monitor() {
    let mut state = STATE.lock();
    let Some(sup) = state.as_mut().filter(|s| s.owner == this_process()) else {
        return;
    };
    let now = Instant::now();
    for i in 0..sup.slots.len() {
        let s = &mut sup.slots[i];
        if !s.retiring && s.proc_.pid == 0 && s.retry_at.is_some_and(|t| t <= now) {
            s.retry_at = None;
            sup.launch(i, Duration::ZERO);
        }
    }
}

/// Says so when this Apache child is dumpable (`CoreDumpDirectory` makes mod_unixd set that):
/// then any process running as Apache's `User` can read the connection secret from its memory.
/// Not when httpd runs as a user (not root): then every process, daemons included, is that
/// user's anyway.
fn warn_if_dumpable() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    // SAFETY: PR_GET_DUMPABLE only reads this process's flag.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1;
    let changed_user = PARENT_ROOT.load(Ordering::Relaxed) && !nix::unistd::geteuid().is_root();
    if dumpable && changed_user && !WARNED.swap(true, Ordering::Relaxed) {
        warn!(
            "{}: Apache's children are dumpable (CoreDumpDirectory is set): any process \
             running as Apache's User can read the rswsgi connection secret from their memory \
             and talk to the daemons; see docs/security.md",
            Code::DumpableChildren
        );
    }
}

//! Request handlers. The server speaks the protocol; a [`Backend`] turns one request into one
//! response: the Python WSGI backend, or the native (`libloading`) one for handler libraries.

pub mod native;
pub mod wsgi;

use crate::conn::{Request, RequestIo};

/// Something that serves requests. One instance is shared by all worker threads.
pub trait Backend: Send + Sync + 'static {
    /// Runs a worker thread's whole loop, `run`, in whatever per-thread context the backend
    /// needs. `run` blocks (accept, socket reads) almost all the time.
    fn run_worker(&self, run: &mut (dyn FnMut() + Send)) {
        run()
    }

    /// Serves one request: reads its body through `io` as the application asks for it, and
    /// ends with [`RequestIo::finish`] or [`RequestIo::fail`]. A handler that returns without
    /// either gets an `Error` frame sent for it.
    fn handle(&self, req: &Request, io: &RequestIo);

    /// True when the script or library this request is for changed on disk since it was
    /// loaded (`WSGIScriptReloading`): the process then recycles instead of serving it.
    fn needs_reload(&self, _req: &Request) -> bool {
        false
    }

    /// The files the code loaded so far came from (for Python, the file of every module in
    /// `sys.modules`), which `--reload-on-changes` watches besides the scripts.
    fn source_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// The process begins to stop or recycle, for `reason` (mod_wsgi's shutdown reason
    /// names; empty for a plain stop): the application's shutdown callbacks run.
    fn stopping(&self, _reason: &str) {}

    /// The process is about to exit, its requests done: the application's exit handlers run.
    fn exiting(&self) {}

    /// Obtains and releases whatever lock every request needs (Python's GIL), so the
    /// `deadlock-timeout` watchdog can tell when it has become unobtainable.
    fn probe(&self) {}

    /// Raises the backend's request-timeout exception (`mod_wsgi.RequestTimeout`) in the
    /// worker thread `thread` (its `pthread_self`), for `interrupt-timeout`; false when it
    /// cannot.
    fn interrupt(&self, _thread: u64) -> bool {
        false
    }

    /// The current stack of the worker thread `thread` (its `pthread_self`), for the log line
    /// of a request that ran past `request-timeout`.
    fn stack_of(&self, _thread: u64) -> Option<String> {
        None
    }
}

/// The script (or handler library) a request names: the script of a hook call (an auth or
/// dispatch script), else its `WSGIHandlerScript` (`mod_wsgi.handler_script`, set by the
/// module), else the head's script (`SCRIPT_FILENAME`); `None` when it names none. The
/// group's script policy decides whether it may be loaded.
pub fn requested_script(req: &Request) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    [rswsgi_protocol::hook::SCRIPT, "mod_wsgi.handler_script"]
        .into_iter()
        .filter_map(|key| req.get(key))
        .find(|p| !p.is_empty())
        .map(|p| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .or_else(|| req.meta.script.clone())
}

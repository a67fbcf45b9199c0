//! The Python WSGI backend (PEP 3333) on an embedded CPython.
//!
//! - [`interp`]: interpreter start-up (Python home, virtualenv, `sys.path`).
//! - [`script`]: loading WSGI script files as modules, cached per process.
//! - [`environ`]: the per-request environ dict; [`strings`]: its strings, reused from the
//!   thread's previous request.
//! - [`input`]: `wsgi.input`, pulling the request body from the module.
//! - [`response`]: `start_response`, the `write()` callable; [`head_check`]: the pure
//!   status and header checks it applies.
//! - [`errors`]: `wsgi.errors` and traceback logging.
//! - [`app`]: running the application for one request.
//! - [`modwsgi`]: the importable `mod_wsgi` module, thread ids, metrics and events.

mod app;
mod environ;
mod errors;
mod events;
mod head_check;
#[cfg(test)]
mod head_props;
mod hook;
mod input;
mod interp;
mod modwsgi;
mod response;
mod script;
mod strings;

use rswsgi_protocol::Code;
use std::path::PathBuf;

use pyo3::prelude::*;

use crate::backend::Backend;
use crate::conn::{Request, RequestIo};

pub use interp::InitError;
pub use modwsgi::ProcessFacts;

/// What the WSGI backend is configured with (from the command line).
#[derive(Debug, Clone)]
pub struct WsgiConfig {
    /// Scripts to load at start-up.
    pub scripts: Vec<PathBuf>,
    /// The callable looked up when a request does not name one.
    pub callable: String,
    /// A Python prefix or a virtualenv.
    pub python_home: Option<PathBuf>,
    /// Directories to put at the front of `sys.path`.
    pub python_path: Vec<PathBuf>,
    /// The group's `home=` (the working directory), which goes first in `sys.path`.
    pub home: Option<PathBuf>,
    /// `wsgi.multithread`.
    pub multithread: bool,
    /// `wsgi.multiprocess`.
    pub multiprocess: bool,
    /// `wsgi.run_once`: one thread, recycled after each request.
    pub run_once: bool,
    /// `apache.version`, as the module passed it.
    pub apache_version: Option<(u32, u32, u32)>,
    /// What `import mod_wsgi` says about the process.
    pub process: ProcessFacts,
    /// `WSGIScriptReloading`: recycle when a loaded script changes on disk.
    pub script_reloading: bool,
    /// `switch-interval`: `sys.setswitchinterval()` once Python has started.
    pub switch_interval: Option<f64>,
    /// `WSGIRestrictStdin On`: `sys.stdin` raises `OSError` on any use.
    pub restrict_stdin: bool,
    /// `WSGIRestrictStdout On`: `sys.stdout` raises `OSError` on any use (else it goes to the
    /// error log).
    pub restrict_stdout: bool,
    /// The scripts requests may name.
    pub policy: crate::allow::ScriptPolicy,
}

/// Serves requests with a WSGI application.
pub struct WsgiBackend {
    config: WsgiConfig,
    /// `config.callable` as a Python string, made once (it keeps its hash).
    callable_name: Py<pyo3::types::PyString>,
    scripts: script::Scripts,
    preload_failure: Option<PreloadFailure>,
    /// Modules whose `__file__` reload-on-changes cannot watch, already reported.
    unwatchable: parking_lot::Mutex<std::collections::HashSet<String>>,
}

/// A script that failed to load at start-up.
#[derive(Debug, Clone)]
pub struct PreloadFailure {
    /// The script.
    pub script: PathBuf,
    /// The exception's last line, or why the file could not be read.
    pub error: String,
}

impl WsgiBackend {
    /// Starts Python and preloads the configured scripts. A script that fails to load is
    /// logged and retried by the requests that need it; the first such failure is kept for the
    /// start-up report ([`WsgiBackend::preload_failure`]).
    pub fn new(config: WsgiConfig) -> Result<Self, InitError> {
        interp::init(
            config.python_home.as_deref(),
            &config.python_path,
            config.home.as_deref(),
            &config.process,
        )?;
        if let Some(secs) = config.switch_interval {
            Python::attach(|py| {
                py.import("sys")
                    .and_then(|sys| sys.call_method1("setswitchinterval", (secs,)).map(drop))
                    .map_err(|e| InitError::Python(format!("switch-interval={secs}: {e}")))
            })?;
        }
        interp::restrict_streams(config.restrict_stdin, config.restrict_stdout)?;
        let scripts = script::Scripts::new(config.policy.owner());
        let preload_failure = Python::attach(|py| {
            let mut first = None;
            for path in &config.scripts {
                if let Err(e) = scripts.get(py, path) {
                    e.log(py);
                    first.get_or_insert_with(|| PreloadFailure {
                        script: path.clone(),
                        error: e.summary(py),
                    });
                }
            }
            first
        });
        let callable_name =
            Python::attach(|py| pyo3::types::PyString::intern(py, &config.callable).unbind());
        Ok(WsgiBackend {
            callable_name,
            config,
            scripts,
            preload_failure,
            unwatchable: Default::default(),
        })
    }

    /// The first script that failed to load at start-up, if any.
    pub fn preload_failure(&self) -> Option<&PreloadFailure> {
        self.preload_failure.as_ref()
    }
}

impl Backend for WsgiBackend {
    fn run_worker(&self, run: &mut (dyn FnMut() + Send)) {
        // Attach once for the thread's life, so its Python thread state (and any
        // `threading.local` data) lasts across requests; detach for all the waiting.
        modwsgi::enter_worker();
        Python::attach(|py| py.detach(run));
    }

    fn stopping(&self, reason: &str) {
        modwsgi::process_stopping(reason);
    }

    fn exiting(&self) {
        interp::run_atexit();
    }

    fn handle(&self, req: &Request, io: &RequestIo) {
        Python::attach(|py| app::serve(py, self, req, io));
    }

    fn needs_reload(&self, req: &Request) -> bool {
        self.config.script_reloading
            && app::script_path(self, req).is_some_and(|p| self.scripts.changed(&p))
    }

    fn probe(&self) {
        Python::attach(|_| {});
    }

    fn source_files(&self) -> Vec<PathBuf> {
        use std::os::unix::ffi::OsStringExt;
        type Listing = (Vec<Vec<u8>>, Vec<(String, String)>);
        let listing = Python::attach(|py| {
            interp::support(py)
                .and_then(|s| s.call_method0("module_files"))
                .and_then(|f| f.extract::<Listing>())
        });
        let (files, unusable) = match listing {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(
                    "{}: reload-on-changes: cannot list the modules' files: {e}",
                    Code::ReloadListFailed
                );
                return Vec::new();
            }
        };
        // Once per module: the others are watched all the same.
        let mut reported = self.unwatchable.lock();
        for (module, why) in unusable {
            if reported.insert(module.clone()) {
                tracing::warn!(
                    "{}: reload-on-changes: cannot watch module '{module}': its __file__ is \
                     not a file name ({why}); its changes will not be noticed",
                    Code::ReloadListFailed
                );
            }
        }
        files
            .into_iter()
            .map(|f| PathBuf::from(std::ffi::OsString::from_vec(f)))
            .collect()
    }

    fn interrupt(&self, thread: u64) -> bool {
        Python::attach(|py| {
            let Ok(exc) = py
                .import("mod_wsgi")
                .and_then(|m| m.getattr("RequestTimeout"))
            else {
                return false;
            };
            // SAFETY: the GIL is held (attach) and `exc` is a live exception class; CPython
            // takes its own reference to it. The thread id is a Python thread identifier
            // (pthread_self, as threading.get_ident(), which pyo3 declares signed); an
            // unknown one modifies nothing.
            let n = unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(thread as std::os::raw::c_long, exc.as_ptr())
            };
            n == 1
        })
    }

    fn stack_of(&self, thread: u64) -> Option<String> {
        Python::attach(|py| {
            let frames = py
                .import("sys")
                .ok()?
                .call_method0("_current_frames")
                .ok()?;
            let frame = frames.get_item(thread).ok()?;
            let lines = py
                .import("traceback")
                .ok()?
                .call_method1("format_stack", (frame,))
                .ok()?;
            let text: Vec<String> = lines.extract().ok()?;
            Some(text.concat())
        })
    }
}

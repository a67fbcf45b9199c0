//! The native backend: a handler library (a cdylib built from a `wsgi.rs` with the `rswsgi`
//! SDK) loaded with `libloading` once per process and called from every worker thread.
//!
//! - [`load`]: opening the library and checking its ABI table.
//! - [`host`]: the `HostRequest` callbacks a handler uses for one request.

mod host;
mod load;

use rswsgi_protocol::Code;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::allow::ScriptPolicy;
use crate::backend::Backend;
use crate::conn::{Request, RequestIo};

pub use load::{Handler, LoadError};

/// Serves requests with native handler libraries, loaded once per process each.
pub struct NativeBackend {
    default: PathBuf,
    policy: ScriptPolicy,
    handlers: Mutex<HashMap<PathBuf, Arc<Handler>>>,
}

impl NativeBackend {
    /// Loads every library in `libs` (the first is the default for requests that do not name
    /// one); any load failure is fatal, so a broken handler never serves.
    pub fn new(libs: &[PathBuf], policy: ScriptPolicy) -> Result<Self, LoadError> {
        let mut handlers = HashMap::new();
        for lib in libs {
            let h = Handler::load(lib, policy.owner())?;
            tracing::info!(
                "loaded native handler '{}' (rswsgi SDK {})",
                lib.display(),
                h.sdk_version()
            );
            handlers.insert(lib.clone(), Arc::new(h));
        }
        let default = libs.first().cloned().ok_or(LoadError::NoHandler)?;
        Ok(NativeBackend {
            default,
            policy,
            handlers: Mutex::new(handlers),
        })
    }

    fn handler_for(&self, req: &Request) -> Result<Arc<Handler>, LoadError> {
        let path = crate::backend::requested_script(req).unwrap_or_else(|| self.default.clone());
        let mut map = self.handlers.lock();
        if let Some(h) = map.get(&path) {
            return Ok(Arc::clone(h));
        }
        // Only the group's own handler libraries are ever opened.
        self.policy.check(&path)?;
        let h = Arc::new(Handler::load(&path, self.policy.owner())?);
        map.insert(path, Arc::clone(&h));
        Ok(h)
    }
}

/// True when `path` names a native handler library rather than a Python script.
pub fn is_native(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "so")
}

impl Backend for NativeBackend {
    fn handle(&self, req: &Request, io: &RequestIo) {
        if let Some(kind) = req.get(rswsgi_protocol::hook::KIND) {
            let msg = format!(
                "this group runs native handlers, which cannot answer a Python hook call ({}); \
                 give the auth or dispatch script a Python group with process-group=",
                String::from_utf8_lossy(kind)
            );
            tracing::error!("{}: {msg}", Code::NativeHandlerError);
            let _ = io.fail(&msg);
            return;
        }
        match self.handler_for(req) {
            Ok(h) => host::serve(&h, req, io),
            Err(e @ LoadError::Refused(_)) => {
                tracing::error!(
                    "{}: {e} (request for {}; answered 403)",
                    Code::ScriptRefused,
                    req.url()
                );
                let _ = io.forbid(&e.to_string());
            }
            Err(e) => {
                tracing::error!("{}: {e}", Code::NativeHandlerError);
                let _ = io.fail(&e.to_string());
            }
        }
    }
}

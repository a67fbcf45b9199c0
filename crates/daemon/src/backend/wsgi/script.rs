//! WSGI script files, loaded as modules once per process (like mod_wsgi: the module name is
//! derived from the file's path, its code is compiled with the real file name).

use rswsgi_protocol::Code;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBytes;

use super::errors::log_exception;
use super::interp::support;
use crate::log::effective_user;
use crate::owner::{self, OpenError, OwnerRule};

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read by the daemon's user.
    #[error("cannot read WSGI script {path} as user {user}: {source}")]
    Read {
        /// The script.
        path: PathBuf,
        /// The effective user.
        user: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The group's `script-user`/`script-group` refuses it (answered 403).
    #[error(transparent)]
    Refused(#[from] crate::owner::Refused),
    /// Compiling or running the script raised.
    #[error("failed to load WSGI script '{}'", path.display())]
    Python {
        /// The script.
        path: PathBuf,
        /// The exception.
        err: PyErr,
    },
}

impl LoadError {
    /// Logs the error: one line for an unreadable file, the traceback for a Python error.
    pub fn log(&self, py: Python<'_>) {
        match self {
            LoadError::Read { .. } | LoadError::Refused(_) => {
                tracing::error!("{}: {self}", Code::ScriptLoadFailed)
            }
            LoadError::Python { err, .. } => log_exception(py, err, &self.to_string()),
        }
    }

    /// One line for the start-up report: the exception's last line as Python's traceback
    /// ends with it (`ModuleNotFoundError: No module named 'flask'`), or why the file could
    /// not be read.
    pub fn summary(&self, py: Python<'_>) -> String {
        let LoadError::Python { err, .. } = self else {
            return self.to_string();
        };
        py.import("traceback")
            .and_then(|tb| tb.call_method1("format_exception_only", (err.value(py),)))
            .and_then(|lines| lines.extract::<Vec<String>>())
            .ok()
            .and_then(|lines| lines.last().map(|l| l.trim_end().to_owned()))
            .unwrap_or_else(|| err.to_string())
    }
}

/// Loaded script modules, by path.
#[derive(Default)]
pub struct Scripts {
    /// `script-user`/`script-group`: checked on each file as it is opened.
    owner: Option<OwnerRule>,
    modules: Mutex<HashMap<PathBuf, Py<PyModule>>>,
    /// Modification time of each script when it was loaded, for `WSGIScriptReloading`.
    mtimes: Mutex<HashMap<PathBuf, Option<std::time::SystemTime>>>,
    /// Serialises loading, so a script's top-level code runs once even under concurrent
    /// first requests.
    loading: std::sync::Mutex<()>,
}

impl Scripts {
    /// No script loaded yet; each will have to pass `owner`.
    pub fn new(owner: Option<OwnerRule>) -> Self {
        Scripts {
            owner,
            ..Scripts::default()
        }
    }

    /// The module for the script at `path`, loading it if needed. A failed load is not
    /// cached: the next request tries again.
    pub fn get<'py>(
        &self,
        py: Python<'py>,
        path: &Path,
    ) -> Result<Bound<'py, PyModule>, LoadError> {
        if let Some(m) = self.cached(py, path) {
            return Ok(m);
        }
        let _loading = self
            .loading
            .lock_py_attached(py)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(m) = self.cached(py, path) {
            return Ok(m);
        }
        let read_error = |source| LoadError::Read {
            path: path.to_owned(),
            user: effective_user(),
            source,
        };
        // Read from the descriptor that was checked: the file cannot be swapped in between.
        let (mtime, source) = py
            .detach(|| {
                let (mut file, meta) = owner::open(path, self.owner)?;
                let mut source = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut source)?;
                Ok::<_, OpenError>((meta.modified().ok(), source))
            })
            .map_err(|e| match e {
                OpenError::Refused(r) => LoadError::Refused(r),
                OpenError::Io(e) => read_error(e),
            })?;
        let python_err = |err| LoadError::Python {
            path: path.to_owned(),
            err,
        };
        let module = support(py)
            .and_then(|s| {
                s.call_method1(
                    "load_script",
                    (
                        module_name(path),
                        path.as_os_str(),
                        PyBytes::new(py, &source),
                    ),
                )
            })
            .and_then(|m| Ok(m.cast_into::<PyModule>()?))
            .map_err(python_err)?;
        self.modules
            .lock()
            .insert(path.to_owned(), module.clone().unbind());
        self.mtimes.lock().insert(path.to_owned(), mtime);
        tracing::info!("loaded WSGI script '{}'", path.display());
        Ok(module)
    }

    /// True when `path` was loaded and has been modified (or removed) since.
    pub fn changed(&self, path: &Path) -> bool {
        let Some(loaded) = self.mtimes.lock().get(path).copied() else {
            return false;
        };
        std::fs::metadata(path).and_then(|m| m.modified()).ok() != loaded
    }

    fn cached<'py>(&self, py: Python<'py>, path: &Path) -> Option<Bound<'py, PyModule>> {
        self.modules.lock().get(path).map(|m| m.bind(py).clone())
    }
}

/// A module name unique to `path` and stable across runs: `_mod_wsgi_` and a 64-bit FNV-1a
/// hash of the path in hex.
pub fn module_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path.as_os_str().as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("_mod_wsgi_{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_stable_and_distinct() {
        let a = module_name(Path::new("/srv/a/wsgi.py"));
        assert_eq!(a, module_name(Path::new("/srv/a/wsgi.py")));
        assert_ne!(a, module_name(Path::new("/srv/b/wsgi.py")));
        assert!(a.starts_with("_mod_wsgi_") && a.len() == 26, "{a}");
    }
}

//! Starting the interpreter: Python home or virtualenv, `sys.path`, the support module.

use rswsgi_protocol::Code;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::errors::{format_exception, ErrorLog};
use crate::pyhome::{self, Home, HomeError};

static SUPPORT: OnceLock<Py<PyModule>> = OnceLock::new();

/// Why Python could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The Python home cannot be read by the daemon's user, or is not one for this Python.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// Python code run during start-up raised.
    #[error("setting up Python failed:\n{0}")]
    Python(String),
}

/// The helper module (`support.py`), once [`init`] has run.
pub fn support(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    SUPPORT
        .get()
        .map(|m| m.bind(py))
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("Python is not set up"))
}

/// Initialises Python once for the process.
/// `home` is the Python home (`python-home=`); `working_dir` the group's `home=`, inserted at
/// the front of `sys.path` after `python_path` as mod_wsgi does, so a script imports the
/// modules beside it as it would from the command line.
pub fn init(
    home: Option<&Path>,
    python_path: &[PathBuf],
    working_dir: Option<&Path>,
    process: &super::ProcessFacts,
) -> Result<(), InitError> {
    let mut venv = None;
    let mut virtualenv = None;
    if let Some(home) = home {
        // Checked before Python starts: a home of another version, or no Python home at all,
        // is one line here instead of CPython's fatal error or a venv whose packages are
        // never found.
        match pyhome::check(home, pyhome::daemon_version())? {
            // With the venv's own interpreter as the program name, CPython finds its
            // pyvenv.cfg and `site` sets it up as `python -m site` would: sys.prefix,
            // sys.base_prefix, sys.executable, .pth files, and system site-packages only when
            // pyvenv.cfg includes them.
            Home::Virtualenv if set_program_name(home) => virtualenv = Some(home),
            // A venv without its bin/python: its site-packages are added by hand.
            Home::Virtualenv => {
                venv = Some(home);
                virtualenv = Some(home);
            }
            // A real Python prefix: the interpreter finds its stdlib there. This runs before
            // any other thread exists, so changing the environment races with nothing.
            Home::Prefix => std::env::set_var("PYTHONHOME", home),
        }
    }
    Python::initialize();
    Python::attach(|py| {
        setup(py, venv, python_path, working_dir)
            .map(|()| warn_if_no_site_packages(py, virtualenv))
            .and_then(|()| super::modwsgi::install(py, process))
            .map_err(|e| InitError::Python(format_exception(py, &e)))
    })
}

/// Warns when the virtualenv `home` (however it was activated) has no `site-packages` for
/// this Python: its packages would not be found.
fn warn_if_no_site_packages(py: Python<'_>, home: Option<&Path>) {
    let Some(home) = home else { return };
    let v = py.version_info();
    let site_packages = home.join(format!("lib/python{}.{}/site-packages", v.major, v.minor));
    if !site_packages.is_dir() {
        tracing::warn!(
            "{}: virtualenv {} has no {}",
            Code::VirtualenvIncomplete,
            home.display(),
            site_packages.display()
        );
    }
}

/// Makes `home`'s `bin/python3` (or `bin/python`) the interpreter's program name, before
/// Python starts; false when the virtualenv has neither.
fn set_program_name(home: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(exe) = ["bin/python3", "bin/python"]
        .iter()
        .map(|p| home.join(p))
        .find(|p| p.exists())
    else {
        return false;
    };
    let Ok(c) = CString::new(exe.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: Py_DecodeLocale may be called before Python is initialised; it returns a
    // PyMem_RawMalloc'd wide string (or NULL). Py_SetProgramName keeps the pointer, so the
    // string is never freed: it lives as long as the interpreter, i.e. the process.
    unsafe {
        let wide = pyo3::ffi::Py_DecodeLocale(c.as_ptr(), std::ptr::null_mut());
        if wide.is_null() {
            return false;
        }
        #[allow(deprecated)]
        pyo3::ffi::Py_SetProgramName(wide);
    }
    true
}

fn setup(
    py: Python<'_>,
    venv: Option<&Path>,
    python_path: &[PathBuf],
    working_dir: Option<&Path>,
) -> PyResult<()> {
    let source = CString::new(include_str!("support.py"))
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let module = PyModule::from_code(py, &source, c"rswsgi_support.py", c"_rswsgi_support")?;
    let _ = SUPPORT.set(module.clone().unbind());

    let sys = py.import("sys")?;
    sys.setattr("argv", PyList::new(py, ["mod_wsgi"])?)?;
    module.call_method0("restrict_signals")?;
    // print() and Python's own error reports go to the error log, one prefixed line each,
    // through real text streams (Mercurial, click and rich use `sys.stdout.buffer`).
    for (stream, name) in [("stdout", "<stdout>"), ("stderr", "<stderr>")] {
        let log = Bound::new(py, ErrorLog::new(None))?;
        sys.setattr(stream, module.call_method1("text_stream", (log, name))?)?;
    }

    if let Some(home) = venv {
        module.call_method1("activate_virtualenv", (home.as_os_str(),))?;
    }
    if !python_path.is_empty() {
        let dirs: Vec<&std::ffi::OsStr> = python_path.iter().map(|p| p.as_os_str()).collect();
        module.call_method1("prepend_site_dirs", (dirs,))?;
    }
    if let Some(dir) = working_dir {
        sys.getattr("path")?
            .call_method1("insert", (0, dir.as_os_str()))?;
    }
    Ok(())
}

/// `WSGIRestrictStdin`/`WSGIRestrictStdout On`: the stream becomes mod_wsgi's restricted
/// object, whose every use raises `OSError` ("sys.stdin access restricted by mod_wsgi").
pub fn restrict_streams(stdin: bool, stdout: bool) -> Result<(), InitError> {
    Python::attach(|py| {
        let sys = py.import("sys")?;
        for (on, name) in [(stdin, "stdin"), (stdout, "stdout")] {
            if on {
                let restricted =
                    support(py)?.call_method1("Restricted", (format!("sys.{name}"),))?;
                sys.setattr(name, restricted)?;
            }
        }
        Ok(())
    })
    .map_err(|e: PyErr| Python::attach(|py| InitError::Python(format_exception(py, &e))))
}

/// Runs the functions the application registered with `atexit`, as the interpreter does when
/// it finalises (the daemon exits without finalising, as its threads may still hold Python
/// state). Each runs once; an exception is reported by `atexit` itself.
pub fn run_atexit() {
    Python::attach(|py| {
        if let Err(e) = py
            .import("atexit")
            .and_then(|m| m.call_method0("_run_exitfuncs"))
        {
            tracing::error!(
                "{}: running atexit handlers failed: {e}",
                Code::AtexitFailed
            );
        }
    });
}

//! The per-request environ dict.

use std::time::SystemTime;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use super::errors::ErrorLog;
use super::input::Input;
use super::interp::support;
use super::modwsgi::{self, epoch_secs};
use super::strings;
use super::WsgiConfig;
use crate::conn::Request;
use rswsgi_protocol::carriers;

pub use super::strings::latin1;

/// Decodes a file name as Python does (`os.fsdecode`: UTF-8, undecodable bytes as
/// surrogates), as mod_wsgi gives `DOCUMENT_ROOT` and `SCRIPT_FILENAME`.
fn fs_name<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(_) => PyBytes::new(py, b).call_method1(
            intern!(py, "decode"),
            (intern!(py, "utf-8"), intern!(py, "surrogateescape")),
        ),
    }
}

/// A time as seconds since the epoch; 0.0 when not known.
fn secs(t: Option<std::time::Duration>) -> f64 {
    t.map_or(0.0, |t| t.as_secs_f64())
}

/// Builds the environ: the module's pairs (latin-1 `str`), then the `wsgi.*` entries and
/// mod_wsgi's typed keys. `wsgi.*` keys from the module other than `wsgi.url_scheme` are
/// ignored; `mod_wsgi.x-*` keys carry values for the typed keys and are not passed on, nor
/// are `PATH` (httpd's own) and `HTTPS` (it is `wsgi.url_scheme`), as under mod_wsgi.
pub fn build<'py>(
    py: Python<'py>,
    req: &Request,
    config: &WsgiConfig,
    input: Bound<'py, Input>,
    errors: Bound<'py, ErrorLog>,
) -> PyResult<Bound<'py, PyDict>> {
    // The module's pairs, the typed keys and the dozen `wsgi.*` and mod_wsgi entries.
    let env = strings::dict_for(py, req.environ_len() + 16)?;
    let mut has_scheme = false;
    for (index, (name, value)) in req.environ().enumerate() {
        if name.starts_with(b"wsgi.") {
            if name != b"wsgi.url_scheme" {
                continue;
            }
            has_scheme = true;
        }
        match name {
            b"PATH" | b"HTTPS" => continue,
            b"DOCUMENT_ROOT" | b"SCRIPT_FILENAME" => {
                env.set_item(strings::key(py, index, name)?, fs_name(py, value)?)?;
                continue;
            }
            _ if name.starts_with(carriers::PREFIX.as_bytes()) => continue,
            _ => {}
        }
        let (name, value) = strings::pair(py, index, name, value)?;
        env.set_item(name, value)?;
    }
    if !has_scheme {
        env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "http"))?;
    }
    static WSGI_VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    let wsgi_version =
        WSGI_VERSION.get_or_try_init(py, || (1, 0).into_pyobject(py).map(Bound::unbind))?;
    env.set_item(intern!(py, "wsgi.version"), wsgi_version.bind(py))?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "wsgi.errors"), errors)?;
    env.set_item(intern!(py, "wsgi.multithread"), config.multithread)?;
    env.set_item(intern!(py, "wsgi.multiprocess"), config.multiprocess)?;
    env.set_item(intern!(py, "wsgi.run_once"), config.run_once)?;
    env.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    env.set_item(intern!(py, "wsgi.file_wrapper"), file_wrapper(py)?)?;
    add_mod_wsgi_keys(py, &env, req, config)?;
    Ok(env)
}

/// `wsgi.file_wrapper`: the support module's `FileWrapper` class, looked up once.
pub fn file_wrapper(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CLASS
        .get_or_try_init(py, || {
            support(py)?
                .getattr(intern!(py, "FileWrapper"))
                .map(Bound::unbind)
        })
        .map(|c| c.bind(py))
}

/// mod_wsgi 6's typed keys: version tuples, start times as float seconds, the thread id.
fn add_mod_wsgi_keys(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    req: &Request,
    config: &WsgiConfig,
) -> PyResult<()> {
    static VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
    static APACHE_VERSION: PyOnceLock<Option<Py<PyTuple>>> = PyOnceLock::new();
    let version = VERSION.get_or_try_init(py, || {
        modwsgi::API_VERSION.into_pyobject(py).map(Bound::unbind)
    })?;
    env.set_item(intern!(py, "mod_wsgi.version"), version.bind(py))?;
    let apache = APACHE_VERSION.get_or_try_init(py, || {
        config
            .apache_version
            .map(|v| v.into_pyobject(py).map(Bound::unbind))
            .transpose()
    })?;
    if let Some(v) = apache {
        env.set_item(intern!(py, "apache.version"), v.bind(py))?;
    }
    let times = [
        (
            intern!(py, "mod_wsgi.request_start"),
            secs(req.meta.request_start),
        ),
        (
            intern!(py, "mod_wsgi.queue_start"),
            secs(req.carried_time(carriers::QUEUE_START_US)),
        ),
        (
            intern!(py, "mod_wsgi.daemon_start"),
            epoch_secs(req.received),
        ),
        (
            intern!(py, "mod_wsgi.application_start"),
            epoch_secs(SystemTime::now()),
        ),
    ];
    for (key, secs) in times {
        env.set_item(key, secs)?;
    }
    env.set_item(intern!(py, "mod_wsgi.thread_id"), modwsgi::thread_id())?;
    Ok(())
}

//! The per-request environ dict.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::errors::ErrorLog;
use super::input::Input;
use super::interp::support;
use crate::conn::Request;

/// Decodes bytes as latin-1 (each byte is the code point of the same value), as PEP 3333 asks
/// for environ strings.
pub fn latin1<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(b) {
        Ok(s) if b.is_ascii() => PyString::new(py, s),
        _ => PyString::new(py, &b.iter().map(|&c| char::from(c)).collect::<String>()),
    }
}

/// Builds the environ: the module's pairs (latin-1 `str`), then the `wsgi.*` entries. `wsgi.*`
/// keys from the module other than `wsgi.url_scheme` are ignored.
pub fn build<'py>(
    py: Python<'py>,
    req: &Request,
    multithread: bool,
    multiprocess: bool,
    input: Bound<'py, Input>,
    errors: Bound<'py, ErrorLog>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = PyDict::new(py);
    let mut has_scheme = false;
    for (name, value) in req.environ() {
        if name.starts_with(b"wsgi.") {
            if name != b"wsgi.url_scheme" {
                continue;
            }
            has_scheme = true;
        }
        env.set_item(latin1(py, name), latin1(py, value))?;
    }
    if !has_scheme {
        env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "http"))?;
    }
    env.set_item(intern!(py, "wsgi.version"), (1, 0))?;
    env.set_item(intern!(py, "wsgi.input"), input)?;
    env.set_item(intern!(py, "wsgi.errors"), errors)?;
    env.set_item(intern!(py, "wsgi.multithread"), multithread)?;
    env.set_item(intern!(py, "wsgi.multiprocess"), multiprocess)?;
    env.set_item(intern!(py, "wsgi.run_once"), false)?;
    env.set_item(intern!(py, "wsgi.input_terminated"), true)?;
    env.set_item(
        intern!(py, "wsgi.file_wrapper"),
        support(py)?.getattr(intern!(py, "FileWrapper"))?,
    )?;
    Ok(env)
}

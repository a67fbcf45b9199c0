//! `wsgi.errors` (and `sys.stdout`/`sys.stderr`): text streams whose lines go to the error log.
//! Also the traceback formatting used for every logged Python exception.

use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use rswsgi_protocol::Code;

use super::interp::support;

/// A write-only text stream that logs each complete line at error level.
#[pyclass(module = "rswsgi", name = "Log", frozen)]
pub struct ErrorLog {
    request_id: Option<String>,
    pending: Mutex<String>,
}

impl ErrorLog {
    /// A stream whose lines carry `request_id` (the request it was made for), if any.
    pub fn new(request_id: Option<String>) -> Self {
        ErrorLog {
            request_id,
            pending: Mutex::new(String::new()),
        }
    }

    fn emit(&self, line: &str) {
        tracing::error!(request_id = self.request_id.as_deref(), "{line}");
    }

    fn push(&self, text: &str) {
        let mut pending = self.pending.lock();
        pending.push_str(text);
        if let Some(end) = pending.rfind('\n') {
            let rest = pending.split_off(end + 1);
            let lines = std::mem::replace(&mut *pending, rest);
            drop(pending);
            for line in lines.trim_end_matches('\n').split('\n') {
                self.emit(line);
            }
        }
    }

    fn flush_pending(&self) {
        let text = std::mem::take(&mut *self.pending.lock());
        if !text.is_empty() {
            self.emit(&text);
        }
    }
}

#[pymethods]
impl ErrorLog {
    /// Writes text; complete lines are logged at once.
    fn write(&self, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text = data.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                type_name(data)
            ))
        })?;
        let text = text.to_cow()?;
        self.push(&text);
        Ok(text.chars().count())
    }

    /// Writes each string of an iterable.
    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    /// Logs a partial last line, if any.
    fn flush(&self) {
        self.flush_pending();
    }

    fn isatty(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        true
    }

    fn readable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        false
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "replace"
    }

    #[getter]
    fn name(&self) -> &'static str {
        "<wsgi.errors>"
    }

    /// As mod_wsgi's: flushes, and the stream stays usable.
    fn close(&self) {
        self.flush_pending();
    }

    /// The error log is not a file of this process: `OSError`, as under mod_wsgi.
    fn fileno(&self) -> PyResult<i32> {
        Err(pyo3::exceptions::PyOSError::new_err(
            "wsgi.errors log object has no file descriptor",
        ))
    }
}

impl Drop for ErrorLog {
    fn drop(&mut self) {
        self.flush_pending();
    }
}

/// The Python type name of `obj`, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The full traceback of `err` as text (or its one-line summary if that fails).
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    support(py)
        .and_then(|m| m.call_method1("format_exception", (err.value(py), err.traceback(py))))
        .and_then(|t| t.extract::<String>())
        .unwrap_or_else(|e| format!("{err} (traceback unavailable: {e})"))
}

/// Logs `context` followed by the traceback of `err`.
pub fn log_exception(py: Python<'_>, err: &PyErr, context: &str) {
    let text = format_exception(py, err);
    tracing::error!("{}: {context}\n{}", Code::AppException, text.trim_end());
}

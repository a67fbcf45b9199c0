//! Running the application for one request: find it, build the environ, call it, send what it
//! returns, always `close()` the result, and turn failures into log lines and `Error` frames.

use rswsgi_protocol::Code;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::environ;
use super::errors::{format_exception, log_exception, type_name, ErrorLog};
use super::events;
use super::input::{io_error, Input};
use super::interp::support;
use super::modwsgi;
use super::response::{note_sent, pending_head, ResponseState, SharedState, StartResponse};
use super::script::LoadError;
use super::WsgiBackend;
use crate::conn::{IoError, Request, RequestIo};

/// Why a request could not be answered normally.
enum Failure {
    /// The application (or the result it returned) raised.
    App(PyErr),
    /// The connection to the module broke while sending.
    Gone(IoError),
}

impl Failure {
    fn from_io(e: IoError) -> Self {
        if e.is_broken() {
            Failure::Gone(e)
        } else {
            Failure::App(io_error(e))
        }
    }
}

/// Serves one request with the GIL held (released for all socket I/O).
pub fn serve(py: Python<'_>, backend: &WsgiBackend, req: &Request, io: &RequestIo) {
    match rswsgi_protocol::HookCall::from_environ(|key| req.get(key)) {
        Ok(Some(call)) => return super::hook::serve(py, backend, req, call, io),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(
                "{}: bad hook call for {}: {e}",
                Code::BadHookCall,
                req.url()
            );
            fail(py, io, &e.to_string());
            return;
        }
    }
    let Some(script) = script_path(backend, req) else {
        tracing::error!(
            "{}: request for {} names no WSGI script (SCRIPT_FILENAME)",
            Code::NoScript,
            req.url()
        );
        fail(py, io, "no WSGI script for this request");
        return;
    };
    if let Err(refused) = backend.config.policy.check(&script) {
        tracing::error!(
            "{}: {refused} (request for {})",
            Code::ScriptRefused,
            req.url()
        );
        fail(py, io, &refused.to_string());
        return;
    }
    let module = match backend.scripts.get(py, &script) {
        Ok(m) => m,
        Err(e @ LoadError::Refused(_)) => {
            tracing::error!(
                "{}: {e} (request for {}; answered 403)",
                Code::ScriptRefused,
                req.url()
            );
            let _ = py.detach(|| io.forbid(&e.to_string()));
            return;
        }
        Err(e) => {
            e.log(py);
            fail(py, io, &e.to_string());
            return;
        }
    };
    let callable = if req.meta.callable.is_empty() {
        &backend.config.callable
    } else {
        &req.meta.callable
    };
    let name = if req.meta.callable.is_empty() {
        backend.callable_name.bind(py).clone()
    } else {
        pyo3::types::PyString::new(py, callable)
    };
    let app = match module.getattr_opt(name) {
        Ok(Some(app)) => app,
        Ok(None) => {
            let msg = format!("no callable '{callable}' in {}", script.display());
            tracing::error!("{}: {msg}", Code::CallableMissing);
            fail(py, io, &msg);
            return;
        }
        Err(e) => {
            log_exception(py, &e, &format!("looking up '{callable}' failed"));
            fail(py, io, &e.to_string());
            return;
        }
    };

    let state: SharedState = Arc::new(Mutex::new(ResponseState::default()));
    let run = modwsgi::RequestRun::begin();
    let outcome = call(py, backend, req, io, &app, &state);
    if let Err(failure) = outcome {
        report(py, req, &script, io, &state, failure);
    }
    if modwsgi::has_subscribers(py) {
        let status = state.lock().head.as_ref().map(|h| h.status);
        events::request_finished(py, run.started(), status);
    }
}

/// The script a request names: its `WSGIHandlerScript` (`mod_wsgi.handler_script`), else
/// `SCRIPT_FILENAME`, else the group's first `--script`.
pub(super) fn script_path(backend: &WsgiBackend, req: &Request) -> Option<PathBuf> {
    crate::backend::requested_script(req).or_else(|| backend.config.scripts.first().cloned())
}

fn fail(py: Python<'_>, io: &RequestIo, message: &str) {
    if let Err(e) = py.detach(|| io.fail(message)) {
        if io.body_failed() {
            // The module has already answered the client and closed the connection.
            tracing::debug!("could not report the failure to the module: {e}");
        } else {
            tracing::info!("could not report the failure to the module: {e}");
        }
    }
}

/// Calls the application and sends its response. `close()` is called on any result.
fn call(
    py: Python<'_>,
    backend: &WsgiBackend,
    req: &Request,
    io: &RequestIo,
    app: &Bound<'_, PyAny>,
    state: &SharedState,
) -> Result<(), Failure> {
    let request_id = Some(req.meta.request_id.clone());
    let input = Bound::new(py, Input::new(io.clone())).map_err(Failure::App)?;
    let errors = Bound::new(py, ErrorLog::new(request_id)).map_err(Failure::App)?;
    let env = environ::build(py, req, &backend.config, input, errors).map_err(Failure::App)?;
    let start_response =
        Bound::new(py, StartResponse::new(Arc::clone(state), io.clone())).map_err(Failure::App)?;
    if modwsgi::has_subscribers(py) {
        events::request_started(py, req, app, &env);
    }
    let result = app.call1((env, start_response));
    // A process the application forked goes no further (not even to log its exception).
    crate::fork::exit_if_forked();
    let result = result.map_err(Failure::App)?;

    let sent = send_result(py, io, &result, state);
    let closed = close(&result);
    match (sent, closed) {
        (Err(first), Err(e)) => {
            log_exception(py, &e, "close() of the response iterable raised");
            Err(first)
        }
        (Err(first), Ok(())) => Err(first),
        (Ok(_), Err(e)) if !state.lock().head_sent => Err(Failure::App(e)),
        (Ok(done), Err(e)) => {
            // The response is out: log, and end it normally.
            log_exception(py, &e, "close() of the response iterable raised");
            finish(py, io, state, done)
        }
        (Ok(done), Ok(())) => finish(py, io, state, done),
    }
}

/// Sends `ResponseEnd` (and the head, if nothing was sent yet) unless already `done`.
fn finish(py: Python<'_>, io: &RequestIo, state: &SharedState, done: bool) -> Result<(), Failure> {
    if done {
        return Ok(());
    }
    let head = pending_head(state, None).map_err(Failure::App)?;
    let sent = super::response::send_block(py, io, head.as_ref(), b"", true);
    note_sent(state, &sent);
    sent.map_err(Failure::from_io)
}

/// Iterates the result, sending each non-empty block. Returns true when the response is
/// already complete (a one-block sequence without `close()` goes out with `ResponseEnd`).
fn send_result(
    py: Python<'_>,
    io: &RequestIo,
    result: &Bound<'_, PyAny>,
    state: &SharedState,
) -> Result<bool, Failure> {
    if let Some(done) = send_file_wrapper(py, io, result, state)? {
        return Ok(done);
    }
    // A one-element list or tuple is the whole body: its length is the Content-Length.
    let single = match (result.cast::<PyList>(), result.cast::<PyTuple>()) {
        (Ok(l), _) => l.len() == 1,
        (_, Ok(t)) => t.len() == 1,
        _ => false,
    };
    let final_block = single && !has_close(result);
    let mut sent_any = false;
    for item in result.try_iter().map_err(Failure::App)? {
        let item = item.map_err(Failure::App)?;
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            Failure::App(PyTypeError::new_err(format!(
                "sequence of byte string values expected, value of type {} found",
                type_name(&item)
            )))
        })?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            continue;
        }
        let head = pending_head(state, single.then_some(data.len())).map_err(Failure::App)?;
        let done = super::response::send_block(py, io, head.as_ref(), data, final_block);
        note_sent(state, &done);
        done.map_err(Failure::from_io)?;
        sent_any = true;
    }
    if single && !sent_any && !state.lock().head_sent {
        // The single block was empty: still a known length.
        let head = pending_head(state, Some(0)).map_err(Failure::App)?;
        state.lock().head = head;
    }
    Ok(final_block && sent_any)
}

/// Blocks read from a regular file behind `wsgi.file_wrapper`, at least.
const FILE_BLOCK: usize = 256 << 10;

/// Sends a `wsgi.file_wrapper` result: from the file's current position, never more than the
/// Content-Length the application declared; for a regular file without one, the bytes left in
/// it become the Content-Length. `None` when `result` is not a file wrapper.
fn send_file_wrapper(
    py: Python<'_>,
    io: &RequestIo,
    result: &Bound<'_, PyAny>,
    state: &SharedState,
) -> Result<Option<bool>, Failure> {
    let class = super::environ::file_wrapper(py).map_err(Failure::App)?;
    if !result.get_type().is(class) {
        return Ok(None);
    }
    let support = support(py).map_err(Failure::App)?;
    let (file_len, plain_fd, offset): (Option<u64>, Option<i32>, u64) = support
        .call_method1(intern!(py, "file_wrapper_source"), (result,))
        .and_then(|n| n.extract())
        .map_err(Failure::App)?;
    let declared = declared_length(state);
    // Content-Length to add when the application gave none.
    let computed = if declared.is_none() { file_len } else { None };
    if let (Some(len), Some(fd)) = (file_len, plain_fd) {
        let length = declared.map_or(len, |d| d.min(len));
        return send_plain_file(py, io, state, fd, offset, length, computed).map(Some);
    }
    let filelike = result
        .getattr(intern!(py, "filelike"))
        .map_err(Failure::App)?;
    let blksize = result
        .getattr(intern!(py, "blksize"))
        .and_then(|b| b.extract::<usize>())
        .map_err(Failure::App)?
        .clamp(1, rswsgi_protocol::MAX_BODY_CHUNK);
    let block = if file_len.is_some() {
        blksize.max(FILE_BLOCK)
    } else {
        blksize
    };
    let mut left = declared.or(file_len);
    let read = filelike
        .getattr(intern!(py, "read"))
        .map_err(Failure::App)?;
    while left != Some(0) {
        let want = left.map_or(block, |l| l.min(block as u64) as usize);
        let data = read.call1((want,)).map_err(Failure::App)?;
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            Failure::App(PyTypeError::new_err(format!(
                "wsgi.file_wrapper: read() returned {}, not bytes",
                type_name(&data)
            )))
        })?;
        let chunk = bytes.as_bytes();
        if chunk.is_empty() {
            break;
        }
        let chunk = &chunk[..chunk.len().min(want)];
        let head = pending_head(state, computed.map(|n| n as usize)).map_err(Failure::App)?;
        let sent = py.detach(|| io.send(head.as_ref(), chunk));
        note_sent(state, &sent);
        sent.map_err(Failure::from_io)?;
        left = left.map(|l| l - chunk.len() as u64);
    }
    if !state.lock().head_sent {
        if let Some(n) = computed {
            let head = pending_head(state, Some(n as usize)).map_err(Failure::App)?;
            state.lock().head = head;
        }
    }
    Ok(Some(false))
}

/// Sends `length` bytes from `offset` of the plain file `fd` (a `wsgi.file_wrapper` around
/// `open(path, "rb")`) as one `BodyFile` frame: Apache reads the bytes itself, with
/// `sendfile` when `EnableSendfile` is on, and nothing is copied through this process.
fn send_plain_file(
    py: Python<'_>,
    io: &RequestIo,
    state: &SharedState,
    fd: i32,
    offset: u64,
    length: u64,
    computed: Option<u64>,
) -> Result<bool, Failure> {
    use std::os::fd::BorrowedFd;
    // SAFETY: `fd` is the descriptor of a file object the response still references, and we
    // hold the GIL, so no Python code can close it before it is duplicated here.
    let owned = unsafe { BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .map_err(|e| Failure::App(pyo3::exceptions::PyOSError::new_err(e.to_string())))?;
    let head = pending_head(state, computed.map(|n| n as usize)).map_err(Failure::App)?;
    let sent = py.detach(|| {
        use std::os::fd::AsFd;
        io.send_file(head.as_ref(), owned.as_fd(), offset, length)
    });
    note_sent(state, &sent);
    sent.map_err(Failure::from_io)?;
    Ok(false)
}

/// The Content-Length the application's headers declare, if any (and if valid).
fn declared_length(state: &SharedState) -> Option<u64> {
    let st = state.lock();
    st.head.as_ref()?.headers.iter().find_map(|(n, v)| {
        n.eq_ignore_ascii_case(b"content-length")
            .then(|| rswsgi_protocol::http::parse_content_length(v))
            .flatten()
    })
}

/// True for an exact `list` or `tuple`, which has no `close()`: looking the name up would
/// make (and drop) an `AttributeError` for every such response.
fn is_plain_sequence(result: &Bound<'_, PyAny>) -> bool {
    result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>()
}

fn has_close(result: &Bound<'_, PyAny>) -> bool {
    !is_plain_sequence(result)
        && result
            .hasattr(intern!(result.py(), "close"))
            .unwrap_or(false)
}

fn close(result: &Bound<'_, PyAny>) -> PyResult<()> {
    if is_plain_sequence(result) {
        return Ok(());
    }
    match result.getattr_opt(intern!(result.py(), "close"))? {
        Some(close) => close.call0().map(drop),
        None => Ok(()),
    }
}

/// Logs a failed request and tells the module, unless the module is gone.
fn report(
    py: Python<'_>,
    req: &Request,
    script: &std::path::Path,
    io: &RequestIo,
    state: &SharedState,
    failure: Failure,
) {
    // A forked child that failed (sys.exit, an exception) says nothing about it.
    crate::fork::exit_if_forked();
    let gone = state.lock().gone;
    // The module logs a client that went away (once, at info level); here it is debug.
    match failure {
        Failure::Gone(e) => {
            tracing::debug!("stopped sending the response for {}: {e}", req.url());
        }
        Failure::App(e) if gone => {
            tracing::debug!(
                "the module went away while the application was writing the response for {}: {e}",
                req.url()
            );
        }
        Failure::App(e) if io.body_failed() => {
            // A client problem (gone, malformed body, over LimitRequestBody), which the
            // module has logged and answered; the application just did not handle it.
            tracing::info!(
                "the request body of {} could not be read and the application raised: {}",
                req.url(),
                format_exception(py, &e).trim_end()
            );
            fail(py, io, &format!("exception in the WSGI application: {e}"));
        }
        Failure::App(e) => {
            if modwsgi::has_subscribers(py) {
                events::request_exception(py, req, &e);
            }
            log_exception(
                py,
                &e,
                &format!(
                    "exception occurred processing WSGI script '{}' for {}",
                    script.display(),
                    req.url()
                ),
            );
            fail(py, io, &format!("exception in the WSGI application: {e}"));
        }
    }
}

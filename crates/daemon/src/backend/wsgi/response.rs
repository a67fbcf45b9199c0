//! `start_response` and the `write()` callable it returns, with the checks PEP 3333 asks for
//! on the status and headers.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::errors::type_name;
use super::head_check;
use super::input::io_error;
use crate::conn::{Head, IoError, RequestIo, SentNow};

/// The response as far as the application has given it.
#[derive(Debug, Default)]
pub struct ResponseState {
    /// Status and headers from the last `start_response` call.
    pub head: Option<Head>,
    /// The head has gone out to the module.
    pub head_sent: bool,
    /// The connection to the module broke while the application was writing.
    pub gone: bool,
}

/// The state shared by `start_response`, `write()` and the request driver.
pub type SharedState = Arc<Mutex<ResponseState>>;

/// The head to send before the next body bytes: `None` if it already went out, an error if
/// `start_response` has not been called. With `length`, a `Content-Length` is added unless
/// the application gave one.
pub fn pending_head(state: &SharedState, length: Option<usize>) -> PyResult<Option<Head>> {
    let st = state.lock();
    if st.head_sent {
        return Ok(None);
    }
    let mut head = st
        .head
        .clone()
        .ok_or_else(|| PyRuntimeError::new_err("the application did not call start_response()"))?;
    if let Some(len) = length {
        let has = head
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"content-length"));
        if !has {
            head.headers
                .push((b"Content-Length".to_vec(), len.to_string().into_bytes()));
        }
    }
    Ok(Some(head))
}

/// Records the result of a send: the head is out, or the connection broke.
pub fn note_sent(state: &SharedState, result: &Result<(), IoError>) {
    let mut st = state.lock();
    match result {
        Ok(()) => st.head_sent = true,
        Err(e) if e.is_broken() => st.gone = true,
        Err(_) => {}
    }
}

/// The `start_response` callable of one request.
#[pyclass(module = "rswsgi", name = "StartResponse", frozen)]
pub struct StartResponse {
    state: SharedState,
    io: RequestIo,
}

impl StartResponse {
    /// A `start_response` for the request served through `io`.
    pub fn new(state: SharedState, io: RequestIo) -> Self {
        StartResponse { state, io }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &self,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Writer> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let st = self.state.lock();
            match exc_info {
                Some(info) if st.head_sent => {
                    drop(st);
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
                None if st.head.is_some() => {
                    return Err(PyRuntimeError::new_err(
                        "start_response() was already called (without exc_info)",
                    ));
                }
                _ => {}
            }
        }
        let head = parse_head(status, headers)?;
        self.state.lock().head = Some(head);
        Ok(Writer {
            state: Arc::clone(&self.state),
            io: self.io.clone(),
        })
    }
}

/// The `write(data)` callable: sends `data` at once (the head first if it has not gone out).
#[pyclass(module = "rswsgi", name = "Write", frozen)]
pub struct Writer {
    state: SharedState,
    io: RequestIo,
}

#[pymethods]
impl Writer {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be a bytes object, not {}",
                type_name(data)
            ))
        })?;
        let head = pending_head(&self.state, None)?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            // PEP 3333: the headers wait for the first non-empty block.
            return Ok(());
        }
        let result = send_block(py, &self.io, head.as_ref(), data, false);
        note_sent(&self.state, &result);
        result.map_err(io_error)
    }
}

/// Sends a response block (`end`: and the response's end): at once with the GIL held when
/// the socket takes it, else with the GIL released for as long as the write waits.
pub fn send_block(
    py: Python<'_>,
    io: &RequestIo,
    head: Option<&Head>,
    data: &[u8],
    end: bool,
) -> Result<(), IoError> {
    match io.send_now(head, data, end)? {
        SentNow::All => Ok(()),
        SentNow::Queued => py.detach(|| io.flush()),
        SentNow::NotTried if end => py.detach(|| io.finish(head, data)),
        SentNow::NotTried => py.detach(|| io.send(head, data)),
    }
}

fn text<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<std::borrow::Cow<'a, str>> {
    obj.cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(obj))))?
        .to_cow()
}

/// Checks and converts a status string and a header list.
pub fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    let status = text(status, "status")?;
    let (code, reason) = parse_status(&status)?;
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
        let Some(pair) = pair else {
            return Err(PyTypeError::new_err(format!(
                "response headers must be (name, value) tuples, not {}",
                type_name(&item)
            )));
        };
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = text(&name, "header name")?;
        let value = text(&value, "header value")?;
        out.push(check_header(&name, &value)?);
    }
    Ok(Head {
        status: code,
        reason,
        headers: out,
    })
}

/// Parses `"NNN reason"` (see [`head_check::parse_status`]).
pub fn parse_status(status: &str) -> PyResult<(u16, Vec<u8>)> {
    head_check::parse_status(status).map_err(PyValueError::new_err)
}

/// Checks a header (see [`head_check::check_header`]).
pub fn check_header(name: &str, value: &str) -> PyResult<(Vec<u8>, Vec<u8>)> {
    head_check::check_header(name, value).map_err(PyValueError::new_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("200 OK").ok(), Some((200, b"OK".to_vec())));
        assert_eq!(parse_status("404 ").ok(), Some((404, vec![])));
        assert_eq!(
            parse_status("599 Caf\u{e9}").ok(),
            Some((599, b"Caf\xe9".to_vec()))
        );
        for bad in [
            "",
            "20",
            "404",
            "OK 200",
            "200OK",
            "099 x",
            "100 Continue",
            "2000 OK",
            "200 a\nb",
            "200 a\x7fb",
            "200 \u{20ac}",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers() {
        assert!(check_header("X-Ok", "v\tw \u{ff}").is_ok());
        assert!(check_header("X Bad", "v").is_err());
        assert!(check_header("X:Bad", "v").is_err());
        assert!(check_header("", "v").is_err());
        assert!(check_header("X", "a\r\nSet-Cookie: x").is_err());
        assert!(check_header("X", "a\x01b").is_err());
        assert!(check_header("X", "\u{100}").is_err());
        for hop in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "Upgrade",
            "TE",
            "Trailer",
            "Proxy-Authenticate",
            "proxy-foo",
        ] {
            assert!(check_header(hop, "x").is_err(), "{hop}");
        }
    }
}

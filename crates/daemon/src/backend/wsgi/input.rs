//! `wsgi.input`: the request body, pulled from the module as the application reads it.
//!
//! Every read asks the module with `ReadBody{max}` (at most [`ROUND`] bytes at a time) and gets
//! exactly one answer. All of it runs with the GIL released; bytes beyond what a call returns
//! stay buffered for the next (`readline`).

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rswsgi_protocol::MAX_BODY_CHUNK;

use crate::conn::{IoError, RequestIo};

/// The most body bytes asked for in one `ReadBody`.
pub const ROUND: usize = MAX_BODY_CHUNK;
/// The fewest body bytes asked for in one `ReadBody`: small reads (`readline`, `read(10)`)
/// are served from what is buffered. The module answers with what the client has sent, so
/// asking for more never waits for more.
const MIN_ROUND: usize = 64 << 10;

/// Maps a connection error to the Python exception an application sees.
pub fn io_error(e: IoError) -> PyErr {
    match e {
        IoError::Stale | IoError::Order(_) => PyRuntimeError::new_err(e.to_string()),
        IoError::Encode(_) => PyValueError::new_err(e.to_string()),
        _ => PyOSError::new_err(e.to_string()),
    }
}

#[derive(Default)]
struct Buffered {
    data: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Buffered {
    fn available(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.available());
        if self.pos == 0 && n == self.data.len() {
            // All of it (the usual `read(n)`): hand the buffer over instead of copying it.
            return std::mem::take(&mut self.data);
        }
        let out = self.data[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        }
        out
    }

    /// Reads up to `want` more bytes from the module. False at the end of the body.
    fn fill(&mut self, io: &RequestIo, want: usize) -> Result<bool, IoError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos >= self.data.len() / 2 {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
        let n = io.read_body(want.clamp(MIN_ROUND, ROUND), &mut self.data)?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }
}

/// The `wsgi.input` stream of one request.
#[pyclass(module = "rswsgi", name = "Input", frozen)]
pub struct Input {
    io: RequestIo,
    buf: Mutex<Buffered>,
}

impl Input {
    /// The input of the request served through `io`.
    pub fn new(io: RequestIo) -> Self {
        Input {
            io,
            buf: Mutex::new(Buffered::default()),
        }
    }

    /// Up to `size` bytes (all that is left for `None`); fewer only at the end of the body.
    fn read_blocking(&self, size: Option<usize>) -> Result<Vec<u8>, IoError> {
        let mut b = self.buf.lock();
        match size {
            None => while b.fill(&self.io, ROUND)? {},
            Some(n) => {
                while b.available() < n {
                    let want = n - b.available();
                    if !b.fill(&self.io, want)? {
                        break;
                    }
                }
            }
        }
        let n = size.unwrap_or(usize::MAX);
        Ok(b.take(n))
    }

    /// One line, ending with `\n` unless the body or `limit` ended it first.
    fn readline_blocking(&self, limit: Option<usize>) -> Result<Vec<u8>, IoError> {
        let mut b = self.buf.lock();
        let mut scanned = 0;
        loop {
            let avail = &b.data[b.pos..];
            let upto = limit.map_or(avail.len(), |l| l.min(avail.len()));
            if let Some(i) = avail[scanned..upto].iter().position(|&c| c == b'\n') {
                return Ok(b.take(scanned + i + 1));
            }
            if limit.is_some_and(|l| avail.len() >= l) {
                return Ok(b.take(upto));
            }
            scanned = upto;
            let want = limit.map_or(ROUND, |l| l - avail.len());
            if !b.fill(&self.io, want)? {
                let all = b.available();
                return Ok(b.take(all));
            }
        }
    }
}

fn size_arg(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl Input {
    /// `read(size=-1)`: `size` bytes, or everything left.
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let size = size_arg(size);
        let data = py.detach(|| self.read_blocking(size)).map_err(io_error)?;
        Ok(PyBytes::new(py, &data))
    }

    /// `readline(size=-1)`.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let size = size_arg(size);
        let data = py
            .detach(|| self.readline_blocking(size))
            .map_err(io_error)?;
        Ok(PyBytes::new(py, &data))
    }

    /// `readlines(hint=-1)`: lines until their total length reaches `hint`, or all of them.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = py
                .detach(|| self.readline_blocking(None))
                .map_err(io_error)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = py
            .detach(|| self.readline_blocking(None))
            .map_err(io_error)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}

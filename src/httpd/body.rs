//! Reading the request body through Apache's input filters, keeping the failure status (what
//! `ap_get_client_block` loses) so it can become the right HTTP status.

use std::os::raw::c_char;

use super::request::Request;
use crate::ffi;

/// Why reading the request body failed.
#[derive(Debug, Clone)]
pub struct BodyError {
    /// The HTTP status for the failure (`ap_map_http_request_error`): 413 past
    /// `LimitRequestBody`, 408 on a client timeout, 400 for a malformed or truncated body
    /// (including a client that went away), or `AP_FILTER_ERROR` when a filter has answered.
    pub status: i32,
    /// APR's description of the failure.
    pub reason: String,
}

/// The request body of one request, read in pieces as the daemon asks for it.
pub struct BodyReader {
    bb: *mut ffi::apr_bucket_brigade,
    done: bool,
}

impl BodyReader {
    /// A reader for `r`'s body (a brigade from the request pool, reused for every read).
    pub fn new(r: &Request) -> Self {
        // SAFETY: live request; the brigade is allocated from its pool and lives as long.
        let bb = unsafe { ffi::rswsgi_body_brigade(r.as_ptr()) };
        BodyReader { bb, done: false }
    }

    /// Appends up to `max` bytes to `buf`, written straight into its spare capacity (no
    /// zeroing first): `Ok(Some(n))` with `n > 0`, `Ok(None)` at the end of the body, or the
    /// failure. `Expect: 100-continue` is answered by the first read.
    pub fn read(
        &mut self,
        r: &mut Request,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Result<Option<usize>, BodyError> {
        let max = max.max(1);
        buf.reserve(max);
        while !self.done {
            let mut len = max;
            let mut eos = 0;
            let spare = buf.spare_capacity_mut();
            // SAFETY: live request on its serving thread; `bb` belongs to it; `spare` is
            // valid for at least `max` bytes (reserved above) and the shim writes at most
            // `len` = `max` of them, setting `len` to how many.
            let rv = unsafe {
                ffi::rswsgi_read_body(
                    r.as_ptr(),
                    self.bb,
                    spare.as_mut_ptr().cast::<c_char>(),
                    &mut len,
                    &mut eos,
                )
            };
            if rv != ffi::APR_SUCCESS as i32 {
                self.done = true;
                r.close_connection();
                // SAFETY: a pure mapping function.
                let status =
                    unsafe { ffi::ap_map_http_request_error(rv, ffi::HTTP_BAD_REQUEST as i32) };
                return Err(BodyError {
                    status,
                    reason: describe(rv, status),
                });
            }
            self.done = eos != 0;
            if len > 0 {
                let len = len.min(max);
                // SAFETY: the shim succeeded and initialised the first `len` (at most `max`)
                // bytes of the spare capacity, which `reserve` made at least `max` long.
                unsafe { buf.set_len(buf.len() + len) };
                return Ok(Some(len));
            }
        }
        Ok(None)
    }
}

/// What a body read failure means, for log lines and the application's `OSError`.
fn describe(rv: ffi::apr_status_t, status: i32) -> String {
    if status == ffi::AP_FILTER_ERROR {
        "Apache's input filters rejected the request body (malformed chunked encoding, or \
         over LimitRequestBody) and have answered the client"
            .into()
    } else if rv == ffi::APR_INCOMPLETE as i32 {
        "the client closed the connection before sending the whole request body".into()
    } else if rv == ffi::APR_TIMEUP as i32 {
        "timed out waiting for the client to send the request body".into()
    } else {
        format!("{} (HTTP status {status})", apr_error(rv))
    }
}

/// APR's text for status `rv`.
pub fn apr_error(rv: ffi::apr_status_t) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: apr_strerror writes a NUL-terminated string of at most buf.len() bytes into buf
    // and returns buf.
    let p = unsafe { ffi::apr_strerror(rv, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: p is buf (NUL-terminated) or a static string.
    unsafe { super::cbytes(p) }
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| format!("APR error {rv}"))
}

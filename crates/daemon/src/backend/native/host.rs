//! The callbacks a native handler uses for one request, backed by the module connection.

use rswsgi_protocol::Code;
use std::ffi::c_void;

use rswsgi::abi::{status, Bytes, HostRequest, Pair};
use rswsgi_protocol::http;

use super::load::Handler;
use crate::conn::{Request, RequestIo};
use crate::request::Head;

struct Ctx<'a> {
    req: &'a Request,
    io: &'a RequestIo,
    head: Option<Head>,
    head_sent: bool,
    /// The Content-Length the handler declared, if any.
    declared: Option<u64>,
    /// Body bytes sent so far.
    sent: u64,
    /// `ResponseEnd` went out with the block that completed the declared length.
    finished: bool,
    buf: Vec<u8>,
    error: Option<String>,
}

fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|&c| c == b'\t' || (c >= 0x20 && c != 0x7f))
}

/// Runs the handler for one request.
pub fn serve(h: &Handler, req: &Request, io: &RequestIo) {
    let pairs: Vec<Pair> = req
        .environ()
        .map(|(k, v)| Pair {
            name: Bytes::new(k),
            value: Bytes::new(v),
        })
        .collect();
    let mut ctx = Ctx {
        req,
        io,
        head: None,
        head_sent: false,
        declared: None,
        sent: 0,
        finished: false,
        buf: Vec::new(),
        error: None,
    };
    let host = HostRequest {
        ctx: (&mut ctx as *mut Ctx<'_>).cast(),
        environ: pairs.as_ptr(),
        environ_len: pairs.len(),
        read_body,
        start_response,
        write_body,
        log,
    };
    // SAFETY: the table was checked at load; host, its environ and ctx outlive the call.
    let rc = unsafe { (h.table().handle)(&host) };
    match (rc, ctx.error.take()) {
        (status::OK, None) if ctx.finished => {}
        (status::OK, None) => {
            let head = if ctx.head_sent {
                None
            } else {
                ctx.head.as_ref()
            };
            if head.is_none() && !ctx.head_sent {
                let _ = io.fail("the native handler sent no response");
            } else if let Err(e) = io.finish(head, &[]) {
                tracing::info!("could not finish the response for {}: {e}", req.url());
            }
        }
        (_, Some(msg)) => {
            tracing::error!(
                "{}: native handler error for {}: {msg}",
                Code::NativeHandlerError,
                req.url()
            );
            let _ = io.fail(&msg);
        }
        (status::PANICKED, None) => {
            let _ = io.fail("the native handler panicked");
        }
        (_, None) => {
            let _ = io.fail("the native handler failed while sending its response");
        }
    }
}

/// # Safety
/// `ctx` must be the `Ctx` of the request being served.
unsafe fn ctx<'a>(ctx: *mut c_void) -> &'a mut Ctx<'a> {
    // SAFETY: per this function's contract.
    unsafe { &mut *ctx.cast::<Ctx<'a>>() }
}

unsafe extern "C" fn read_body(c: *mut c_void, buf: *mut u8, len: usize) -> isize {
    // SAFETY: called by the handler with the ctx we gave it.
    let c = unsafe { ctx(c) };
    c.buf.clear();
    match c
        .io
        .read_body(len.min(rswsgi_protocol::MAX_BODY_CHUNK), &mut c.buf)
    {
        Ok(n) => {
            let n = n.min(len);
            // SAFETY: buf is valid for len bytes (handler's contract) and n <= len.
            unsafe { std::ptr::copy_nonoverlapping(c.buf.as_ptr(), buf, n) };
            n as isize
        }
        Err(e) => {
            tracing::info!("reading the request body for {} failed: {e}", c.req.url());
            -1
        }
    }
}

unsafe extern "C" fn start_response(
    c: *mut c_void,
    code: u16,
    reason: Bytes,
    headers: *const Pair,
    len: usize,
) -> i32 {
    // SAFETY: called by the handler with the ctx we gave it.
    let c = unsafe { ctx(c) };
    if c.head.is_some() {
        c.error = Some("the handler started its response twice".into());
        return -1;
    }
    if !(100..=999).contains(&code) {
        c.error = Some(format!("invalid status code {code}"));
        return -1;
    }
    // SAFETY: reason is valid during the call.
    let reason = unsafe { reason.as_slice() }.to_vec();
    let pairs = if len == 0 {
        &[][..]
    } else {
        // SAFETY: headers is valid for len pairs during the call.
        unsafe { std::slice::from_raw_parts(headers, len) }
    };
    let mut out = Vec::with_capacity(len);
    for p in pairs {
        // SAFETY: pair bytes are valid during the call.
        let (k, v) = unsafe { (p.name.as_slice(), p.value.as_slice()) };
        if !http::is_token(k) || !valid_value(v) {
            c.error = Some(format!(
                "invalid response header {:?}: {:?}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ));
            return -1;
        }
        out.push((k.to_vec(), v.to_vec()));
    }
    if !valid_value(&reason) {
        c.error = Some("invalid reason phrase".into());
        return -1;
    }
    c.declared = out.iter().find_map(|(k, v)| {
        k.eq_ignore_ascii_case(b"content-length")
            .then(|| http::parse_content_length(v))
            .flatten()
    });
    c.head = Some(Head {
        status: code,
        reason,
        headers: out,
    });
    0
}

unsafe extern "C" fn write_body(c: *mut c_void, data: Bytes) -> i32 {
    // SAFETY: called by the handler with the ctx we gave it.
    let c = unsafe { ctx(c) };
    let Some(head) = c.head.as_ref() else {
        c.error = Some("the handler wrote body bytes before starting its response".into());
        return -1;
    };
    // SAFETY: data is valid during the call.
    let data = unsafe { data.as_slice() };
    if c.finished {
        if data.is_empty() {
            return 0;
        }
        c.error = Some(format!(
            "the handler wrote more than its Content-Length of {} bytes",
            c.sent
        ));
        return -1;
    }
    let head = if c.head_sent { None } else { Some(head) };
    // The block that completes the declared Content-Length ends the response in the same
    // write, so the module need not wait for the handler to return.
    let completes = c.declared == Some(c.sent + data.len() as u64);
    let sent = if completes {
        c.io.finish(head, data)
    } else {
        c.io.send(head, data)
    };
    match sent {
        Ok(()) => {
            c.head_sent = true;
            c.sent += data.len() as u64;
            c.finished |= completes;
            0
        }
        Err(_) => -1,
    }
}

unsafe extern "C" fn log(_: *mut c_void, level: u32, msg: Bytes) {
    // SAFETY: msg is valid during the call.
    let text = String::from_utf8_lossy(unsafe { msg.as_slice() });
    match level {
        1 => tracing::error!("{text}"),
        2 => tracing::warn!("{text}"),
        _ => tracing::info!("{text}"),
    }
}

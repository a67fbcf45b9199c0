//! The glue `export!` expands to: runs the handler for one request and sends its response
//! through the host, turning panics into a status code instead of unwinding into the daemon.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{status, Bytes, HostRequest, Pair};
use crate::request::Request;
use crate::response::{default_reason, BodyWriter, Payload, Response};

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into())
}

fn log(host: &HostRequest, level: u32, msg: &str) {
    // SAFETY: the host function is valid for the request; msg outlives the call.
    unsafe { (host.log)(host.ctx, level, Bytes::new(msg.as_bytes())) }
}

/// Serves one request with `handler`. Not for direct use: `export!` calls it.
///
/// # Safety
/// `host` must point to a valid [`HostRequest`] for the duration of the call.
pub unsafe fn serve(
    host: *const HostRequest,
    handler: for<'r> fn(&'r mut Request) -> Response<'r>,
) -> i32 {
    // SAFETY: valid for the call, per this function's contract.
    let Some(host) = (unsafe { host.as_ref() }) else {
        return status::PANICKED;
    };
    // SAFETY: the host and its environ are valid for this call, which outlives `req`.
    let mut req = unsafe { Request::from_host(host) };
    let head_sent = Cell::new(false);
    match catch_unwind(AssertUnwindSafe(|| {
        respond(host, handler(&mut req), &head_sent)
    })) {
        Ok(code) => code,
        Err(p) if !head_sent.get() => {
            log(host, 1, &format!("handler panicked: {}", panic_text(&*p)));
            status::PANICKED
        }
        Err(p) => {
            log(
                host,
                1,
                &format!("handler panicked while streaming: {}", panic_text(&*p)),
            );
            status::FAILED
        }
    }
}

/// Sends `response` through the host.
fn respond(host: &HostRequest, response: Response<'_>, head_sent: &Cell<bool>) -> i32 {
    let Response {
        status: code,
        reason,
        mut headers,
        payload,
    } = response;
    if let Payload::Whole(body) = &payload {
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            headers.push(("Content-Length".into(), body.len().to_string()));
        }
    }
    let reason = reason.unwrap_or_else(|| default_reason(code).to_string());
    let pairs: Vec<Pair> = headers
        .iter()
        .map(|(k, v)| Pair {
            name: Bytes::new(k.as_bytes()),
            value: Bytes::new(v.as_bytes()),
        })
        .collect();
    head_sent.set(true);
    // SAFETY: the host function is valid; reason and pairs outlive the call.
    if unsafe {
        (host.start_response)(
            host.ctx,
            code,
            Bytes::new(reason.as_bytes()),
            pairs.as_ptr(),
            pairs.len(),
        )
    } != 0
    {
        return status::FAILED;
    }
    let mut out = BodyWriter {
        host,
        failed: false,
    };
    let result = match payload {
        Payload::Whole(body) => std::io::Write::write_all(&mut out, &body),
        Payload::Stream(produce) => produce(&mut out),
    };
    match result {
        Ok(()) => status::OK,
        Err(e) => {
            if !out.failed {
                log(host, 1, &format!("streamed response failed: {e}"));
            }
            status::FAILED
        }
    }
}

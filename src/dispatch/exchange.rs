//! Relaying one request over a daemon connection: answer the daemon's body reads from
//! Apache's input filters, and pass its response through Apache's output filters.

use std::io::Write;
use std::os::unix::net::UnixStream;

use rswsgi_protocol::{
    encode_body, encode_body_end, encode_error, Frame, FrameReader, ReadError, ResponseHead,
};
use tracing::Level;

use crate::ffi;
use crate::httpd::log;
use crate::httpd::request::Request;

/// Request body bytes read from the client per `ReadBody` answer, at most.
const BODY_READ: usize = 256 << 10;

/// Headers that describe the connection, not the response; Apache sets its own.
fn hop_by_hop(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
        b"proxy-authenticate",
        b"proxy-authorization",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Applies the response head; returns the Content-Length the application declared, if any.
fn apply_head(r: &mut Request, h: &ResponseHead<'_>) -> Result<Option<u64>, String> {
    let mut declared = None;
    r.set_status(h.status, h.reason);
    let (out, pool) = (r.headers_out(), r.pool());
    for (name, value) in h.headers {
        if hop_by_hop(name) {
            return Err(format!(
                "the application sent the hop-by-hop header '{}'",
                String::from_utf8_lossy(name)
            ));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            r.set_content_type(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let len = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0);
            match len {
                Some(n) => {
                    r.set_content_length(n);
                    declared = Some(n as u64);
                }
                None => {
                    return Err(format!(
                        "invalid Content-Length '{}'",
                        String::from_utf8_lossy(value)
                    ))
                }
            }
        } else {
            out.add(pool, name, value);
        }
    }
    Ok(declared)
}

/// Runs the exchange and returns the handler's status.
pub fn run(r: &mut Request, stream: &UnixStream, head: &[u8], group: &str) -> i32 {
    let mut wire = stream;
    if let Err(e) = wire.write_all(head) {
        log::request(
            r,
            Level::ERROR,
            &format!("daemon group '{group}' failed while receiving the request: {e}"),
        );
        return ffi::HTTP_SERVICE_UNAVAILABLE as i32;
    }
    let mut reader = FrameReader::new(stream);
    let mut head_sent = false;
    // What the application declared in Content-Length, and what it has sent so far; a HEAD
    // request or a bodiless status carries no body whatever the header says.
    let mut declared: Option<u64> = None;
    let mut sent: u64 = 0;
    let mut asked_client = false;
    let mut body = Vec::new();
    let mut out = Vec::new();
    loop {
        let frame = match reader.read_frame() {
            Ok(Some(f)) => f,
            Ok(None) | Err(ReadError::Truncated) => {
                return fail(r, head_sent, ffi::HTTP_BAD_GATEWAY, &format!(
                    "daemon process of group '{group}' closed the connection before the response was complete (it may have crashed; see earlier log lines)"
                ));
            }
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_GATEWAY_TIME_OUT,
                    &format!(
                    "timeout waiting for the daemon process of group '{group}' (Apache's Timeout)"
                ),
                );
            }
            Err(e) => {
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_BAD_GATEWAY,
                    &format!("daemon group '{group}': {e}"),
                );
            }
        };
        match frame {
            Frame::ReadBody { max } => {
                if !asked_client {
                    // Sends "100 Continue" now, when the application first reads.
                    r.should_client_block();
                    asked_client = true;
                }
                body.resize((max as usize).min(BODY_READ), 0);
                out.clear();
                match r.get_client_block(&mut body) {
                    Ok(0) => encode_body_end(&mut out),
                    Ok(n) => {
                        encode_body(&mut out, &body[..n]).expect("BODY_READ is under the frame cap")
                    }
                    Err(()) => {
                        log::request(
                            r,
                            Level::INFO,
                            "reading the request body from the client failed",
                        );
                        encode_error(
                            &mut out,
                            b"client connection failed while reading the request body",
                        );
                    }
                }
                if let Err(e) = wire.write_all(&out) {
                    return fail(r, head_sent, ffi::HTTP_BAD_GATEWAY, &format!("daemon group '{group}' went away while receiving the request body: {e}"));
                }
            }
            Frame::ResponseHead(h) if !head_sent => {
                let bodiless = r.header_only() || matches!(h.status, 100..=199 | 204 | 304);
                match apply_head(r, &h) {
                    Ok(len) => declared = len.filter(|_| !bodiless),
                    Err(msg) => {
                        log::request(
                            r,
                            Level::ERROR,
                            &format!("bad response headers from the application: {msg}"),
                        );
                        r.headers_out_clear();
                        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
                    }
                }
                head_sent = true;
            }
            Frame::Body(data) if head_sent => {
                let room = declared.map_or(u64::MAX, |n| n - sent);
                let over = data.len() as u64 > room;
                let data = if over { &data[..room as usize] } else { data };
                sent += data.len() as u64;
                if r.write(data).and_then(|()| r.flush()).is_err() {
                    log::request(
                        r,
                        Level::INFO,
                        "client went away while the response was being sent",
                    );
                    return ffi::OK as i32;
                }
                if over {
                    log::request(r, Level::ERROR, &format!(
                        "the application sent more than its Content-Length of {} bytes; the excess was not sent",
                        declared.unwrap_or_default()
                    ));
                    return ffi::OK as i32;
                }
            }
            Frame::ResponseEnd if head_sent => {
                if let Some(n) = declared.filter(|&n| n > sent) {
                    log::request(r, Level::ERROR, &format!(
                        "the application sent {sent} of the {n} bytes its Content-Length declared; closing the client connection"
                    ));
                    r.abort_response();
                }
                return ffi::OK as i32;
            }
            Frame::Error(msg) => {
                let msg = String::from_utf8_lossy(msg);
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_INTERNAL_SERVER_ERROR,
                    &format!("application error in group '{group}': {msg}"),
                );
            }
            other => {
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_BAD_GATEWAY,
                    &format!(
                        "protocol error from daemon group '{group}': unexpected {:?} frame",
                        other.kind()
                    ),
                );
            }
        }
    }
}

/// Ends a failed exchange: an error status if nothing was sent yet, otherwise an aborted
/// client connection (never a response that looks complete).
fn fail(r: &mut Request, head_sent: bool, status: u32, msg: &str) -> i32 {
    log::request(r, Level::ERROR, msg);
    if head_sent {
        r.abort_response();
        ffi::OK as i32
    } else {
        status as i32
    }
}

//! Relaying one request over a daemon connection: answer the daemon's body reads from
//! Apache's input filters, and pass its response through Apache's output filters.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rswsgi_protocol::{Frame, FrameReader, ReadError, ResponseHead};
use tracing::Level;

use super::body::BodyPump;
use super::fdpass::FdStream;
use super::pool::Link;
use super::wait::{self, Wait};
use crate::ffi;
use crate::httpd::body::BodyError;
use crate::httpd::log;
use crate::httpd::request::Request;

/// Applies the response head; returns the Content-Length the application declared, if any.
fn apply_head(r: &mut Request, h: &ResponseHead<'_>) -> Result<Option<u64>, String> {
    let mut declared = None;
    r.set_status(h.status, h.reason);
    let (out, pool) = (r.headers_out(), r.pool());
    for (name, value) in h.headers {
        if rswsgi_protocol::is_hop_by_hop(name) {
            return Err(format!(
                "the application sent the hop-by-hop header '{}'",
                String::from_utf8_lossy(name)
            ));
        } else if rswsgi_protocol::is_status_header(name) {
            return Err(format!(
                "the application sent a Status header ('{}'); the status is given apart from \
                 the headers",
                String::from_utf8_lossy(value)
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

/// How an exchange ended.
pub enum Outcome<T> {
    /// Finished (or failed) with this value (for a relayed request, the handler status);
    /// `reusable` when the response ended cleanly, so the connection can serve another
    /// request.
    Done { value: T, reusable: bool },
    /// The daemon did not read the request (it answered `Retry`, or dropped the connection
    /// with the request unread): send it again.
    Retry,
}

/// What the frame loop found out besides the status.
#[derive(Default)]
struct Ending {
    retry: bool,
    reusable: bool,
    /// The client socket's timeout before `response-socket-timeout` replaced it.
    client_timeout: Option<i64>,
}

/// What the configuration says about relaying a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponsePolicy {
    /// `WSGIErrorOverride On`: an error status from the application is returned to Apache,
    /// which answers with its error document; the application's body is read and discarded.
    pub error_override: bool,
    /// `WSGIEnableSendfile` (else Apache's `EnableSendfile`): a `BodyFile` goes out with
    /// `sendfile`; otherwise Apache reads the descriptor and writes what it read.
    pub sendfile: bool,
    /// `response-socket-timeout` (else `socket-timeout`): how long each write of the response
    /// to the client may take; `None` leaves Apache's `Timeout`.
    pub response_timeout: Option<Duration>,
}

/// Runs the exchange.
pub fn run(
    r: &mut Request,
    link: &mut Link,
    head: &[u8],
    group: &str,
    policy: ResponsePolicy,
) -> Outcome<i32> {
    let mut ending = Ending::default();
    let mut reader =
        FrameReader::with_buffer(FdStream::new(&link.stream), std::mem::take(&mut link.buf));
    let conn = Connection {
        stream: &link.stream,
        seq: link.seq,
        timeout: link.timeout,
        response_timeout: policy.response_timeout,
    };
    let status = relay(r, &conn, &mut reader, head, group, policy, &mut ending);
    link.buf = reader.into_parts().1;
    if let Some(old) = ending.client_timeout.take() {
        r.swap_client_timeout(old);
    }
    if ending.retry {
        Outcome::Retry
    } else {
        Outcome::Done {
            value: status,
            reusable: ending.reusable,
        }
    }
}

/// A daemon that closes a connection with our request unread resets it; one that read the
/// request and then died ends it cleanly. So a reset (or a refused write) before any frame
/// proves the request never started, and it is safe to send it again.
pub(super) fn unread(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

/// The daemon connection an exchange runs on.
struct Connection<'a> {
    stream: &'a UnixStream,
    /// The number of the request being sent on it: every daemon frame about a request
    /// carries it, and a frame carrying another number did not come from this request.
    seq: u64,
    /// How long to wait for the daemon.
    timeout: Duration,
    /// `response-socket-timeout` (else `socket-timeout`): how long each write of the response
    /// to the client may take; `None` leaves Apache's `Timeout`.
    response_timeout: Option<Duration>,
}

/// The frame loop.
fn relay(
    r: &mut Request,
    conn: &Connection<'_>,
    reader: &mut FrameReader<FdStream<'_>>,
    head: &[u8],
    group: &str,
    policy: ResponsePolicy,
    ending: &mut Ending,
) -> i32 {
    let error_override = policy.error_override;
    let (stream, timeout) = (conn.stream, conn.timeout);
    let mut wire = stream;
    if let Err(e) = wire.write_all(head) {
        if unread(&e) {
            ending.retry = true;
            return ffi::OK as i32;
        }
        log::request(
            r,
            Level::ERROR,
            &format!("daemon group '{group}' failed while receiving the request: {e}"),
        );
        return ffi::HTTP_SERVICE_UNAVAILABLE as i32;
    }
    let mut frames_seen = false;
    let mut out_bb = crate::httpd::request::OutBrigade::default();
    let mut head_sent = false;
    // What the application declared in Content-Length, and what it has sent so far; a HEAD
    // request or a bodiless status carries no body whatever the header says.
    let mut declared: Option<u64> = None;
    let mut sent: u64 = 0;
    let mut asked_client = false;
    let mut pump: Option<BodyPump> = None;
    // The application's error status, when Apache's error document replaces its response.
    let mut overridden: Option<i32> = None;
    let client_fd = r.client_fd();
    let wait_limit = timeout;
    loop {
        if !reader.has_buffered() {
            match wait::daemon_or_client(stream, client_fd, wait_limit) {
                Wait::Daemon => {}
                Wait::ClientGone => return client_gone(r, head_sent),
                Wait::TimedOut => {
                    return fail(
                        r,
                        head_sent,
                        ffi::HTTP_GATEWAY_TIME_OUT,
                        &format!("timeout waiting for the daemon process of group '{group}' (Apache's Timeout)"),
                    )
                }
            }
        }
        let frame = match reader.read_frame_in_pieces() {
            Ok(Some(f)) => f,
            Ok(None) | Err(ReadError::Truncated) => {
                return fail(r, head_sent, ffi::HTTP_BAD_GATEWAY, &format!(
                    "daemon process of group '{group}' closed the connection before the response was complete (it may have crashed; see earlier log lines)"
                ));
            }
            Err(ReadError::Io(e)) if !frames_seen && unread(&e) => {
                ending.retry = true;
                return ffi::OK as i32;
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
        frames_seen = true;
        if let Some(seq) = frame.seq().filter(|&s| s != conn.seq) {
            return fail(
                r,
                head_sent,
                ffi::HTTP_BAD_GATEWAY,
                &format!(
                    "protocol error from daemon group '{group}': a {:?} frame for request #{seq} \
                     arrived where request #{} was in progress (a stray writer, such as a process \
                     the application forked?); closing the connection",
                    frame.kind(),
                    conn.seq
                ),
            );
        }
        match frame {
            Frame::Retry { .. } if !head_sent && !asked_client => {
                ending.retry = true;
                return ffi::OK as i32;
            }
            Frame::ReadBody { max, .. } => {
                asked_client = true;
                let answered = pump
                    .get_or_insert_with(|| BodyPump::new(r))
                    .answer(r, conn.seq, max, &mut wire);
                match answered {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return body_failed(r, head_sent, &e),
                    Err(e) => {
                        return fail(r, head_sent, ffi::HTTP_BAD_GATEWAY, &format!("daemon group '{group}' went away while receiving the request body: {e}"));
                    }
                }
            }
            // Nothing goes to the client: a failure later still gets its own status.
            Frame::ResponseHead(h)
                if !head_sent && overridden.is_none() && error_override && h.status >= 400 =>
            {
                overridden = Some(i32::from(h.status));
            }
            Frame::Body(_) if overridden.is_some() => {}
            Frame::BodyFile { .. } if overridden.is_some() => drop(reader.get_mut().take_fd()),
            Frame::ResponseEnd { .. } if overridden.is_some() => {
                ending.reusable = !reader.has_buffered();
                return overridden.unwrap_or(ffi::HTTP_INTERNAL_SERVER_ERROR as i32);
            }
            Frame::ResponseHead(h) if !head_sent && overridden.is_none() => {
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
                // As mod_wsgi: from the response on, writes to the client time out after
                // response-socket-timeout; put back when the exchange ends.
                if let Some(t) = conn.response_timeout {
                    let us = i64::try_from(t.as_micros()).unwrap_or(i64::MAX);
                    ending.client_timeout = r.swap_client_timeout(us);
                }
            }
            Frame::Body(data) if head_sent => {
                let (len, over) = within_length(declared, sent, data.len() as u64);
                sent += len;
                let written = r.write_flush(&mut out_bb, &data[..len as usize]);
                if let Some(status) = block_sent(r, written, over, declared) {
                    return status;
                }
            }
            Frame::BodyFile { offset, length } if head_sent => {
                let Some(fd) = reader.get_mut().take_fd() else {
                    return fail(r, head_sent, ffi::HTTP_BAD_GATEWAY, &format!(
                        "protocol error from daemon group '{group}': a BodyFile frame came without its file descriptor"
                    ));
                };
                let sealed = match check_file(&fd, offset, length) {
                    Ok(sealed) => sealed,
                    Err(msg) => {
                        return fail(
                            r,
                            head_sent,
                            ffi::HTTP_BAD_GATEWAY,
                            &format!("daemon group '{group}' sent a bad file block: {msg}"),
                        )
                    }
                };
                log::request(
                    r,
                    Level::TRACE,
                    "response block sent from the daemon's file descriptor",
                );
                let (len, over) = within_length(declared, sent, length);
                sent += len;
                let written = if len > 0 {
                    r.send_file(&mut out_bb, fd, offset, len, sealed, policy.sendfile)
                } else {
                    Ok(())
                };
                if let Some(status) = block_sent(r, written, over, declared) {
                    return status;
                }
            }
            Frame::ResponseEnd { .. } if head_sent => {
                if let Some(n) = declared.filter(|&n| n > sent) {
                    log::request(r, Level::ERROR, &format!(
                        "the application sent {sent} of the {n} bytes its Content-Length declared; closing the client connection"
                    ));
                    r.abort_response();
                } else {
                    ending.reusable = !reader.has_buffered();
                }
                return ffi::OK as i32;
            }
            Frame::Timeout { message, .. } => {
                let msg = String::from_utf8_lossy(message);
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_GATEWAY_TIME_OUT,
                    &format!("daemon group '{group}' gave the request up: {msg}"),
                );
            }
            Frame::Forbidden { message, .. } => {
                let msg = String::from_utf8_lossy(message);
                return fail(
                    r,
                    head_sent,
                    ffi::HTTP_FORBIDDEN,
                    &format!("daemon group '{group}' refused the request's script: {msg}"),
                );
            }
            Frame::Error { message, .. } => {
                let msg = String::from_utf8_lossy(message);
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

/// How much of a body block of `len` bytes fits in the declared Content-Length after `sent`
/// bytes, and whether the block goes past it.
fn within_length(declared: Option<u64>, sent: u64, len: u64) -> (u64, bool) {
    let room = declared.map_or(u64::MAX, |n| n - sent);
    (len.min(room), len > room)
}

/// After passing a body block to Apache: `None` to go on, or the handler status to end with
/// (the client went away, or the application went past its Content-Length).
fn block_sent(
    r: &mut Request,
    written: Result<(), ()>,
    over: bool,
    declared: Option<u64>,
) -> Option<i32> {
    if written.is_err() {
        log::request(
            r,
            Level::INFO,
            "client went away while the response was being sent",
        );
        return Some(ffi::OK as i32);
    }
    if over {
        log::request(r, Level::ERROR, &format!(
            "the application sent more than its Content-Length of {} bytes; the excess was not sent",
            declared.unwrap_or_default()
        ));
        return Some(ffi::OK as i32);
    }
    None
}

/// Checks a file descriptor from a `BodyFile` frame: a regular file holding the whole block.
/// Returns whether it is sealed against shrinking (a memfd the daemon filled), which makes it
/// safe for Apache to map it into memory.
fn check_file(fd: &std::os::fd::OwnedFd, offset: u64, length: u64) -> Result<bool, String> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::stat::{fstat, SFlag};
    let st = fstat(fd).map_err(|e| format!("fstat failed: {e}"))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("not a regular file".into());
    }
    let end = offset.saturating_add(length);
    if end > st.st_size as u64 {
        return Err(format!(
            "bytes {offset}..{end} asked for, but the file holds {}",
            st.st_size
        ));
    }
    let sealed = fcntl(fd, FcntlArg::F_GET_SEALS)
        .map(|bits| SealFlag::from_bits_truncate(bits).contains(SealFlag::F_SEAL_SHRINK))
        .unwrap_or(false);
    Ok(sealed)
}

/// Ends an exchange whose client reset its connection while the daemon worked: closing the
/// daemon connection makes the application's next write fail, which stops it (and runs its
/// `close()`).
fn client_gone(r: &mut Request, head_sent: bool) -> i32 {
    let when = if head_sent {
        "while the response was being sent"
    } else {
        "before the response began"
    };
    log::request(r, Level::INFO, &format!("client went away {when}"));
    r.mark_aborted();
    r.close_connection();
    ffi::OK as i32
}

/// Ends an exchange whose request body could not be read from the client (the daemon has
/// been told with an `Error` frame): the status for the failure (413 past `LimitRequestBody`,
/// 400 for a malformed or truncated body, 408 on timeout), or an aborted connection if the
/// response had begun. The client connection is not kept alive either way.
fn body_failed(r: &mut Request, head_sent: bool, e: &BodyError) -> i32 {
    log::request(
        r,
        Level::INFO,
        &format!(
            "reading the request body from the client failed: {}",
            e.reason
        ),
    );
    if head_sent {
        r.abort_response();
        ffi::OK as i32
    } else {
        e.status
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

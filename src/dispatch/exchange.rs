//! Relaying one request over a daemon connection: answer the daemon's body reads from
//! Apache's input filters, and pass its response through Apache's output filters.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rswsgi_protocol::{Frame, FrameReader, ReadError, ResponseHead};

use crate::relay::{self, Kind, ReadFailure, Relay, RelayError, Source, Step};
use tracing::Level;

use super::body::BodyPump;
use super::fdpass::FdStream;
use super::pool::Link;
use super::wait::{self, Wait};
use crate::ffi;
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
            // Apache's request record holds it as an apr_off_t.
            let len = rswsgi_protocol::http::parse_content_length(value)
                .and_then(|n| i64::try_from(n).ok());
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

/// The frame loop: reads each frame, asks the relay core ([`Relay`]) what it means, and
/// carries the answer out on Apache's request.
fn relay(
    r: &mut Request,
    conn: &Connection<'_>,
    reader: &mut FrameReader<FdStream<'_>>,
    head: &[u8],
    group: &str,
    policy: ResponsePolicy,
    ending: &mut Ending,
) -> i32 {
    let mut core = Relay::new(conn.seq, policy.error_override);
    let mut wire = conn.stream;
    if let Err(e) = wire.write_all(head) {
        let step = core.on_send_failed(e.kind(), &e.to_string());
        return finish(r, &core, step, group, ending, reader);
    }
    let mut out = Output {
        bb: crate::httpd::request::OutBrigade::default(),
        pump: None,
        sendfile: policy.sendfile,
        client_timeout: None,
    };
    let status = frame_loop(r, conn, reader, group, &mut core, &mut out, ending);
    ending.client_timeout = out.client_timeout.take();
    status
}

/// Reads and carries out frames until the exchange ends.
fn frame_loop(
    r: &mut Request,
    conn: &Connection<'_>,
    reader: &mut FrameReader<FdStream<'_>>,
    group: &str,
    core: &mut Relay,
    out: &mut Output,
    ending: &mut Ending,
) -> i32 {
    let client_fd = r.client_fd();
    loop {
        if !reader.has_buffered() {
            match wait::daemon_or_client(conn.stream, client_fd, conn.timeout) {
                Wait::Daemon => {}
                Wait::ClientGone => return client_gone(r, core.head_sent()),
                Wait::TimedOut => return finish(r, core, core.on_timeout(), group, ending, reader),
            }
        }
        let step = match reader.read_frame_in_pieces() {
            Ok(Some(frame)) => {
                let step = core.on_frame(&frame);
                let carried = match step {
                    Step::SendFile { .. } | Step::DropFile => {
                        carry_file(r, core, step, out, reader.get_mut())
                    }
                    step => carry_out(r, conn, core, &frame, step, out),
                };
                match carried {
                    Carried::Next => continue,
                    Carried::Status(status) => return status,
                    Carried::Step(step) => step,
                }
            }
            Ok(None) | Err(ReadError::Truncated) => core.on_read_failed(ReadFailure::Closed, ""),
            Err(ReadError::Io(e)) => core.on_read_failed(ReadFailure::Io(e.kind()), &e.to_string()),
            Err(e) => core.on_read_failed(ReadFailure::Undecodable, &e.to_string()),
        };
        return finish(r, core, step, group, ending, reader);
    }
}

/// What the loop keeps for passing the response on.
struct Output {
    bb: crate::httpd::request::OutBrigade,
    pump: Option<BodyPump>,
    sendfile: bool,
    /// The client socket's timeout before `response-socket-timeout` replaced it.
    client_timeout: Option<i64>,
}

/// What carrying a step out led to.
enum Carried {
    /// Read the next frame.
    Next,
    /// End the exchange with this handler status (already logged).
    Status(i32),
    /// End the exchange with this step (see [`finish`]).
    Step(Step),
}

/// Carries out the steps that pass something on; the ones that end the exchange go back.
fn carry_out(
    r: &mut Request,
    conn: &Connection<'_>,
    core: &mut Relay,
    frame: &Frame<'_>,
    step: Step,
    out: &mut Output,
) -> Carried {
    match (step, frame) {
        (Step::ReadBody { max }, _) => {
            let mut wire = conn.stream;
            let pump = out.pump.get_or_insert_with(|| BodyPump::new(r));
            match pump.answer(r, conn.seq, max, &mut wire) {
                Ok(Ok(())) => Carried::Next,
                // Told to the daemon with an `Error` frame; the client connection is not kept.
                Ok(Err(e)) => Carried::Step(Step::Fail(RelayError::new(
                    Source::Client,
                    Kind::BodyRead(u16::try_from(e.status).unwrap_or(400)),
                    e.reason,
                ))),
                Err(e) => Carried::Step(Step::Fail(RelayError::new(
                    Source::Daemon,
                    Kind::Closed,
                    format!("it went away while receiving the request body: {e}"),
                ))),
            }
        }
        (Step::ApplyHead, Frame::ResponseHead(h)) => {
            let bodiless = r.header_only() || matches!(h.status, 100..=199 | 204 | 304);
            match apply_head(r, h) {
                Ok(len) => {
                    core.head_applied(len.filter(|_| !bodiless));
                    // As mod_wsgi: from the response on, writes to the client time out after
                    // response-socket-timeout; put back when the exchange ends.
                    if let Some(t) = conn.response_timeout {
                        let us = i64::try_from(t.as_micros()).unwrap_or(i64::MAX);
                        out.client_timeout = r.swap_client_timeout(us);
                    }
                    Carried::Next
                }
                Err(msg) => {
                    r.headers_out_clear();
                    Carried::Step(Step::Fail(RelayError::new(Source::App, Kind::BadHead, msg)))
                }
            }
        }
        (Step::Write { len, over }, Frame::Body(data)) => {
            let written = r.write_flush(&mut out.bb, &data[..len]);
            carried(block_sent(r, written, over, core.declared()))
        }
        (Step::Skip, _) => Carried::Next,
        (step, _) => Carried::Step(step),
    }
}

/// Carries out the steps about the file descriptor that came with a `BodyFile` frame.
fn carry_file(
    r: &mut Request,
    core: &Relay,
    step: Step,
    out: &mut Output,
    fds: &mut FdStream<'_>,
) -> Carried {
    let Step::SendFile {
        offset,
        length,
        len,
        over,
    } = step
    else {
        drop(fds.take_fd());
        return Carried::Next;
    };
    let Some(fd) = fds.take_fd() else {
        return Carried::Step(protocol(
            "a BodyFile frame came without its file descriptor",
        ));
    };
    let sealed = match check_file(&fd, offset, length) {
        Ok(sealed) => sealed,
        Err(msg) => return Carried::Step(protocol(&format!("a bad file block: {msg}"))),
    };
    log::request(
        r,
        Level::TRACE,
        "response block sent from the daemon's file descriptor",
    );
    let written = match len {
        0 => Ok(()),
        _ => r.send_file(&mut out.bb, fd, offset, len, sealed, out.sendfile),
    };
    carried(block_sent(r, written, over, core.declared()))
}

fn carried(status: Option<i32>) -> Carried {
    status.map_or(Carried::Next, Carried::Status)
}

fn protocol(detail: &str) -> Step {
    Step::Fail(RelayError::new(Source::Daemon, Kind::Protocol, detail))
}

/// Ends the exchange on a final step: the handler status, the log line, whether the
/// connection may be pooled or the request must be sent again.
fn finish(
    r: &mut Request,
    core: &Relay,
    step: Step,
    group: &str,
    ending: &mut Ending,
    reader: &FrameReader<FdStream<'_>>,
) -> i32 {
    match step {
        Step::Retry => {
            ending.retry = true;
            ffi::OK as i32
        }
        Step::Done(relay::Ending::Complete) => {
            ending.reusable = !reader.has_buffered();
            ffi::OK as i32
        }
        Step::Done(relay::Ending::Overridden(status)) => {
            ending.reusable = !reader.has_buffered();
            i32::from(status)
        }
        Step::Done(relay::Ending::Short { sent, declared }) => {
            log::request(r, Level::ERROR, &format!(
                "the application sent {sent} of the {declared} bytes its Content-Length declared; closing the client connection"
            ));
            r.abort_response();
            ffi::OK as i32
        }
        Step::Fail(e) => {
            let level = if e.is_error() {
                Level::ERROR
            } else {
                Level::INFO
            };
            log::request(r, level, &e.log_text(group));
            if core.head_sent() {
                r.abort_response();
                ffi::OK as i32
            } else {
                i32::from(e.status())
            }
        }
        other => {
            let e = RelayError::new(
                Source::Daemon,
                Kind::Protocol,
                format!("{other:?} out of place"),
            );
            finish(r, core, Step::Fail(e), group, ending, reader)
        }
    }
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

//! One connection from the module: the request it carries and the frames a handler sends back.
//!
//! A [`Conn`] is shared (behind a mutex) between the worker serving it and whatever objects the
//! handler hands to application code ([`RequestIo`] is a cheap, `Send + Sync` handle), so an
//! application thread may read the request body. Each request gets a sequence number; a handle
//! kept past the end of its request fails with [`IoError::Stale`] instead of touching the next.
//!
//! A new connection is served only once it has answered the daemon's challenge ([`Gate`]).
//! The module numbers the requests on a connection; every frame sent about a request carries
//! its number, and a request out of sequence closes the connection.

use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use rswsgi_protocol as proto;
use rswsgi_protocol::{BodyKind, Frame, FrameOrBody, FrameReader, MAX_BODY_CHUNK};

use crate::fork;
use crate::gate::{self, Gate};
pub use crate::io_error::IoError;
pub use crate::request::{Head, Request};
pub use now::SentNow;

mod behind;
#[cfg(test)]
mod behind_tests;
mod now;
mod ring;
pub use ring::IDLE_TRIM;

/// Per-request progress of the response and the request body.
#[derive(Debug, Default)]
struct State {
    body: Option<BodyKind>,
    /// Bytes of a `Length` body not received yet.
    remaining: u64,
    body_eof: bool,
    body_error: Option<String>,
    head_sent: bool,
    /// `ResponseEnd` or `Error` has been sent.
    done: bool,
    /// `Error` has been sent.
    failed: bool,
    broken: bool,
    /// Small blocks of the response sent so far (see `behind::HAND_OFF_AFTER`).
    blocks: u32,
    /// When the worker last began sending a small block of this response.
    last_block: Option<std::time::Instant>,
}

/// A connection from the module.
pub struct Conn {
    /// Sequence number of the last request read (0 before the first).
    seq: u64,
    /// The nonce of the challenge sent, until the connection has answered it.
    challenge: Option<[u8; rswsgi_protocol::auth::NONCE_LEN]>,
    gate: Arc<Gate>,
    reader: FrameReader<UnixStream>,
    wbuf: Vec<u8>,
    state: State,
    /// The connection's response ring, made on its first large block.
    ring: ring::RingState,
    /// Handed off to the flusher thread, which alone writes `wbuf` to the socket until it
    /// hands the connection back (see `conn/behind.rs`).
    behind: bool,
}

/// `header-buffer-size`: the largest encoded response head a daemon sends.
static HEADER_BUFFER_SIZE: AtomicUsize = AtomicUsize::new(proto::MAX_HEAD);
/// `response-buffer-size`: the largest response body frame a daemon sends.
static RESPONSE_BUFFER_SIZE: AtomicUsize = AtomicUsize::new(MAX_BODY_CHUNK);

/// Sets `header-buffer-size` and `response-buffer-size` (0 keeps a default; both are capped
/// by the protocol's frame limits).
pub fn set_buffer_sizes(header: usize, response: usize) {
    if header > 0 {
        HEADER_BUFFER_SIZE.store(header.min(proto::MAX_HEAD), Ordering::Relaxed);
    }
    if response > 0 {
        RESPONSE_BUFFER_SIZE.store(response.min(MAX_BODY_CHUNK), Ordering::Relaxed);
    }
}

/// Writes a failure frame (`encode_error`, `encode_forbidden`) for a request.
type Encode = fn(&mut Vec<u8>, u64, &[u8]);

/// Small body chunks are copied next to their frame header so they go out in one write.
const COALESCE: usize = 16 << 10;

impl Conn {
    /// Checks the peer of a connection just accepted and sends it a challenge; the connection
    /// is served once it answers (see [`next_request`](Self::next_request)). A refused peer
    /// is logged and gets nothing.
    pub fn accept(mut stream: UnixStream, gate: Arc<Gate>) -> Option<Self> {
        let challenge = match gate.challenge(&mut stream) {
            Ok(nonce) => nonce,
            Err(why) => {
                gate::log_refusal(&stream, &why);
                return None;
            }
        };
        // Starts small: most connections carry small frames, and many stay open while idle.
        let reader = FrameReader::with_buffer(stream, Vec::new());
        Some(Conn {
            seq: 0,
            challenge: Some(challenge),
            gate,
            reader,
            wbuf: Vec::with_capacity(4096),
            state: State::default(),
            ring: ring::RingState::default(),
            behind: false,
        })
    }

    /// Checks the answer to the challenge, the first time through.
    fn authenticate(&mut self) -> Result<(), IoError> {
        let Some(nonce) = self.challenge else {
            return Ok(());
        };
        if let Err(why) = self.gate.check(&nonce, &mut self.reader) {
            gate::log_refusal(self.reader.get_ref(), &why);
            self.state.broken = true;
            return Err(IoError::Refused(why));
        }
        self.challenge = None;
        Ok(())
    }

    /// Reads the next request head. `Ok(None)`: the module closed the connection between
    /// requests.
    pub fn next_request(&mut self) -> Result<Option<Request>, IoError> {
        self.authenticate()?;
        let expected = self.seq.wrapping_add(1);
        let req = match self.reader.read_frame().map_err(IoError::Read)? {
            None => return Ok(None),
            Some(Frame::RequestHead(head)) if head.seq == expected => Request::from_head(&head),
            Some(Frame::RequestHead(head)) => {
                return Err(IoError::Sequence {
                    expected,
                    found: head.seq,
                })
            }
            Some(frame) => return Err(IoError::Unexpected(frame.kind())),
        };
        self.state = State {
            body: Some(req.body),
            remaining: match req.body {
                BodyKind::Length(n) => n,
                _ => 0,
            },
            body_eof: matches!(req.body, BodyKind::None | BodyKind::Length(0)),
            ..State::default()
        };
        self.seq = expected;
        Ok(Some(req))
    }

    fn check_writable(&self) -> Result<(), IoError> {
        if self.state.broken {
            Err(IoError::Broken)
        } else if self.state.done {
            Err(IoError::Order("the response is already complete"))
        } else {
            Ok(())
        }
    }

    fn flush(&mut self, extra: &[u8]) -> Result<(), IoError> {
        fork::exit_if_forked();
        debug_assert!(!self.behind, "a worker wrote to a handed-off connection");
        let stream = self.reader.get_mut();
        let res = stream
            .write_all(&self.wbuf)
            .and_then(|()| stream.write_all(extra));
        self.wbuf.clear();
        res.map_err(|e| {
            self.state.broken = true;
            IoError::Write(e)
        })
    }

    fn push_head(&mut self, head: &Head) -> Result<(), IoError> {
        if self.state.head_sent {
            return Ok(());
        }
        let before = self.wbuf.len();
        proto::encode_response_head(
            &mut self.wbuf,
            self.seq,
            head.status,
            &head.reason,
            head.headers
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice())),
        )?;
        let size = self.wbuf.len() - before;
        let limit = HEADER_BUFFER_SIZE.load(Ordering::Relaxed);
        if size > limit {
            self.wbuf.truncate(before);
            return Err(IoError::HeadTooLarge { size, limit });
        }
        self.state.head_sent = true;
        Ok(())
    }

    fn send(&mut self, head: Option<&Head>, data: &[u8], end: bool) -> Result<(), IoError> {
        self.queue(head, data, end)?;
        self.flush(&[])
    }

    /// Puts `head` (unless one was sent), `data` and (if `end`) `ResponseEnd` in the write
    /// buffer; a chunk over 16 KiB is written at once instead of being copied there, through
    /// the response ring when it is large enough.
    fn queue(&mut self, head: Option<&Head>, data: &[u8], end: bool) -> Result<(), IoError> {
        self.check_writable()?;
        if let Some(head) = head {
            self.push_head(head)?;
        }
        if !self.state.head_sent {
            return Err(IoError::Order("response body before the response head"));
        }
        for chunk in data.chunks(RESPONSE_BUFFER_SIZE.load(Ordering::Relaxed)) {
            let chunk = self.put_in_ring(chunk)?;
            if chunk.is_empty() {
                continue;
            }
            self.wbuf
                .extend_from_slice(&proto::body_header(chunk.len())?);
            if chunk.len() <= COALESCE {
                self.wbuf.extend_from_slice(chunk);
            } else {
                self.flush(chunk)?;
            }
        }
        if end {
            proto::encode_response_end(&mut self.wbuf, self.seq);
            self.state.done = true;
        }
        Ok(())
    }

    /// Sends `length` bytes from `offset` of the file `fd` as one `BodyFile` frame: the
    /// descriptor travels with the frame's first byte, and Apache sends the bytes from it.
    fn send_file(
        &mut self,
        head: Option<&Head>,
        fd: BorrowedFd<'_>,
        offset: u64,
        length: u64,
    ) -> Result<(), IoError> {
        self.check_writable()?;
        if let Some(head) = head {
            self.push_head(head)?;
        }
        if !self.state.head_sent {
            return Err(IoError::Order("response body before the response head"));
        }
        if length > 0 {
            self.push_fd_frame(fd, offset, length)?;
        }
        self.flush(&[])
    }

    /// Writes out what is pending (the response head, say) and a `BodyFile` frame in one
    /// `sendmsg` with `fd` attached.
    fn push_fd_frame(
        &mut self,
        fd: BorrowedFd<'_>,
        offset: u64,
        length: u64,
    ) -> Result<(), IoError> {
        proto::encode_body_file(&mut self.wbuf, offset, length);
        self.flush_with_fd(fd)
    }

    /// Writes out what is pending, ending in the frame `fd` belongs to, in one `sendmsg` with
    /// `fd` attached: the module queues descriptors as they arrive, so the frame's descriptor
    /// is there when the frame is decoded.
    fn flush_with_fd(&mut self, fd: BorrowedFd<'_>) -> Result<(), IoError> {
        fork::exit_if_forked();
        let res = send_with_fd(self.reader.get_mut(), &self.wbuf, fd);
        self.wbuf.clear();
        res.map_err(|e| {
            self.state.broken = true;
            IoError::Write(e)
        })
    }

    /// Sends the frame `encode` writes (`Error`, or `Forbidden`) unless the response is done.
    fn fail(&mut self, message: &str, encode: Encode) -> Result<(), IoError> {
        if self.state.broken {
            return Err(IoError::Broken);
        }
        if self.state.done {
            return Ok(());
        }
        self.wbuf.clear();
        let message = format!("{message} (daemon pid {})", std::process::id());
        encode(&mut self.wbuf, self.seq, message.as_bytes());
        self.state.done = true;
        self.state.failed = true;
        self.flush(&[])
    }

    /// Sends `Timeout` (the request ran past `request-timeout`) unless the response is complete.
    fn give_up(&mut self, message: &str) -> Result<(), IoError> {
        if self.state.broken || self.state.done {
            return Ok(());
        }
        self.wbuf.clear();
        let message = format!("{message} (daemon pid {})", std::process::id());
        proto::encode_timeout(&mut self.wbuf, self.seq, message.as_bytes());
        self.state.done = true;
        self.state.failed = true;
        self.flush(&[])
    }

    /// Sends `Retry` for request `seq`: it was not processed (or, for the next number on an
    /// idle connection, will not be); the module sends it again elsewhere.
    fn retry(&mut self, seq: u64) -> Result<(), IoError> {
        self.wbuf.clear();
        proto::encode_retry(&mut self.wbuf, seq);
        self.state.done = true;
        self.state.failed = true;
        self.flush(&[])
    }

    /// Asks for up to `max` body bytes and appends the answer to `out`. Returns the bytes
    /// appended; 0 means the body has ended.
    fn read_body(&mut self, max: usize, out: &mut Vec<u8>) -> Result<usize, IoError> {
        if let Some(msg) = &self.state.body_error {
            return Err(IoError::BodyFailed(msg.clone()));
        }
        if self.state.broken {
            return Err(IoError::Broken);
        }
        if self.state.body_eof {
            return Ok(0);
        }
        let mut max = max.clamp(1, MAX_BODY_CHUNK) as u64;
        if matches!(self.state.body, Some(BodyKind::Length(_))) {
            // Never ask for more than a `Length` body has left.
            max = max.min(self.state.remaining.max(1));
        }
        loop {
            proto::encode_read_body(&mut self.wbuf, self.seq, max as u32);
            self.flush(&[])?;
            let before = out.len();
            let frame = match self.reader.read_frame_or_body_into(out) {
                Ok(Some(FrameOrBody::Body(0))) => continue,
                Ok(Some(FrameOrBody::Body(n))) => {
                    debug_assert_eq!(out.len(), before + n);
                    self.state.remaining = self.state.remaining.saturating_sub(n as u64);
                    if matches!(self.state.body, Some(BodyKind::Length(_)))
                        && self.state.remaining == 0
                    {
                        self.state.body_eof = true;
                    }
                    return Ok(n);
                }
                Ok(Some(FrameOrBody::Frame(f))) => f,
                Ok(None) => {
                    out.truncate(before);
                    self.state.broken = true;
                    return Err(IoError::Closed);
                }
                Err(e) => {
                    out.truncate(before);
                    self.state.broken = true;
                    return Err(IoError::Read(e));
                }
            };
            match frame {
                Frame::BodyEnd => {
                    self.state.body_eof = true;
                    return Ok(0);
                }
                Frame::Error { seq, message } if seq == self.seq => {
                    let msg = String::from_utf8_lossy(message).into_owned();
                    self.state.body_error = Some(msg.clone());
                    return Err(IoError::BodyFailed(msg));
                }
                other => {
                    self.state.broken = true;
                    return Err(IoError::Unexpected(other.kind()));
                }
            }
        }
    }
}

/// Writes `bytes` with `fd` attached to the first of them (`SCM_RIGHTS`), then the rest.
fn send_with_fd(stream: &mut UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &[io::IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(io::Error::from)?,
        }
    };
    stream.write_all(&bytes[sent..])
}

/// What became of a request once its handler returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `ResponseEnd` was sent: the connection can carry another request.
    Complete,
    /// An `Error` frame was sent, or the connection broke: close it.
    Close,
}

/// The connection shared by a worker and the handles given out for one request.
pub struct Shared {
    /// Declared before `conn`, so it is dropped (unregistered) before the socket closes.
    _fork_guard: fork::Registration,
    conn: Mutex<Conn>,
    /// Sequence number of the request in progress; 0 between requests.
    current: AtomicU64,
    /// The connection has answered its challenge.
    answered: std::sync::atomic::AtomicBool,
    /// The socket's descriptor, for waiting on it while it is idle.
    fd: std::os::fd::RawFd,
    /// `Conn::behind`, readable without the lock (written only with it held).
    behind: std::sync::atomic::AtomicBool,
    /// Signalled when the flusher hands the connection back.
    drained: Condvar,
    /// Writes the flusher has made on this connection.
    writes_behind: AtomicU64,
}

impl Shared {
    /// Shares `conn`.
    pub fn new(conn: Conn) -> Arc<Self> {
        use std::os::fd::AsRawFd;
        let fd = conn.reader.get_ref().as_raw_fd();
        Arc::new(Shared {
            _fork_guard: fork::Registration::new(fd),
            conn: Mutex::new(conn),
            current: AtomicU64::new(0),
            answered: std::sync::atomic::AtomicBool::new(false),
            fd,
            behind: std::sync::atomic::AtomicBool::new(false),
            drained: Condvar::new(),
            writes_behind: AtomicU64::new(0),
        })
    }

    /// The connection's socket descriptor (valid while this `Shared` lives).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.fd
    }

    /// True when the next request's bytes are already buffered (waiting on the socket would
    /// not see them).
    pub fn has_buffered(&self) -> bool {
        self.conn.lock().reader.has_buffered()
    }

    /// True once the connection has answered its challenge (and so comes from Apache).
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// Gives the pages of this idle connection's response ring back once it has been unused
    /// for `idle` (see `conn/ring.rs`); skipped while a thread holds the connection.
    pub fn trim_ring(&self, idle: std::time::Duration) {
        if let Some(mut conn) = self.conn.try_lock() {
            if let ring::RingState::Ready(ring) = &mut conn.ring {
                ring.trim_if_idle(idle);
            }
        }
    }

    /// Tells the module this idle connection will not be served (`Retry`), so it neither
    /// reuses it nor loses a request sent on it meanwhile.
    pub fn decline(&self) {
        let mut conn = self.conn.lock();
        let next = conn.seq.wrapping_add(1);
        let _ = conn.retry(next);
    }

    /// Reads the next request and returns it with its I/O handle.
    pub fn next_request(self: &Arc<Self>) -> Result<Option<(Request, RequestIo)>, IoError> {
        let mut conn = self.conn.lock();
        let Some(req) = conn.next_request()? else {
            return Ok(None);
        };
        self.answered.store(true, Ordering::Relaxed);
        let seq = conn.seq;
        self.current.store(seq, Ordering::SeqCst);
        Ok(Some((
            req,
            RequestIo {
                shared: Arc::clone(self),
                seq,
            },
        )))
    }
}

/// A handle on the current request of a connection: read its body, send its response.
/// Blocking: call it with the GIL released.
#[derive(Clone)]
pub struct RequestIo {
    shared: Arc<Shared>,
    seq: u64,
}

impl RequestIo {
    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, IoError>) -> Result<T, IoError> {
        // A waiting lock always locks: `None` cannot come back.
        self.locked(true, f)?.ok_or(IoError::Stale)
    }

    /// Runs `f` on the connection while this handle's request is current; `wait`: wait for
    /// the lock, else `Ok(None)` when another thread holds it.
    fn locked<T>(
        &self,
        wait: bool,
        f: impl FnOnce(&mut Conn) -> Result<T, IoError>,
    ) -> Result<Option<T>, IoError> {
        fork::exit_if_forked();
        if self.shared.current.load(Ordering::SeqCst) != self.seq {
            return Err(IoError::Stale);
        }
        let mut conn = match wait {
            true => {
                let mut conn = self.shared.conn.lock();
                self.shared.wait_drained(&mut conn);
                conn
            }
            false => match self.shared.conn.try_lock() {
                Some(conn) => conn,
                // The flusher holds the lock only to swap buffers: worth waiting for.
                None if self.shared.behind.load(Ordering::Acquire) => self.shared.conn.lock(),
                None => return Ok(None),
            },
        };
        if self.shared.current.load(Ordering::SeqCst) != self.seq {
            return Err(IoError::Stale);
        }
        f(&mut conn).map(Some)
    }

    /// Asks the module for up to `max` bytes of request body, appending them to `out`.
    /// Returns how many were appended; 0 means the body has ended.
    pub fn read_body(&self, max: usize, out: &mut Vec<u8>) -> Result<usize, IoError> {
        self.with(|c| c.read_body(max, out))
    }

    /// True when the module reported that the request body could not be read from the client
    /// (it went away, sent a malformed body, or went past `LimitRequestBody`).
    pub fn body_failed(&self) -> bool {
        // Reads state only, so it does not wait for a write in flight (see `locked`).
        fork::exit_if_forked();
        let conn = self.shared.conn.lock();
        self.shared.current.load(Ordering::SeqCst) == self.seq && conn.state.body_error.is_some()
    }

    /// Sends `head` unless a head was already sent, then `data` (if any) as body frames.
    pub fn send(&self, head: Option<&Head>, data: &[u8]) -> Result<(), IoError> {
        self.with(|c| c.send(head, data, false))
    }

    /// Sends `head` unless a head was already sent, then `length` bytes from `offset` of the
    /// file `fd`, which Apache reads itself (no copy through this process).
    pub fn send_file(
        &self,
        head: Option<&Head>,
        fd: BorrowedFd<'_>,
        offset: u64,
        length: u64,
    ) -> Result<(), IoError> {
        self.with(|c| c.send_file(head, fd, offset, length))
    }

    /// Like [`send`](Self::send), then `ResponseEnd`: the response is complete.
    pub fn finish(&self, head: Option<&Head>, data: &[u8]) -> Result<(), IoError> {
        self.with(|c| c.send(head, data, true))
    }

    /// Sends an `Error` frame (the request failed) unless the response is already complete.
    pub fn fail(&self, message: &str) -> Result<(), IoError> {
        self.with(|c| c.fail(message, proto::encode_error))
    }

    /// Sends a `Forbidden` frame: the group refuses the script the request names (403).
    pub fn forbid(&self, message: &str) -> Result<(), IoError> {
        self.with(|c| c.fail(message, proto::encode_forbidden))
    }

    /// From another thread: gives the request up with a `Timeout` frame, unless the worker is
    /// in the middle of I/O on the connection right now (then it is not stuck in the app).
    pub fn give_up(&self, message: &str) -> bool {
        if self.shared.current.load(Ordering::SeqCst) != self.seq {
            return false;
        }
        match self.shared.conn.try_lock() {
            // Handed off: the response is moving, so the request is not stuck.
            Some(conn) if conn.behind => false,
            Some(mut conn) => conn.give_up(message).is_ok(),
            None => false,
        }
    }

    /// Declines the request before anything of it was processed (see `Frame::Retry`).
    pub fn retry(&self) -> Result<(), IoError> {
        self.with(|c| c.retry(c.seq))
    }

    /// Ends the request from the worker's side: a handler that produced no complete response
    /// gets an `Error` frame sent for it. Handles given out for this request stop working.
    pub fn end(self) -> Outcome {
        fork::exit_if_forked();
        let mut conn = self.shared.conn.lock();
        self.shared.wait_drained(&mut conn);
        self.shared.current.store(0, Ordering::SeqCst);
        conn.reader.release_buffer();
        if conn.wbuf.is_empty() {
            behind::trim(&mut conn.wbuf);
        }
        if conn.state.broken {
            return Outcome::Close;
        }
        if !conn.state.done {
            let msg = "the handler returned without completing the response";
            let _ = conn.fail(msg, proto::encode_error);
        }
        if conn.state.failed || conn.state.broken {
            Outcome::Close
        } else {
            Outcome::Complete
        }
    }
}

//! The relay's decisions, apart from its I/O: given each frame the daemon sends (or the way
//! reading one failed), what the module does next. Pure Rust over the protocol's decoded
//! frames, so `cargo test` exercises the retry rule, the Content-Length budget, error
//! override and the failure statuses without Apache. [`run`] carries the [`Step`]s out
//! between the two sides of [`io`]; `dispatch::exchange` implements those on a UNIX socket
//! and Apache's request.

mod error;
mod error_code;
mod exchange;
#[cfg(test)]
mod exchange_tests;
#[cfg(test)]
mod fakes;
pub mod io;
#[cfg(test)]
mod ring_tests;
#[cfg(test)]
mod tests;

pub use error::{Disposition, Kind, RelayError, Source};
pub use exchange::{run, Answer, Outcome};

use rswsgi_protocol::Frame;

/// What the frame loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer the daemon's `ReadBody` with up to `max` bytes of the client's body.
    ReadBody {
        /// Most bytes wanted.
        max: u32,
    },
    /// Apply the frame's response head to the request, then call [`Relay::head_applied`].
    ApplyHead,
    /// Pass the first `len` bytes of the `Body` frame to the client; `over`: the frame went
    /// past the declared Content-Length (the rest is dropped, and the exchange ends).
    Write {
        /// Bytes to pass on.
        len: usize,
        /// Whether the frame went past Content-Length.
        over: bool,
    },
    /// Send `len` bytes from `offset` of the file that came with the `BodyFile` frame.
    SendFile {
        /// Where in the file.
        offset: u64,
        /// The block the frame names (what the file must hold).
        length: u64,
        /// How many bytes (0: nothing to send, only `over`).
        len: u64,
        /// Whether the block went past Content-Length.
        over: bool,
    },
    /// Pass the first `len` bytes of the ring slice of `total` bytes at `offset` on (0:
    /// none, a block of a response Apache's error document replaces), then release the
    /// whole slice; `over` as for [`Step::Write`].
    Ring {
        /// Where the slice starts in the ring's data area.
        offset: u32,
        /// The slice's length (what is released).
        total: u32,
        /// Bytes to pass on.
        len: u32,
        /// Whether the slice went past Content-Length.
        over: bool,
    },
    /// Map the response ring that came with a `RingSetup` frame.
    MapRing {
        /// The size its frame announced.
        data_len: u32,
    },
    /// Nothing to pass on: a block of a response Apache's error document replaces.
    Skip,
    /// Close the file descriptor that came with the frame, unsent.
    DropFile,
    /// The response is over.
    Done(Ending),
    /// The daemon provably did not read the request: send it again on another connection.
    Retry,
    /// The exchange failed.
    Fail(RelayError),
}

/// How a complete exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The whole response went to the client.
    Complete,
    /// The application answered this error status, which Apache's error document replaces
    /// (`WSGIErrorOverride On`).
    Overridden(u16),
}

/// How reading the next frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// The connection ended (cleanly, or inside a frame).
    Closed,
    /// An I/O error of this kind.
    Io(std::io::ErrorKind),
    /// A frame that could not be decoded.
    Undecodable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No response head yet.
    AwaitingHead,
    /// The application's error status is kept for Apache's error document.
    Overridden(u16),
    /// The head went to the client; the body is counted against its Content-Length.
    Streaming { declared: Option<u64>, sent: u64 },
}

/// The state of one exchange.
#[derive(Debug, Clone)]
pub struct Relay {
    seq: u64,
    error_override: bool,
    frames_seen: bool,
    asked_client: bool,
    phase: Phase,
}

/// A reset, or a refused write, before any frame: the daemon closed the connection with
/// the request unread (one that read it and then died ends the connection cleanly).
pub fn unread(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

fn daemon(kind: Kind, detail: impl Into<String>) -> Step {
    Step::Fail(RelayError::new(Source::Daemon, kind, detail))
}

impl Relay {
    /// An exchange for request number `seq`; `error_override`: `WSGIErrorOverride On`.
    pub fn new(seq: u64, error_override: bool) -> Self {
        Relay {
            seq,
            error_override,
            frames_seen: false,
            asked_client: false,
            phase: Phase::AwaitingHead,
        }
    }

    /// Whether the response head went to the client (a failure then aborts the connection
    /// instead of answering an error status).
    pub fn head_sent(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    /// The response's declared Content-Length, once its head was applied.
    pub fn declared(&self) -> Option<u64> {
        match self.phase {
            Phase::Streaming { declared, .. } => declared,
            _ => None,
        }
    }

    /// Writing the request to the daemon failed with `kind`.
    pub fn on_send_failed(&self, kind: std::io::ErrorKind, detail: &str) -> Step {
        if unread(kind) {
            return Step::Retry;
        }
        let detail = format!("it failed while receiving the request: {detail}");
        Step::Fail(RelayError::new(Source::Daemon, Kind::Unavailable, detail))
    }

    /// Reading the next frame failed.
    pub fn on_read_failed(&self, failure: ReadFailure, detail: &str) -> Step {
        match failure {
            ReadFailure::Io(kind) if !self.frames_seen && unread(kind) => Step::Retry,
            ReadFailure::Io(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                daemon(Kind::Timeout, "Apache's Timeout")
            }
            ReadFailure::Closed => daemon(Kind::Closed, ""),
            ReadFailure::Io(_) => daemon(Kind::Closed, detail),
            ReadFailure::Undecodable => daemon(Kind::Protocol, detail),
        }
    }

    /// No frame came within the daemon's timeout.
    pub fn on_timeout(&self) -> Step {
        daemon(Kind::Timeout, "Apache's Timeout")
    }

    /// The response head was applied; `declared`: its Content-Length, if the response carries
    /// a body at all (not for HEAD, 1xx, 204, 304).
    pub fn head_applied(&mut self, declared: Option<u64>) {
        self.phase = Phase::Streaming { declared, sent: 0 };
    }

    /// What to do with `frame`.
    pub fn on_frame(&mut self, frame: &Frame<'_>) -> Step {
        self.frames_seen = true;
        if let Some(other) = frame.seq().filter(|&s| s != self.seq) {
            return daemon(
                Kind::Protocol,
                format!(
                    "a {:?} frame for request #{other} arrived where request #{} was in \
                     progress (a stray writer, such as a process the application forked?); \
                     closing the connection",
                    frame.kind(),
                    self.seq
                ),
            );
        }
        match (*frame, self.phase) {
            (Frame::Retry { .. }, Phase::AwaitingHead) if !self.asked_client => Step::Retry,
            (Frame::ReadBody { max, .. }, _) => {
                self.asked_client = true;
                Step::ReadBody { max }
            }
            (Frame::ResponseHead(h), Phase::AwaitingHead) => {
                if self.error_override && h.status >= 400 {
                    self.phase = Phase::Overridden(h.status);
                    Step::Skip
                } else {
                    Step::ApplyHead
                }
            }
            (Frame::RingSetup { data_len }, _) => Step::MapRing { data_len },
            (Frame::Body(_), Phase::Overridden(_)) => Step::Skip,
            (Frame::BodyRing { offset, len }, Phase::Overridden(_)) => Step::Ring {
                offset,
                total: len,
                len: 0,
                over: false,
            },
            (Frame::BodyFile { .. }, Phase::Overridden(_)) => Step::DropFile,
            (Frame::ResponseEnd { .. }, Phase::Overridden(status)) => {
                Step::Done(Ending::Overridden(status))
            }
            (Frame::Body(data), Phase::Streaming { .. }) => {
                let (len, over) = self.count(data.len() as u64);
                Step::Write {
                    len: len as usize,
                    over,
                }
            }
            (Frame::BodyRing { offset, len: total }, Phase::Streaming { .. }) => {
                let (len, over) = self.count(u64::from(total));
                Step::Ring {
                    offset,
                    total,
                    len: len as u32,
                    over,
                }
            }
            (Frame::BodyFile { offset, length }, Phase::Streaming { .. }) => {
                let (len, over) = self.count(length);
                Step::SendFile {
                    offset,
                    length,
                    len,
                    over,
                }
            }
            (Frame::ResponseEnd { .. }, Phase::Streaming { declared, sent }) => {
                match declared.filter(|&n| n > sent) {
                    Some(declared) => Step::Fail(RelayError::new(
                        Source::App,
                        Kind::Short { sent, declared },
                        "",
                    )),
                    None => Step::Done(Ending::Complete),
                }
            }
            (Frame::Timeout { message, .. }, _) => Step::Fail(RelayError::new(
                Source::App,
                Kind::GivenUp,
                String::from_utf8_lossy(message),
            )),
            (Frame::Forbidden { message, .. }, _) => Step::Fail(RelayError::new(
                Source::App,
                Kind::Refused,
                String::from_utf8_lossy(message),
            )),
            (Frame::Error { message, .. }, _) => Step::Fail(RelayError::new(
                Source::App,
                Kind::Failed,
                String::from_utf8_lossy(message),
            )),
            (other, _) => daemon(
                Kind::Protocol,
                format!("unexpected {:?} frame", other.kind()),
            ),
        }
    }

    /// Counts a block of `len` bytes against the Content-Length: how much of it fits, and
    /// whether it goes past.
    fn count(&mut self, len: u64) -> (u64, bool) {
        let Phase::Streaming { declared, sent } = &mut self.phase else {
            return (0, false);
        };
        let room = declared.map_or(u64::MAX, |n| n - *sent);
        let fits = len.min(room);
        *sent += fits;
        (fits, len > room)
    }
}

//! One exchange, carried out between a [`DaemonLink`] and a [`Downstream`]: send the request,
//! then read each frame, ask the [`Relay`] what it means, and do it. Everything the module
//! decides about a relayed request happens here, apart from Apache.

use std::os::fd::OwnedFd;

use rswsgi_protocol::{body_header, encode_body_end, encode_error, Frame, ReadError};
use rswsgi_protocol::{ResponseHead, MAX_BODY_CHUNK};
use tracing::Level;

use super::io::{ClientGone, DaemonLink, Downstream, Header, Wait};
use super::{Disposition, Ending, Kind, ReadFailure, Relay, RelayError, Source, Step};

/// Request body bytes read from the client per `ReadBody` answer, at most: memory stays
/// bounded by one read, whatever the body's size.
const BODY_READ: usize = 256 << 10;
const _: () = assert!(BODY_READ <= MAX_BODY_CHUNK);

/// Body blocks up to this size are gathered while more frames have already arrived, and
/// passed on together; larger ones go out as they are.
const GATHER_BLOCK: usize = 16 << 10;
/// Most bytes gathered before they are passed on.
const GATHER_MAX: usize = 64 << 10;

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Finished (or failed) with this value; `reusable` when the response ended cleanly, so
    /// the connection can serve another request.
    Done {
        /// What the exchange produced.
        value: T,
        /// Whether the connection can go back to the pool.
        reusable: bool,
    },
    /// The daemon did not read the request (it answered `Retry`, or dropped the connection
    /// with the request unread): send it again.
    Retry,
}

/// What the handler answers Apache once the exchange is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The response went out (or was aborted): the handler is done.
    Sent,
    /// Nothing went out: Apache answers with this status.
    Status(u16),
}

/// One request's exchange: `request` (its encoded `RequestHead`, and body if any) is request
/// number `seq` on `link`; `error_override` is `WSGIErrorOverride On`; `group` names the
/// daemon group in log lines.
pub fn run<L: DaemonLink, D: Downstream>(
    link: &mut L,
    down: &mut D,
    request: &[u8],
    seq: u64,
    error_override: bool,
    group: &str,
) -> Outcome<Answer> {
    let mut x = Exchange {
        link,
        down,
        core: Relay::new(seq, error_override),
        seq,
        body: Vec::new(),
        gathered: Vec::new(),
    };
    let step = match x.link.send(&[request]) {
        Ok(()) => x.frame_loop(),
        Err(e) => x.core.on_send_failed(e.kind(), &e.to_string()),
    };
    x.finish(step, group)
}

struct Exchange<'a, L, D> {
    link: &'a mut L,
    down: &'a mut D,
    core: Relay,
    seq: u64,
    /// Where request body pieces are read (never zeroed: Apache writes into its spare
    /// capacity); it keeps its capacity from one `ReadBody` to the next.
    body: Vec<u8>,
    /// Small response blocks not passed on yet: they go out together, and always before
    /// the exchange waits for the daemon, so no block is held back.
    gathered: Vec<u8>,
}

impl<L: DaemonLink, D: Downstream> Exchange<'_, L, D> {
    /// Reads and carries out frames until a step ends the exchange; returns that step.
    fn frame_loop(&mut self) -> Step {
        loop {
            if !self.gathered.is_empty() && !self.link.frame_ready() {
                if let Err(gone) = self.pass_gathered() {
                    return gone;
                }
            }
            match self.link.wait() {
                Wait::Daemon => {}
                Wait::ClientGone => return self.client_gone(),
                Wait::TimedOut => return self.core.on_timeout(),
            }
            let step = match self.link.read_frame() {
                Ok(Some(frame)) => {
                    let step = self.core.on_frame(&frame);
                    let out = Output {
                        down: &mut *self.down,
                        gathered: &mut self.gathered,
                    };
                    pass_on(&mut self.core, out, &frame, step)
                }
                Ok(None) | Err(ReadError::Truncated) => {
                    self.core.on_read_failed(ReadFailure::Closed, "")
                }
                Err(ReadError::Io(e)) => {
                    let failure = ReadFailure::Io(e.kind());
                    self.core.on_read_failed(failure, &e.to_string())
                }
                Err(e) => self
                    .core
                    .on_read_failed(ReadFailure::Undecodable, &e.to_string()),
            };
            let next = match step {
                Step::ReadBody { max } => self.answer_body(max),
                Step::SendFile { .. } | Step::DropFile => self.carry_file(step),
                Step::Ring { .. } => self.carry_ring(step),
                Step::MapRing { data_len } => self.map_ring(data_len),
                Step::Skip => None,
                end => Some(end),
            };
            if let Some(end) = next {
                return end;
            }
        }
    }

    /// Passes the gathered blocks on; the step that ends the exchange if the client is gone.
    fn pass_gathered(&mut self) -> Result<(), Step> {
        let mut out = Output {
            down: &mut *self.down,
            gathered: &mut self.gathered,
        };
        out.write_gathered().map_err(|_| client_write_failed())
    }

    fn client_gone(&mut self) -> Step {
        let when = if self.core.head_sent() {
            "while the response was being sent"
        } else {
            "before the response began"
        };
        Step::Fail(RelayError::new(Source::Client, Kind::ClientGone, when))
    }

    /// Answers a `ReadBody` with up to `max` bytes of the client's body (a `Body` frame),
    /// its end (`BodyEnd`) or its failure (`Error`, and the exchange ends).
    fn answer_body(&mut self, max: u32) -> Option<Step> {
        let want = (max as usize).clamp(1, BODY_READ);
        self.body.clear();
        let mut frame = Vec::new();
        let sent = match self.down.read_body(&mut self.body, want) {
            Ok(Some(_)) => {
                let header =
                    body_header(self.body.len()).expect("BODY_READ is under the frame cap");
                self.link.send(&[&header, &self.body])
            }
            Ok(None) => {
                encode_body_end(&mut frame);
                self.link.send(&[&frame])
            }
            Err(e) => {
                // The client's failure decides the answer, whether or not the daemon hears.
                encode_error(&mut frame, self.seq, e.reason.as_bytes());
                let _ = self.link.send(&[&frame]);
                let kind = Kind::BodyRead(e.status);
                return Some(Step::Fail(RelayError::new(Source::Client, kind, e.reason)));
            }
        };
        sent.err().map(|e| {
            let detail = format!("it went away while receiving the request body: {e}");
            Step::Fail(RelayError::new(Source::Daemon, Kind::Closed, detail))
        })
    }

    /// Carries out the steps about the descriptor that came with a `BodyFile` frame.
    fn carry_file(&mut self, step: Step) -> Option<Step> {
        let fd = self.link.take_fd();
        let Step::SendFile {
            offset,
            length,
            len,
            over,
        } = step
        else {
            return None;
        };
        let Some(fd) = fd else {
            return Some(protocol(
                "a BodyFile frame came without its file descriptor",
            ));
        };
        // In order: what was gathered goes before the file.
        if let Err(gone) = self.pass_gathered() {
            return Some(gone);
        }
        let sealed = match check_file(&fd, offset, length) {
            Ok(sealed) => sealed,
            Err(msg) => return Some(protocol(&format!("a bad file block: {msg}"))),
        };
        let message = "response block sent from the daemon's file descriptor";
        self.down.log(Level::TRACE, message);
        let written = match len {
            0 => Ok(()),
            _ => self.down.send_file(fd, offset, len, sealed),
        };
        block_sent(&self.core, written.is_ok(), over)
    }

    /// Passes a ring slice on (what was gathered first), then releases it, whatever became
    /// of it: the daemon's room in the ring never depends on the client.
    fn carry_ring(&mut self, step: Step) -> Option<Step> {
        let Step::Ring {
            offset,
            total,
            len,
            over,
        } = step
        else {
            return None;
        };
        let written = match len {
            0 => Ok(()),
            _ => match self.pass_gathered() {
                Err(gone) => {
                    self.link.release_ring(total);
                    return Some(gone);
                }
                Ok(()) => match self.link.ring_bytes(offset, len) {
                    Ok(bytes) => self.down.write_shared(bytes),
                    Err(msg) => return Some(protocol(&format!("a bad ring slice: {msg}"))),
                },
            },
        };
        self.link.release_ring(total);
        block_sent(&self.core, written.is_ok(), over)
    }

    /// Maps the response ring whose descriptor came with a `RingSetup` frame.
    fn map_ring(&mut self, data_len: u32) -> Option<Step> {
        let Some(fd) = self.link.take_fd() else {
            return Some(protocol(
                "a RingSetup frame came without its file descriptor",
            ));
        };
        let attached = self.link.attach_ring(fd, data_len);
        attached
            .err()
            .map(|msg| protocol(&format!("a bad response ring: {msg}")))
    }

    /// Ends the exchange on its final step: the log line, what Apache is answered, and
    /// whether the connection can be pooled or the request must be sent again.
    fn finish(&mut self, step: Step, group: &str) -> Outcome<Answer> {
        // What came before the end goes out first, even when the exchange failed.
        let step = match (self.pass_gathered(), step) {
            (Err(gone), Step::Done(_)) => gone,
            (_, step) => step,
        };
        let reusable = !self.link.has_buffered();
        let e = match step {
            Step::Retry => return Outcome::Retry,
            Step::Done(Ending::Complete) => {
                let value = Answer::Sent;
                return Outcome::Done { value, reusable };
            }
            Step::Done(Ending::Overridden(status)) => {
                let value = Answer::Status(status);
                return Outcome::Done { value, reusable };
            }
            Step::Fail(e) => e,
            other => RelayError::new(
                Source::Daemon,
                Kind::Protocol,
                format!("{other:?} out of place"),
            ),
        };
        self.down
            .log(e.level(), &e.operator_line(group, self.link.peer_pid()));
        let disposition = e.disposition(self.core.head_sent());
        self.down.failed(&e, disposition);
        let value = match disposition {
            Disposition::Status(status) => Answer::Status(status),
            Disposition::Abort => {
                self.down.abort();
                Answer::Sent
            }
            Disposition::DropClient => {
                // Closing the daemon connection makes the application's next write fail,
                // which stops it (and runs its `close()`).
                self.down.drop_client();
                Answer::Sent
            }
            Disposition::Sent => Answer::Sent,
        };
        Outcome::Done {
            value,
            reusable: false,
        }
    }
}

/// Where response blocks go: gathered, or on to the client.
struct Output<'a, D> {
    down: &'a mut D,
    gathered: &'a mut Vec<u8>,
}

impl<D: Downstream> Output<'_, D> {
    /// Passes `block` on, or gathers it when it is small.
    fn pass(mut self, block: &[u8]) -> Result<(), ClientGone> {
        if block.len() > GATHER_BLOCK {
            self.write_gathered()?;
            return self.down.write(block);
        }
        if self.gathered.len() + block.len() > GATHER_MAX {
            self.write_gathered()?;
        }
        self.gathered.extend_from_slice(block);
        Ok(())
    }

    fn write_gathered(&mut self) -> Result<(), ClientGone> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        let written = self.down.write(self.gathered);
        self.gathered.clear();
        written
    }
}

/// Carries out the steps that pass part of `frame` on; the others go back to the loop.
fn pass_on<D: Downstream>(
    core: &mut Relay,
    out: Output<'_, D>,
    frame: &Frame<'_>,
    step: Step,
) -> Step {
    let down = &mut *out.down;
    match (step, frame) {
        (Step::ApplyHead, Frame::ResponseHead(h)) => match apply_head(down, h) {
            Ok(declared) => {
                let bodiless = down.header_only() || matches!(h.status, 100..=199 | 204 | 304);
                core.head_applied(declared.filter(|_| !bodiless));
                down.response_begins();
                Step::Skip
            }
            Err(msg) => {
                down.discard_head();
                Step::Fail(RelayError::new(Source::App, Kind::BadHead, msg))
            }
        },
        (Step::Write { len, over }, Frame::Body(data)) => {
            let written = out.pass(&data[..len]);
            block_sent(core, written.is_ok(), over).unwrap_or(Step::Skip)
        }
        (step, _) => step,
    }
}

/// Sets the response head on `down`; returns the Content-Length the application declared.
fn apply_head<D: Downstream>(down: &mut D, h: &ResponseHead<'_>) -> Result<Option<u64>, String> {
    let mut declared = None;
    down.set_status(h.status, h.reason);
    for (name, value) in h.headers {
        let header = if rswsgi_protocol::is_hop_by_hop(name) {
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
            Header::ContentType(value)
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // Apache's request record holds it as an apr_off_t.
            let len = rswsgi_protocol::http::parse_content_length(value)
                .filter(|&n| i64::try_from(n).is_ok());
            let Some(n) = len else {
                let value = String::from_utf8_lossy(value);
                return Err(format!("invalid Content-Length '{value}'"));
            };
            declared = Some(n);
            Header::ContentLength(n)
        } else {
            Header::Other(name, value)
        };
        down.add_header(header);
    }
    Ok(declared)
}

/// After passing a body block on: `None` to go on, or the step that ends the exchange (the
/// client went away, or the application went past its Content-Length).
fn block_sent(core: &Relay, written: bool, over: bool) -> Option<Step> {
    if !written {
        return Some(client_write_failed());
    }
    over.then(|| {
        let declared = core.declared().unwrap_or_default();
        Step::Fail(RelayError::new(Source::App, Kind::TooLong { declared }, ""))
    })
}

fn client_write_failed() -> Step {
    let when = "while the response was being sent";
    Step::Fail(RelayError::new(Source::Client, Kind::ClientGone, when))
}

fn protocol(detail: &str) -> Step {
    Step::Fail(RelayError::new(Source::Daemon, Kind::Protocol, detail))
}

/// Checks a file descriptor from a `BodyFile` frame: a regular file holding the whole block.
/// Returns whether it is sealed against shrinking (a memfd the daemon filled), which makes it
/// safe to map it into memory.
fn check_file(fd: &OwnedFd, offset: u64, length: u64) -> Result<bool, String> {
    let (size, seals) = super::io::regular_file(fd)?;
    let end = offset.saturating_add(length);
    if end > size {
        return Err(format!(
            "bytes {offset}..{end} asked for, but the file holds {size}"
        ));
    }
    Ok(seals.contains(nix::fcntl::SealFlag::F_SEAL_SHRINK))
}

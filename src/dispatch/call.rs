//! A hook call over a daemon connection (`rswsgi_protocol::hook`): send the request, read the
//! reply from the head of a bodiless response. Nothing goes to the client here; the caller
//! turns the result into an auth decision or a routing choice.

use std::io::Write;

use rswsgi_protocol::{Frame, FrameReader, HookCall, HookReply, ReadError};

use super::exchange::Outcome;
use super::pool::Link;
use crate::relay::unread;

/// Why a hook call gave no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The hook function failed in the daemon (it raised, is missing, returned the wrong
    /// type, or the script may not be loaded there); the daemon logged the details.
    #[error("{0}")]
    Failed(String),
    /// The daemon did not answer in time.
    #[error("timeout waiting for the daemon: {0}")]
    TimedOut(String),
    /// The daemon broke the protocol or the connection.
    #[error("{0}")]
    Daemon(String),
}

impl CallError {
    /// The HTTP status the request gets.
    pub fn status(&self) -> u32 {
        match self {
            CallError::Failed(_) => crate::ffi::HTTP_INTERNAL_SERVER_ERROR,
            CallError::TimedOut(_) => crate::ffi::HTTP_GATEWAY_TIME_OUT,
            CallError::Daemon(_) => crate::ffi::HTTP_BAD_GATEWAY,
        }
    }
}

/// The result of one call attempt.
pub type CallResult = Result<HookReply, CallError>;

/// Sends `wire` (the encoded call, with the handshake proof on a new connection) and reads
/// the reply.
pub fn run(link: &mut Link, wire: &[u8], call: &HookCall<'_>) -> Outcome<CallResult> {
    if let Err(e) = (&link.stream).write_all(wire) {
        if unread(e.kind()) {
            return Outcome::Retry;
        }
        return done(
            Err(CallError::Daemon(format!("sending the call failed: {e}"))),
            false,
        );
    }
    let mut reader = FrameReader::with_buffer(&link.stream, std::mem::take(&mut link.buf));
    let outcome = read_reply(&mut reader, link.seq, call);
    link.buf = reader.into_parts().1;
    outcome
}

fn done(value: CallResult, reusable: bool) -> Outcome<CallResult> {
    Outcome::Done { value, reusable }
}

fn read_reply(
    reader: &mut FrameReader<&std::os::unix::net::UnixStream>,
    seq: u64,
    call: &HookCall<'_>,
) -> Outcome<CallResult> {
    let mut reply: Option<CallResult> = None;
    let mut frames_seen = false;
    loop {
        let frame = match reader.read_frame() {
            Ok(Some(f)) => f,
            Ok(None) | Err(ReadError::Truncated) => {
                let msg = "the daemon closed the connection before answering (it may have crashed)";
                return done(Err(CallError::Daemon(msg.into())), false);
            }
            Err(ReadError::Io(e)) if !frames_seen && unread(e.kind()) => return Outcome::Retry,
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return done(Err(CallError::TimedOut(e.to_string())), false);
            }
            Err(e) => return done(Err(CallError::Daemon(e.to_string())), false),
        };
        frames_seen = true;
        if let Some(other) = frame.seq().filter(|&s| s != seq) {
            let msg = format!("a frame for request #{other} arrived where #{seq} was in progress");
            return done(Err(CallError::Daemon(msg)), false);
        }
        match frame {
            Frame::Retry { .. } if reply.is_none() => return Outcome::Retry,
            Frame::ResponseHead(h) if reply.is_none() && h.status == 200 => {
                reply =
                    Some(HookReply::from_headers(call, h.headers).map_err(|e| {
                        CallError::Daemon(format!("bad reply to {}: {e}", call.name()))
                    }));
            }
            Frame::ResponseEnd { .. } if reply.is_some() => {
                let reusable = !reader.has_buffered();
                if let Some(value) = reply.take() {
                    return done(value, reusable);
                }
            }
            Frame::Error { message, .. } => {
                let msg = String::from_utf8_lossy(message).into_owned();
                return done(Err(CallError::Failed(msg)), false);
            }
            Frame::Timeout { message, .. } => {
                let msg = String::from_utf8_lossy(message).into_owned();
                return done(Err(CallError::TimedOut(msg)), false);
            }
            other => {
                let msg = format!(
                    "unexpected {:?} frame in the answer to {}",
                    other.kind(),
                    call.name()
                );
                return done(Err(CallError::Daemon(msg)), false);
            }
        }
    }
}

//! The wire protocol between `mod_rswsgi` (inside Apache) and `rswsgi-daemon`.
//!
//! A connection opens with a handshake ([`auth`]): the daemon sends a challenge and the module
//! proves it knows this Apache's secret; both messages start with the 8-byte [`PREAMBLE`]
//! (magic and [`VERSION`]). Then the connection carries one request at a time:
//!
//! ```text
//! module → daemon   RequestHead{seq, body kind, typed fields, environ pairs}
//! daemon → module   ReadBody{max}            (only when the application reads its input)
//! module → daemon   Body | BodyEnd | Error   (one answer per ReadBody)
//! daemon → module   ResponseHead, (Body | BodyFile | BodyRing)*, ResponseEnd    or    Error
//!                   (or, before the head: Timeout, or Forbidden for a refused script;
//!                   RingSetup, once per connection, before its first BodyRing)
//! ```
//!
//! Requests on a connection are numbered 1, 2, 3…; `RequestHead` carries the number and every
//! daemon frame about the request except body blocks carries it back (`seq`), so a response
//! can never be taken for another request's (a forked copy of a daemon writing to a shared
//! connection, say). A daemon that is shutting down answers an idle connection with `Retry`
//! for the next number, and the module sends the request again on a new connection.
//!
//! A `RequestHead`'s payload (protocol version 3) is: `seq` (`u64`), the body kind (`u8`: 0
//! none, 1 a length, then that `u64`, 2 chunked), the typed fields of [`meta`] (the request
//! start, a `u64` of microseconds since the epoch, then the script, the callable, the request
//! id and the application group, each a `u32` length and that many bytes), then the environ
//! (a `u32` count of name/value pairs, each a `u32` length and its bytes). Integers are little
//! endian; every length is checked against what is left of the payload (itself at most
//! [`MAX_HEAD`]) before anything is read. Version 2 carried the typed fields as environ
//! strings.
//!
//! Large response blocks travel in shared memory, the response [`ring`]; protocol version 4
//! added it.
//!
//! [`frame`] holds pure encode/decode functions; [`stream`] adds a buffered reader over any
//! [`std::io::Read`] for the two peers.
//!
//! [`hook`] types the calls that run a hook function (auth, dispatch) instead of an
//! application, carried by the same frames.
//!
//! [`http`] holds the HTTP rules both peers apply to a response head (token names,
//! hop-by-hop headers, `Content-Length`).
//!
//! [`daemon_spec`] is the daemon's command line, which the supervisor writes and the daemon
//! reads.
//!
//! [`codes`] are the stable error codes every operator-facing log line carries.
//!
//! [`startup`] is the other contract a daemon keeps: the one line it logs when its start-up is
//! over, which `express` reads.

#![warn(missing_docs)]

pub mod auth;
pub mod carriers;
pub mod codes;
pub mod daemon_spec;
pub mod encode;
pub mod frame;
pub mod hook;
pub mod http;
pub mod meta;
pub mod ring;
pub mod startup;
pub mod stats;
pub mod stream;

pub use auth::{AuthError, Secret};
pub use codes::Code;
pub use daemon_spec::{DaemonSpec, LogLevel, ScriptOwner, SpecError};
pub use encode::{
    body_header, encode_body, encode_body_end, encode_body_file, encode_body_ring, encode_error,
    encode_forbidden, encode_read_body, encode_request_head, encode_response_end,
    encode_response_head, encode_retry, encode_ring_setup, encode_timeout, set_request_seq,
};
pub use frame::{
    decode, peek_header, BodyKind, Frame, FrameKind, Pairs, RequestHead, ResponseHead, HEADER_LEN,
    MAX_BODY_CHUNK, MAX_ERROR, MAX_HEAD, SEQ_LEN,
};
pub use hook::{HookCall, HookError, HookReply};
pub use http::{is_hop_by_hop, is_status_header};
pub use meta::RequestMeta;
pub use startup::{ReportError, StartupReport};
pub use stream::{FrameOrBody, FrameReader, ReadError};

/// The protocol version this build speaks.
pub const VERSION: u16 = 4;

/// The bytes that open every connection: `RSWSGI`, then [`VERSION`] (big endian).
pub const PREAMBLE: [u8; 8] = {
    let v = VERSION.to_be_bytes();
    [b'R', b'S', b'W', b'S', b'G', b'I', v[0], v[1]]
};

/// A frame that could not be decoded. The connection it came from must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The kind byte names no frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The declared payload length is over the cap for its kind.
    #[error("{kind:?} frame of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The frame's kind.
        kind: FrameKind,
        /// The declared payload length.
        len: usize,
        /// The cap for this kind.
        max: usize,
    },
    /// A field inside the payload runs past its end.
    #[error("frame payload is truncated")]
    Truncated,
    /// The payload has bytes left over after its last field.
    #[error("{0} unexpected bytes after the frame's fields")]
    TrailingBytes(usize),
    /// A field holds a value outside its range.
    #[error("bad {0}: {1}")]
    BadField(&'static str, u32),
    /// A length-prefixed field declares more bytes than any frame may carry.
    #[error("{field} of {len} bytes is over the {max}-byte limit")]
    FieldTooLarge {
        /// The field's name.
        field: &'static str,
        /// The declared length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The connection did not open with the expected preamble.
    #[error("bad preamble: not an rswsgi peer, or protocol version {found} (this side speaks {VERSION})")]
    BadPreamble {
        /// The version the peer sent, or 0 if the magic itself was wrong.
        found: u16,
    },
}

/// A frame that could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The payload would be over the cap for its kind.
    #[error("{kind:?} frame of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The frame's kind.
        kind: FrameKind,
        /// The payload length it would have had.
        len: usize,
        /// The cap for this kind.
        max: usize,
    },
    /// A length-prefixed field is over the cap for any frame.
    #[error("{field} of {len} bytes is over the {max}-byte limit")]
    FieldTooLarge {
        /// The field's name.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A response status outside 100..=999.
    #[error("bad status code {0}")]
    BadStatus(u16),
}

/// Checks the connection preamble at the front of `buf`: `Ok(None)` if incomplete,
/// `Ok(Some(len))` if it matches.
pub fn check_preamble(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < PREAMBLE.len() {
        return Ok(None);
    }
    if buf[..6] != PREAMBLE[..6] {
        return Err(DecodeError::BadPreamble { found: 0 });
    }
    let found = u16::from_be_bytes([buf[6], buf[7]]);
    if found != VERSION {
        return Err(DecodeError::BadPreamble { found });
    }
    Ok(Some(PREAMBLE.len()))
}

#[cfg(test)]
mod tests;

//! Why an operation on a module connection ([`crate::conn`]) failed.

use std::io;

use rswsgi_protocol as proto;
use rswsgi_protocol::{FrameKind, ReadError};

use crate::gate::Refusal;

/// Why an operation on the module connection failed.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The connection broke earlier in this request.
    #[error("the connection to the module is already broken")]
    Broken,
    /// The request this handle belongs to is over.
    #[error("the request is already over")]
    Stale,
    /// Writing to the module failed (usually: it went away).
    #[error("writing to the module failed: {0}")]
    Write(#[source] io::Error),
    /// Reading from the module failed or it sent a malformed frame.
    #[error("reading from the module failed: {0}")]
    Read(#[source] ReadError),
    /// The response head is over `header-buffer-size`.
    #[error("the response headers take {size} bytes, over header-buffer-size ({limit})")]
    HeadTooLarge {
        /// Encoded size of the head.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The module closed the connection while the daemon waited for an answer.
    #[error("the module closed the connection")]
    Closed,
    /// The module sent a frame that does not belong here.
    #[error("the module sent an unexpected {0:?} frame")]
    Unexpected(FrameKind),
    /// The module reported that the request body could not be read (client went away, ...).
    #[error("reading the request body failed: {0}")]
    BodyFailed(String),
    /// The response head or a body frame could not be encoded.
    #[error("the response cannot be encoded: {0}")]
    Encode(#[from] proto::EncodeError),
    /// A response frame was sent out of order (a handler bug).
    #[error("{0}")]
    Order(&'static str),
    /// The connection did not prove it comes from this Apache.
    #[error("connection refused: {0}")]
    Refused(#[from] Refusal),
    /// The module sent a request out of sequence.
    #[error("the module sent request number {found} where {expected} was due")]
    Sequence {
        /// The number due.
        expected: u64,
        /// The number received.
        found: u64,
    },
}

impl IoError {
    /// True when the connection to the module is unusable (nothing more can be sent).
    pub fn is_broken(&self) -> bool {
        matches!(
            self,
            IoError::Broken
                | IoError::Write(_)
                | IoError::Read(_)
                | IoError::Closed
                | IoError::Unexpected(_)
                | IoError::Refused(_)
                | IoError::Sequence { .. }
        )
    }
}

//! Frame kinds, their decoded forms and decoding (encoding is in [`crate::encode`]). Pure
//! functions over byte slices: no I/O.
//!
//! Every frame is a 5-byte header — the kind (`u8`) and the payload length (`u32`, little
//! endian) — followed by the payload. Each kind has its own payload size cap, checked before
//! anything is allocated or copied.

use crate::meta::RequestMeta;
use crate::DecodeError;

/// Bytes in a frame header: kind (1) + payload length (4).
pub const HEADER_LEN: usize = 5;
/// Largest payload of a `Body` frame. Larger bodies are split into several frames.
pub const MAX_BODY_CHUNK: usize = 1 << 20;
/// Largest payload of a `RequestHead` or `ResponseHead` frame.
pub const MAX_HEAD: usize = 1 << 20;
/// Largest message of an `Error`, `Timeout` or `Forbidden` frame.
pub const MAX_ERROR: usize = 64 << 10;
/// Bytes of the request sequence number that frames tied to one request carry.
pub const SEQ_LEN: usize = 8;

/// The kind byte that opens every frame.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Module → daemon: how the body is delimited, the request's typed fields
    /// ([`RequestMeta`]) and its environ.
    RequestHead = 1,
    /// Daemon → module: "send me up to `max` bytes of request body".
    ReadBody = 2,
    /// Either direction: a chunk of request or response body.
    Body = 3,
    /// Module → daemon: the request body has ended (answer to `ReadBody`).
    BodyEnd = 4,
    /// Daemon → module: status and response headers.
    ResponseHead = 5,
    /// Daemon → module: the response is complete.
    ResponseEnd = 6,
    /// Either direction: the request failed; the payload says why.
    Error = 7,
    /// Daemon → module, instead of reading the request: this process is shutting down and has
    /// not read the request; send it again on a new connection.
    Retry = 8,
    /// Daemon → module: the request ran past `request-timeout` and was given up; the payload
    /// says so (504 before the response head, an aborted connection after it).
    Timeout = 9,
    /// Daemon → module: a block of response body read from a file descriptor that travels
    /// with this frame (`SCM_RIGHTS` on the `sendmsg` that carries the frame), so the
    /// module can hand it to Apache as a file bucket (`sendfile`) instead of copying it.
    BodyFile = 10,
    /// Daemon → module, before the response head: the group refuses to load the script the
    /// request names (`script-user`/`script-group`); the payload says why. The module answers
    /// 403, as mod_wsgi does.
    Forbidden = 11,
    /// Daemon → module, once per connection: the response ring ([`crate::ring`]) comes with
    /// this frame (`SCM_RIGHTS`); the payload is the size of its data area (`u32`).
    RingSetup = 12,
    /// Daemon → module: a block of response body in the ring, `len` bytes at `offset` of its
    /// data area (two `u32`s); the module releases it once passed on.
    BodyRing = 13,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::RequestHead,
            2 => Self::ReadBody,
            3 => Self::Body,
            4 => Self::BodyEnd,
            5 => Self::ResponseHead,
            6 => Self::ResponseEnd,
            7 => Self::Error,
            8 => Self::Retry,
            9 => Self::Timeout,
            10 => Self::BodyFile,
            11 => Self::Forbidden,
            12 => Self::RingSetup,
            13 => Self::BodyRing,
            _ => return None,
        })
    }

    /// The largest payload a frame of this kind may carry.
    pub fn max_payload(self) -> usize {
        match self {
            Self::RequestHead | Self::ResponseHead => MAX_HEAD,
            Self::ReadBody => SEQ_LEN + 4,
            Self::Body => MAX_BODY_CHUNK,
            Self::BodyEnd => 0,
            Self::ResponseEnd | Self::Retry => SEQ_LEN,
            Self::Error | Self::Timeout | Self::Forbidden => SEQ_LEN + MAX_ERROR,
            Self::BodyFile => 16,
            Self::RingSetup => 4,
            Self::BodyRing => 8,
        }
    }
}

/// How the request body is delimited, as the module saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body at all: the daemon never asks for one.
    None,
    /// A body of exactly this many bytes (`Content-Length`).
    Length(u64),
    /// A body of unknown length (chunked transfer coding), read until `BodyEnd`.
    Chunked,
}

/// Name/value byte-string pairs (the environ, or response headers), validated at decode time
/// and walked lazily, so decoding allocates nothing.
#[derive(Clone, Copy)]
pub struct Pairs<'a> {
    count: u32,
    data: &'a [u8],
}

impl<'a> Pairs<'a> {
    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// The pairs' encoded size: at least the bytes of all their names and values.
    pub fn encoded_len(&self) -> usize {
        self.data.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Walks `buf` as `count` pairs, returning them and the bytes they took.
    fn parse(buf: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let count = read_u32(buf, 0)?;
        let mut pos = 4;
        for _ in 0..count {
            for _ in 0..2 {
                let len = read_u32(buf, pos)? as usize;
                pos += 4;
                if buf.len() - pos < len {
                    return Err(DecodeError::Truncated);
                }
                pos += len;
            }
        }
        Ok((
            Pairs {
                count,
                data: &buf[4..pos],
            },
            pos,
        ))
    }
}

impl std::fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.into_iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

impl<'a> IntoIterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = PairsIter<'a>;
    fn into_iter(self) -> PairsIter<'a> {
        PairsIter {
            left: self.count,
            data: self.data,
        }
    }
}

impl<'a> IntoIterator for &Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = PairsIter<'a>;
    fn into_iter(self) -> PairsIter<'a> {
        (*self).into_iter()
    }
}

/// Iterator over [`Pairs`].
pub struct PairsIter<'a> {
    left: u32,
    data: &'a [u8],
}

impl<'a> Iterator for PairsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Lengths were validated by `Pairs::parse`, so these slices are in bounds.
        let (name, rest) = split_sized(self.data);
        let (value, rest) = split_sized(rest);
        self.data = rest;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

fn split_sized(buf: &[u8]) -> (&[u8], &[u8]) {
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    buf[4..].split_at(len)
}

/// The request as the daemon receives it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The request's number on its connection: 1 for the first, then one more each time.
    /// Every daemon frame about this request carries it back.
    pub seq: u64,
    /// How the request body is delimited.
    pub body: BodyKind,
    /// The typed fields: script, callable, request id and start, application group.
    pub meta: RequestMeta<'a>,
    /// CGI/WSGI environ entries (name, value), as byte strings.
    pub environ: Pairs<'a>,
}

/// The response status line and headers as the module receives them.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The sequence number of the request this answers.
    pub seq: u64,
    /// The three-digit status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: &'a [u8],
    /// Response headers, in order, repeated names kept apart.
    pub headers: Pairs<'a>,
}

/// One decoded frame, borrowing its payload from the input buffer.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// See [`FrameKind::RequestHead`].
    RequestHead(RequestHead<'a>),
    /// See [`FrameKind::ReadBody`].
    ReadBody {
        /// The sequence number of the request whose body is wanted.
        seq: u64,
        /// Most bytes the daemon wants in the answering `Body` frame.
        max: u32,
    },
    /// See [`FrameKind::Body`].
    Body(&'a [u8]),
    /// See [`FrameKind::BodyEnd`].
    BodyEnd,
    /// See [`FrameKind::ResponseHead`].
    ResponseHead(ResponseHead<'a>),
    /// See [`FrameKind::ResponseEnd`].
    ResponseEnd {
        /// The sequence number of the request whose response is complete.
        seq: u64,
    },
    /// See [`FrameKind::Error`].
    Error {
        /// The sequence number of the request that failed.
        seq: u64,
        /// A human-readable message.
        message: &'a [u8],
    },
    /// See [`FrameKind::Retry`].
    Retry {
        /// The sequence number of the request declined (on an idle connection: the next one).
        seq: u64,
    },
    /// See [`FrameKind::Timeout`].
    Timeout {
        /// The sequence number of the request given up.
        seq: u64,
        /// A human-readable message.
        message: &'a [u8],
    },
    /// See [`FrameKind::Forbidden`].
    Forbidden {
        /// The sequence number of the request refused.
        seq: u64,
        /// A human-readable message.
        message: &'a [u8],
    },
    /// See [`FrameKind::BodyFile`]: send `length` bytes from `offset` of the descriptor that
    /// came with this frame.
    BodyFile {
        /// Where in the file the block starts.
        offset: u64,
        /// How many bytes to send (at least 1).
        length: u64,
    },
    /// See [`FrameKind::RingSetup`]: the ring came with this frame.
    RingSetup {
        /// The size of its data area.
        data_len: u32,
    },
    /// See [`FrameKind::BodyRing`]: pass on `len` bytes at `offset` of the ring's data area
    /// (checked to lie inside it), then release them.
    BodyRing {
        /// Where the block starts in the data area.
        offset: u32,
        /// Its length (at least 1).
        len: u32,
    },
}

impl Frame<'_> {
    /// The kind of this frame.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::RequestHead(_) => FrameKind::RequestHead,
            Frame::ReadBody { .. } => FrameKind::ReadBody,
            Frame::Body(_) => FrameKind::Body,
            Frame::BodyEnd => FrameKind::BodyEnd,
            Frame::ResponseHead(_) => FrameKind::ResponseHead,
            Frame::ResponseEnd { .. } => FrameKind::ResponseEnd,
            Frame::Error { .. } => FrameKind::Error,
            Frame::Retry { .. } => FrameKind::Retry,
            Frame::Timeout { .. } => FrameKind::Timeout,
            Frame::BodyFile { .. } => FrameKind::BodyFile,
            Frame::Forbidden { .. } => FrameKind::Forbidden,
            Frame::RingSetup { .. } => FrameKind::RingSetup,
            Frame::BodyRing { .. } => FrameKind::BodyRing,
        }
    }

    /// The request sequence number the frame carries; `None` for the kinds that carry none
    /// (`Body`, `BodyEnd`, `BodyFile`, `BodyRing`: they only ever follow a frame that does;
    /// `RingSetup` belongs to the connection).
    pub fn seq(&self) -> Option<u64> {
        match *self {
            Frame::RequestHead(RequestHead { seq, .. })
            | Frame::ResponseHead(ResponseHead { seq, .. })
            | Frame::ReadBody { seq, .. }
            | Frame::ResponseEnd { seq }
            | Frame::Error { seq, .. }
            | Frame::Retry { seq }
            | Frame::Timeout { seq, .. }
            | Frame::Forbidden { seq, .. } => Some(seq),
            Frame::Body(_)
            | Frame::BodyEnd
            | Frame::BodyFile { .. }
            | Frame::RingSetup { .. }
            | Frame::BodyRing { .. } => None,
        }
    }
}

pub(crate) fn read_u64(buf: &[u8], at: usize) -> Result<u64, DecodeError> {
    let b = buf.get(at..at + 8).ok_or(DecodeError::Truncated)?;
    Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Splits a payload into its leading sequence number and the rest.
fn split_seq(p: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    Ok((read_u64(p, 0)?, &p[SEQ_LEN..]))
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> Result<u32, DecodeError> {
    let b = buf.get(at..at + 4).ok_or(DecodeError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a frame header, returning the frame's kind and its total length (header included),
/// or `None` if fewer than [`HEADER_LEN`] bytes are available. Rejects unknown kinds and
/// payloads over the kind's cap before any of the payload has arrived.
pub fn peek_header(buf: &[u8]) -> Result<Option<(FrameKind, usize)>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let kind = FrameKind::from_u8(buf[0]).ok_or(DecodeError::UnknownKind(buf[0]))?;
    let len = read_u32(buf, 1)? as usize;
    if len > kind.max_payload() {
        return Err(DecodeError::TooLarge {
            kind,
            len,
            max: kind.max_payload(),
        });
    }
    Ok(Some((kind, HEADER_LEN + len)))
}

/// Decodes one frame from the front of `buf`. Returns `Ok(None)` when `buf` holds only part of
/// a frame, or the frame and the number of bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    let Some((kind, total)) = peek_header(buf)? else {
        return Ok(None);
    };
    if buf.len() < total {
        return Ok(None);
    }
    let p = &buf[HEADER_LEN..total];
    let frame = match kind {
        FrameKind::RequestHead => {
            let (seq, p) = split_seq(p)?;
            let tag = *p.first().ok_or(DecodeError::Truncated)?;
            let (body, rest) = match tag {
                0 => (BodyKind::None, &p[1..]),
                1 => {
                    let b = p.get(1..9).ok_or(DecodeError::Truncated)?;
                    let n = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                    (BodyKind::Length(n), &p[9..])
                }
                2 => (BodyKind::Chunked, &p[1..]),
                t => return Err(DecodeError::BadField("body kind", t as u32)),
            };
            let (meta, used) = RequestMeta::parse(rest)?;
            let rest = &rest[used..];
            let (environ, used) = Pairs::parse(rest)?;
            expect_consumed(rest, used)?;
            Frame::RequestHead(RequestHead {
                seq,
                body,
                meta,
                environ,
            })
        }
        FrameKind::ReadBody => {
            let (seq, p) = split_seq(p)?;
            let max = read_u32(p, 0)?;
            if max == 0 {
                return Err(DecodeError::BadField("read size", 0));
            }
            expect_consumed(p, 4)?;
            Frame::ReadBody { seq, max }
        }
        FrameKind::Body => Frame::Body(p),
        FrameKind::BodyEnd => Frame::BodyEnd,
        FrameKind::ResponseHead => {
            let (seq, p) = split_seq(p)?;
            let s = p.get(0..2).ok_or(DecodeError::Truncated)?;
            let status = u16::from_le_bytes([s[0], s[1]]);
            if !(100..=999).contains(&status) {
                return Err(DecodeError::BadField("status", status as u32));
            }
            let reason_len = read_u32(p, 2)? as usize;
            let reason = p.get(6..6 + reason_len).ok_or(DecodeError::Truncated)?;
            let rest = &p[6 + reason_len..];
            let (headers, used) = Pairs::parse(rest)?;
            expect_consumed(rest, used)?;
            Frame::ResponseHead(ResponseHead {
                seq,
                status,
                reason,
                headers,
            })
        }
        FrameKind::ResponseEnd => {
            let (seq, rest) = split_seq(p)?;
            expect_consumed(rest, 0)?;
            Frame::ResponseEnd { seq }
        }
        FrameKind::Error => {
            let (seq, message) = split_seq(p)?;
            Frame::Error { seq, message }
        }
        FrameKind::Retry => {
            let (seq, rest) = split_seq(p)?;
            expect_consumed(rest, 0)?;
            Frame::Retry { seq }
        }
        FrameKind::Timeout => {
            let (seq, message) = split_seq(p)?;
            Frame::Timeout { seq, message }
        }
        FrameKind::Forbidden => {
            let (seq, message) = split_seq(p)?;
            Frame::Forbidden { seq, message }
        }
        FrameKind::BodyFile => {
            let b: [u8; 16] = p.try_into().map_err(|_| DecodeError::Truncated)?;
            let offset = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
            let length = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
            let end = offset.saturating_add(length);
            if length == 0 || end > i64::MAX as u64 {
                return Err(DecodeError::BadField(
                    "file block",
                    length.min(u32::MAX as u64) as u32,
                ));
            }
            Frame::BodyFile { offset, length }
        }
        FrameKind::RingSetup => {
            let data_len = read_u32(p, 0)?;
            expect_consumed(p, 4)?;
            Frame::RingSetup { data_len }
        }
        FrameKind::BodyRing => {
            let (offset, len) = (read_u32(p, 0)?, read_u32(p, 4)?);
            expect_consumed(p, 8)?;
            if !crate::ring::slice_in_bounds(offset, len) {
                return Err(DecodeError::BadField("ring slice", len));
            }
            Frame::BodyRing { offset, len }
        }
    };
    Ok(Some((frame, total)))
}

fn expect_consumed(buf: &[u8], used: usize) -> Result<(), DecodeError> {
    if used == buf.len() {
        Ok(())
    } else {
        Err(DecodeError::TrailingBytes(buf.len() - used))
    }
}

//! Frame encoding: appends frames to a byte buffer, checking each kind's payload cap. The
//! layouts are the ones [`crate::frame::decode`] reads.

use crate::frame::{BodyKind, FrameKind, HEADER_LEN, MAX_BODY_CHUNK, MAX_ERROR, MAX_HEAD, SEQ_LEN};
use crate::meta::RequestMeta;
use crate::EncodeError;

/// Appends a frame header and returns the offset where it starts, for [`finish`].
fn begin(out: &mut Vec<u8>, kind: FrameKind) -> usize {
    let start = out.len();
    out.push(kind as u8);
    out.extend_from_slice(&[0; 4]);
    start
}

/// Patches the payload length of the frame begun at `start`, undoing it if over the cap.
fn finish(out: &mut Vec<u8>, start: usize, kind: FrameKind) -> Result<(), EncodeError> {
    let len = out.len() - start - HEADER_LEN;
    if len > kind.max_payload() {
        out.truncate(start);
        return Err(EncodeError::TooLarge {
            kind,
            len,
            max: kind.max_payload(),
        });
    }
    out[start + 1..start + HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends `pairs` as a count followed by length-prefixed names and values.
fn put_pairs<'a, I>(out: &mut Vec<u8>, pairs: I, cap: usize) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let count_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count: u32 = 0;
    for (name, value) in pairs {
        put_bytes(out, name);
        put_bytes(out, value);
        count += 1;
        if out.len() - count_at > cap {
            // Stop early; `finish` reports the overflow.
            break;
        }
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    Ok(())
}

/// Appends a `RequestHead` frame for request number `seq` of its connection: how its body is
/// delimited, its typed fields and its environ (which should not repeat the typed fields'
/// keys, [`crate::meta::KEYS`]: the daemon drops such pairs). Nothing is appended on error.
pub fn encode_request_head<'a, I>(
    out: &mut Vec<u8>,
    seq: u64,
    body: BodyKind,
    meta: &RequestMeta<'_>,
    environ: I,
) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let start = begin(out, FrameKind::RequestHead);
    out.extend_from_slice(&seq.to_le_bytes());
    match body {
        BodyKind::None => out.push(0),
        BodyKind::Length(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
        BodyKind::Chunked => out.push(2),
    }
    if let Err(e) = meta.put(out) {
        out.truncate(start);
        return Err(e);
    }
    put_pairs(out, environ, MAX_HEAD)?;
    finish(out, start, FrameKind::RequestHead)
}

/// Sets the sequence number of the encoded `RequestHead` frame at the front of `frame`, so
/// one encoding can be sent on whichever connection takes it. Returns false (and changes
/// nothing) when `frame` does not start with a `RequestHead`.
pub fn set_request_seq(frame: &mut [u8], seq: u64) -> bool {
    if frame.len() < HEADER_LEN + SEQ_LEN || frame[0] != FrameKind::RequestHead as u8 {
        return false;
    }
    frame[HEADER_LEN..HEADER_LEN + SEQ_LEN].copy_from_slice(&seq.to_le_bytes());
    true
}

/// Appends a `ReadBody` frame asking for up to `max` bytes (at least 1) of request `seq`.
pub fn encode_read_body(out: &mut Vec<u8>, seq: u64, max: u32) {
    let start = begin(out, FrameKind::ReadBody);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&max.max(1).to_le_bytes());
    finish(out, start, FrameKind::ReadBody).expect("fixed size");
}

/// The header of a `Body` frame of `len` bytes, for writing the payload without copying it.
pub fn body_header(len: usize) -> Result<[u8; HEADER_LEN], EncodeError> {
    if len > MAX_BODY_CHUNK {
        return Err(EncodeError::TooLarge {
            kind: FrameKind::Body,
            len,
            max: MAX_BODY_CHUNK,
        });
    }
    let mut h = [FrameKind::Body as u8, 0, 0, 0, 0];
    h[1..].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(h)
}

/// Appends a `Body` frame carrying `data` (at most [`MAX_BODY_CHUNK`] bytes).
pub fn encode_body(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    out.extend_from_slice(&body_header(data.len())?);
    out.extend_from_slice(data);
    Ok(())
}

/// Appends a `BodyFile` frame: `length` bytes (at least 1) from `offset` of the descriptor
/// the caller sends with it.
pub fn encode_body_file(out: &mut Vec<u8>, offset: u64, length: u64) {
    let start = begin(out, FrameKind::BodyFile);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&length.max(1).to_le_bytes());
    finish(out, start, FrameKind::BodyFile).expect("fixed size");
}

/// Appends a `RingSetup` frame (the caller sends the ring's descriptor with it).
pub fn encode_ring_setup(out: &mut Vec<u8>, data_len: u32) {
    let start = begin(out, FrameKind::RingSetup);
    out.extend_from_slice(&data_len.to_le_bytes());
    finish(out, start, FrameKind::RingSetup).expect("fixed size");
}

/// Appends a `BodyRing` frame: `len` bytes at `offset` of the ring's data area.
pub fn encode_body_ring(out: &mut Vec<u8>, offset: u32, len: u32) {
    let start = begin(out, FrameKind::BodyRing);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    finish(out, start, FrameKind::BodyRing).expect("fixed size");
}

/// Appends a `BodyEnd` frame.
pub fn encode_body_end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[FrameKind::BodyEnd as u8, 0, 0, 0, 0]);
}

/// Appends a `ResponseHead` frame answering request `seq`.
pub fn encode_response_head<'a, I>(
    out: &mut Vec<u8>,
    seq: u64,
    status: u16,
    reason: &[u8],
    headers: I,
) -> Result<(), EncodeError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    if !(100..=999).contains(&status) {
        return Err(EncodeError::BadStatus(status));
    }
    let start = begin(out, FrameKind::ResponseHead);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&status.to_le_bytes());
    put_bytes(out, reason);
    put_pairs(out, headers, MAX_HEAD)?;
    finish(out, start, FrameKind::ResponseHead)
}

/// Appends a frame whose payload is just the sequence number `seq`.
fn encode_seq_only(out: &mut Vec<u8>, kind: FrameKind, seq: u64) {
    let start = begin(out, kind);
    out.extend_from_slice(&seq.to_le_bytes());
    finish(out, start, kind).expect("fixed size");
}

/// Appends a frame carrying `seq` and a message, cut short at [`MAX_ERROR`] bytes.
fn encode_message(out: &mut Vec<u8>, kind: FrameKind, seq: u64, message: &[u8]) {
    let msg = &message[..message.len().min(MAX_ERROR)];
    let start = begin(out, kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(msg);
    finish(out, start, kind).expect("message was cut to the cap");
}

/// Appends a `ResponseEnd` frame for request `seq`.
pub fn encode_response_end(out: &mut Vec<u8>, seq: u64) {
    encode_seq_only(out, FrameKind::ResponseEnd, seq);
}

/// Appends a `Retry` frame declining request `seq`.
pub fn encode_retry(out: &mut Vec<u8>, seq: u64) {
    encode_seq_only(out, FrameKind::Retry, seq);
}

/// Appends a `Timeout` frame for request `seq`; a message over [`MAX_ERROR`] bytes is cut.
pub fn encode_timeout(out: &mut Vec<u8>, seq: u64, message: &[u8]) {
    encode_message(out, FrameKind::Timeout, seq, message);
}

/// Appends a `Forbidden` frame for request `seq`; a message over [`MAX_ERROR`] bytes is cut.
pub fn encode_forbidden(out: &mut Vec<u8>, seq: u64, message: &[u8]) {
    encode_message(out, FrameKind::Forbidden, seq, message);
}

/// Appends an `Error` frame for request `seq`; a message over [`MAX_ERROR`] bytes is cut.
pub fn encode_error(out: &mut Vec<u8>, seq: u64, message: &[u8]) {
    encode_message(out, FrameKind::Error, seq, message);
}

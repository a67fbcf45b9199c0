//! A buffered frame reader over any byte stream. Decoding itself stays in [`crate::frame`].

use std::io::{self, Read};

use crate::{check_preamble, decode, peek_header, DecodeError, Frame, FrameKind, HEADER_LEN};

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The underlying stream failed (including timeouts).
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes that are not a valid frame.
    #[error("protocol error: {0}")]
    Decode(#[from] DecodeError),
    /// The peer closed the stream in the middle of a frame.
    #[error("peer closed the connection mid-frame")]
    Truncated,
}

/// What [`FrameReader::read_frame_or_body_into`] read.
#[derive(Debug)]
pub enum FrameOrBody<'a> {
    /// A `Body` frame whose payload, of this many bytes, was appended to the caller's buffer.
    Body(usize),
    /// Any other frame.
    Frame(Frame<'a>),
}

/// Reads whole frames from a stream, holding at most one frame plus one read's worth of bytes.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Payload bytes still to come of a `Body` frame being passed on in pieces.
    body_left: usize,
}

const READ_CHUNK: usize = 64 << 10;
/// The starting size of a buffer given to [`FrameReader::with_buffer`]: enough for the usual
/// head and small body; it grows to [`READ_CHUNK`] when a large body passes through.
const SMALL_CHUNK: usize = 8 << 10;
/// What a buffer given to [`FrameReader::with_buffer`] grows to when a large body passes
/// through in pieces: larger reads mean fewer wakeups and fewer writes downstream.
const BODY_CHUNK: usize = 256 << 10;

impl<R: Read> FrameReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            body_left: 0,
        }
    }

    /// Wraps `inner`, reusing `buf` (from [`into_parts`](Self::into_parts)) as the read
    /// buffer, so a long-lived connection does not allocate one per use. A new (empty)
    /// buffer starts at 8 KiB and grows to 256 KiB once a large body is read in pieces, so
    /// many idle connections that only carried small responses hold little memory.
    pub fn with_buffer(inner: R, mut buf: Vec<u8>) -> Self {
        if buf.len() < SMALL_CHUNK {
            buf.resize(SMALL_CHUNK, 0);
        }
        FrameReader {
            inner,
            buf,
            start: 0,
            end: 0,
            body_left: 0,
        }
    }

    /// The stream and the read buffer; bytes read beyond the last frame are dropped.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        (self.inner, self.buf)
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped stream, mutably (for writing on a duplex socket).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Lets a buffer that grew for a large frame or body go back to its starting size, when
    /// nothing is buffered: a long-lived connection then holds little memory while idle.
    pub fn release_buffer(&mut self) {
        if self.start == self.end && self.body_left == 0 && self.buf.len() > SMALL_CHUNK {
            self.start = 0;
            self.end = 0;
            self.buf = vec![0; SMALL_CHUNK];
        }
    }

    /// True when bytes beyond the last returned frame are already buffered.
    pub fn has_buffered(&self) -> bool {
        self.end > self.start
    }

    /// True when the next [`read_frame_in_pieces`](Self::read_frame_in_pieces) returns
    /// without reading the stream: a whole frame is buffered, or a `Body` frame's header and
    /// some of its payload (returned as a piece), or bytes that cannot start a frame (the
    /// read reports them).
    pub fn frame_ready(&self) -> bool {
        let at_hand = &self.buf[self.start..self.end];
        if self.body_left > 0 {
            return !at_hand.is_empty();
        }
        match peek_header(at_hand) {
            Ok(Some((FrameKind::Body, _))) => at_hand.len() > HEADER_LEN,
            Ok(Some((_, total))) => total <= at_hand.len(),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Reads once more into the free end of the buffer with `read`, which must not block
    /// (a `recv` with `MSG_DONTWAIT`, say) and may answer `WouldBlock`. Returns how many bytes
    /// came: 0 when nothing was waiting, the peer closed, or the buffer is full; the next
    /// read reports a close or an error.
    pub fn read_available(
        &mut self,
        read: impl FnOnce(&mut R, &mut [u8]) -> io::Result<usize>,
    ) -> usize {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return 0;
        }
        let n = read(&mut self.inner, &mut self.buf[self.end..]).unwrap_or(0);
        self.end += n;
        n
    }

    /// True in the middle of a `Body` frame being returned in pieces by
    /// [`read_frame_in_pieces`](Self::read_frame_in_pieces).
    pub fn in_body(&self) -> bool {
        self.body_left > 0
    }

    /// Reads more bytes so that at least `need` are buffered. Returns false on a clean EOF
    /// with nothing buffered.
    fn fill(&mut self, need: usize) -> Result<bool, ReadError> {
        if self.end - self.start >= need {
            return Ok(true);
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Shrink back after an unusually large frame has been consumed.
            if self.buf.len() > 4 * READ_CHUNK {
                self.buf.truncate(READ_CHUNK);
                self.buf.shrink_to_fit();
            }
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if need > self.buf.len() {
                self.buf.resize(need.max(READ_CHUNK), 0);
            }
        }
        while self.end - self.start < need {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) if self.end == self.start => return Ok(false),
                Ok(0) => return Err(ReadError::Truncated),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// Reads and checks the connection preamble. Returns false on a clean EOF before it.
    pub fn read_preamble(&mut self) -> Result<bool, ReadError> {
        if !self.fill(crate::PREAMBLE.len())? {
            return Ok(false);
        }
        let used = check_preamble(&self.buf[self.start..self.end])?.expect("filled");
        self.start += used;
        Ok(true)
    }

    /// Reads exactly `len` raw bytes ahead of the frames (a handshake message) and returns
    /// them. Returns `None` on a clean EOF before any of them.
    pub fn read_bytes(&mut self, len: usize) -> Result<Option<&[u8]>, ReadError> {
        if !self.fill(len)? {
            return Ok(None);
        }
        let at = self.start;
        self.start += len;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Like [`read_frame`](Self::read_frame), except that a `Body` frame that is not
    /// buffered whole comes back as several `Body` frames, each holding the payload bytes at
    /// hand (at most one read's worth). For a relay: large bodies pass through without the
    /// buffer growing to a frame's size and without waiting for the whole frame.
    pub fn read_frame_in_pieces(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.body_left == 0 {
            if !self.fill(HEADER_LEN)? {
                return Ok(None);
            }
            let (kind, total) = peek_header(&self.buf[self.start..self.end])?.expect("filled");
            if kind != FrameKind::Body || total <= self.end - self.start {
                return self.read_frame();
            }
            self.start += HEADER_LEN;
            self.body_left = total - HEADER_LEN;
            if self.body_left > self.buf.len() && self.buf.len() < BODY_CHUNK {
                self.buf.resize(BODY_CHUNK, 0);
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(0) => return Err(ReadError::Truncated),
                    Ok(n) => {
                        self.end = n;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let n = (self.end - self.start).min(self.body_left);
        let at = self.start;
        self.start += n;
        self.body_left -= n;
        Ok(Some(Frame::Body(&self.buf[at..at + n])))
    }

    /// Like [`read_frame`](Self::read_frame), except that a `Body` frame's payload is
    /// appended to `out`, the part not buffered yet read from the stream straight into `out`'s
    /// spare capacity: a large body costs no copy through this reader's buffer, and the
    /// buffer does not grow to the frame's size.
    pub fn read_frame_or_body_into(
        &mut self,
        out: &mut Vec<u8>,
    ) -> Result<Option<FrameOrBody<'_>>, ReadError> {
        if !self.fill(HEADER_LEN)? {
            return Ok(None);
        }
        let (kind, total) = peek_header(&self.buf[self.start..self.end])?.expect("filled");
        if kind != FrameKind::Body {
            return Ok(self.read_frame()?.map(FrameOrBody::Frame));
        }
        self.start += HEADER_LEN;
        let payload = total - HEADER_LEN;
        let buffered = (self.end - self.start).min(payload);
        out.reserve(payload);
        out.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        let left = payload - buffered;
        if left > 0 {
            // Nothing is buffered now: the rest comes straight from the stream.
            let got = (&mut self.inner).take(left as u64).read_to_end(out)?;
            if got < left {
                return Err(ReadError::Truncated);
            }
        }
        Ok(Some(FrameOrBody::Body(payload)))
    }

    /// Reads the next frame. `Ok(None)` means the peer closed the stream between frames.
    pub fn read_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if !self.fill(HEADER_LEN)? {
            return Ok(None);
        }
        let (_, total) = peek_header(&self.buf[self.start..self.end])?.expect("filled");
        if !self.fill(total)? {
            return Err(ReadError::Truncated);
        }
        let at = self.start;
        self.start += total;
        let (frame, _) = decode(&self.buf[at..at + total])?.expect("whole frame");
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_body, encode_response_end};

    /// Hands out `wire` a few bytes per `read`, as a socket might.
    struct Trickle<'a> {
        wire: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.wire.len());
            buf[..n].copy_from_slice(&self.wire[..n]);
            self.wire = &self.wire[n..];
            Ok(n)
        }
    }

    #[test]
    fn body_payloads_go_into_the_callers_buffer_whole_and_other_frames_come_back() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        encode_body(&mut wire, &big).unwrap();
        encode_body(&mut wire, b"").unwrap();
        encode_body(&mut wire, b"tail").unwrap();
        encode_response_end(&mut wire, 7);
        for step in [1, 5, 4096, 1 << 20] {
            let mut r = FrameReader::with_buffer(Trickle { wire: &wire, step }, Vec::new());
            let mut out = b"kept".to_vec();
            for want in [big.len(), 0, 4] {
                match r.read_frame_or_body_into(&mut out).unwrap() {
                    Some(FrameOrBody::Body(n)) => assert_eq!(n, want, "step {step}"),
                    other => panic!("step {step}: {other:?}"),
                }
            }
            assert_eq!(&out[..4], b"kept");
            assert_eq!(&out[4..4 + big.len()], &big[..], "step {step}");
            assert_eq!(&out[4 + big.len()..], b"tail");
            assert!(
                r.buf.len() <= READ_CHUNK,
                "the reader's buffer stayed small"
            );
            assert!(matches!(
                r.read_frame_or_body_into(&mut out),
                Ok(Some(FrameOrBody::Frame(Frame::ResponseEnd { seq: 7 })))
            ));
            assert!(matches!(r.read_frame_or_body_into(&mut out), Ok(None)));
        }
        // A body cut short by the peer is an error, not a short body.
        let cut = &wire[..HEADER_LEN + 1000];
        let mut r = FrameReader::with_buffer(
            Trickle {
                wire: cut,
                step: 64,
            },
            Vec::new(),
        );
        let mut out = Vec::new();
        assert!(matches!(
            r.read_frame_or_body_into(&mut out),
            Err(ReadError::Truncated)
        ));
    }

    #[test]
    fn frame_ready_tells_whether_a_read_needs_the_stream() {
        let mut wire = Vec::new();
        encode_body(&mut wire, b"hello").unwrap();
        encode_response_end(&mut wire, 1);
        let body_len = HEADER_LEN + 5;
        // Fed a few bytes at a time by `read_available`, from an empty stream.
        let mut r = FrameReader::with_buffer(io::empty(), Vec::new());
        assert!(!r.frame_ready());
        let mut fed = 0;
        let mut feed = |r: &mut FrameReader<io::Empty>, n: usize| {
            let part = wire[fed..fed + n].to_vec();
            fed += n;
            r.read_available(|_, buf| {
                buf[..part.len()].copy_from_slice(&part);
                Ok(part.len())
            })
        };
        assert_eq!(feed(&mut r, HEADER_LEN - 1), HEADER_LEN - 1);
        assert!(!r.frame_ready(), "half a header");
        feed(&mut r, 1);
        assert!(
            !r.frame_ready(),
            "a body header without payload would block"
        );
        feed(&mut r, 2);
        assert!(r.frame_ready(), "part of a body comes back as a piece");
        assert!(matches!(
            r.read_frame_in_pieces(),
            Ok(Some(Frame::Body(b"he")))
        ));
        assert!(!r.frame_ready(), "mid-body with nothing at hand");
        feed(&mut r, body_len - HEADER_LEN - 2 + 3);
        let rest = wire.len() - body_len - 3;
        assert!(matches!(
            r.read_frame_in_pieces(),
            Ok(Some(Frame::Body(b"llo")))
        ));
        assert!(!r.frame_ready(), "three bytes of a ResponseEnd");
        feed(&mut r, rest);
        assert!(r.frame_ready());
        assert!(matches!(
            r.read_frame_in_pieces(),
            Ok(Some(Frame::ResponseEnd { seq: 1 }))
        ));
        // Nothing waiting: no bytes, nothing buffered.
        let n = r.read_available(|_, _| Err(io::ErrorKind::WouldBlock.into()));
        assert_eq!((n, r.has_buffered()), (0, false));
        // Bytes that cannot start a frame are ready: the read reports them.
        r.read_available(|_, buf| {
            buf[..HEADER_LEN].copy_from_slice(&[0xff; HEADER_LEN]);
            Ok(HEADER_LEN)
        });
        assert!(r.frame_ready());
        assert!(r.read_frame_in_pieces().is_err());
    }
}

//! The properties the frame fuzz targets check, shared (by `#[path]`) between the targets in
//! `fuzz/fuzz_targets/` and the corpus replay in `tests/fuzz_corpus.rs`, so a corpus file is
//! held to exactly what the fuzzer held it to.
//!
//! Only the protocol's stable surface is used: `decode`, `peek_header`, `check_preamble`,
//! `Frame::kind` and the `FrameReader` read calls (with `read_bytes`, which reads the
//! handshake); frames other than `Body` are compared by
//! their `Debug` text, so the checks do not depend on the fields each frame carries.

use std::io::{self, Read};

use rswsgi_protocol::auth::{CHALLENGE_LEN, PROOF_LEN};
use rswsgi_protocol::{
    check_preamble, decode, peek_header, DecodeError, Frame, FrameKind, FrameReader, ReadError,
    HEADER_LEN, MAX_BODY_CHUNK, MAX_ERROR, MAX_HEAD, PREAMBLE,
};

use super::alloc;

/// The largest payload any frame kind may carry.
const MAX_PAYLOAD: usize = max(max(MAX_HEAD, MAX_BODY_CHUNK), MAX_ERROR);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// `decode` (and `peek_header`, `check_preamble`) on arbitrary bytes: a decoded frame used
/// exactly the length its header declares, within its kind's cap; decoding depends only on
/// the frame's own bytes (the same frame and error with the bytes after it cut off); any
/// shorter prefix is incomplete; a `Body` payload is the bytes after the header.
pub fn check_decode(data: &[u8]) {
    check_preamble_bytes(data);
    let header = peek_header(data);
    match decode(data) {
        Ok(Some((frame, used))) => {
            let Ok(Some((kind, total))) = header else {
                panic!("decoded a frame but the header was {header:?}");
            };
            assert_eq!(frame.kind(), kind);
            assert_eq!(used, total);
            assert!(used >= HEADER_LEN && used <= data.len());
            assert!(used - HEADER_LEN <= kind.max_payload());
            assert!(kind.max_payload() <= MAX_PAYLOAD);
            assert_eq!(
                u32::from_le_bytes(data[1..5].try_into().unwrap()) as usize + 5,
                used
            );
            if let Frame::Body(p) = frame {
                assert_eq!(p, &data[HEADER_LEN..used]);
            }
            let again = decode(&data[..used]).expect("same bytes decode again");
            let (f2, used2) = again.expect("whole frame");
            assert_eq!(used2, used);
            assert_eq!(format!("{f2:?}"), format!("{frame:?}"));
            for cut in [used - 1, HEADER_LEN.min(used) - 1, used / 2] {
                assert!(
                    matches!(decode(&data[..cut]), Ok(None)),
                    "a {cut}-byte prefix of a {used}-byte frame is not incomplete"
                );
            }
        }
        Ok(None) => match header {
            Ok(None) => assert!(data.len() < HEADER_LEN),
            Ok(Some((_, total))) => assert!(total > data.len()),
            Err(e) => panic!("decode said incomplete, peek_header said {e:?}"),
        },
        Err(e) => {
            if let Err(h) = &header {
                assert_eq!(h, &e, "a header error is decode's error");
            } else {
                let (_, total) = header.unwrap().expect("a complete header");
                assert!(
                    total <= data.len(),
                    "an error before the frame was complete"
                );
                assert_eq!(decode(&data[..total]).err(), Some(e));
            }
        }
    }
}

fn check_preamble_bytes(data: &[u8]) {
    match check_preamble(data) {
        Ok(None) => assert!(data.len() < PREAMBLE.len()),
        Ok(Some(n)) => {
            assert_eq!(n, PREAMBLE.len());
            assert_eq!(&data[..n], &PREAMBLE[..]);
        }
        Err(DecodeError::BadPreamble { found }) => {
            assert!(data.len() >= PREAMBLE.len() && data[..8] != PREAMBLE[..]);
            if data[..6] == PREAMBLE[..6] {
                assert_eq!(found, u16::from_be_bytes([data[6], data[7]]));
            } else {
                assert_eq!(found, 0);
            }
        }
        Err(e) => panic!("check_preamble failed with {e:?}"),
    }
}

/// A stream that hands out `data` in chunks whose sizes come from `sizes` (cycled): a size
/// byte of 0 is one `EINTR` (which the reader must retry; never two in a row, so a stream
/// always makes progress), 1..=0xEF that many bytes, and 0xF0.. 256 << (byte - 0xF0) bytes.
pub struct Splits<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
    interrupted: bool,
}

impl Read for Splits<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        let want = match self.sizes.get(self.next % self.sizes.len().max(1)) {
            None => usize::MAX,
            Some(0) if !self.interrupted => {
                self.next += 1;
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            Some(0) => usize::MAX,
            Some(&s @ 1..=0xEF) => s as usize,
            Some(&s) => 256 << (s - 0xF0),
        };
        self.next += 1;
        self.interrupted = false;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// One frame as decoding the whole buffer saw it.
enum Want<'a> {
    Body(&'a [u8]),
    Other(FrameKind, String),
}

/// How decoding the whole buffer ended.
#[derive(Debug)]
enum End<'a> {
    /// At a frame boundary: the peer closed cleanly.
    Clean,
    /// In the middle of a frame; for a `Body` frame, the payload bytes that did arrive.
    Truncated(Option<&'a [u8]>),
    /// A frame that does not decode.
    Decode(DecodeError),
}

/// Decodes `stream` whole: the preamble if asked for, then `handshake` raw bytes if asked
/// for (returned first), then frames to the end.
fn whole(
    stream: &[u8],
    preamble: bool,
    handshake: Option<usize>,
) -> (Option<&[u8]>, Vec<Want<'_>>, End<'_>) {
    let mut pos = 0;
    if preamble {
        match check_preamble(stream) {
            Ok(Some(n)) => pos = n,
            Ok(None) if stream.is_empty() => return (None, Vec::new(), End::Clean),
            Ok(None) => return (None, Vec::new(), End::Truncated(None)),
            Err(e) => return (None, Vec::new(), End::Decode(e)),
        }
    }
    let mut raw = None;
    if let Some(len) = handshake {
        match stream.get(pos..pos + len) {
            Some(b) => raw = Some(b),
            None if pos == stream.len() => return (None, Vec::new(), End::Clean),
            None => return (None, Vec::new(), End::Truncated(None)),
        }
        pos += len;
    }
    let (frames, end) = frames_from(&stream[pos..]);
    (raw, frames, end)
}

fn frames_from(stream: &[u8]) -> (Vec<Want<'_>>, End<'_>) {
    let mut pos = 0;
    let mut frames = Vec::new();
    loop {
        let rest = &stream[pos..];
        match decode(rest) {
            Ok(Some((f, n))) => {
                frames.push(match f {
                    Frame::Body(p) => Want::Body(p),
                    other => Want::Other(other.kind(), format!("{other:?}")),
                });
                pos += n;
            }
            Ok(None) if rest.is_empty() => return (frames, End::Clean),
            Ok(None) => {
                let partial = match peek_header(rest) {
                    Ok(Some((FrameKind::Body, _))) => Some(&rest[HEADER_LEN..]),
                    _ => None,
                };
                return (frames, End::Truncated(partial));
            }
            Err(e) => return (frames, End::Decode(e)),
        }
    }
}

/// The largest single allocation a reader may make: its buffer grows to hold the largest
/// frame, and `Vec` growth may double a capacity once on the way.
const ALLOC_BOUND: usize = 2 * (HEADER_LEN + MAX_PAYLOAD);

/// `FrameReader` fed `data`'s stream in arbitrary read splits yields what decoding the whole
/// buffer yields: the same frames (kind and `Debug` text; payload bytes for `Body`), then
/// the same end (clean EOF, truncated, or the same `DecodeError`). In pieces mode a `Body`
/// frame may come as several non-empty pieces that concatenate to its payload, and a
/// truncated body's arrived bytes all come out before the error. No single allocation is
/// over [`ALLOC_BOUND`].
///
/// Input layout: `flags, n, n size bytes (see Splits), stream…`; flags bit 0 =
/// `with_buffer` (else `new`), bit 1 = `read_frame_in_pieces`, bit 2 = read the preamble
/// first, bits 3-4 = the length of the buffer given to `with_buffer`, bit 5 = then read a
/// handshake message with `read_bytes` (bit 6: a proof's length, else a challenge's).
pub fn check_stream(data: &[u8]) {
    let [flags, n, rest @ ..] = data else {
        return;
    };
    let n = (*n as usize).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let pieces = flags & 2 != 0;
    let preamble = flags & 4 != 0;
    let handshake = (flags & 0x20 != 0).then_some(if flags & 0x40 != 0 {
        PROOF_LEN
    } else {
        CHALLENGE_LEN
    });
    let (raw, want, end) = whole(stream, preamble, handshake);
    let split = Splits {
        data: stream,
        sizes,
        next: 0,
        interrupted: false,
    };
    let given = vec![0u8; [0, 100, 8 << 10, 70 << 10][(flags >> 3 & 3) as usize]];
    alloc::reset();
    alloc::tracking(true);
    let mut reader = if flags & 1 != 0 {
        FrameReader::with_buffer(split, given)
    } else {
        FrameReader::new(split)
    };
    alloc::tracking(false);
    let mut want = want.into_iter().peekable();
    let mut got: Vec<u8> = Vec::new(); // pieces so far of the current Body frame
    if preamble {
        alloc::tracking(true);
        let r = reader.read_preamble();
        alloc::tracking(false);
        match r {
            Ok(true) => {}
            Ok(false) => return assert!(matches!(end, End::Clean) && want.peek().is_none()),
            Err(e) => return finish(e, &end, want.peek().is_some(), pieces, &got),
        }
    }
    if let Some(len) = handshake {
        alloc::tracking(true);
        let r = reader.read_bytes(len).map(|b| b.map(<[u8]>::to_vec));
        alloc::tracking(false);
        match r {
            Ok(Some(b)) => assert_eq!(Some(&b[..]), raw, "the handshake bytes"),
            Ok(None) => return assert!(matches!(end, End::Clean) && want.peek().is_none()),
            Err(e) => return finish(e, &end, want.peek().is_some(), pieces, &got),
        }
    }
    loop {
        alloc::tracking(true);
        let r = if pieces {
            reader.read_frame_in_pieces()
        } else {
            reader.read_frame()
        };
        alloc::tracking(false);
        let frame = match r {
            Ok(Some(f)) => f,
            Ok(None) => {
                assert!(got.is_empty(), "clean EOF in the middle of a body");
                assert!(want.peek().is_none(), "clean EOF before every frame came");
                assert!(
                    matches!(end, End::Clean),
                    "clean EOF, but whole decoding: {end:?}"
                );
                break;
            }
            Err(e) => {
                finish(e, &end, want.peek().is_some(), pieces, &got);
                break;
            }
        };
        match (want.peek(), frame) {
            (Some(Want::Body(b)), Frame::Body(p)) => {
                if !pieces {
                    assert_eq!(p.len(), b.len(), "read_frame gave part of a body");
                } else if !b.is_empty() {
                    assert!(!p.is_empty(), "an empty piece of a non-empty body");
                }
                got.extend_from_slice(p);
                assert!(b.starts_with(&got), "body pieces are not the body");
                if got.len() == b.len() {
                    got.clear();
                    want.next();
                }
            }
            (None, Frame::Body(p)) if pieces => {
                // Pieces of the truncated body at the end.
                let Some(partial) = (match &end {
                    End::Truncated(p) => *p,
                    _ => None,
                }) else {
                    panic!("a body piece after the last frame, end {end:?}");
                };
                assert!(!p.is_empty());
                got.extend_from_slice(p);
                assert!(
                    partial.starts_with(&got),
                    "pieces of the truncated body differ"
                );
            }
            (Some(Want::Other(kind, text)), f) if got.is_empty() => {
                assert_eq!(f.kind(), *kind);
                assert_eq!(&format!("{f:?}"), text);
                want.next();
            }
            (w, f) => panic!(
                "reader gave a {:?} frame; whole decoding expected {}",
                f.kind(),
                match w {
                    Some(Want::Body(b)) =>
                        format!("a {}-byte body ({} so far)", b.len(), got.len()),
                    Some(Want::Other(k, _)) => format!("{k:?}"),
                    None => format!("the end ({end:?})"),
                }
            ),
        }
    }
    let peak = alloc::peak();
    assert!(peak <= ALLOC_BOUND, "a {peak}-byte allocation");
}

/// Checks the error a reader stopped with against how whole decoding ended.
fn finish(e: ReadError, end: &End<'_>, frames_left: bool, pieces: bool, got: &[u8]) {
    assert!(!frames_left, "reader stopped early with {e:?}");
    match (e, end) {
        (ReadError::Truncated, End::Truncated(partial)) => {
            let arrived = if pieces {
                partial.unwrap_or_default()
            } else {
                &[]
            };
            assert_eq!(got, arrived, "a truncated body's bytes");
        }
        (ReadError::Decode(e), End::Decode(want)) => {
            assert!(got.is_empty());
            assert_eq!(&e, want);
        }
        (e, end) => panic!("reader failed with {e:?}, whole decoding ended {end:?}"),
    }
}

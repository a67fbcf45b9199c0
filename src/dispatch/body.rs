//! Answering the daemon's `ReadBody` frames from the client's request body.

use std::io::{self, IoSlice, Write};

use rswsgi_protocol::{body_header, encode_body_end, encode_error, MAX_BODY_CHUNK};

use crate::httpd::body::{BodyError, BodyReader};
use crate::httpd::request::Request;

/// Request body bytes read from the client per `ReadBody` answer, at most.
const BODY_READ: usize = 256 << 10;
const _: () = assert!(BODY_READ <= MAX_BODY_CHUNK);

/// The request body, relayed to the daemon one `ReadBody` at a time: memory stays bounded by
/// one read, whatever the body's size.
pub struct BodyPump {
    reader: BodyReader,
    buf: Vec<u8>,
}

impl BodyPump {
    /// A pump for `r`'s body; nothing is read yet.
    pub fn new(r: &Request) -> Self {
        BodyPump {
            reader: BodyReader::new(r),
            buf: Vec::new(),
        }
    }

    /// Reads up to `max` bytes from the client and writes the answering frame to `wire`:
    /// `Body`, `BodyEnd`, or (when the read failed) `Error`. The first read answers
    /// `Expect: 100-continue`. A failed client read is returned as `Ok(Err(..))` (the daemon
    /// has been told, if it still listens); a failed write to the daemon as `Err`.
    pub fn answer(
        &mut self,
        r: &mut Request,
        seq: u64,
        max: u32,
        wire: &mut impl Write,
    ) -> io::Result<Result<(), BodyError>> {
        let want = (max as usize).clamp(1, BODY_READ);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let mut frame = Vec::new();
        let (data, failed) = match self.reader.read(r, &mut self.buf[..want]) {
            Ok(Some(n)) => {
                let header = body_header(n).expect("BODY_READ is under the frame cap");
                frame.extend_from_slice(&header);
                (&self.buf[..n], None)
            }
            Ok(None) => {
                encode_body_end(&mut frame);
                (&[][..], None)
            }
            Err(e) => {
                encode_error(&mut frame, seq, e.reason.as_bytes());
                (&[][..], Some(e))
            }
        };
        let written = write_both(wire, &frame, data);
        match failed {
            // The client's failure decides the answer, whether or not the daemon heard of it.
            Some(e) => Ok(Err(e)),
            None => written.map(Ok),
        }
    }
}

/// Writes `a` then `b`, in one `writev` when the socket takes them whole.
fn write_both(wire: &mut impl Write, a: &[u8], b: &[u8]) -> io::Result<()> {
    let total = a.len() + b.len();
    let mut done = 0;
    while done < total {
        let n = if done < a.len() {
            wire.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])
        } else {
            wire.write(&b[done - a.len()..])
        };
        match n {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

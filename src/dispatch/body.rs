//! Answering the daemon's `ReadBody` frames from the client's request body.

use rswsgi_protocol::{encode_body, encode_body_end, encode_error, MAX_BODY_CHUNK};

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

    /// Reads up to `max` bytes from the client and appends the answering frame to `out`:
    /// `Body`, `BodyEnd`, or (when the read failed) `Error`, in which case the failure is
    /// returned too. The first read answers `Expect: 100-continue`.
    pub fn answer(
        &mut self,
        r: &mut Request,
        max: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), BodyError> {
        let want = (max as usize).clamp(1, BODY_READ);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        match self.reader.read(r, &mut self.buf[..want]) {
            Ok(Some(n)) => {
                encode_body(out, &self.buf[..n]).expect("BODY_READ is under the frame cap");
                Ok(())
            }
            Ok(None) => {
                encode_body_end(out);
                Ok(())
            }
            Err(e) => {
                encode_error(out, e.reason.as_bytes());
                Err(e)
            }
        }
    }
}

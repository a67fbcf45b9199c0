//! The typed fields of a `RequestHead`: the facts about a request that the module decides and
//! the daemon acts on (which script, which callable, the request's id and start time, its
//! application group). They travel as fields of their own rather than as environ strings, so
//! the daemon never parses them out of text; it gives the application the environ keys they
//! stand for ([`RequestMeta::environ`]), which the module does not send as pairs.
//!
//! On the wire, after the body kind: the request start (`u64`, little endian), then the script,
//! the callable, the request id and the application group, each a `u32` length (little
//! endian, at most [`MAX_HEAD`]) and that many bytes.

use crate::frame::{read_u32, read_u64, MAX_HEAD};
use crate::{DecodeError, EncodeError};

/// `SCRIPT_FILENAME`: the script the request names (Apache's `r->filename`).
pub const SCRIPT_FILENAME: &str = "SCRIPT_FILENAME";
/// `mod_wsgi.callable_object`: the callable's name (empty: the group's default).
pub const CALLABLE_OBJECT: &str = "mod_wsgi.callable_object";
/// `mod_wsgi.request_id`: Apache's log id for the request (`%L`).
pub const REQUEST_ID: &str = "mod_wsgi.request_id";
/// `mod_wsgi.application_group`: the application group, `%{...}` expanded.
pub const APPLICATION_GROUP: &str = "mod_wsgi.application_group";

/// The environ keys that stand for the typed fields, in the order [`RequestMeta::environ`]
/// gives them. An environ pair of one of these names is not the request's: the daemon drops
/// it, so the typed field is the only source.
pub const KEYS: [&str; 5] = [
    SCRIPT_FILENAME,
    APPLICATION_GROUP,
    CALLABLE_OBJECT,
    REQUEST_ID,
    crate::carriers::REQUEST_START_US,
];

/// The typed fields of a request head, borrowed from the frame (decoding) or the caller
/// (encoding).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestMeta<'a> {
    /// The script file (`SCRIPT_FILENAME`), as path bytes; empty when the request names none.
    pub script: &'a [u8],
    /// The callable's name (`mod_wsgi.callable_object`); empty: the group's default.
    pub callable: &'a [u8],
    /// Apache's log id for the request (`mod_wsgi.request_id`).
    pub request_id: &'a [u8],
    /// When Apache read the request, in microseconds since the epoch; 0 when not known.
    pub request_start: u64,
    /// The application group (`mod_wsgi.application_group`).
    pub application_group: &'a [u8],
}

impl std::fmt::Debug for RequestMeta<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RequestMeta");
        for (name, b) in self.fields() {
            d.field(name, &b.escape_ascii().to_string());
        }
        d.field("request start", &self.request_start).finish()
    }
}

impl<'a> RequestMeta<'a> {
    /// The byte-string fields with their names, in wire order.
    fn fields(&self) -> [(&'static str, &'a [u8]); 4] {
        [
            ("script", self.script),
            ("callable", self.callable),
            ("request id", self.request_id),
            ("application group", self.application_group),
        ]
    }

    /// The environ pairs the fields stand for, named by [`KEYS`] and in that order;
    /// `start_text` is the caller's buffer for the request start, which is given as decimal
    /// microseconds (the `mod_wsgi.x-request_start_us` carrier, as the module sent it before
    /// it was typed).
    pub fn environ(&self, start_text: &'a mut String) -> [(&'static str, &'a [u8]); 5] {
        *start_text = self.request_start.to_string();
        [
            (SCRIPT_FILENAME, self.script),
            (APPLICATION_GROUP, self.application_group),
            (CALLABLE_OBJECT, self.callable),
            (REQUEST_ID, self.request_id),
            (crate::carriers::REQUEST_START_US, start_text.as_bytes()),
        ]
    }

    /// True when `name` is one of [`KEYS`].
    pub fn is_key(name: &[u8]) -> bool {
        KEYS.iter().any(|k| k.as_bytes() == name)
    }

    /// Appends the fields in wire order; refuses a field over [`MAX_HEAD`] bytes before
    /// copying it.
    pub(crate) fn put(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if let Some((field, b)) = self.fields().into_iter().find(|(_, b)| b.len() > MAX_HEAD) {
            return Err(EncodeError::FieldTooLarge {
                field,
                len: b.len(),
                max: MAX_HEAD,
            });
        }
        out.extend_from_slice(&self.request_start.to_le_bytes());
        for (_, b) in self.fields() {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        Ok(())
    }

    /// Reads the fields from the front of `buf`, returning them and the bytes they took.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let request_start = read_u64(buf, 0)?;
        let mut pos = 8;
        let mut field = |name: &'static str| -> Result<&'a [u8], DecodeError> {
            let len = read_u32(buf, pos)? as usize;
            if len > MAX_HEAD {
                return Err(DecodeError::FieldTooLarge {
                    field: name,
                    len,
                    max: MAX_HEAD,
                });
            }
            let start = pos + 4;
            let b = buf.get(start..start + len).ok_or(DecodeError::Truncated)?;
            pos = start + len;
            Ok(b)
        };
        let meta = RequestMeta {
            script: field("script")?,
            callable: field("callable")?,
            request_id: field("request id")?,
            application_group: field("application group")?,
            request_start,
        };
        Ok((meta, pos))
    }
}

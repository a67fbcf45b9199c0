//! The two sides an exchange runs between, as traits: the daemon connection
//! ([`DaemonLink`]) and the client's request and response ([`Downstream`]). The module
//! implements them on a UNIX socket and Apache's request (`dispatch::exchange`); the tests
//! implement them in memory.

use std::io::{self, IoSlice, Write};
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rswsgi_protocol::{Frame, ReadError};
use tracing::Level;

/// What ended a wait for the daemon's next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The daemon connection has something to read (or was closed).
    Daemon,
    /// The client connection failed (reset, or closed in both directions). A client that only
    /// half-closes (sends FIN) is not taken as gone: it may still read the response.
    ClientGone,
    /// Nothing happened within the daemon's timeout.
    TimedOut,
}

/// The connection to the daemon that serves the request.
pub trait DaemonLink {
    /// Writes `parts`, in order and whole.
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()>;
    /// Waits until a frame can be read (one already read into the buffer counts), the client
    /// goes away, or the daemon's timeout passes.
    fn wait(&mut self) -> Wait;
    /// Whether the next frame (or a piece of a body frame) can be read without waiting;
    /// may read what has already arrived. Not asked before the first frame (a failed read
    /// here would hide the error the retry rule looks at).
    fn frame_ready(&mut self) -> bool;
    /// Reads the next frame; `Ok(None)` when the connection ended between frames.
    fn read_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError>;
    /// The oldest file descriptor that came with the frames read so far and was not taken.
    fn take_fd(&mut self) -> Option<OwnedFd>;
    /// Whether bytes past the last frame were read (the connection cannot serve another
    /// request then).
    fn has_buffered(&self) -> bool;
    /// Takes `fd`, which came with a `RingSetup` frame, as this connection's response ring
    /// of `data_len` bytes; an error says what is wrong with it.
    fn attach_ring(&mut self, fd: OwnedFd, data_len: u32) -> Result<(), String>;
    /// The `len` bytes at `offset` of the ring's data area; an error when there is no ring
    /// or the slice is outside it.
    fn ring_bytes(&self, offset: u32, len: u32) -> Result<SharedBytes<'_>, String>;
    /// Gives the next `len` bytes of the ring back to the daemon (slices are released in the
    /// order they came). Nothing happens without a ring.
    fn release_ring(&mut self, len: u32);
    /// The pid of the daemon process on the other end, for log lines; `None` when unknown.
    fn peer_pid(&self) -> Option<i32> {
        None
    }
}

/// Bytes in memory another process may write at any time (a daemon connection's response
/// ring): passed on by address, never borrowed as a Rust slice.
#[derive(Debug, Clone, Copy)]
pub struct SharedBytes<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _mapping: PhantomData<&'a [u8]>,
}

impl<'a> From<&'a [u8]> for SharedBytes<'a> {
    /// Bytes of our own: a borrowed slice stays mapped while it is borrowed.
    fn from(data: &'a [u8]) -> Self {
        let ptr = NonNull::from(data).cast::<u8>();
        // SAFETY: `data` is readable for `'a`, the value's lifetime.
        unsafe { SharedBytes::new(ptr, data.len()) }
    }
}

impl SharedBytes<'_> {
    /// The `len` bytes at `ptr`.
    ///
    /// # Safety
    /// They must stay mapped and readable for the lifetime of the value.
    pub unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        SharedBytes {
            ptr,
            len,
            _mapping: PhantomData,
        }
    }

    /// Where they start.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of the bytes as they are now.
    #[cfg(test)]
    pub fn to_vec(self) -> Vec<u8> {
        let mut copy = vec![0; self.len];
        // SAFETY: `new`'s contract keeps the bytes mapped and readable; the copy goes into a
        // buffer of our own, and another process writing them meanwhile changes only what is
        // copied (bytes the module never interprets).
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(), copy.as_mut_ptr(), self.len) };
        copy
    }
}

/// A response header the application sent, as the downstream sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header<'a> {
    /// `Content-Type`.
    ContentType(&'a [u8]),
    /// `Content-Length`, already checked to be a number that fits an `i64`.
    ContentLength(u64),
    /// Any other header (hop-by-hop and `Status` headers never get here).
    Other(&'a [u8], &'a [u8]),
}

/// Passing the response on failed: the client went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientGone;

/// Reading the request body from the client failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyReadError {
    /// The HTTP status the failure maps to (413 past `LimitRequestBody`, 408 on a timeout,
    /// 400 for a malformed or truncated body).
    pub status: u16,
    /// What went wrong.
    pub reason: String,
}

/// The client's side: its request body, and the response passed on to it.
pub trait Downstream {
    /// Whether only the head goes to the client, whatever the response says (HEAD).
    fn header_only(&self) -> bool;
    /// Sets the response status and, unless empty, its reason phrase.
    fn set_status(&mut self, status: u16, reason: &[u8]);
    /// Adds a response header.
    fn add_header(&mut self, header: Header<'_>);
    /// Forgets the headers added so far (the application's head was refused).
    fn discard_head(&mut self);
    /// The head is complete and the body begins.
    fn response_begins(&mut self);
    /// Passes `data` on to the client and flushes it.
    fn write(&mut self, data: &[u8]) -> Result<(), ClientGone>;
    /// Like [`write`](Self::write), for bytes in shared memory: when it returns, they have
    /// been written out or copied, so the daemon may reuse the memory.
    fn write_shared(&mut self, data: SharedBytes<'_>) -> Result<(), ClientGone>;
    /// Passes `len` bytes from `offset` of the file `fd` on; `sealed`: the file cannot shrink.
    fn send_file(
        &mut self,
        fd: OwnedFd,
        offset: u64,
        len: u64,
        sealed: bool,
    ) -> Result<(), ClientGone>;
    /// Appends up to `max` bytes (at least 1) of the request body to `buf`, and returns how
    /// many; `Ok(None)` at its end.
    fn read_body(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Option<usize>, BodyReadError>;
    /// Ends a response whose body began: the client sees an aborted connection, never a
    /// clean end.
    fn abort(&mut self);
    /// The client went away: nothing more is sent to it, and its connection is closed.
    fn drop_client(&mut self);
    /// Writes a line about this request to the log.
    fn log(&mut self, level: Level, message: &str);
    /// The exchange failed with `error`, answered as `disposition` (for the statistics).
    fn failed(&mut self, error: &super::RelayError, disposition: super::Disposition) {
        let _ = (error, disposition);
    }
}

/// What a descriptor from the daemon is, as the module checks it before using it: its size
/// when it is a regular file, and its seals (none when it is not a memfd).
pub fn regular_file(fd: &OwnedFd) -> Result<(u64, nix::fcntl::SealFlag), String> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::stat::{fstat, SFlag};
    let st = fstat(fd).map_err(|e| format!("fstat failed: {e}"))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err("not a regular file".into());
    }
    let seals =
        fcntl(fd, FcntlArg::F_GET_SEALS).map_or(SealFlag::empty(), SealFlag::from_bits_truncate);
    Ok((st.st_size as u64, seals))
}

/// Writes `parts` in order, in one `writev` when the socket takes them whole.
pub fn write_parts(wire: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let (mut part, mut at) = (0, 0);
    while part < parts.len() {
        if at == parts[part].len() {
            (part, at) = (part + 1, 0);
            continue;
        }
        let mut slices = [IoSlice::new(&[]); 4];
        let rest = &parts[part..];
        let n_slices = rest.len().min(slices.len());
        slices[0] = IoSlice::new(&rest[0][at..]);
        for (slot, p) in slices[1..n_slices].iter_mut().zip(&rest[1..]) {
            *slot = IoSlice::new(p);
        }
        let mut n = match wire.write_vectored(&slices[..n_slices]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let left = parts[part].len() - at;
            if n < left {
                at += n;
                n = 0;
            } else {
                n -= left;
                (part, at) = (part + 1, 0);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_parts;
    use std::io::{self, Write};

    /// A writer that takes at most `step` bytes per call.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_part_goes_out_whole_and_in_order_however_the_writes_split() {
        let parts: [&[u8]; 6] = [b"head", b"", b"body", b"x", b"yz", b"last part"];
        let whole: Vec<u8> = parts.concat();
        for step in 1..=whole.len() {
            let mut w = Trickle {
                got: Vec::new(),
                step,
            };
            write_parts(&mut w, &parts).unwrap();
            assert_eq!(w.got, whole, "step {step}");
        }
    }
}

//! Sending a small response block without waiting, so a handler can call it with the GIL
//! held: most writes to the module's socket complete at once, and handing the GIL to another
//! thread and back for each block of a streamed response costs more than the write. Only what
//! the socket does not take at once is waited for, with the GIL released
//! ([`RequestIo::flush`]). Every block still reaches the socket before the application is
//! asked for the next one (PEP 3333).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};

use super::{Conn, Head, IoError, RequestIo, COALESCE};
use crate::fork;

/// What [`RequestIo::send_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentNow {
    /// The block (and the head, if any) went out whole.
    All,
    /// It is queued, partly sent: call [`RequestIo::flush`] (with the GIL released).
    Queued,
    /// Nothing was done: the block is too large to queue, or the connection is busy; send
    /// it the usual way.
    NotTried,
}

impl Conn {
    fn send_now(&mut self, head: Option<&Head>, data: &[u8], end: bool) -> Result<bool, IoError> {
        self.queue(head, data, end)?;
        self.flush_now()
    }

    /// Sends what the socket takes of the queued bytes; true when none are left.
    fn flush_now(&mut self) -> Result<bool, IoError> {
        fork::exit_if_forked();
        let fd = self.reader.get_ref().as_raw_fd();
        while !self.wbuf.is_empty() {
            match send(
                fd,
                &self.wbuf,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(false),
                Err(e) => {
                    self.wbuf.clear();
                    self.state.broken = true;
                    return Err(IoError::Write(e.into()));
                }
            }
        }
        Ok(true)
    }
}

impl RequestIo {
    /// Like [`send`](Self::send) (or [`finish`](Self::finish) when `end`), without waiting:
    /// safe to call with the GIL held. A block over 16 KiB, or a connection another thread
    /// is using, is left to the usual way ([`SentNow::NotTried`]).
    pub fn send_now(
        &self,
        head: Option<&Head>,
        data: &[u8],
        end: bool,
    ) -> Result<SentNow, IoError> {
        let max = super::RESPONSE_BUFFER_SIZE
            .load(Ordering::Relaxed)
            .min(COALESCE);
        if data.len() > max {
            return Ok(SentNow::NotTried);
        }
        Ok(match self.locked(false, |c| c.send_now(head, data, end))? {
            Some(true) => SentNow::All,
            Some(false) => SentNow::Queued,
            None => SentNow::NotTried,
        })
    }

    /// Sends the bytes [`send_now`](Self::send_now) queued, waiting as long as it takes.
    pub fn flush(&self) -> Result<(), IoError> {
        self.with(|c| c.flush(&[]))
    }
}

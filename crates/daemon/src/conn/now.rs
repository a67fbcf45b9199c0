//! Sending a small response block without waiting, so a handler can call it with the GIL
//! held: most writes to the module's socket complete at once, and handing the GIL to another
//! thread and back for each block of a streamed response costs more than the write. Only what
//! the socket does not take at once is waited for, with the GIL released
//! ([`RequestIo::flush`]). A response that goes on streaming small blocks is handed to the
//! write-behind thread (`conn/behind.rs`), which writes while the application makes its next
//! block; either way no block waits for the next one (PEP 3333).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::socket::{send, MsgFlags};

use super::{behind, Conn, Head, IoError, RequestIo, COALESCE};
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

/// What [`Conn::send_now`] did with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Now {
    /// Written, or buffered for the write the flusher has in flight.
    Sent,
    /// Buffered with the socket full (or the flusher's buffer at its bound): wait.
    Pending,
    /// Buffered, and the connection is now the flusher's: queue it there.
    HandOff,
}

impl Conn {
    fn send_now(&mut self, head: Option<&Head>, data: &[u8], end: bool) -> Result<Now, IoError> {
        self.queue(head, data, end)?;
        let now = std::time::Instant::now();
        let fast = self
            .state
            .last_block
            .replace(now)
            .is_some_and(|at| now - at < behind::FAST_BLOCK);
        if self.behind {
            return Ok(match self.wbuf.len() > behind::BEHIND_LIMIT {
                true => Now::Pending,
                false => Now::Sent,
            });
        }
        self.state.blocks += 1;
        if !end && fast && self.state.blocks > behind::HAND_OFF_AFTER && behind::available() {
            self.behind = true;
            return Ok(Now::HandOff);
        }
        Ok(match self.flush_now()? {
            true => Now::Sent,
            false => Now::Pending,
        })
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
            Some(Now::Sent) => SentNow::All,
            Some(Now::Pending) => SentNow::Queued,
            Some(Now::HandOff) => {
                self.shared.behind.store(true, Ordering::Release);
                behind::hand_off(std::sync::Arc::clone(&self.shared));
                SentNow::All
            }
            None => SentNow::NotTried,
        })
    }

    /// Sends the bytes [`send_now`](Self::send_now) queued, waiting as long as it takes.
    pub fn flush(&self) -> Result<(), IoError> {
        self.with(|c| c.flush(&[]))
    }
}

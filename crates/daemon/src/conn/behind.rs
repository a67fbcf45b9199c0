//! Write-behind for streamed responses. Once a response has sent [`HAND_OFF_AFTER`] small
//! blocks, and its application makes the next one within [`FAST_BLOCK`] of the last,
//! its connection is handed to the process's flusher thread, which writes the
//! connection's buffer while the application makes its next block. Blocks that arrive while a
//! write is in flight join the buffer and leave together in the next write: one system call
//! (and one wake-up of Apache) for many blocks, where each block used to cost its own.
//!
//! No block is held back: the flusher writes whatever is buffered as soon as its previous
//! write returns, whatever the application does meanwhile. This is PEP 3333's second way to
//! not delay a block: "guarantee that they will continue transmission even while the
//! application is producing its next block".
//!
//! While a connection is handed off (`Conn::behind`) only the flusher writes to its socket.
//! A worker appends small blocks to the buffer; anything else that writes (a large block, a
//! file, an error, the end of the request) first waits until the flusher has drained it
//! ([`Shared::wait_drained`](super::Shared)). A socket that takes only part of the buffer
//! (Apache is behind its client) is waited for with `EPOLLOUT`, so one slow connection never
//! delays another. Buffered bytes are bounded: past [`BEHIND_LIMIT`] the worker waits for the
//! drain, as a blocking write would.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{send, MsgFlags};
use parking_lot::{Mutex, MutexGuard};

use super::{Conn, Shared};
use crate::fork;

/// Blocks of a response a worker writes itself before handing the connection off: a
/// response of one or two blocks never pays for the hand-off.
pub(super) const HAND_OFF_AFTER: u32 = 2;
/// A block made within this time of the previous one's write is handed off: the application
/// streams faster than one system call per block is worth. Slower blocks are written by the
/// worker itself, which then learns at once when the client has gone.
pub(super) const FAST_BLOCK: std::time::Duration = std::time::Duration::from_micros(100);
/// Bytes a handed-off connection may buffer before the worker waits for the flusher.
pub(super) const BEHIND_LIMIT: usize = 256 << 10;

/// A write buffer grown past this while handed off is given back once drained, so idle
/// connections (and the flusher) keep no stream's worth of memory.
const KEEP_BUFFER: usize = 64 << 10;

/// Gives back the memory of a write buffer grown past [`KEEP_BUFFER`]; call it empty.
pub(super) fn trim(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER {
        *buf = Vec::with_capacity(4096);
    }
}

/// The epoll data of the flusher's wake-up eventfd (connections use their descriptor).
const WAKE: u64 = u64::MAX;

/// The process's flusher: connections waiting to be written, and how to wake it.
struct Flusher {
    queue: Mutex<Vec<Arc<Shared>>>,
    wake: EventFd,
    /// The flusher is about to wait (or waits) in `epoll_wait`: a hand-off must wake it.
    sleeping: AtomicBool,
}

static FLUSHER: OnceLock<Option<&'static Flusher>> = OnceLock::new();

/// True when the flusher thread runs (it is started on first use). Without it (no thread or
/// epoll set could be made) workers write every block themselves, as before.
pub(super) fn available() -> bool {
    FLUSHER.get_or_init(start).is_some()
}

/// Queues `shared`, whose `behind` flag the caller has just set, for the flusher.
pub(super) fn hand_off(shared: Arc<Shared>) {
    let Some(Some(flusher)) = FLUSHER.get() else {
        // Unreachable: `available` said yes before the flag was set.
        shared.release(shared.conn.lock(), None);
        return;
    };
    flusher.queue.lock().push(shared);
    if flusher.sleeping.load(Ordering::SeqCst) {
        let _ = flusher.wake.write(1);
    }
}

fn start() -> Option<&'static Flusher> {
    let made = (|| -> std::io::Result<(Epoll, EventFd)> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        Ok((epoll, wake))
    })();
    let (epoll, wake) = match made {
        Ok(parts) => parts,
        Err(e) => {
            tracing::debug!("no write-behind thread ({e}); workers write every block");
            return None;
        }
    };
    fork::register(epoll.0.as_raw_fd());
    fork::register(wake.as_fd().as_raw_fd());
    let flusher: &'static Flusher = Box::leak(Box::new(Flusher {
        queue: Mutex::new(Vec::new()),
        wake,
        sleeping: AtomicBool::new(false),
    }));
    match std::thread::Builder::new()
        .name("flusher".into())
        .spawn(move || run(flusher, epoll))
    {
        Ok(_) => Some(flusher),
        Err(e) => {
            tracing::debug!("no write-behind thread ({e}); workers write every block");
            None
        }
    }
}

/// The flusher's loop: drains queued connections, and those whose socket became writable.
fn run(flusher: &'static Flusher, epoll: Epoll) {
    let mut work: Vec<Arc<Shared>> = Vec::new();
    let mut stalled: HashMap<RawFd, Arc<Shared>> = HashMap::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = [EpollEvent::empty(); 16];
    loop {
        std::mem::swap(&mut work, &mut *flusher.queue.lock());
        let idle = work.is_empty();
        if idle {
            flusher.sleeping.store(true, Ordering::SeqCst);
            if !flusher.queue.lock().is_empty() {
                flusher.sleeping.store(false, Ordering::SeqCst);
                continue;
            }
        }
        if idle || !stalled.is_empty() {
            let timeout = if idle {
                EpollTimeout::NONE
            } else {
                EpollTimeout::ZERO
            };
            let ready = epoll.wait(&mut events, timeout).unwrap_or_else(|e| {
                if e != Errno::EINTR {
                    tracing::debug!("write-behind: epoll_wait: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                0
            });
            flusher.sleeping.store(false, Ordering::SeqCst);
            for event in &events[..ready] {
                if event.data() == WAKE {
                    let _ = flusher.wake.read();
                } else if let Some(shared) = stalled.remove(&(event.data() as RawFd)) {
                    let _ = epoll.delete(borrow(&shared));
                    work.push(shared);
                }
            }
        }
        for shared in work.drain(..) {
            if drain(&shared, &mut buf) == Drained::Stalled {
                let fd = shared.fd();
                let event =
                    EpollEvent::new(EpollFlags::EPOLLOUT | EpollFlags::EPOLLONESHOT, fd as u64);
                match epoll.add(borrow(&shared), event) {
                    Ok(()) => {
                        stalled.insert(fd, shared);
                    }
                    Err(e) => {
                        tracing::debug!("write-behind: cannot wait on a connection: {e}");
                        shared.release(shared.conn.lock(), Some(e));
                    }
                }
            }
        }
    }
}

fn borrow(shared: &Shared) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `shared`'s connection, which lives as long as
    // `shared` (the flusher holds an `Arc` on it while it uses the descriptor).
    unsafe { BorrowedFd::borrow_raw(shared.fd()) }
}

#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// Everything buffered went out (or the connection broke): the worker owns it again.
    Done,
    /// The socket took only part: wait for it to become writable.
    Stalled,
}

/// Writes `shared`'s buffer until it stays empty; the connection lock is held only to swap
/// buffers, so the worker appends while a write is in flight.
fn drain(shared: &Shared, buf: &mut Vec<u8>) -> Drained {
    let fd = shared.fd();
    loop {
        {
            let mut conn = shared.conn.lock();
            if conn.wbuf.is_empty() || conn.state.broken {
                shared.release(conn, None);
                trim(buf);
                return Drained::Done;
            }
            std::mem::swap(&mut conn.wbuf, buf);
        }
        let mut sent = 0;
        while sent < buf.len() {
            match send(
                fd,
                &buf[sent..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    sent += n;
                    shared.writes_behind.fetch_add(1, Ordering::Relaxed);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    // The unsent rest goes back in front of what was appended meanwhile.
                    let mut conn = shared.conn.lock();
                    buf.drain(..sent);
                    buf.extend_from_slice(&conn.wbuf);
                    std::mem::swap(&mut conn.wbuf, buf);
                    buf.clear();
                    return Drained::Stalled;
                }
                Err(e) => {
                    buf.clear();
                    trim(buf);
                    shared.release(shared.conn.lock(), Some(e));
                    return Drained::Done;
                }
            }
        }
        buf.clear();
    }
}

impl Shared {
    /// Waits until the flusher has handed the connection back (see `conn/behind.rs`).
    pub(super) fn wait_drained(&self, conn: &mut MutexGuard<'_, Conn>) {
        while conn.behind {
            self.drained.wait(conn);
        }
    }

    /// The flusher hands the connection back to its worker: after `error` (the socket failed:
    /// the connection is broken), or with anything still buffered written now.
    pub(super) fn release(&self, mut conn: MutexGuard<'_, Conn>, error: Option<Errno>) {
        conn.behind = false;
        self.behind.store(false, Ordering::Release);
        match error {
            Some(e) => {
                tracing::debug!("write-behind: the connection broke: {e}");
                conn.wbuf.clear();
                conn.state.broken = true;
            }
            None if !conn.wbuf.is_empty() && !conn.state.broken => {
                let _ = conn.flush(&[]);
            }
            None => {}
        }
        drop(conn);
        self.drained.notify_all();
    }
}

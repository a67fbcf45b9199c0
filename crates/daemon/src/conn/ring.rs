//! The daemon's side of a connection's response ring (`rswsgi_protocol::ring`): large body
//! blocks are copied into shared memory the module has mapped and named by `BodyRing`
//! frames, instead of being written through the socket and read out of it again.
//!
//! The ring is made on the connection's first large block and sent once (`RingSetup`, with
//! the memfd). A block goes in where the module has released room; when there is none for
//! [`ROOM_WAIT`] (a slow client holds the module's writes up), the rest of the block goes
//! through the socket as before, so the ring never makes a response wait longer than that.
//!
//! A ring whose connection has been idle for [`IDLE_TRIM`], with every slice released, gives
//! its pages back (`MADV_REMOVE`, which punches them out of the memfd for both processes), so
//! idle connections hold no ring memory; the next large block faults fresh pages in.

use rswsgi_protocol::Code;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use rswsgi_protocol as proto;
use rswsgi_protocol::ring::WAITING_AT;
use rswsgi_protocol::ring::{RELEASED_AT, RING_DATA, RING_HEADER, RING_MIN_BLOCK, RING_SLICE};

use super::{Conn, IoError};

/// How long a block waits for the module to release room before it goes through the socket.
pub const ROOM_WAIT: Duration = Duration::from_millis(200);
/// How long a ring is unused before its pages are given back.
pub const IDLE_TRIM: Duration = Duration::from_secs(2);

const RING_FILE: usize = RING_HEADER + RING_DATA;
// Positions are a wrapping u32 count modulo the data size: that needs a power of two.
const _: () = assert!(RING_DATA.is_power_of_two());

/// What a connection has of a ring.
#[derive(Default)]
pub enum RingState {
    /// None made yet.
    #[default]
    Untried,
    /// Made and sent to the module.
    Ready(Ring),
    /// Making it failed once (logged): this connection uses the socket only.
    Unavailable,
}

impl Conn {
    /// Puts `data` in the response ring, one `BodyRing` frame per slice, when it is large
    /// enough; returns what is left for the socket (all of a small block, or of any block on
    /// a connection without a ring; the tail of one that found no room).
    pub(super) fn put_in_ring<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], IoError> {
        if data.len() < RING_MIN_BLOCK || !self.ring_ready()? {
            return Ok(data);
        }
        let mut rest = data;
        while let RingState::Ready(ring) = &mut self.ring {
            let Some((offset, len)) = ring.put(rest) else {
                break;
            };
            proto::encode_body_ring(&mut self.wbuf, offset, len);
            self.flush(&[])?;
            rest = &rest[len as usize..];
            if rest.is_empty() {
                break;
            }
        }
        Ok(rest)
    }

    /// Makes the ring and sends it (`RingSetup`, after what is pending) the first time;
    /// whether the connection has one.
    fn ring_ready(&mut self) -> Result<bool, IoError> {
        if let RingState::Untried = self.ring {
            self.ring = match Ring::create() {
                Ok((ring, fd)) => {
                    proto::encode_ring_setup(&mut self.wbuf, RING_DATA as u32);
                    self.flush_with_fd(fd.as_fd())?;
                    RingState::Ready(ring)
                }
                Err(e) => {
                    let why = "large response blocks go through the socket";
                    tracing::warn!(
                        "{}: no response ring for a connection ({e}): {why}",
                        Code::NoResponseRing
                    );
                    RingState::Unavailable
                }
            };
        }
        Ok(matches!(self.ring, RingState::Ready(_)))
    }
}

/// A mapped response ring.
pub struct Ring {
    /// The whole file, mapped read-write.
    map: NonNull<u8>,
    /// Bytes put in so far (wrapping).
    written: u32,
    /// When a block last went in.
    last_used: Instant,
    /// The pages were given back since then.
    trimmed: bool,
}

// SAFETY: the mapping belongs to this value alone in this process; the connection (and its
// ring) moves between worker threads under the connection's mutex.
unsafe impl Send for Ring {}

impl Ring {
    /// Makes a ring: the mapping, and the memfd to send the module.
    pub fn create() -> nix::Result<(Ring, OwnedFd)> {
        let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
        let fd = memfd_create("rswsgi-ring", flags)?;
        nix::unistd::ftruncate(&fd, RING_FILE as i64)?;
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
        let len = NonZeroUsize::new(RING_FILE).expect("not empty");
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a fresh shared mapping of our own new memfd, sealed at its size, at no fixed
        // address: it aliases nothing.
        let map = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, &fd, 0)? };
        let ring = Ring {
            map: map.cast(),
            written: 0,
            last_used: Instant::now(),
            trimmed: false,
        };
        Ok((ring, fd))
    }

    /// Copies as much of `data` as fits in one slice (at most [`RING_SLICE`] bytes, up to
    /// the end of the data area) into released room, waiting up to [`ROOM_WAIT`] for it;
    /// returns the slice's offset and length, or `None` when no room came.
    pub fn put(&mut self, data: &[u8]) -> Option<(u32, u32)> {
        let at = self.written as usize % RING_DATA;
        let n = data.len().min(RING_SLICE).min(RING_DATA - at);
        if n == 0 || !self.wait_for_room(n) {
            return None;
        }
        // SAFETY: `at + n` is inside the data area of our mapping, and the module has
        // released those bytes (it reads only slices named after this copy).
        unsafe {
            let dst = self.map.add(RING_HEADER + at).as_ptr();
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, n);
        }
        self.written = self.written.wrapping_add(n as u32);
        (self.last_used, self.trimmed) = (Instant::now(), false);
        Some((at as u32, n as u32))
    }

    /// Gives the data area's pages back when no block went in for `idle` and the module has
    /// released every slice (so it reads none of them); true when it did.
    pub fn trim_if_idle(&mut self, idle: Duration) -> bool {
        let released = self.word(RELEASED_AT).load(Ordering::SeqCst);
        if self.trimmed || self.last_used.elapsed() < idle || released != self.written {
            return false;
        }
        // SAFETY: the data area of our own mapping; nothing reads or writes it now (the
        // caller holds the connection, and the module has released every slice), and a
        // removed page reads back as zeros, never faults.
        let removed = unsafe {
            let data = self.map.add(RING_HEADER).cast();
            nix::sys::mman::madvise(data, RING_DATA, nix::sys::mman::MmapAdvise::MADV_REMOVE)
        };
        self.trimmed = removed.is_ok();
        self.trimmed
    }

    /// Waits until `n` bytes are free; false after [`ROOM_WAIT`], or when the module's count
    /// makes no sense.
    fn wait_for_room(&self, n: usize) -> bool {
        let (released, waiting) = (self.word(RELEASED_AT), self.word(WAITING_AT));
        let room = |rel: u32| RING_DATA.checked_sub(self.written.wrapping_sub(rel) as usize);
        let deadline = Instant::now() + ROOM_WAIT;
        loop {
            match room(released.load(Ordering::SeqCst)) {
                None => return false,
                Some(free) if free >= n => return true,
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            waiting.store(1, Ordering::SeqCst);
            // Looked at again once `waiting` is visible, so a release in between is not
            // slept through.
            let rel = released.load(Ordering::SeqCst);
            if room(rel).is_some_and(|free| free < n) {
                futex_wait(released, rel, left);
            }
            waiting.store(0, Ordering::SeqCst);
        }
    }

    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is one of the header's word offsets (4-aligned, inside the mapping),
        // which lives as long as `self`; both processes touch the words only atomically.
        unsafe { &*self.map.add(at).cast::<AtomicU32>().as_ptr() }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: mapped by `create` with this length; the borrows of `word` end with `self`.
        let _ = unsafe { munmap(self.map.cast(), RING_FILE) };
    }
}

/// Sleeps while `word` holds `expected`, at most `timeout` (a futex shared between
/// processes: the module wakes it after a release).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: FUTEX_WAIT reads the live, aligned u32 at the address and sleeps at most `ts`;
    // nix has no futex call. A spurious or early return only makes the caller look again.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(ring: &Ring, n: u32) {
        let word = ring.word(RELEASED_AT);
        word.store(
            word.load(Ordering::SeqCst).wrapping_add(n),
            Ordering::SeqCst,
        );
    }

    #[test]
    fn slices_follow_each_other_wrap_at_the_end_and_wait_for_released_room() {
        let (mut ring, _fd) = Ring::create().unwrap();
        let block = vec![7u8; RING_DATA];
        let slice = RING_SLICE as u32 - 1;
        let mut offsets = Vec::new();
        while let Some(put) = ring.put(&block[..slice as usize]) {
            offsets.push(put);
            assert!(offsets.len() <= 8, "{offsets:?}");
        }
        // k slices one byte short of RING_SLICE, then the k bytes left up to the end of the
        // area; the next one, from its start, finds no room within ROOM_WAIT.
        let k = (RING_DATA / RING_SLICE) as u32;
        let mut expected: Vec<_> = (0..k).map(|i| (i * slice, slice)).collect();
        expected.push((k * slice, k));
        assert_eq!(offsets, expected);
        release(&ring, 10);
        assert_eq!(
            ring.put(&block[..20]),
            None,
            "a slice waits for room for all of it"
        );
        assert_eq!(ring.put(&block[..10]), Some((0, 10)));
    }

    #[test]
    fn an_idle_ring_gives_its_pages_back_once_every_slice_is_released() {
        let (mut ring, fd) = Ring::create().unwrap();
        let blocks = || nix::sys::stat::fstat(&fd).unwrap().st_blocks * 512;
        let block = vec![3u8; RING_SLICE];
        ring.put(&block).unwrap();
        assert!(blocks() >= RING_SLICE as i64);
        assert!(
            !ring.trim_if_idle(Duration::ZERO),
            "a slice is not released yet"
        );
        release(&ring, RING_SLICE as u32);
        assert!(!ring.trim_if_idle(Duration::from_secs(60)), "used just now");
        assert!(ring.trim_if_idle(Duration::ZERO));
        assert!(
            blocks() < RING_SLICE as i64,
            "{} bytes still held",
            blocks()
        );
        assert!(!ring.trim_if_idle(Duration::ZERO), "once is enough");
        // It works as before afterwards.
        assert_eq!(
            ring.put(&block),
            Some((RING_SLICE as u32, RING_SLICE as u32))
        );
    }

    #[test]
    fn a_waiting_block_goes_in_as_soon_as_the_module_releases() {
        let (mut ring, _fd) = Ring::create().unwrap();
        let block = vec![1u8; RING_SLICE];
        for _ in 0..RING_DATA / RING_SLICE {
            assert!(ring.put(&block).is_some());
        }
        let header = ring.map.as_ptr() as usize;
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: the header words of the ring's mapping, which outlives this thread
            // (joined below); touched only atomically, as the module does.
            let word = unsafe { &*((header + RELEASED_AT) as *const AtomicU32) };
            word.store(RING_SLICE as u32, Ordering::SeqCst);
            // SAFETY: as above.
            let waiting = unsafe { &*((header + WAITING_AT) as *const AtomicU32) };
            if waiting.load(Ordering::SeqCst) != 0 {
                // SAFETY: FUTEX_WAKE only reads the live, aligned word.
                unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
            }
        });
        let start = Instant::now();
        assert_eq!(ring.put(&block), Some((0, RING_SLICE as u32)));
        assert!(start.elapsed() < ROOM_WAIT, "woken, not timed out");
        releaser.join().unwrap();
    }
}

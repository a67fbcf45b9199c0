//! The module's side of a daemon connection's response ring (`rswsgi_protocol::ring`): the
//! memfd checked and mapped, slices handed out by address, and released back to the daemon.
//!
//! Nothing the daemon says is trusted beyond the checks here: the file must be a memfd sealed
//! against shrinking and growing, of exactly the ring's size, so the mappings can never fault;
//! the data area is mapped read-only; slices are bounds-checked. The daemon can still change
//! the bytes at any time, which only changes what it answers (as it could over the socket).

use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::fcntl::SealFlag;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use rswsgi_protocol::ring::{slice_in_bounds, RELEASED_AT, RING_DATA, RING_HEADER, WAITING_AT};

use crate::relay::io::{regular_file, SharedBytes};

/// A mapped response ring.
pub struct Ring {
    /// The header page, mapped read-write (the `released` and `waiting` words).
    header: NonNull<u8>,
    /// The data area, mapped read-only.
    data: NonNull<u8>,
    /// Bytes released so far (wrapping), as last stored in the header.
    released: u32,
}

// SAFETY: the mappings belong to this value alone (nothing else in this process refers to
// them), and the header words are only touched through atomics; a pooled connection moves
// between Apache's threads with its ring.
unsafe impl Send for Ring {}

impl Ring {
    /// Checks `fd` (from a `RingSetup` frame announcing `data_len` bytes) and maps it.
    pub fn attach(fd: OwnedFd, data_len: u32) -> Result<Ring, String> {
        if data_len as usize != RING_DATA {
            return Err(format!(
                "a data area of {data_len} bytes announced (the ring holds {RING_DATA})"
            ));
        }
        let (size, seals) = regular_file(&fd)?;
        let expected = RING_HEADER + RING_DATA;
        if size != expected as u64 {
            return Err(format!("{size} bytes, not {expected}"));
        }
        if !seals.contains(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW) {
            return Err("not sealed against shrinking and growing (a sealed memfd)".into());
        }
        let header = map(
            &fd,
            RING_HEADER,
            0,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        )?;
        let data = match map(&fd, RING_DATA, RING_HEADER, ProtFlags::PROT_READ) {
            Ok(data) => data,
            Err(e) => {
                // SAFETY: mapped just above with this length, and not handed out.
                let _ = unsafe { munmap(header.cast(), RING_HEADER) };
                return Err(e);
            }
        };
        let ring = Ring {
            header,
            data,
            released: 0,
        };
        ring.word(RELEASED_AT).store(0, Ordering::SeqCst);
        Ok(ring)
    }

    /// The `len` bytes at `offset` of the data area.
    pub fn bytes(&self, offset: u32, len: u32) -> Result<SharedBytes<'_>, String> {
        if !slice_in_bounds(offset, len) {
            return Err(format!("{len} bytes at {offset}, outside the ring"));
        }
        // SAFETY: in bounds of the data mapping (checked above), which lives as long as
        // `self`; the seals keep the file from shrinking under it.
        Ok(unsafe {
            let ptr = self.data.add(offset as usize);
            SharedBytes::new(ptr, len as usize)
        })
    }

    /// Gives the next `len` bytes back to the daemon, waking it if it waits for room.
    pub fn release(&mut self, len: u32) {
        self.released = self.released.wrapping_add(len);
        let released = self.word(RELEASED_AT);
        released.store(self.released, Ordering::SeqCst);
        if self.word(WAITING_AT).load(Ordering::SeqCst) != 0 {
            wake(released);
        }
    }

    fn word(&self, at: usize) -> &AtomicU32 {
        // SAFETY: `at` is one of the header's word offsets (4-aligned, inside the mapped
        // page); the page lives as long as `self`; both processes touch it only atomically.
        unsafe { &*self.header.add(at).cast::<AtomicU32>().as_ptr() }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: both were mapped by `attach` with these lengths; the borrows of
        // `bytes` and `word` end with `self`.
        unsafe {
            let _ = munmap(self.header.cast(), RING_HEADER);
            let _ = munmap(self.data.cast(), RING_DATA);
        }
    }
}

fn map(fd: &OwnedFd, len: usize, offset: usize, prot: ProtFlags) -> Result<NonNull<u8>, String> {
    let length = NonZeroUsize::new(len).expect("ring parts are not empty");
    // SAFETY: a fresh shared mapping of a file checked above, at no fixed address: it
    // aliases no memory of ours.
    let ptr = unsafe { mmap(None, length, prot, MapFlags::MAP_SHARED, fd, offset as i64) };
    ptr.map(NonNull::cast)
        .map_err(|e| format!("mmap failed: {e}"))
}

/// Wakes a daemon thread waiting on `word` (a futex shared between processes).
fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only reads the address, which is a live, aligned u32; nix has no
    // futex call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::Write;

    fn memfd(size: usize, seals: SealFlag) -> OwnedFd {
        let fd = memfd_create("ring-test", MFdFlags::MFD_ALLOW_SEALING).unwrap();
        nix::unistd::ftruncate(&fd, size as i64).unwrap();
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).unwrap();
        fd
    }

    fn sealed() -> SealFlag {
        SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL
    }

    #[test]
    fn only_a_sealed_memfd_of_the_ring_size_is_mapped() {
        let size = RING_HEADER + RING_DATA;
        let err = |fd, len| Ring::attach(fd, len).err().unwrap_or_default();
        assert!(err(memfd(size, sealed()), 4096).contains("announced"));
        assert!(err(memfd(size - 1, sealed()), RING_DATA as u32).contains("bytes, not"));
        let grow_only = SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        assert!(err(memfd(size, grow_only), RING_DATA as u32).contains("not sealed"));
        let mut file = tempfile_in_tmp(size);
        file.flush().unwrap();
        assert!(err(file.into(), RING_DATA as u32).contains("sealed"));
        assert!(Ring::attach(memfd(size, sealed()), RING_DATA as u32).is_ok());
    }

    fn tempfile_in_tmp(size: usize) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("ring-test-{}", std::process::id()));
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        file.set_len(size as u64).unwrap();
        file
    }

    #[test]
    fn slices_are_read_where_the_daemon_wrote_and_releases_reach_the_header() {
        use std::os::unix::fs::FileExt;
        let fd = memfd(RING_HEADER + RING_DATA, sealed());
        let file = std::fs::File::from(fd.try_clone().unwrap());
        let mut ring = Ring::attach(fd, RING_DATA as u32).unwrap();
        let at = RING_DATA as u32 - 5;
        file.write_all_at(b"hello", RING_HEADER as u64 + u64::from(at))
            .unwrap();
        assert_eq!(ring.bytes(at, 5).unwrap().to_vec(), b"hello");
        assert!(ring.bytes(at, 6).is_err());
        assert!(ring.bytes(0, 0).is_err());
        ring.release(u32::MAX);
        ring.release(7);
        let mut word = [0; 4];
        file.read_exact_at(&mut word, RELEASED_AT as u64).unwrap();
        assert_eq!(
            u32::from_le_bytes(word),
            6,
            "wrapping count of released bytes"
        );
    }
}

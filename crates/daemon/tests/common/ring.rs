//! The test client's side of descriptor passing and the response ring: a daemon connection
//! read with `recvmsg` (keeping the descriptors `RingSetup` and `BodyFile` frames bring), and
//! a ring read and released through its memfd, as the module does through its mapping.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use rswsgi_protocol::ring::{RELEASED_AT, RING_HEADER};

/// A daemon connection whose reads keep the descriptors that come with the bytes.
pub struct FdStream {
    pub stream: UnixStream,
    fds: VecDeque<OwnedFd>,
}

impl FdStream {
    pub fn new(stream: UnixStream) -> Self {
        FdStream {
            stream,
            fds: VecDeque::new(),
        }
    }

    /// The oldest descriptor received and not yet taken.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }
}

impl Read for FdStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let fd = self.stream.as_raw_fd();
        let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(io::Error::from)?;
        for cmsg in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel installed this descriptor for this message; we own it.
                    self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Ok(msg.bytes)
    }
}

impl Write for FdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response ring, read and released through its memfd.
pub struct Ring {
    file: File,
    released: u32,
}

impl Ring {
    pub fn new(fd: OwnedFd) -> Self {
        Ring {
            file: File::from(fd),
            released: 0,
        }
    }

    /// The `len` bytes at `offset` of the data area, then released to the daemon.
    pub fn take(&mut self, offset: u32, len: u32) -> Vec<u8> {
        let mut data = vec![0; len as usize];
        let at = (RING_HEADER + offset as usize) as u64;
        self.file.read_exact_at(&mut data, at).expect("ring slice");
        self.released = self.released.wrapping_add(len);
        // The daemon reads the word atomically from its mapping; a file write lands in the
        // same page. No wake: a daemon waiting for room looks again within its wait.
        let word = self.released.to_le_bytes();
        self.file
            .write_all_at(&word, RELEASED_AT as u64)
            .expect("release");
        data
    }
}

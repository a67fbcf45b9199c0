//! Reading a daemon connection with `recvmsg`, keeping the file descriptors that arrive with
//! the bytes (`SCM_RIGHTS`), for `BodyFile` frames.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Most descriptors one `recvmsg` accepts; the daemon sends one per `BodyFile` frame.
const MAX_FDS: usize = 4;

/// A daemon connection read with `recvmsg`; descriptors that come with the bytes queue up in
/// arrival order. The daemon sends each with the write that carries its `BodyFile` frame (the
/// kernel delivers it with that write's first bytes), one descriptor per frame, in order: by
/// the time a frame is decoded its descriptor is the oldest in the queue.
pub struct FdStream<'a> {
    stream: &'a UnixStream,
    fds: VecDeque<OwnedFd>,
}

impl<'a> FdStream<'a> {
    /// Reads from `stream`.
    pub fn new(stream: &'a UnixStream) -> Self {
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

impl Read for FdStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf, MsgFlags::empty())
    }
}

impl FdStream<'_> {
    /// Reads what has arrived without waiting: `WouldBlock` when nothing has.
    pub fn read_nonblocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf, MsgFlags::MSG_DONTWAIT)
    }

    fn recv(&mut self, buf: &mut [u8], flags: MsgFlags) -> io::Result<usize> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let msg = recvmsg::<()>(
            self.stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | flags,
        )
        .map_err(io::Error::from)?;
        for cmsg in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel has just installed this descriptor in our table for
                    // this message; nothing else refers to it, so we own it.
                    self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(io::Error::other(
                "a file descriptor from the daemon was dropped (too many sent at once, or the process is out of descriptors)",
            ));
        }
        Ok(msg.bytes)
    }
}

//! The relay's [`DaemonLink`] on a pooled daemon connection: frames read with `recvmsg`
//! (keeping the descriptors `BodyFile` frames bring), writes with `writev`, and waits that
//! watch the client connection too.

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rswsgi_protocol::{Frame, FrameReader, ReadError};

use super::fdpass::FdStream;
use super::wait;
use crate::relay::io::{write_parts, DaemonLink, SharedBytes, Wait};
use crate::ring::Ring;

/// One exchange's use of a daemon connection.
pub struct SocketLink<'a> {
    stream: &'a UnixStream,
    reader: FrameReader<FdStream<'a>>,
    /// The client connection's socket, watched while waiting (`None`: not its own, HTTP/2).
    client: Option<RawFd>,
    /// How long to wait for the daemon.
    timeout: Duration,
    /// The connection's response ring (kept with the pooled connection).
    ring: &'a mut Option<Ring>,
    /// Whether the socket's peer credentials name the daemon serving this connection.
    peer_pid_known: bool,
}

impl<'a> SocketLink<'a> {
    /// Reads `stream` into `buf` (a pooled connection's buffer, given back by
    /// [`SocketLink::into_buffer`]); waits up to `timeout`, watching `client`; `ring` is the
    /// connection's response ring, if it has one yet.
    pub fn new(
        stream: &'a UnixStream,
        buf: Vec<u8>,
        ring: &'a mut Option<Ring>,
        client: Option<RawFd>,
        timeout: Duration,
    ) -> Self {
        SocketLink {
            stream,
            reader: FrameReader::with_buffer(FdStream::new(stream), buf),
            client,
            timeout,
            ring,
            peer_pid_known: false,
        }
    }

    /// Lets failure lines name the daemon's pid from the peer credentials: true only when
    /// they are the serving daemon's (a group of one process, see `Endpoint::single_process`).
    pub fn peer_pid_known(mut self, known: bool) -> Self {
        self.peer_pid_known = known;
        self
    }

    /// The read buffer, to keep with the connection.
    pub fn into_buffer(self) -> Vec<u8> {
        self.reader.into_parts().1
    }
}

impl DaemonLink for SocketLink<'_> {
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        write_parts(&mut self.stream, parts)
    }

    fn wait(&mut self) -> Wait {
        if self.reader.has_buffered() {
            return Wait::Daemon;
        }
        wait::daemon_or_client(self.stream, self.client, self.timeout)
    }

    fn frame_ready(&mut self) -> bool {
        self.reader.frame_ready() || {
            self.reader.read_available(FdStream::read_nonblocking);
            self.reader.frame_ready()
        }
    }

    fn read_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        self.reader.read_frame_in_pieces()
    }

    fn take_fd(&mut self) -> Option<OwnedFd> {
        self.reader.get_mut().take_fd()
    }

    fn has_buffered(&self) -> bool {
        self.reader.has_buffered()
    }

    fn peer_pid(&self) -> Option<i32> {
        if !self.peer_pid_known {
            return None;
        }
        // One getsockopt, only when a failure is logged.
        nix::sys::socket::getsockopt(self.stream, nix::sys::socket::sockopt::PeerCredentials)
            .ok()
            .map(|c| c.pid())
    }

    fn attach_ring(&mut self, fd: OwnedFd, data_len: u32) -> Result<(), String> {
        if self.ring.is_some() {
            return Err("the connection already has one".into());
        }
        *self.ring = Some(Ring::attach(fd, data_len)?);
        Ok(())
    }

    fn ring_bytes(&self, offset: u32, len: u32) -> Result<SharedBytes<'_>, String> {
        let ring = self
            .ring
            .as_ref()
            .ok_or("a BodyRing frame before any RingSetup")?;
        ring.bytes(offset, len)
    }

    fn release_ring(&mut self, len: u32) {
        if let Some(ring) = self.ring.as_mut() {
            ring.release(len);
        }
    }
}

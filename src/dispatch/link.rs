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
use crate::relay::io::{write_parts, DaemonLink, Wait};

/// One exchange's use of a daemon connection.
pub struct SocketLink<'a> {
    stream: &'a UnixStream,
    reader: FrameReader<FdStream<'a>>,
    /// The client connection's socket, watched while waiting (`None`: not its own, HTTP/2).
    client: Option<RawFd>,
    /// How long to wait for the daemon.
    timeout: Duration,
}

impl<'a> SocketLink<'a> {
    /// Reads `stream` into `buf` (a pooled connection's buffer, given back by
    /// [`SocketLink::into_buffer`]); waits up to `timeout`, watching `client`.
    pub fn new(
        stream: &'a UnixStream,
        buf: Vec<u8>,
        client: Option<RawFd>,
        timeout: Duration,
    ) -> Self {
        SocketLink {
            stream,
            reader: FrameReader::with_buffer(FdStream::new(stream), buf),
            client,
            timeout,
        }
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
}

//! Waiting for the daemon's next frame while watching the client connection, so a client
//! that resets its connection stops the application at once instead of at the next block.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub use crate::relay::io::Wait;

/// Waits up to `timeout` for the daemon connection to become readable, or the client
/// connection `client` (if known) to fail.
pub fn daemon_or_client(daemon: &UnixStream, client: Option<RawFd>, timeout: Duration) -> Wait {
    let deadline = Instant::now() + timeout;
    let mut fds = [
        libc::pollfd {
            fd: daemon.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            // A negative descriptor is ignored by poll.
            fd: client.unwrap_or(-1),
            // POLLERR and POLLHUP are always reported; nothing else is asked for.
            events: 0,
            revents: 0,
        },
    ];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of two pollfd structures for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // Let the read report whatever is wrong.
            return Wait::Daemon;
        }
        if fds[1].revents & libc::POLLNVAL != 0 {
            // Not a descriptor (it never should be): stop watching it.
            fds[1].fd = -1;
        } else if fds[1].revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Wait::ClientGone;
        }
        if fds[0].revents != 0 {
            return Wait::Daemon;
        }
        if n == 0 && Instant::now() >= deadline {
            return Wait::TimedOut;
        }
    }
}

//! `send-buffer-size` and `receive-buffer-size`: `SO_SNDBUF` and `SO_RCVBUF` of every
//! connection the daemon accepts. (mod_wsgi sets them on the listening socket before it binds
//! it, but on Linux a UNIX socket that `accept` returns starts with the system's defaults
//! whatever the listener has, so they are set here, on each accepted connection.)

use rswsgi_protocol::Code;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{setsockopt, sockopt};

/// The sizes to set; `None` keeps the system's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketBuffers {
    /// `SO_SNDBUF`: what the daemon may have in flight towards Apache.
    pub send: Option<usize>,
    /// `SO_RCVBUF`.
    pub receive: Option<usize>,
}

impl SocketBuffers {
    /// Sets the sizes on `sock`.
    pub fn apply(&self, sock: &impl AsFd) -> nix::Result<()> {
        if let Some(n) = self.send {
            setsockopt(sock, sockopt::SndBuf, &n)?;
        }
        if let Some(n) = self.receive {
            setsockopt(sock, sockopt::RcvBuf, &n)?;
        }
        Ok(())
    }

    /// [`apply`](Self::apply), logging the first failure (as mod_wsgi does, the connection is
    /// served with the default sizes).
    pub fn apply_or_warn(&self, sock: &impl AsFd) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if let Err(e) = self.apply(sock) {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{}: cannot set the socket buffer sizes (send-buffer-size/receive-buffer-size) \
                     of a connection: {e}; the system's defaults are used",
                    Code::SocketBuffers
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::getsockopt;
    use std::os::unix::net::UnixStream;

    #[test]
    fn sizes_reach_the_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        let default = getsockopt(&a, sockopt::SndBuf).unwrap();
        SocketBuffers::default().apply(&a).unwrap();
        assert_eq!(getsockopt(&a, sockopt::SndBuf).unwrap(), default);
        let want = SocketBuffers {
            send: Some(20_000),
            receive: Some(30_000),
        };
        want.apply(&a).unwrap();
        // Linux doubles the value for its bookkeeping.
        assert_eq!(getsockopt(&a, sockopt::SndBuf).unwrap(), 40_000);
        assert_eq!(getsockopt(&a, sockopt::RcvBuf).unwrap(), 60_000);
    }
}

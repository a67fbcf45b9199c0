//! Opening a connection to a daemon group: connect, check that what listens runs as the
//! group's user, and answer the daemon's challenge with the connection secret
//! (`rswsgi_protocol::auth`). The answer goes out with the first request, in one write.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rswsgi_protocol::auth::{self, CHALLENGE_LEN, PROOF_LEN};
use rswsgi_protocol::Secret;

use super::pool::Link;
use crate::supervisor::Endpoint;

/// Why no connection could be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Nothing accepted the connection in time (no daemon listening, or none ready).
    #[error("no daemon process accepted the connection: {0}")]
    Connect(#[source] std::io::Error),
    /// The daemon closed the connection before its challenge (it was stopping or died): no
    /// request was sent, so another connection may be tried.
    #[error("the daemon closed the connection before the handshake")]
    Unread,
    /// What listens on the socket does not run as the group's user.
    #[error("the process listening on the daemon socket runs as uid {found}, not as the group's user (uid {expected}); refusing to send it requests")]
    WrongDaemon {
        /// Its uid.
        found: u32,
        /// The group's uid.
        expected: u32,
    },
    /// The challenge did not come, or was not one.
    #[error("the daemon's handshake failed: {0}")]
    Handshake(String),
}

impl OpenError {
    /// True when nothing was sent and another connection may be tried.
    pub fn retryable(&self) -> bool {
        matches!(self, OpenError::Unread)
    }
}

fn connect(path: &str, timeout: Duration) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_millis(10);
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound
                            | std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::WouldBlock
                    ) =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects to `endpoint` (retrying a refused connection for up to `connect_for`), checks the
/// daemon's uid, reads its challenge and returns the connection with the proof to send ahead
/// of the first request, and how long the challenge took: the connection waited that long in
/// the socket's queue for a daemon to accept it. `timeout` is the connection's read and write
/// timeout.
pub fn open(
    endpoint: &Endpoint,
    secret: &Secret,
    connect_for: Duration,
    timeout: Duration,
) -> Result<(Link, [u8; PROOF_LEN], Duration), OpenError> {
    let mut stream = connect(&endpoint.socket, connect_for).map_err(OpenError::Connect)?;
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| OpenError::Handshake(format!("cannot read the daemon's credentials: {e}")))?;
    if cred.uid() != endpoint.daemon_uid {
        return Err(OpenError::WrongDaemon {
            found: cred.uid(),
            expected: endpoint.daemon_uid,
        });
    }
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let mut challenge = [0u8; CHALLENGE_LEN];
    let queued = Instant::now();
    match stream.read_exact(&mut challenge) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Err(OpenError::Unread)
        }
        Err(e) => return Err(OpenError::Handshake(e.to_string())),
    }
    let nonce =
        auth::decode_challenge(&challenge).map_err(|e| OpenError::Handshake(e.to_string()))?;
    let link = Link {
        stream,
        buf: Vec::new(),
        timeout,
        seq: 0,
        ring: None,
    };
    Ok((link, auth::encode_proof(secret, &nonce), queued.elapsed()))
}

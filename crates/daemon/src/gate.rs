//! Who may talk to this daemon: only Apache's children, proved twice over.
//!
//! - The peer's uid (`SO_PEERCRED`) must be Apache's `User`, as the supervisor says with
//!   `--peer-uid`.
//! - The peer must answer a fresh challenge with an HMAC keyed by the secret httpd's parent
//!   drew at start-up (`rswsgi_protocol::auth`), which this process read from an inherited
//!   descriptor (`--secret-fd`) and which no other process running as that user can know.
//!
//! A connection that fails either check is closed unserved, with one log line naming the
//! peer's pid and uid.

use rswsgi_protocol::Code;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{bail, Context};
use rswsgi_protocol::auth::{self, AuthError, NONCE_LEN, PROOF_LEN, SECRET_LEN};
use rswsgi_protocol::{FrameReader, ReadError, Secret};

/// How long a connection that has been sent its challenge may take to answer, once it has
/// begun to (the module answers at once, in one write with its first request).
const PROOF_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The peer runs as another user than Apache's `User`.
    #[error("it runs as uid {found}, not as Apache's User (uid {expected})")]
    WrongUser {
        /// The peer's uid.
        found: u32,
        /// The uid connections must come from.
        expected: u32,
    },
    /// The proof was missing, malformed or wrong.
    #[error("{0}")]
    Proof(#[from] AuthError),
    /// The socket failed (or the peer was too slow) during the handshake.
    #[error("the handshake failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before it answered.
    #[error("it closed the connection without answering the challenge")]
    Closed,
}

/// The connection check of one daemon process.
pub struct Gate {
    secret: Secret,
    peer_uid: u32,
}

/// The pid and uid of the process at the other end of `stream`, for log lines and checks.
pub fn peer_of(stream: &UnixStream) -> Option<(i32, u32)> {
    peer_of_fd(std::os::fd::AsRawFd::as_raw_fd(stream))
}

/// [`peer_of`] for a socket known by its descriptor (valid for the call).
pub fn peer_of_fd(fd: RawFd) -> Option<(i32, u32)> {
    // SAFETY: the caller keeps `fd` open for the duration of this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let cred =
        nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some((cred.pid(), cred.uid()))
}

impl Gate {
    /// Reads the secret from the inherited descriptor `fd` (which is closed afterwards).
    pub fn from_fd(fd: RawFd, peer_uid: u32) -> anyhow::Result<Self> {
        if fd < 3 {
            bail!("--secret-fd {fd}: refusing to read the secret from a standard stream");
        }
        // SAFETY: F_GETFD only reads descriptor flags; any integer is a valid argument.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            bail!("--secret-fd {fd}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is open (checked above) and was inherited for this process alone to read
        // and close; nothing else in the process uses it.
        let mut source = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut bytes = [0u8; SECRET_LEN];
        source
            .read_exact(&mut bytes)
            .with_context(|| format!("reading the connection secret from --secret-fd {fd}"))?;
        Ok(Gate {
            secret: Secret::from_bytes(bytes),
            peer_uid,
        })
    }

    /// For tests: a gate with a known secret.
    #[cfg(test)]
    pub fn new(secret: Secret, peer_uid: u32) -> Self {
        Gate { secret, peer_uid }
    }

    /// Checks who is connecting and sends a fresh challenge; returns its nonce.
    pub fn challenge(&self, stream: &mut UnixStream) -> Result<[u8; NONCE_LEN], Refusal> {
        if let Some((_, uid)) = peer_of(stream) {
            if uid != self.peer_uid {
                return Err(Refusal::WrongUser {
                    found: uid,
                    expected: self.peer_uid,
                });
            }
        } else {
            return Err(Refusal::Io(std::io::Error::other(
                "cannot read the peer's credentials",
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Refusal::Io(std::io::Error::other(e)))?;
        // A fresh socket's buffer is empty: this write of a few bytes does not block.
        stream.write_all(&auth::encode_challenge(&nonce))?;
        Ok(nonce)
    }

    /// Reads and checks the answer to the challenge carrying `nonce`.
    pub fn check(
        &self,
        nonce: &[u8; NONCE_LEN],
        reader: &mut FrameReader<UnixStream>,
    ) -> Result<(), Refusal> {
        reader.get_ref().set_read_timeout(Some(PROOF_TIMEOUT))?;
        let proof = match reader.read_bytes(PROOF_LEN) {
            Ok(Some(p)) => auth::check_proof(&self.secret, nonce, p),
            Ok(None) => return Err(Refusal::Closed),
            Err(ReadError::Truncated) => return Err(Refusal::Closed),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Refusal::Closed)
            }
            Err(ReadError::Io(e)) => return Err(Refusal::Io(e)),
            Err(ReadError::Decode(e)) => return Err(Refusal::Proof(e.into())),
        };
        reader.get_ref().set_read_timeout(None)?;
        Ok(proof?)
    }
}

/// Logs a refused connection in one line, naming the peer.
pub fn log_refusal(stream: &UnixStream, why: &Refusal) {
    match peer_of(stream) {
        Some((pid, uid)) => tracing::error!(
            "{}: refused a connection from pid {pid} (uid {uid}): {why}; only this Apache's children may connect",
            Code::PeerRefused
        ),
        None => tracing::error!(
            "{}: refused a connection from an unknown peer: {why}",
            Code::PeerRefused
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gate() -> Gate {
        Gate::new(
            Secret::from_bytes([3; SECRET_LEN]),
            nix::unistd::getuid().as_raw(),
        )
    }

    #[test]
    fn the_right_proof_is_accepted_and_others_refused() {
        let g = gate();
        for (secret, ok) in [([3u8; SECRET_LEN], true), ([4u8; SECRET_LEN], false)] {
            let (mut ours, mut theirs) = UnixStream::pair().unwrap();
            let nonce = g.challenge(&mut ours).unwrap();
            let mut challenge = [0; auth::CHALLENGE_LEN];
            theirs.read_exact(&mut challenge).unwrap();
            assert_eq!(auth::decode_challenge(&challenge).unwrap(), nonce);
            let proof = auth::encode_proof(&Secret::from_bytes(secret), &nonce);
            theirs.write_all(&proof).unwrap();
            let mut reader = FrameReader::new(ours);
            assert_eq!(g.check(&nonce, &mut reader).is_ok(), ok);
        }
    }

    #[test]
    fn another_user_is_refused_before_any_challenge() {
        let g = Gate::new(Secret::from_bytes([3; SECRET_LEN]), u32::MAX - 7);
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        assert!(matches!(
            g.challenge(&mut ours),
            Err(Refusal::WrongUser { .. })
        ));
        drop(ours);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).unwrap();
        assert!(got.is_empty(), "nothing is sent to a refused peer");
    }

    #[test]
    fn a_peer_that_hangs_up_is_refused() {
        let g = gate();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let nonce = g.challenge(&mut ours).unwrap();
        drop(theirs);
        let mut reader = FrameReader::new(ours);
        assert!(matches!(g.check(&nonce, &mut reader), Err(Refusal::Closed)));
    }
}

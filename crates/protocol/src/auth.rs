//! The connection handshake: every connection proves that it comes from this Apache.
//!
//! httpd's root parent draws a [`Secret`] from the OS at start-up; its children inherit it by
//! `fork` and the daemons read it from an inherited descriptor. File modes alone cannot keep
//! other code running as Apache's `User` (CGI, PHP, other modules) off the daemon socket, so
//! a connection is served only once it has answered a challenge:
//!
//! ```text
//! daemon → module   challenge: PREAMBLE, nonce (16 random bytes)
//! module → daemon   proof:     PREAMBLE, HMAC-SHA256(secret, CONTEXT ‖ nonce)
//! ```
//!
//! The nonce is fresh for every connection, so a proof seen once is worth nothing on another
//! connection, and a process that can pose as a daemon learns nothing it could replay. The
//! proof is checked in constant time. Pooled connections pay for this once, when they open.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{check_preamble, DecodeError, PREAMBLE};

/// Bytes in a [`Secret`].
pub const SECRET_LEN: usize = 32;
/// Bytes of the daemon's per-connection nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of the module's answer (an HMAC-SHA256 tag).
pub const MAC_LEN: usize = 32;
/// Bytes of the challenge a daemon sends on a new connection.
pub const CHALLENGE_LEN: usize = PREAMBLE.len() + NONCE_LEN;
/// Bytes of the proof the module answers with.
pub const PROOF_LEN: usize = PREAMBLE.len() + MAC_LEN;

/// What the tag is computed over besides the nonce: names the protocol and the direction, so
/// a tag is never valid for anything else.
const CONTEXT: &[u8] = b"rswsgi v2 module->daemon connection proof";

/// The per-start secret shared by httpd and its daemons. Its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl Secret {
    /// Wraps secret bytes (drawn from the OS random source by httpd's parent).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Secret(bytes)
    }

    /// The secret bytes, for handing on to a daemon.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    fn tag(&self, nonce: &[u8; NONCE_LEN]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(nonce);
        mac
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The bytes do not start with this protocol's preamble.
    #[error(transparent)]
    Preamble(#[from] DecodeError),
    /// Fewer bytes than a challenge or proof holds.
    #[error("the handshake is {0} bytes short")]
    Short(usize),
    /// The proof does not match: the peer does not know this Apache's secret.
    #[error("the connection did not prove it comes from this Apache (wrong secret)")]
    BadProof,
}

fn expect_len(buf: &[u8], len: usize) -> Result<(), AuthError> {
    if buf.len() < len {
        return Err(AuthError::Short(len - buf.len()));
    }
    check_preamble(buf)?;
    Ok(())
}

/// The challenge a daemon sends on a connection it has just accepted.
pub fn encode_challenge(nonce: &[u8; NONCE_LEN]) -> [u8; CHALLENGE_LEN] {
    let mut out = [0; CHALLENGE_LEN];
    out[..PREAMBLE.len()].copy_from_slice(&PREAMBLE);
    out[PREAMBLE.len()..].copy_from_slice(nonce);
    out
}

/// The nonce in a challenge (the first [`CHALLENGE_LEN`] bytes of `buf`).
pub fn decode_challenge(buf: &[u8]) -> Result<[u8; NONCE_LEN], AuthError> {
    expect_len(buf, CHALLENGE_LEN)?;
    Ok(buf[PREAMBLE.len()..CHALLENGE_LEN]
        .try_into()
        .expect("NONCE_LEN bytes"))
}

/// The module's answer to the challenge carrying `nonce`.
pub fn encode_proof(secret: &Secret, nonce: &[u8; NONCE_LEN]) -> [u8; PROOF_LEN] {
    let mut out = [0; PROOF_LEN];
    out[..PREAMBLE.len()].copy_from_slice(&PREAMBLE);
    out[PREAMBLE.len()..].copy_from_slice(&secret.tag(nonce).finalize().into_bytes());
    out
}

/// Checks the proof at the front of `buf` (its first [`PROOF_LEN`] bytes) against the
/// challenge this side sent, in constant time.
pub fn check_proof(secret: &Secret, nonce: &[u8; NONCE_LEN], buf: &[u8]) -> Result<(), AuthError> {
    expect_len(buf, PROOF_LEN)?;
    secret
        .tag(nonce)
        .verify_slice(&buf[PREAMBLE.len()..PROOF_LEN])
        .map_err(|_| AuthError::BadProof)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> Secret {
        Secret::from_bytes([b; SECRET_LEN])
    }

    #[test]
    fn a_proof_passes_only_for_its_secret_and_nonce() {
        let nonce = [7; NONCE_LEN];
        let challenge = encode_challenge(&nonce);
        assert_eq!(decode_challenge(&challenge).unwrap(), nonce);
        let proof = encode_proof(&secret(1), &nonce);
        assert_eq!(check_proof(&secret(1), &nonce, &proof), Ok(()));
        assert_eq!(
            check_proof(&secret(2), &nonce, &proof),
            Err(AuthError::BadProof)
        );
        assert_eq!(
            check_proof(&secret(1), &[8; NONCE_LEN], &proof),
            Err(AuthError::BadProof)
        );
        let mut flipped = proof;
        flipped[PROOF_LEN - 1] ^= 1;
        assert_eq!(
            check_proof(&secret(1), &nonce, &flipped),
            Err(AuthError::BadProof)
        );
    }

    #[test]
    fn short_or_foreign_handshakes_are_refused() {
        let nonce = [0; NONCE_LEN];
        let proof = encode_proof(&secret(1), &nonce);
        assert_eq!(
            check_proof(&secret(1), &nonce, &proof[..PROOF_LEN - 3]),
            Err(AuthError::Short(3))
        );
        let mut old = proof;
        old[7] = 1; // protocol version 1
        assert!(matches!(
            check_proof(&secret(1), &nonce, &old),
            Err(AuthError::Preamble(DecodeError::BadPreamble { found: 1 }))
        ));
        assert!(decode_challenge(b"GET / HTTP/1.1\r\n\r\nxxxxxxxx").is_err());
        assert_eq!(format!("{:?}", secret(9)), "Secret(..)");
    }
}

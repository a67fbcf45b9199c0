//! The properties the `handshake` fuzz target checks (shared by `#[path]` with the corpus
//! replay in `tests/fuzz_corpus.rs`): `decode_challenge` and `check_proof` on arbitrary
//! bytes, against a model of what they must accept.

use rswsgi_protocol::auth::{
    check_proof, decode_challenge, encode_challenge, encode_proof, AuthError, CHALLENGE_LEN,
    NONCE_LEN, PROOF_LEN, SECRET_LEN,
};
use rswsgi_protocol::{check_preamble, DecodeError, Secret, PREAMBLE};

/// The error `expect_len` must give for a handshake message that is not `len` good bytes.
fn refused(buf: &[u8], len: usize) -> AuthError {
    if buf.len() < len {
        return AuthError::Short(len - buf.len());
    }
    let found = if buf[..6] == PREAMBLE[..6] {
        u16::from_be_bytes([buf[6], buf[7]])
    } else {
        0
    };
    AuthError::Preamble(DecodeError::BadPreamble { found })
}

/// Input layout: `secret (32), nonce (16), mode, rest…`. Mode bit 0: the proof checked is
/// the right one followed by `rest[1..]`, with bit 1 also flipping the bit `rest[0]` names
/// (so the valid and nearly valid proofs get fuzzed too); otherwise `rest` itself. The
/// challenge decoded is `rest`, or the encoded challenge for `nonce` when bit 2 is set.
pub fn check(data: &[u8]) {
    if data.len() < SECRET_LEN + NONCE_LEN + 1 {
        return;
    }
    let (secret, data) = data.split_at(SECRET_LEN);
    let (nonce, data) = data.split_at(NONCE_LEN);
    let secret = Secret::from_bytes(secret.try_into().unwrap());
    let nonce: [u8; NONCE_LEN] = nonce.try_into().unwrap();
    let (mode, rest) = (data[0], &data[1..]);

    // decode_challenge: the nonce of a challenge that starts with the preamble; it encodes
    // back to the same bytes; anything else is refused as short or foreign.
    let challenge = if mode & 4 != 0 {
        let mut c = encode_challenge(&nonce).to_vec();
        c.extend_from_slice(rest);
        c
    } else {
        rest.to_vec()
    };
    match decode_challenge(&challenge) {
        Ok(n) => {
            assert!(challenge.len() >= CHALLENGE_LEN);
            assert_eq!(check_preamble(&challenge), Ok(Some(PREAMBLE.len())));
            assert_eq!(&encode_challenge(&n)[..], &challenge[..CHALLENGE_LEN]);
            if mode & 4 != 0 {
                assert_eq!(n, nonce);
            }
        }
        Err(e) => {
            assert_eq!(e, refused(&challenge, CHALLENGE_LEN));
            assert_ne!(mode & 4, 4, "an encoded challenge is refused");
        }
    }

    // check_proof: passes exactly when the first PROOF_LEN bytes are the proof for this
    // secret and nonce.
    let good = encode_proof(&secret, &nonce);
    let proof = if mode & 1 != 0 {
        let mut p = good.to_vec();
        p.extend_from_slice(rest.get(1..).unwrap_or_default());
        if mode & 2 != 0 {
            let bit = *rest.first().unwrap_or(&0) as usize % (PROOF_LEN * 8);
            p[bit / 8] ^= 1 << (bit % 8);
        }
        p
    } else {
        rest.to_vec()
    };
    let got = check_proof(&secret, &nonce, &proof);
    let want = if proof.len() >= PROOF_LEN && proof[..PROOF_LEN] == good[..] {
        Ok(())
    } else if proof.len() < PROOF_LEN || check_preamble(&proof).is_err() {
        Err(refused(&proof, PROOF_LEN))
    } else {
        Err(AuthError::BadProof)
    };
    assert_eq!(got, want);
    if mode & 3 == 1 {
        assert_eq!(got, Ok(()), "the right proof is refused");
    }
}

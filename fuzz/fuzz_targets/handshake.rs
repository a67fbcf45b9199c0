//! The v2 connection handshake decoders, `decode_challenge` and `check_proof`, on arbitrary
//! bytes (checks in `crates/protocol/tests/props/handshake.rs`, shared with the corpus
//! replay test).
#![no_main]

#[path = "../../crates/protocol/tests/props/handshake.rs"]
mod handshake;

libfuzzer_sys::fuzz_target!(|data: &[u8]| handshake::check(data));

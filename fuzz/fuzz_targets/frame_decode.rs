//! `decode`, `peek_header` and `check_preamble` on arbitrary bytes (checks in
//! `crates/protocol/tests/props/frames.rs`, shared with the corpus replay test).
#![no_main]

#[path = "../../crates/protocol/tests/props/alloc.rs"]
#[allow(dead_code)]
mod alloc;
#[path = "../../crates/protocol/tests/props/frames.rs"]
#[allow(dead_code)]
mod frames;

libfuzzer_sys::fuzz_target!(|data: &[u8]| frames::check_decode(data));

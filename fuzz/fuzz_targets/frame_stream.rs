//! `FrameReader` (`read_frame`, `read_frame_in_pieces`, `read_preamble`) over a stream split
//! into arbitrary reads, against decoding the whole buffer (checks in
//! `crates/protocol/tests/props/frames.rs`, shared with the corpus replay test).
#![no_main]

#[path = "../../crates/protocol/tests/props/alloc.rs"]
mod alloc;
#[path = "../../crates/protocol/tests/props/frames.rs"]
#[allow(dead_code)]
mod frames;

#[global_allocator]
static ALLOC: alloc::PeakAlloc = alloc::PeakAlloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| frames::check_stream(data));

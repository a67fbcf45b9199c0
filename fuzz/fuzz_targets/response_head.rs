//! The daemon's checks on an application's status line and headers (`head_check.rs`, pure,
//! compiled in with `#[path]`: the daemon is a bin crate), with the checks in
//! `head_props.rs`, shared with the daemon's corpus replay test.
#![no_main]

#[path = "../../crates/daemon/src/backend/wsgi/head_check.rs"]
mod head_check;
#[path = "../../crates/daemon/src/backend/wsgi/head_props.rs"]
mod head_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| head_props::check(data));

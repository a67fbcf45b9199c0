//! The environ builder of `src/environ.rs` (checks in `src/fuzz_props/environ.rs`, shared
//! with the module's corpus replay test).
//!
//! The module crate is a cdylib whose non-test build needs httpd's symbols and a bindgen
//! build script, so it cannot be a dependency; its pure `config` and `environ` modules (std
//! only) are compiled into this binary from their own files with `#[path]`, at the crate
//! root where their `crate::config` paths expect them.
#![no_main]

#[path = "../../src/config/mod.rs"]
#[allow(dead_code, unused_imports)]
mod config;
#[path = "../../src/environ.rs"]
#[allow(dead_code)]
mod environ;
#[path = "../../src/fuzz_props/mod.rs"]
#[allow(dead_code)]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::environ::check(data));

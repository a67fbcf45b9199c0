//! A handler library that claims rswsgi handler ABI version 999: the daemon must refuse it.
//! Standalone (it does not use the SDK), so it looks like a library built by a future SDK.

use std::ffi::c_void;

/// The leading fields of the SDK's `HandlerTable`, with the version the daemon will reject.
#[repr(C)]
pub struct HandlerTable {
    magic: u64,
    abi_version: u32,
    sdk_version: *const u8,
    handle: unsafe extern "C" fn(host: *const c_void) -> i32,
}

// SAFETY: the table is immutable static data: constants and a function pointer.
unsafe impl Sync for HandlerTable {}

unsafe extern "C" fn handle(_host: *const c_void) -> i32 {
    // Never called: the daemon checks the version first.
    std::process::abort()
}

static TABLE: HandlerTable = HandlerTable {
    magic: u64::from_le_bytes(*b"RSWSGIH\0"),
    abi_version: 999,
    sdk_version: b"999.0.0\0".as_ptr(),
    handle,
};

/// The entry point the daemon looks up.
#[unsafe(no_mangle)]
pub extern "C" fn rswsgi_handler_table() -> *const HandlerTable {
    &TABLE
}

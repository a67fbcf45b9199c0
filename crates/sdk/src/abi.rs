//! The C ABI between `rswsgi-daemon` and a handler library. Only `#[repr(C)]` types and
//! `extern "C"` functions cross it, so a handler built by a different rustc still loads.
//!
//! The library exports one symbol, [`ENTRY_SYMBOL`], returning a [`HandlerTable`]. The daemon
//! checks `magic` and `abi_version` before touching anything else.

use std::ffi::c_void;

/// Name of the exported entry function (`extern "C" fn() -> *const HandlerTable`).
pub const ENTRY_SYMBOL: &str = "rswsgi_handler_table";
/// First field of every [`HandlerTable`]: `RSWSGIH` plus a NUL.
pub const ABI_MAGIC: u64 = u64::from_le_bytes(*b"RSWSGIH\0");
/// The ABI this SDK speaks. Bumped on any change to the types in this module.
pub const ABI_VERSION: u32 = 1;

/// A borrowed byte string.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes {
    /// First byte (may dangle when `len` is 0).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl Bytes {
    /// Borrows a slice.
    pub fn new(s: &[u8]) -> Self {
        Bytes {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must be valid for `len` bytes for the returned lifetime.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: valid for len bytes, per this function's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A name/value pair (environ entry or header).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// The name.
    pub name: Bytes,
    /// The value.
    pub value: Bytes,
}

/// What the daemon offers a handler for one request. Every function takes `ctx` back.
#[repr(C)]
pub struct HostRequest {
    /// The daemon's per-request state.
    pub ctx: *mut c_void,
    /// The CGI/WSGI environ, as byte strings.
    pub environ: *const Pair,
    /// Number of environ entries.
    pub environ_len: usize,
    /// Reads request body bytes into `buf`: returns the count, 0 at the end, -1 on error.
    pub read_body: unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, len: usize) -> isize,
    /// Sends the status line and headers; 0 on success. Must come before `write_body`.
    pub start_response: unsafe extern "C" fn(
        ctx: *mut c_void,
        status: u16,
        reason: Bytes,
        headers: *const Pair,
        len: usize,
    ) -> i32,
    /// Sends response body bytes to the client now; 0 on success, -1 if the client is gone.
    pub write_body: unsafe extern "C" fn(ctx: *mut c_void, data: Bytes) -> i32,
    /// Writes a line to Apache's error log (level: 1 error, 2 warning, 3 info).
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: Bytes),
}

/// Result codes of [`HandlerTable::handle`].
pub mod status {
    /// The response was sent completely.
    pub const OK: i32 = 0;
    /// The handler failed (panicked, or its stream failed) after the response began.
    pub const FAILED: i32 = 1;
    /// The handler panicked before anything was sent; the daemon answers 500.
    pub const PANICKED: i32 = 2;
}

/// What a handler library exports.
#[repr(C)]
pub struct HandlerTable {
    /// Always [`ABI_MAGIC`].
    pub magic: u64,
    /// The [`ABI_VERSION`] the library was built with.
    pub abi_version: u32,
    /// The SDK version the library was built with (NUL-terminated), for messages.
    pub sdk_version: *const u8,
    /// Serves one request; see [`status`]. Called from several threads at once.
    pub handle: unsafe extern "C" fn(host: *const HostRequest) -> i32,
}

// SAFETY: the table is immutable static data: constants and a function pointer.
unsafe impl Sync for HandlerTable {}

//! A safe layer over the parts of httpd and APR the module uses. Raw pointers enter through
//! one documented `unsafe fn from_ptr` per type; everything above this layer is safe Rust.

pub mod body;
pub mod log;
pub mod pool;
pub mod request;
pub mod table;

use std::ffi::CStr;
use std::os::raw::c_char;

/// Borrows a C string from httpd as UTF-8; `None` for NULL or text that is not UTF-8.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated for 'a, per this function's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().ok()
}

/// Borrows a C string from httpd as bytes; `None` for NULL.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives `'a`.
pub unsafe fn cbytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated for 'a, per this function's contract.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

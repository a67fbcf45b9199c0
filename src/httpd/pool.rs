//! APR pools: Rust values owned by a pool, and strings copied into one.

use std::ffi::c_void;
use std::os::raw::c_char;

use crate::ffi;

/// A borrowed APR pool.
#[derive(Clone, Copy)]
pub struct Pool(*mut ffi::apr_pool_t);

impl Pool {
    /// Wraps a pool pointer from httpd.
    ///
    /// # Safety
    /// `p` must be a live APR pool for as long as the wrapper (and anything stored in it) is used.
    pub unsafe fn from_ptr(p: *mut ffi::apr_pool_t) -> Self {
        Pool(p)
    }

    /// Moves `value` into the pool: it is dropped when the pool is cleared or destroyed.
    /// Returns a pointer valid until then.
    pub fn store<T>(self, value: T) -> *mut T {
        unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> ffi::apr_status_t {
            // SAFETY: `data` is the Box::into_raw pointer registered below, dropped exactly once
            // because APR runs each cleanup once.
            drop(unsafe { Box::from_raw(data.cast::<T>()) });
            0
        }
        let ptr = Box::into_raw(Box::new(value));
        // SAFETY: the pool is live (from_ptr contract); the cleanup frees exactly this box; the
        // child cleanup is APR's no-op, so exec'd children never touch it.
        unsafe {
            ffi::apr_pool_cleanup_register(
                self.0,
                ptr.cast(),
                Some(drop_box::<T>),
                Some(ffi::apr_pool_cleanup_null),
            );
        }
        ptr
    }

    /// The raw pool, for APR and httpd calls that allocate in it.
    pub fn as_ptr(self) -> *mut ffi::apr_pool_t {
        self.0
    }

    /// Copies `s` into the pool as a NUL-terminated string (an interior NUL ends it early).
    pub fn strdup(self, s: &[u8]) -> *mut c_char {
        let s = s.split(|&b| b == 0).next().unwrap_or_default();
        // SAFETY: the pool is live; apr_pstrmemdup copies len bytes and appends a NUL.
        unsafe { ffi::apr_pstrmemdup(self.0, s.as_ptr().cast(), s.len()) }
    }
}

//! APR tables (headers, environment, notes).

use super::pool::Pool;
use crate::ffi;

/// A borrowed APR table.
#[derive(Clone, Copy)]
pub struct Table(*mut ffi::apr_table_t);

impl Table {
    /// Wraps a table pointer from httpd.
    ///
    /// # Safety
    /// `t` must be a live table, used only from the thread that owns its request.
    pub unsafe fn from_ptr(t: *mut ffi::apr_table_t) -> Self {
        Table(t)
    }

    /// Iterates over the entries as byte strings, in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        // `apr_table_elts(t)` is a cast: an apr_table_t starts with its apr_array_header_t.
        let arr = self.0.cast::<ffi::apr_array_header_t>();
        // SAFETY: the table is live (from_ptr contract) and begins with its array header.
        let (elts, n) = unsafe { ((*arr).elts.cast::<ffi::apr_table_entry_t>(), (*arr).nelts) };
        (0..n.max(0) as usize).filter_map(move |i| {
            // SAFETY: i < nelts, so the entry is within the array.
            let e = unsafe { &*elts.add(i) };
            // SAFETY: keys and values of a live table are NUL-terminated pool strings.
            let (k, v) = unsafe { (super::cbytes(e.key), super::cbytes(e.val)) };
            Some((k?, v.unwrap_or_default()))
        })
    }

    /// The first value of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = std::ffi::CString::new(key).ok()?;
        // SAFETY: live table, NUL-terminated key; the result is a pool string or NULL.
        unsafe { super::cstr(ffi::apr_table_get(self.0, key.as_ptr())) }
    }

    /// The first value of `key` (case-insensitive), as bytes.
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        let key = std::ffi::CString::new(key).ok()?;
        // SAFETY: as in `get`.
        unsafe { super::cbytes(ffi::apr_table_get(self.0, key.as_ptr())) }
    }

    /// Adds an entry, keeping existing ones of the same name; both are copied into `pool`.
    pub fn add(&self, pool: Pool, key: &[u8], value: &[u8]) {
        let (k, v) = (pool.strdup(key), pool.strdup(value));
        // SAFETY: live table; k and v are pool strings that outlive the table's request.
        unsafe { ffi::apr_table_addn(self.0, k, v) }
    }

    /// Sets an entry, replacing existing ones; both are copied into `pool`.
    pub fn set(&self, pool: Pool, key: &[u8], value: &[u8]) {
        let (k, v) = (pool.strdup(key), pool.strdup(value));
        // SAFETY: as in `add`.
        unsafe { ffi::apr_table_setn(self.0, k, v) }
    }
}

//! The environ's strings, reused from the previous request served on the same thread.
//!
//! The module sends a request's CGI pairs in the same order every time, and most of them
//! (the server's own variables, `Host`, `Accept`, the script name…) have the same values from
//! one request to the next. A Python `str` is immutable, so the one made for the previous
//! request can serve this one when the bytes are equal: that saves making it, and, for a key,
//! hashing it again when it goes into the dict (a `str` keeps its hash). Each worker thread
//! keeps one slot per pair position; a pair whose bytes differ from its slot's gets a new
//! string, which the slot then keeps.

use std::cell::RefCell;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// Pair positions a thread keeps strings for; pairs past this are made afresh.
const MAX_SLOTS: usize = 96;
/// Values longer than this are made afresh and not kept (cookies, long query strings), so a
/// thread holds at most about `MAX_SLOTS × MAX_KEPT` bytes.
const MAX_KEPT: usize = 256;

/// Bytes and the `str` made from them.
struct Kept {
    bytes: Vec<u8>,
    text: Py<PyString>,
}

impl Kept {
    /// The string for `bytes`: the kept one when they are equal, else a new one, kept when
    /// `bytes` is short enough.
    fn get<'py>(
        slot: &mut Option<Kept>,
        py: Python<'py>,
        bytes: &[u8],
    ) -> PyResult<Bound<'py, PyString>> {
        if let Some(kept) = slot.as_ref().filter(|k| k.bytes == bytes) {
            return Ok(kept.text.bind(py).clone());
        }
        let text = latin1(py, bytes)?;
        *slot = (bytes.len() <= MAX_KEPT).then(|| Kept {
            bytes: bytes.to_vec(),
            text: text.clone().unbind(),
        });
        Ok(text)
    }
}

thread_local! {
    /// One slot per pair position: its last key and value.
    static SLOTS: RefCell<Vec<(Option<Kept>, Option<Kept>)>> = const { RefCell::new(Vec::new()) };
}

/// The key and value strings of the pair at `index` of a request's environ (latin-1, as PEP
/// 3333 asks), reusing this thread's strings from the previous request where the bytes match.
pub fn pair<'py>(
    py: Python<'py>,
    index: usize,
    key: &[u8],
    value: &[u8],
) -> PyResult<(Bound<'py, PyString>, Bound<'py, PyString>)> {
    if index >= MAX_SLOTS {
        return Ok((latin1(py, key)?, latin1(py, value)?));
    }
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.len() <= index {
            slots.resize_with(index + 1, || (None, None));
        }
        let (k, v) = &mut slots[index];
        Ok((Kept::get(k, py, key)?, Kept::get(v, py, value)?))
    })
}

/// The key string of the pair at `index`, reused as [`pair`] does (for a value that is not
/// a latin-1 string).
pub fn key<'py>(py: Python<'py>, index: usize, key: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if index >= MAX_SLOTS {
        return latin1(py, key);
    }
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.len() <= index {
            slots.resize_with(index + 1, || (None, None));
        }
        Kept::get(&mut slots[index].0, py, key)
    })
}

extern "C" {
    /// CPython's `_PyDict_NewPresized` (`cpython/dictobject.h`, exported since 3.6 and used
    /// by CPython's own code): a dict with room for `minused` entries.
    fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
}

/// An empty dict with room for `entries` entries, so filling it never resizes it.
pub fn dict_for(py: Python<'_>, entries: usize) -> PyResult<Bound<'_, PyDict>> {
    let entries = ffi::Py_ssize_t::try_from(entries.min(1 << 16)).unwrap_or(0);
    // SAFETY: the GIL is held (`py`); the call returns a new reference to a dict, or NULL
    // with an exception set (out of memory), which `from_owned_ptr_or_err` turns into the
    // error.
    unsafe {
        Ok(Bound::from_owned_ptr_or_err(py, _PyDict_NewPresized(entries))?.cast_into_unchecked())
    }
}

/// Decodes bytes as latin-1: each byte is the code point of the same value, as PEP 3333 asks
/// for environ strings.
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let len = ffi::Py_ssize_t::try_from(bytes.len())
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("string too long"))?;
    // SAFETY: the GIL is held (`py`); CPython reads exactly `len` bytes from the pointer,
    // which all lie in `bytes`, and returns a new reference, or NULL with an exception set
    // (only when out of memory), which `from_owned_ptr_or_err` turns into the error.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), len, std::ptr::null());
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_latin1_and_reused_only_for_equal_bytes() {
        Python::initialize();
        Python::attach(|py| {
            let (k1, v1) = pair(py, 0, b"HTTP_HOST", b"caf\xe9").unwrap();
            assert_eq!(k1.to_cow().unwrap(), "HTTP_HOST");
            assert_eq!(v1.to_cow().unwrap(), "caf\u{e9}");
            let (k2, v2) = pair(py, 0, b"HTTP_HOST", b"caf\xe9").unwrap();
            assert!(k1.is(&k2) && v1.is(&v2), "equal bytes reuse the strings");
            let (k3, v3) = pair(py, 0, b"HTTP_HOST", b"other").unwrap();
            assert!(k3.is(&k1));
            assert_eq!(v3.to_cow().unwrap(), "other");
            let (k4, _) = pair(py, 0, b"HTTP_X", b"other").unwrap();
            assert_eq!(k4.to_cow().unwrap(), "HTTP_X");
            // A long value is made each time, never kept.
            let long = vec![b'a'; MAX_KEPT + 1];
            let (_, l1) = pair(py, 1, b"HTTP_COOKIE", &long).unwrap();
            let (_, l2) = pair(py, 1, b"HTTP_COOKIE", &long).unwrap();
            assert!(!l1.is(&l2));
            assert_eq!(l2.to_cow().unwrap().len(), MAX_KEPT + 1);
            // Past the slots, strings are still right.
            let (k, v) = pair(py, MAX_SLOTS + 3, b"K", b"\xff").unwrap();
            assert_eq!(
                (k.to_cow().unwrap(), v.to_cow().unwrap()),
                ("K".into(), "\u{ff}".into())
            );
            assert_eq!(latin1(py, b"").unwrap().to_cow().unwrap(), "");
        });
    }
}

//! A safe layer over the parts of httpd and APR the module uses. Raw pointers enter through
//! one documented `unsafe fn from_ptr` per type; everything above this layer is safe Rust.

pub mod body;
pub mod log;
pub mod pool;
pub mod regex;
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

/// The running httpd's version, `X.Y.Z`, from its description (`Apache/2.4.62 (Debian)`),
/// for the applications' `apache.version`.
pub fn server_version() -> Option<(u32, u32, u32)> {
    // SAFETY: the description is a static string httpd sets up before configuration is read.
    let description = unsafe { cstr(crate::ffi::ap_get_server_description()) }?;
    version_of(description)
}

/// `X.Y.Z` from an httpd description such as `Apache/2.4.62 (Debian) OpenSSL/3.0.15`.
fn version_of(description: &str) -> Option<(u32, u32, u32)> {
    let v = description
        .strip_prefix("Apache/")?
        .split([' ', '-'])
        .next()?;
    let number = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let parts: Vec<u32> = v.split('.').map(number).collect::<Option<_>>()?;
    match parts[..] {
        [x, y, z] => Some((x, y, z)),
        _ => None,
    }
}

#[cfg(test)]
mod server_version_tests {
    #[test]
    fn version_from_description() {
        assert_eq!(
            super::version_of("Apache/2.4.62 (Debian)"),
            Some((2, 4, 62))
        );
        assert_eq!(super::version_of("Apache/2.4.66"), Some((2, 4, 66)));
        assert_eq!(super::version_of("Apache"), None);
        assert_eq!(super::version_of("Apache/2.4"), None);
        assert_eq!(super::version_of("Apache/2.x.1"), None);
        assert_eq!(super::version_of("Apache/2.+4.1"), None);
        assert_eq!(super::version_of("Apache/2..1"), None);
    }
}

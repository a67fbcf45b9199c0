//! Apache's regular expressions (PCRE through `ap_regex`), as `AliasMatch` uses them, for
//! `WSGIScriptAliasMatch`: compiled once into the configuration pool, matched per request and
//! expanded with `ap_pregsub` (`$0`-`$9`, `&`).

use std::ffi::CString;

use crate::ffi;
use crate::httpd::pool::Pool;

/// Most captures Apache hands out (`AP_MAX_REG_MATCH`).
const MAX_MATCH: usize = 10;

/// A compiled expression, owned by the configuration pool it was compiled in. Kept as a plain
/// number in the (pure) configuration records; 0 is none.
pub type Handle = usize;

/// Compiles `pattern` into `pool` (which frees it with the configuration).
pub fn compile(pool: Pool, pattern: &str) -> Result<Handle, String> {
    let c = CString::new(pattern).map_err(|_| format!("'{pattern}' contains a NUL byte"))?;
    // SAFETY: the pool is live (a configuration pool while directives are read); the pattern
    // is a NUL-terminated string; ap_pregcomp copies what it keeps.
    let re = unsafe { ffi::ap_pregcomp(pool.as_ptr(), c.as_ptr(), 0) };
    if re.is_null() {
        return Err(format!("'{pattern}' is not a valid regular expression"));
    }
    Ok(re as Handle)
}

/// Matches `subject` against the expression `handle`; on a match, returns where the whole
/// match ends and `template` expanded with its captures, allocated in `pool`.
pub fn substitute(
    handle: Handle,
    pool: Pool,
    subject: &[u8],
    template: &str,
) -> Option<(usize, Vec<u8>)> {
    if handle == 0 {
        return None;
    }
    let subject_c = CString::new(subject).ok()?;
    let template_c = CString::new(template).ok()?;
    let mut matches = [ffi::ap_regmatch_t {
        rm_so: -1,
        rm_eo: -1,
    }; MAX_MATCH];
    // SAFETY: the handle came from `compile` in a configuration pool that outlives every
    // request; PCRE matching of a compiled expression is thread-safe; `matches` has
    // MAX_MATCH entries.
    let found = unsafe {
        ffi::ap_regexec(
            handle as *const ffi::ap_regex_t,
            subject_c.as_ptr(),
            MAX_MATCH,
            matches.as_mut_ptr(),
            0,
        )
    } == 0;
    if !found {
        return None;
    }
    let end = usize::try_from(matches[0].rm_eo).ok()?;
    // SAFETY: the pool is the request's; the strings are NUL-terminated and `matches` holds
    // the offsets ap_regexec produced for `subject_c`.
    let expanded = unsafe {
        crate::httpd::cbytes(ffi::ap_pregsub(
            pool.as_ptr(),
            template_c.as_ptr(),
            subject_c.as_ptr(),
            MAX_MATCH,
            matches.as_mut_ptr(),
        ))
    }?;
    Some((end.min(subject.len()), expanded.to_vec()))
}

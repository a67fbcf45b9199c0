//! mod_wsgi's auth scripts as Apache auth providers, run in a daemon process group:
//!
//! - the authn provider `wsgi` (`AuthBasicProvider wsgi`, `AuthDigestProvider wsgi`) calls
//!   the `WSGIAuthUserScript`'s `check_password(environ, user, password)` or
//!   `get_realm_hash(environ, user, realm)`;
//! - the authz provider `wsgi-group` (`Require wsgi-group NAME...`) calls the
//!   `WSGIAuthGroupScript`'s `groups_for_user(environ, user)`;
//! - the access checker calls the `WSGIAccessScript`'s `allow_access(environ, host)`.
//!
//! Each check is one hook call ([`crate::dispatch::hook`]); nothing is cached. A call that
//! fails (the script raised, the daemon is down) is a general error: Apache answers 500, and
//! never lets the request through.

use rswsgi_protocol::Code;
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use rswsgi_protocol::{HookCall, HookReply};
use tracing::Level;

use crate::config::{DirConfig, HookScript};
use crate::directives::module_config;
use crate::dispatch::hook;
use crate::ffi;
use crate::httpd::log;
use crate::httpd::request::Request;

static AUTHN: ffi::authn_provider = ffi::authn_provider {
    check_password: Some(check_password),
    get_realm_hash: Some(get_realm_hash),
};

static AUTHZ: ffi::authz_provider = ffi::authz_provider {
    check_authorization: Some(check_authorization),
    parse_require_line: None,
};

/// Registers the providers and the access checker (from `register_hooks`).
///
/// # Safety
/// `p` is the pool httpd passes to `register_hooks`.
pub unsafe fn register(p: *mut ffi::apr_pool_t) {
    let per_conf = ffi::AP_AUTH_INTERNAL_PER_CONF as i32;
    // SAFETY: the provider records are statics, never written; the names are static strings.
    unsafe {
        ffi::ap_register_auth_provider(
            p,
            c"authn".as_ptr(),
            c"wsgi".as_ptr(),
            c"0".as_ptr(),
            (&raw const AUTHN).cast(),
            per_conf,
        );
        ffi::ap_register_auth_provider(
            p,
            c"authz".as_ptr(),
            c"wsgi-group".as_ptr(),
            c"0".as_ptr(),
            (&raw const AUTHZ).cast(),
            per_conf,
        );
        ffi::ap_hook_access_checker(
            Some(access_checker),
            std::ptr::null(),
            std::ptr::null(),
            ffi::APR_HOOK_MIDDLE as i32,
        );
    }
}

/// The request's directory configuration (borrowed: the access checker runs for every
/// request, and copies nothing unless a script is configured).
fn dir_config<'a>(r: &Request) -> Option<&'a DirConfig> {
    // SAFETY: the request's per-dir vector holds this module's DirConfig (or NULL); it lives
    // in a pool that outlives the request.
    unsafe { module_config::<DirConfig>(r.per_dir_config()).as_ref() }
}

/// Runs `body` for the request `r` httpd passed, turning a panic into `on_panic` and a log
/// line: no panic crosses into httpd.
fn guarded<T: Copy>(
    r: *mut ffi::request_rec,
    on_panic: T,
    body: impl FnOnce(&mut Request) -> T,
) -> T {
    // SAFETY: httpd passes the live request being served on this thread.
    let Some(mut req) = (unsafe { Request::from_ptr(r) }) else {
        return on_panic;
    };
    match catch_unwind(AssertUnwindSafe(|| body(&mut req))) {
        Ok(v) => v,
        Err(_) => {
            log::request(
                &req,
                Level::ERROR,
                &format!(
                    "{}: internal error (panic) in mod_rswsgi's auth check",
                    Code::ModulePanic
                ),
            );
            on_panic
        }
    }
}

/// The script a provider needs, or a log line saying which directive is missing.
fn script_for(
    r: &Request,
    pick: fn(&DirConfig) -> Option<HookScript>,
    what: &str,
) -> Option<HookScript> {
    let s = dir_config(r).and_then(pick);
    if s.is_none() {
        log::request(
            r,
            Level::ERROR,
            &format!(
                "{}: {what} is used here, but no script is configured for it",
                Code::AuthNoScript
            ),
        );
    }
    s
}

/// # Safety
/// httpd's authn provider contract: live request, NUL-terminated user and password.
unsafe extern "C" fn check_password(
    r: *mut ffi::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> ffi::authn_status {
    // SAFETY: the contract above.
    let (user, password) = unsafe { (bytes(user), bytes(password)) };
    guarded(r, ffi::AUTH_GENERAL_ERROR, |r| {
        let Some(script) = script_for(
            r,
            |d| d.hooks.auth_user.clone(),
            "AuthBasicProvider wsgi (WSGIAuthUserScript)",
        ) else {
            return ffi::AUTH_GENERAL_ERROR;
        };
        match hook::call(r, &script, HookCall::CheckPassword { user, password }, None) {
            Ok(HookReply::Granted) => ffi::AUTH_GRANTED,
            Ok(HookReply::GrantedAs(name)) => {
                r.set_user(&name);
                ffi::AUTH_GRANTED
            }
            Ok(HookReply::Denied) => ffi::AUTH_DENIED,
            Ok(HookReply::Unknown) => ffi::AUTH_USER_NOT_FOUND,
            Ok(_) | Err(_) => ffi::AUTH_GENERAL_ERROR,
        }
    })
}

/// # Safety
/// httpd's authn provider contract: live request, NUL-terminated user and realm, `rethash`
/// writable.
unsafe extern "C" fn get_realm_hash(
    r: *mut ffi::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> ffi::authn_status {
    // SAFETY: the contract above.
    let (user, realm) = unsafe { (bytes(user), bytes(realm)) };
    guarded(r, ffi::AUTH_GENERAL_ERROR, |r| {
        let Some(script) = script_for(
            r,
            |d| d.hooks.auth_user.clone(),
            "AuthDigestProvider wsgi (WSGIAuthUserScript)",
        ) else {
            return ffi::AUTH_GENERAL_ERROR;
        };
        match hook::call(r, &script, HookCall::RealmHash { user, realm }, None) {
            Ok(HookReply::RealmHash(h)) if !rethash.is_null() => {
                // SAFETY: rethash is writable (contract); the copy lives in the request pool.
                unsafe { *rethash = r.pool().strdup(&h) };
                ffi::AUTH_USER_FOUND
            }
            Ok(HookReply::Unknown) => ffi::AUTH_USER_NOT_FOUND,
            Ok(_) | Err(_) => ffi::AUTH_GENERAL_ERROR,
        }
    })
}

/// # Safety
/// httpd's authz provider contract: live request, NUL-terminated require line.
unsafe extern "C" fn check_authorization(
    r: *mut ffi::request_rec,
    require_line: *const c_char,
    _parsed: *const c_void,
) -> ffi::authz_status {
    // SAFETY: the contract above.
    let line = String::from_utf8_lossy(unsafe { bytes(require_line) }).into_owned();
    guarded(r, ffi::AUTHZ_GENERAL_ERROR, |r| {
        let Some(user) = r.user().map(<[u8]>::to_vec) else {
            return ffi::AUTHZ_DENIED_NO_USER;
        };
        let Some(script) = script_for(
            r,
            |d| d.hooks.auth_group.clone(),
            "Require wsgi-group (WSGIAuthGroupScript)",
        ) else {
            return ffi::AUTHZ_GENERAL_ERROR;
        };
        let groups = match hook::call(r, &script, HookCall::GroupsForUser { user: &user }, None) {
            Ok(HookReply::Groups(groups)) => groups,
            Ok(_) | Err(_) => return ffi::AUTHZ_GENERAL_ERROR,
        };
        let wanted = crate::config::words::split_words(&line);
        if wanted
            .iter()
            .any(|w| groups.iter().any(|g| g == w.as_bytes()))
        {
            return ffi::AUTHZ_GRANTED;
        }
        // Quoted and escaped: the name is the client's, and may hold control characters.
        let user = String::from_utf8_lossy(&user);
        log::request(
            r,
            Level::ERROR,
            &format!("{}: authorization of user {user:?} failed: not a member of any of the groups {wanted:?}", Code::AuthzGroupDenied),
        );
        ffi::AUTHZ_DENIED
    })
}

/// # Safety
/// httpd's access_checker hook contract: a live request.
unsafe extern "C" fn access_checker(r: *mut ffi::request_rec) -> i32 {
    guarded(r, ffi::HTTP_INTERNAL_SERVER_ERROR as i32, |r| {
        let Some(script) = dir_config(r).and_then(|d| d.hooks.access.clone()) else {
            return ffi::DECLINED;
        };
        let host = r.remote_host_or_ip();
        match hook::call(r, &script, HookCall::AllowAccess { host: &host }, None) {
            Ok(HookReply::Granted) => ffi::OK as i32,
            Ok(HookReply::Unknown) => ffi::DECLINED,
            Ok(HookReply::Denied) => {
                let host = String::from_utf8_lossy(&host);
                log::request(
                    r,
                    Level::ERROR,
                    &format!(
                        "{}: client {host} denied by WSGIAccessScript {}",
                        Code::AccessDenied,
                        script.script
                    ),
                );
                ffi::HTTP_FORBIDDEN as i32
            }
            Ok(_) => ffi::HTTP_INTERNAL_SERVER_ERROR as i32,
            Err(status) => status,
        }
    })
}

/// The bytes of a C string httpd passed (empty for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives the returned slice.
unsafe fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: the contract above.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

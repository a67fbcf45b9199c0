//! The directive table's entries: httpd's `AP_INIT_*` macros as `const fn`s, each pointing
//! its `cmd_data` at a `'static` [`Directive`] that the handlers read back.

use std::ffi::{c_void, CStr};
use std::os::raw::c_int;

use super::{on_flag, on_section, on_text};
use crate::config::HookKind;
use crate::ffi;

/// `AP_INIT_RAW_ARGS`.
pub const fn raw(
    name: &'static CStr,
    d: &'static Directive,
    how: u32,
    help: &'static CStr,
) -> ffi::command_rec {
    entry(
        name,
        d,
        how,
        ffi::RAW_ARGS,
        ffi::cmd_func {
            raw_args: Some(on_text),
        },
        help,
    )
}

/// `AP_INIT_TAKE1`.
pub const fn take1(
    name: &'static CStr,
    d: &'static Directive,
    how: u32,
    help: &'static CStr,
) -> ffi::command_rec {
    entry(
        name,
        d,
        how,
        ffi::TAKE1,
        ffi::cmd_func {
            take1: Some(on_text),
        },
        help,
    )
}

/// `AP_INIT_FLAG`.
pub const fn flag(
    name: &'static CStr,
    d: &'static Directive,
    how: u32,
    help: &'static CStr,
) -> ffi::command_rec {
    entry(
        name,
        d,
        how,
        ffi::FLAG,
        ffi::cmd_func {
            flag: Some(on_flag),
        },
        help,
    )
}

/// A `RAW_ARGS` section read at once (`EXEC_ON_READ`), whose contents [`on_section`] skips.
pub const fn skipped_section(
    name: &'static CStr,
    how: u32,
    help: &'static CStr,
) -> ffi::command_rec {
    entry(
        name,
        &Directive::Catalogued,
        how | ffi::EXEC_ON_READ,
        ffi::RAW_ARGS,
        ffi::cmd_func {
            raw_args: Some(on_section),
        },
        help,
    )
}

/// The all-zero record that ends the table.
pub const fn end() -> ffi::command_rec {
    ffi::command_rec {
        name: std::ptr::null(),
        func: ffi::cmd_func { no_args: None },
        cmd_data: std::ptr::null_mut(),
        req_override: 0,
        args_how: 0,
        errmsg: std::ptr::null(),
    }
}

const fn entry(
    name: &'static CStr,
    d: &'static Directive,
    how: u32,
    args: ffi::cmd_how,
    func: ffi::cmd_func,
    help: &'static CStr,
) -> ffi::command_rec {
    ffi::command_rec {
        name: name.as_ptr(),
        func,
        // httpd hands this back as `cmd->info`; `Directive::from_data` reads it.
        cmd_data: d as *const Directive as *mut c_void,
        req_override: how as c_int,
        args_how: args,
        errmsg: help.as_ptr(),
    }
}

/// Which directive a table entry is; passed to the handler as `cmd_data`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Directive {
    /// `WSGIDaemonProcess`.
    DaemonProcess,
    /// `WSGIScriptAlias`.
    ScriptAlias,
    /// `WSGIProcessGroup`.
    ProcessGroup,
    /// `WSGICallableObject`.
    CallableObject,
    /// `WSGIApplicationGroup`.
    ApplicationGroup,
    /// `WSGISocketPrefix`.
    SocketPrefix,
    /// `RSWSGIDaemonExecutable`.
    DaemonExecutable,
    /// `RSWSGIHealthDrainFile`.
    HealthDrainFile,
    /// `WSGIRestrictEmbedded`.
    RestrictEmbedded,
    /// `WSGIPythonHome`.
    PythonHome,
    /// `WSGIPassAuthorization`.
    PassAuthorization,
    /// `WSGIChunkedRequest`.
    ChunkedRequest,
    /// `WSGIScriptReloading`.
    ScriptReloading,
    /// `WSGIMapHEADToGET`.
    MapHeadToGet,
    /// `WSGITrustedProxyHeaders`.
    TrustedProxyHeaders,
    /// `WSGITrustedProxies`.
    TrustedProxies,
    /// `WSGIErrorOverride`.
    ErrorOverride,
    /// `WSGIHandlerScript`.
    HandlerScript,
    /// `WSGIPythonPath`.
    PythonPath,
    /// `RSWSGIImplicitDaemonProcess`.
    ImplicitDaemonProcess,
    /// `WSGIImportScript`.
    ImportScript,
    /// `WSGIScriptAliasMatch`.
    ScriptAliasMatch,
    /// `WSGIPythonOptimize`.
    PythonOptimize,
    /// `WSGIDontWriteBytecode`.
    DontWriteBytecode,
    /// `WSGIPythonHashSeed`.
    PythonHashSeed,
    /// `WSGIPythonWarnings`.
    PythonWarnings,
    /// `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`, `WSGIDispatchScript`.
    Hook(HookKind),
    /// `WSGIGroupAuthoritative`.
    GroupAuthoritative,
    /// `WSGIRestrictProcess`.
    RestrictProcess,
    /// `WSGIEnableSendfile`.
    EnableSendfile,
    /// `WSGIRestrictStdin`.
    RestrictStdin,
    /// `WSGIRestrictStdout`.
    RestrictStdout,
    /// `WSGIVerboseDebugging`.
    VerboseDebugging,
    /// `WSGIIgnoreActivity`.
    IgnoreActivity,
    /// `WSGISwitchInterval`.
    SwitchInterval,
    /// `WSGISlowRequests`.
    SlowRequests,
    /// A directive of [`crate::config::catalogue`]: warned about, or refused.
    Catalogued,
}

impl Directive {
    /// Directives that configure every daemon, or httpd itself, read only in the main server
    /// (as mod_wsgi, whose same directives are `GLOBAL_ONLY`): in a `<VirtualHost>` they are
    /// an error rather than ignored.
    pub(super) fn main_server_only(self) -> bool {
        matches!(
            self,
            Directive::SocketPrefix
                | Directive::DaemonExecutable
                | Directive::HealthDrainFile
                | Directive::RestrictStdin
                | Directive::RestrictStdout
                | Directive::VerboseDebugging
                | Directive::RestrictEmbedded
                | Directive::PythonHome
                | Directive::PythonPath
                | Directive::ImplicitDaemonProcess
                | Directive::PythonOptimize
                | Directive::DontWriteBytecode
                | Directive::PythonHashSeed
                | Directive::PythonWarnings
                | Directive::SwitchInterval
                | Directive::SlowRequests
        )
    }

    /// The directive a table entry's `cmd_data` points at.
    ///
    /// # Safety
    /// `p` must be NULL or the `cmd_data` of an entry built by [`entry`]: a pointer to a
    /// `'static` `Directive`.
    pub(super) unsafe fn from_data(p: *mut c_void) -> Option<Self> {
        // SAFETY: per this function's contract.
        unsafe { p.cast::<Directive>().as_ref() }.copied()
    }
}

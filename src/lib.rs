//! `mod_rswsgi`: an Apache httpd 2.4 module that serves WSGI applications (and native Rust
//! handlers) through supervised daemon processes, configured with mod_wsgi's directives.
//!
//! This file holds only the exported module record, its directive table and hook
//! registration; see `ARCHITECTURE.md` for the request path.

#[cfg_attr(test, allow(dead_code))]
mod access;
#[cfg(not(test))]
mod auth;
#[cfg_attr(test, allow(dead_code, unused_imports))]
mod config;
#[cfg(not(test))]
mod conftree;
mod daemon_ids;
#[cfg(not(test))]
mod directives;
#[cfg(not(test))]
mod dispatch;
mod environ;
#[cfg(not(test))]
mod ffi;
#[cfg(test)]
mod fuzz_props;
#[cfg(not(test))]
mod hooks;
#[cfg(not(test))]
mod httpd;
#[cfg_attr(test, allow(dead_code))]
mod metrics;
#[cfg(not(test))]
mod pyhome;
#[cfg_attr(test, allow(dead_code))]
mod relay;
mod ring;
#[cfg(not(test))]
mod supervisor;

#[cfg(not(test))]
pub use module::rswsgi_module;

/// The module record and directive table. Not compiled into unit tests: a test binary cannot
/// resolve httpd's symbols, and everything testable lives in `config`.
#[cfg(not(test))]
mod module {
    use std::ptr::null_mut;

    use crate::config::HookKind;
    use crate::directives::{self as d, Directive};
    use crate::ffi;

    /// The command table httpd reads: plain data, never written after load.
    #[repr(transparent)]
    pub struct Commands<const N: usize>(pub [ffi::command_rec; N]);
    // SAFETY: the table is immutable static data (names and function pointers).
    unsafe impl<const N: usize> Sync for Commands<N> {}

    const SERVER: u32 = ffi::RSRC_CONF;
    const ANYWHERE: u32 = ffi::RSRC_CONF | ffi::ACCESS_CONF;
    /// Also in `.htaccess` under `AllowOverride FileInfo` (mod_wsgi's `OR_FILEINFO`).
    const FILEINFO: u32 = ffi::OR_FILEINFO;
    /// Also in `.htaccess` under `AllowOverride AuthConfig` (mod_wsgi's `OR_AUTHCFG`).
    const AUTHCFG: u32 = ffi::OR_AUTHCFG;

    static COMMANDS: Commands<54> = Commands([
        d::raw(
            c"WSGIDaemonProcess",
            &Directive::DaemonProcess,
            SERVER,
            c"NAME [option=value]... : a group of daemon processes",
        ),
        d::raw(
            c"WSGIScriptAlias",
            &Directive::ScriptAlias,
            SERVER,
            c"URL-PATH FILE [process-group=NAME] : mount a WSGI script",
        ),
        d::take1(
            c"WSGIProcessGroup",
            &Directive::ProcessGroup,
            ANYWHERE,
            c"NAME : the daemon group that serves requests here",
        ),
        d::take1(
            c"WSGICallableObject",
            &Directive::CallableObject,
            ANYWHERE,
            c"NAME : the WSGI callable in the script (default application)",
        ),
        d::take1(
            c"WSGIApplicationGroup",
            &Directive::ApplicationGroup,
            ANYWHERE,
            c"NAME : passed to the app as mod_wsgi.application_group",
        ),
        d::take1(
            c"WSGISocketPrefix",
            &Directive::SocketPrefix,
            SERVER,
            c"PATH : prefix of the daemon sockets' paths",
        ),
        d::take1(
            c"RSWSGIHealthDrainFile",
            &Directive::HealthDrainFile,
            SERVER,
            c"PATH : while this file exists, the metrics endpoint's ?health answers 503",
        ),
        d::take1(
            c"RSWSGIDaemonExecutable",
            &Directive::DaemonExecutable,
            SERVER,
            c"PATH : the rswsgi-daemon binary",
        ),
        d::flag(
            c"WSGIRestrictEmbedded",
            &Directive::RestrictEmbedded,
            SERVER,
            c"On|Off : On refuses a script with no daemon process group (Off, the default: an implicit daemon group serves it)",
        ),
        d::take1(
            c"WSGIPythonHome",
            &Directive::PythonHome,
            SERVER,
            c"DIR : default python-home of daemon groups that set none",
        ),
        d::flag(
            c"WSGIPassAuthorization",
            &Directive::PassAuthorization,
            ANYWHERE,
            c"On|Off : pass the Authorization header to the application (default Off)",
        ),
        d::flag(
            c"WSGIScriptReloading",
            &Directive::ScriptReloading,
            ANYWHERE,
            c"On|Off : recycle a daemon when its WSGI script changes on disk (default On)",
        ),
        d::flag(
            c"WSGIChunkedRequest",
            &Directive::ChunkedRequest,
            ANYWHERE,
            c"On|Off : accept request bodies with chunked transfer coding (default Off: 411)",
        ),
        d::take1(
            c"WSGIMapHEADToGET",
            &Directive::MapHeadToGet,
            ANYWHERE,
            c"Off|On|Auto : pass HEAD requests to the application as GET (default Auto)",
        ),
        d::raw(
            c"WSGITrustedProxyHeaders",
            &Directive::TrustedProxyHeaders,
            ANYWHERE,
            c"HEADER... : proxy headers (X-Forwarded-For, ...) to apply from trusted proxies",
        ),
        d::raw(
            c"WSGITrustedProxies",
            &Directive::TrustedProxies,
            ANYWHERE,
            c"ADDRESS[/MASK]... : peers whose proxy headers are trusted (default: all)",
        ),
        d::flag(
            c"WSGIErrorOverride",
            &Directive::ErrorOverride,
            ANYWHERE,
            c"On|Off : answer an application's error status with Apache's ErrorDocument (default Off)",
        ),
        d::raw(
            c"WSGIHandlerScript",
            &Directive::HandlerScript,
            ANYWHERE,
            c"NAME FILE [process-group=G] [application-group=A] [pass-authorization=On|Off] : \
              the script (its handle_request) serving requests whose handler is NAME",
        ),
        d::take1(
            c"WSGIPythonPath",
            &Directive::PythonPath,
            SERVER,
            c"DIR[:DIR]... : sys.path entries of the implicit daemon groups (embedded-mode sites)",
        ),
        d::raw(
            c"RSWSGIImplicitDaemonProcess",
            &Directive::ImplicitDaemonProcess,
            SERVER,
            c"[option=value]... : WSGIDaemonProcess options of the implicit daemon groups \
              that serve scripts with no group (default processes=2 threads=15)",
        ),
        d::raw(
            c"WSGIImportScript",
            &Directive::ImportScript,
            SERVER,
            c"FILE process-group=NAME [application-group=NAME] : a script the group's daemons load at start-up",
        ),
        d::take1(
            c"WSGIPythonOptimize",
            &Directive::PythonOptimize,
            SERVER,
            c"0|1|2 : the daemons' Python optimization level (PYTHONOPTIMIZE)",
        ),
        d::take1(
            c"WSGIDontWriteBytecode",
            &Directive::DontWriteBytecode,
            SERVER,
            c"On|Off : the daemons' Python writes no .pyc files (PYTHONDONTWRITEBYTECODE)",
        ),
        d::take1(
            c"WSGIPythonHashSeed",
            &Directive::PythonHashSeed,
            SERVER,
            c"random|N : the daemons' Python hash seed (PYTHONHASHSEED)",
        ),
        d::take1(
            c"WSGIPythonWarnings",
            &Directive::PythonWarnings,
            SERVER,
            c"FILTER : a warnings filter for the daemons' Python (PYTHONWARNINGS); repeatable",
        ),
        d::raw(
            c"WSGIAcceptMutex",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIAcceptMutex: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGILazyInitialization",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi 4's WSGILazyInitialization: see docs/directives.md for what rswsgi does with it",
        ),
        d::flag(
            c"WSGIVerboseDebugging",
            &Directive::VerboseDebugging,
            SERVER,
            c"On|Off : the daemons also log their debug lines (default Off)",
        ),
        d::raw(
            c"WSGICaseSensitivity",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGICaseSensitivity: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGIDestroyInterpreter",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIDestroyInterpreter: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGIPerInterpreterGIL",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIPerInterpreterGIL: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGIFreeThreading",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIFreeThreading: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGIPassApacheRequest",
            &Directive::Catalogued,
            ANYWHERE,
            c"mod_wsgi's WSGIPassApacheRequest: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGIRestrictProcess",
            &Directive::RestrictProcess,
            ANYWHERE,
            c"GROUP... : the only daemon process groups requests here may be sent to",
        ),
        d::flag(
            c"WSGIEnableSendfile",
            &Directive::EnableSendfile,
            FILEINFO,
            c"On|Off : send wsgi.file_wrapper files with sendfile (default: as EnableSendfile says)",
        ),
        d::raw(
            c"WSGIPythonEggs",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIPythonEggs: see docs/directives.md for what rswsgi does with it",
        ),
        d::take1(
            c"WSGISwitchInterval",
            &Directive::SwitchInterval,
            SERVER,
            c"SECS : sys.setswitchinterval() in the implicit daemon groups that stand in for embedded mode",
        ),
        d::flag(
            c"WSGIIgnoreActivity",
            &Directive::IgnoreActivity,
            FILEINFO,
            c"On|Off : requests here do not count as activity for inactivity-timeout",
        ),
        d::raw(
            c"WSGIServerMetrics",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIServerMetrics: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGITelemetryService",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGITelemetryService: see docs/directives.md for what rswsgi does with it",
        ),
        d::raw(
            c"WSGITelemetryOptions",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGITelemetryOptions: see docs/directives.md for what rswsgi does with it",
        ),
        d::take1(
            c"WSGISlowRequests",
            &Directive::SlowRequests,
            SERVER,
            c"SECS : log requests slower than this (every daemon group without slow-requests=)",
        ),
        d::raw(
            c"WSGIScriptAliasMatch",
            &Directive::ScriptAliasMatch,
            SERVER,
            c"REGEX FILE [option=value]... : mounts the scripts FILE names ($1...) at the URLs REGEX matches",
        ),
        d::raw(
            c"WSGIDispatchScript",
            &Directive::Hook(HookKind::Dispatch),
            ANYWHERE,
            c"FILE [application-group=NAME] [process-group=NAME] : chooses each request's process group, application group and callable in Python, in a daemon",
        ),
        d::raw(
            c"WSGIAccessScript",
            &Directive::Hook(HookKind::Access),
            AUTHCFG,
            c"FILE [application-group=NAME] [process-group=NAME] : allow_access(environ, host) decides who may enter, run in a daemon",
        ),
        d::raw(
            c"WSGIAuthUserScript",
            &Directive::Hook(HookKind::AuthUser),
            AUTHCFG,
            c"FILE [application-group=NAME] [process-group=NAME] : the 'wsgi' auth provider: check_password / get_realm_hash, run in a daemon",
        ),
        d::raw(
            c"WSGIAuthGroupScript",
            &Directive::Hook(HookKind::AuthGroup),
            AUTHCFG,
            c"FILE [application-group=NAME] [process-group=NAME] : 'Require wsgi-group NAME...': groups_for_user, run in a daemon",
        ),
        d::flag(
            c"WSGIGroupAuthoritative",
            &Directive::GroupAuthoritative,
            AUTHCFG,
            c"On|Off : accepted; under httpd 2.4 the Require sections decide how providers combine",
        ),
        d::raw(
            c"WSGISocketRotation",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGISocketRotation: see docs/directives.md for what rswsgi does with it",
        ),
        d::flag(
            c"WSGIRestrictStdin",
            &Directive::RestrictStdin,
            SERVER,
            c"On|Off : sys.stdin raises OSError in every daemon (default Off)",
        ),
        d::flag(
            c"WSGIRestrictStdout",
            &Directive::RestrictStdout,
            SERVER,
            c"On|Off : sys.stdout raises OSError in every daemon (default Off: it goes to the error log)",
        ),
        d::raw(
            c"WSGIRestrictSignal",
            &Directive::Catalogued,
            SERVER,
            c"mod_wsgi's WSGIRestrictSignal: see docs/directives.md for what rswsgi does with it",
        ),
        d::skipped_section(
            c"<WSGIInterpreterOptions",
            SERVER,
            c"mod_wsgi's sub-interpreter options: skipped (see docs/directives.md)",
        ),
        d::end(),
    ]);

    /// The module's name (`module->name`, what `<IfModule NAME.c>` compares).
    pub const MODULE_NAME: &std::ffi::CStr = c"mod_wsgi.c";

    /// The module record httpd loads (`LoadModule rswsgi_module mod_rswsgi.so`). httpd writes
    /// its index and list link into it, so it must be a mutable static.
    #[no_mangle]
    #[allow(non_upper_case_globals)]
    pub static mut rswsgi_module: ffi::module = ffi::module {
        version: ffi::MODULE_MAGIC_NUMBER_MAJOR as i32,
        minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as i32,
        module_index: -1,
        // mod_wsgi's name, so that a configuration's `<IfModule mod_wsgi.c>` sections (Debian's
        // own wsgi.conf, most packaged sites) apply as they did; `<IfModule rswsgi_module>`
        // names this module alone. check_config refuses to run beside the real mod_wsgi.
        name: MODULE_NAME.as_ptr(),
        dynamic_load_handle: null_mut(),
        next: null_mut(),
        magic: ffi::MODULE_MAGIC_COOKIE as _,
        rewrite_args: None,
        create_dir_config: Some(d::create_dir_config),
        merge_dir_config: Some(d::merge_dir_config),
        create_server_config: Some(d::create_server_config),
        merge_server_config: Some(d::merge_server_config),
        cmds: &raw const COMMANDS as *const ffi::command_rec,
        register_hooks: Some(crate::hooks::register),
        flags: 0,
    };
}

/// This module's index in httpd's configuration vectors.
#[cfg(not(test))]
fn module_index() -> i32 {
    // SAFETY: httpd sets module_index once while loading the module, before any hook runs.
    unsafe { (*std::ptr::addr_of!(rswsgi_module)).module_index }
}

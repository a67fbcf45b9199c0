//! Directive handlers and configuration record constructors: the FFI side of `config`.

mod entry;

pub use entry::{end, flag, raw, skipped_section, take1, Directive};

use rswsgi_protocol::Code;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

use crate::config::{DaemonGroupConfig, DirConfig, ScriptAlias, ServerConfig};
use crate::config::{HookScript, PythonFlags};
use crate::ffi;
use crate::httpd::pool::Pool;
use crate::httpd::{cstr, log};

/// The module's slot in a configuration vector (`ap_get_module_config`).
///
/// # Safety
/// `v` must be a live configuration vector from httpd.
pub unsafe fn module_config<T>(v: *mut ffi::ap_conf_vector_t) -> *mut T {
    // SAFETY: a configuration vector is an array of one pointer per module, indexed by
    // module_index (what the ap_get_module_config macro does).
    unsafe { *v.cast::<*mut c_void>().add(crate::module_index() as usize) }.cast()
}

/// The configuration of server `s`.
///
/// # Safety
/// `s` must be a live server_rec whose configuration this module created.
pub unsafe fn server_config<'a>(s: *mut ffi::server_rec) -> &'a mut ServerConfig {
    // SAFETY: create_server_config stored a ServerConfig in every server's slot.
    unsafe { &mut *module_config::<ServerConfig>((*s).module_config) }
}

fn location(cmd: &ffi::cmd_parms) -> String {
    // SAFETY: cmd->directive is the directive being processed, with its file name.
    unsafe {
        let d = cmd.directive;
        if d.is_null() {
            return "the configuration".into();
        }
        format!("{}:{}", cstr((*d).filename).unwrap_or("?"), (*d).line_num)
    }
}

/// The directory of the `<Directory /path>` section `cmd` is in, when it is directly in one
/// (not a regex, `<Location>` or `<Files>` section).
fn directory_section(cmd: &ffi::cmd_parms) -> Option<String> {
    // SAFETY: cmd->directive and its parents are the live configuration tree, and cmd->path is
    // NULL or a pool string, during configuration.
    unsafe {
        let d = cmd.directive.as_ref()?;
        let parent = d.parent.as_ref()?;
        let name = cstr(parent.directive)?;
        let path = cstr(cmd.path)?;
        let args = cstr(parent.args).unwrap_or("");
        (name.eq_ignore_ascii_case("<Directory") && !args.trim_start().starts_with('~'))
            .then(|| path.to_string())
            .filter(|p| p.starts_with('/'))
    }
}

fn server_root_relative(cmd: &ffi::cmd_parms, path: &str) -> String {
    let Ok(c) = std::ffi::CString::new(path) else {
        return path.to_string();
    };
    // SAFETY: cmd->pool is live during configuration; the result is NULL or a pool string.
    unsafe { cstr(ffi::ap_server_root_relative(cmd.pool, c.as_ptr())) }
        .unwrap_or(path)
        .to_string()
}

fn apply(
    cmd: &ffi::cmd_parms,
    mconfig: *mut c_void,
    d: Directive,
    arg: &str,
) -> Result<(), String> {
    // SAFETY: cmd->server is the server whose section is being read.
    let server = unsafe { server_config(cmd.server) };
    if d.main_server_only() {
        main_server_only(cmd)?;
    }
    match d {
        Directive::DaemonProcess
        | Directive::ScriptAlias
        | Directive::HandlerScript
        | Directive::ScriptAliasMatch
        | Directive::ImportScript => apply_mount(cmd, server, d, arg),
        Directive::PythonOptimize
        | Directive::DontWriteBytecode
        | Directive::PythonHashSeed
        | Directive::SwitchInterval
        | Directive::SlowRequests
        | Directive::PythonWarnings
        | Directive::SocketPrefix
        | Directive::DaemonExecutable
        | Directive::HealthDrainFile
        | Directive::PythonHome
        | Directive::PythonPath
        | Directive::ImplicitDaemonProcess => apply_server(cmd, server, d, arg),
        Directive::Catalogued => catalogued(cmd, arg),
        // SAFETY: for directives allowed in directory context httpd passes this module's dir
        // config.
        _ => apply_section(
            cmd,
            server,
            unsafe { &mut *mconfig.cast::<DirConfig>() },
            d,
            arg,
        ),
    }
}

/// The directives that mount scripts and define daemon groups.
fn apply_mount(
    cmd: &ffi::cmd_parms,
    server: &mut ServerConfig,
    d: Directive,
    arg: &str,
) -> Result<(), String> {
    match d {
        Directive::DaemonProcess => {
            let g = DaemonGroupConfig::parse(arg)?;
            // A user that resolves to root is refused here; a user that does not exist (yet) is
            // resolved again when the daemons start, and only stops its own group (503 + log).
            if let Some(crate::config::Principal::Name(n)) = &g.user {
                if let Ok(Some(u)) = nix::unistd::User::from_name(n) {
                    if u.uid.is_root() {
                        return Err(crate::config::root_refused("user", n));
                    }
                }
            }
            server.groups.push((g, location(cmd)));
        }
        Directive::ScriptAlias => {
            let mut a = ScriptAlias::parse(arg)?;
            a.script = server_root_relative(cmd, &a.script);
            // mod_wsgi's name for embedded mode: here, the implicit daemon group.
            a.process_group = a.process_group.filter(|g| g != EMBEDDED);
            a.directory = a.directory || std::path::Path::new(&a.script).is_dir();
            if a.script.ends_with(".rs") {
                return Err(format!(
                    "WSGIScriptAlias {} {}: a Rust source file cannot be served directly; build it with \
                     `express build-handler {} -o handler.so` and point WSGIScriptAlias at the .so",
                    a.url, a.script, a.script
                ));
            }
            if let Some(g) = &a.process_group {
                server.group_refs.push((
                    g.clone(),
                    format!("WSGIScriptAlias {} at {}", a.url, location(cmd)),
                ));
            }
            server.aliases.push(a);
        }
        Directive::HandlerScript => {
            let mut h = crate::config::HandlerScript::parse(arg)?;
            h.script = server_root_relative(cmd, &h.script);
            // mod_wsgi's name for embedded mode (mod_wsgi-express writes it): the implicit group.
            if h.process_group.as_deref() == Some(EMBEDDED) && !at_request_time() {
                server.embedded_sections = true;
            }
            if let Some(g) = h.process_group.as_ref().filter(|g| *g != EMBEDDED) {
                server.group_refs.push((
                    g.clone(),
                    format!("WSGIHandlerScript {} at {}", h.name, location(cmd)),
                ));
            }
            server.handler_scripts.retain(|other| other.name != h.name);
            server.handler_scripts.push(h);
        }
        Directive::ScriptAliasMatch => {
            let mut a = ScriptAlias::parse_match(arg)?;
            a.script = server_root_relative(cmd, &a.script);
            a.process_group = a.process_group.filter(|g| g != EMBEDDED);
            // SAFETY: cmd->pool is the configuration pool, which outlives every request.
            let pool = unsafe { Pool::from_ptr(cmd.pool) };
            a.regex = crate::httpd::regex::compile(pool, &a.url)
                .map_err(|e| format!("WSGIScriptAliasMatch {e}"))?;
            if let Some(g) = &a.process_group {
                server.group_refs.push((
                    g.clone(),
                    format!("WSGIScriptAliasMatch {} at {}", a.url, location(cmd)),
                ));
            }
            server.aliases.push(a);
        }
        Directive::ImportScript => {
            let (file, group, app_group) = crate::config::parse_import_script(arg)?;
            if group != EMBEDDED {
                server.group_refs.push((
                    group.clone(),
                    format!("WSGIImportScript {file} at {}", location(cmd)),
                ));
            }
            server
                .import_scripts
                .push((server_root_relative(cmd, &file), group, app_group));
        }
        _ => {}
    }
    Ok(())
}

/// The server-wide settings (every daemon's Python, the sockets, the daemon binary).
fn apply_server(
    cmd: &ffi::cmd_parms,
    server: &mut ServerConfig,
    d: Directive,
    arg: &str,
) -> Result<(), String> {
    match d {
        Directive::PythonOptimize => {
            server.python_flags.optimize = Some(PythonFlags::parse_optimize(arg)?)
        }
        Directive::DontWriteBytecode => {
            server.python_flags.dont_write_bytecode =
                Some(PythonFlags::parse_on_off("WSGIDontWriteBytecode", arg)?)
        }
        Directive::PythonHashSeed => {
            server.python_flags.hash_seed = Some(PythonFlags::parse_hash_seed(arg)?)
        }
        Directive::SwitchInterval => {
            server.python_flags.switch_interval = Some(PythonFlags::parse_switch_interval(arg)?)
        }
        Directive::SlowRequests => {
            server.slow_requests = Some(
                crate::config::daemon_options::check_slow_requests(arg)
                    .map_err(|why| format!("WSGISlowRequests {arg}: {why}"))?,
            )
        }
        Directive::PythonWarnings => server
            .python_flags
            .warnings
            .push(PythonFlags::parse_warning(arg)?),
        Directive::SocketPrefix => server.socket_prefix = Some(server_root_relative(cmd, arg)),
        Directive::DaemonExecutable => {
            server.daemon_executable = Some(server_root_relative(cmd, arg))
        }
        Directive::HealthDrainFile => {
            server.health_drain_file = Some(server_root_relative(cmd, arg))
        }
        Directive::PythonHome => server.python_home = Some(arg.to_string()),
        Directive::PythonPath => server.python_path = Some(arg.to_string()),
        Directive::ImplicitDaemonProcess => {
            // Checked here, so that a bad option names this line.
            DaemonGroupConfig::parse(&format!("implicit {arg}"))
                .map_err(|e| format!("RSWSGIImplicitDaemonProcess: {e}"))?;
            server.implicit_options = Some(arg.to_string());
        }
        _ => {}
    }
    Ok(())
}

/// The directives of sections (and of the server's own directory configuration): groups,
/// hook scripts, what requests there get.
fn apply_section(
    cmd: &ffi::cmd_parms,
    server: &mut ServerConfig,
    dir: &mut DirConfig,
    d: Directive,
    arg: &str,
) -> Result<(), String> {
    match d {
        Directive::Hook(kind) => {
            let mut h = HookScript::parse(kind, arg)?;
            h.script = server_root_relative(cmd, &h.script);
            // From .htaccess (read in a child, at request time) nothing is recorded server-wide:
            // the groups may not load such a script unless their rules already allow it.
            if !at_request_time() {
                // Embedded mode under mod_wsgi: the implicit group, which the server then needs.
                server.embedded_sections |= h.process_group.as_deref() == Some(EMBEDDED);
                if let Some(g) = h.process_group.as_ref().filter(|g| *g != EMBEDDED) {
                    let at = format!("{} {} at {}", kind.directive(), h.script, location(cmd));
                    server.group_refs.push((g.clone(), at));
                }
                server.hook_scripts.push((h.clone(), location(cmd)));
            }
            dir.hooks.set(h);
        }
        Directive::RestrictProcess => {
            let groups = crate::config::words::split_words(arg);
            if groups.is_empty() {
                return Err("WSGIRestrictProcess: name at least one process group".into());
            }
            dir.restrict_process = Some(groups);
        }
        // Embedded mode under mod_wsgi, here as everywhere: the server's implicit daemon group,
        // which the server then has (even beside other WSGIProcessGroups).
        Directive::ProcessGroup if arg == EMBEDDED => {
            dir.process_group = Some(EMBEDDED.to_owned());
            if !at_request_time() {
                server.embedded_sections = true;
                if let Some(path) = directory_section(cmd) {
                    server.group_dirs.push((path, EMBEDDED.to_owned()));
                }
            }
        }
        Directive::ProcessGroup => {
            dir.process_group = Some(arg.to_string());
            if let Some(path) = directory_section(cmd) {
                server.group_dirs.push((path, arg.to_string()));
            }
            server.group_refs.push((
                arg.to_string(),
                format!("WSGIProcessGroup at {}", location(cmd)),
            ));
            server.has_process_group_directive = true;
        }
        Directive::CallableObject => dir.callable = Some(arg.to_string()),
        Directive::ApplicationGroup => {
            dir.application_group = Some(arg.to_string());
            if !at_request_time() {
                let section = match directory_section(cmd) {
                    Some(path) => Some(Some(path)),
                    // SAFETY: cmd->path is NULL (server level) or a pool string.
                    None if unsafe { cstr(cmd.path) }.is_none() => Some(None),
                    None => None,
                };
                if let Some(section) = section {
                    server.application_groups.push((section, arg.to_string()));
                }
            }
        }
        Directive::MapHeadToGet => {
            dir.map_head_to_get = Some(crate::config::HeadMapping::parse(arg)?)
        }
        Directive::TrustedProxyHeaders => {
            let headers = crate::config::parse_proxy_headers(arg)?;
            dir.trusted_proxy_headers
                .get_or_insert_with(Vec::new)
                .extend(headers);
        }
        Directive::TrustedProxies => {
            let subnets = crate::config::parse_trusted_proxies(arg)?;
            dir.trusted_proxies
                .get_or_insert_with(Vec::new)
                .extend(subnets);
        }
        _ => {}
    }
    Ok(())
}

/// The process group mod_wsgi runs embedded mode in; rswsgi's implicit daemon group.
const EMBEDDED: &str = crate::config::EMBEDDED_GROUP;

/// httpd's own refusal of a directive outside the main server (`GLOBAL_ONLY`).
fn main_server_only(cmd: &ffi::cmd_parms) -> Result<(), String> {
    // SAFETY: cmd is the live cmd_parms of the directive being read; the result is NULL or a
    // pool string.
    let refused = unsafe {
        cstr(ffi::ap_check_cmd_context(
            (cmd as *const ffi::cmd_parms).cast_mut(),
            ffi::GLOBAL_ONLY,
        ))
    };
    match refused {
        Some(msg) => Err(msg.to_string()),
        None => Ok(()),
    }
}

/// True while httpd serves requests: a directive read now comes from `.htaccess`, in a child
/// thread, and must not touch the server's record (shared by every thread).
fn at_request_time() -> bool {
    // SAFETY: ap_state_query only reads httpd's main-state variable.
    unsafe { ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as i32) == ffi::AP_SQ_MS_RUN_MPM as i32 }
}

/// The start-up warnings of catalogued directives, taken (and logged) at `check_config`. A
/// directive read from `.htaccess` (at request time, in a child) is noted too; the list is
/// bounded, so that cannot grow without end.
static WARNINGS: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());

/// Takes the warnings noted while the configuration was read.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock())
}

/// A catalogued directive: its warning noted.
fn catalogued(cmd: &ffi::cmd_parms, arg: &str) -> Result<(), String> {
    // SAFETY: cmd->cmd is the table entry of the directive being read, with its static name.
    let name = unsafe { cmd.cmd.as_ref().and_then(|c| cstr(c.name)) }.unwrap_or_default();
    let Some(entry) = crate::config::catalogue::lookup(name) else {
        return Err(format!(
            "{name}: not in the catalogue (a bug in mod_rswsgi)"
        ));
    };
    let Some(w) = crate::config::catalogue::warning_for(entry, arg) else {
        return Ok(());
    };
    let mut list = WARNINGS.lock();
    if !list.contains(&w) && list.len() < 64 {
        list.push(w);
    }
    Ok(())
}

/// `<WSGIInterpreterOptions ...>`: a section rswsgi has no use for (sub-interpreters); its
/// contents are skipped, with a warning.
pub unsafe extern "C" fn on_section(
    cmd: *mut ffi::cmd_parms,
    _mconfig: *mut c_void,
    _arg: *const c_char,
) -> *const c_char {
    // SAFETY: httpd passes the live cmd_parms of the section being read.
    let Some(c) = (unsafe { cmd.as_ref() }) else {
        return std::ptr::null();
    };
    if let Err(msg) = catalogued(c, "") {
        return error_string(c, &msg);
    }
    // SAFETY: the section is read with EXEC_ON_READ, so httpd's reader is at its contents;
    // ap_soak_end_container reads up to the matching end tag.
    unsafe { ffi::ap_soak_end_container(cmd, c"<WSGIInterpreterOptions".as_ptr().cast_mut()) }
}

fn error_string(cmd: &ffi::cmd_parms, msg: &str) -> *const c_char {
    // SAFETY: cmd->pool is live; the message is copied into it for httpd to print.
    unsafe { Pool::from_ptr(cmd.pool) }.strdup(msg.as_bytes())
}

unsafe extern "C" fn on_text(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    arg: *const c_char,
) -> *const c_char {
    // SAFETY: httpd passes the live cmd_parms of the directive being read.
    let Some(cmd) = (unsafe { cmd.as_ref() }) else {
        return std::ptr::null();
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: cmd->info is the cmd_data of one of this module's table entries.
        let d = unsafe { Directive::from_data(cmd.info) }.ok_or("unknown directive")?;
        // SAFETY: arg is the directive's NUL-terminated argument text.
        let arg = unsafe { cstr(arg) }.ok_or("directive argument is not valid UTF-8")?;
        apply(cmd, mconfig, d, arg)
    }));
    match result {
        Ok(Ok(())) => std::ptr::null(),
        Ok(Err(msg)) => error_string(cmd, &msg),
        Err(_) => {
            log::server(
                tracing::Level::ERROR,
                &format!(
                    "{}: internal error while reading a directive",
                    Code::DirectiveInternal
                ),
            );
            error_string(
                cmd,
                "mod_rswsgi: internal error while reading this directive",
            )
        }
    }
}

unsafe extern "C" fn on_flag(
    cmd: *mut ffi::cmd_parms,
    mconfig: *mut c_void,
    on: c_int,
) -> *const c_char {
    // SAFETY: httpd passes the live cmd_parms of the directive being read.
    let Some(cmd) = (unsafe { cmd.as_ref() }) else {
        return std::ptr::null();
    };
    // SAFETY: these flags are allowed in directory context, where httpd passes this module's
    // DirConfig; WSGIRestrictEmbedded does not touch it.
    let dir = || unsafe { &mut *mconfig.cast::<DirConfig>() };
    // SAFETY: cmd->info is the cmd_data of one of this module's table entries.
    match unsafe { Directive::from_data(cmd.info) } {
        Some(Directive::PassAuthorization) => dir().pass_authorization = Some(on != 0),
        Some(Directive::ChunkedRequest) => dir().chunked_request = Some(on != 0),
        Some(Directive::ErrorOverride) => dir().error_override = Some(on != 0),
        Some(Directive::GroupAuthoritative) => dir().hooks.group_authoritative = Some(on != 0),
        Some(Directive::EnableSendfile) => dir().enable_sendfile = Some(on != 0),
        Some(Directive::IgnoreActivity) => dir().ignore_activity = Some(on != 0),
        Some(
            d
            @ (Directive::RestrictStdin | Directive::RestrictStdout | Directive::VerboseDebugging),
        ) => {
            if let Err(msg) = main_server_only(cmd) {
                return error_string(cmd, &msg);
            }
            // SAFETY: cmd->server is the server whose section is being read.
            let server = unsafe { server_config(cmd.server) };
            match d {
                Directive::RestrictStdin => server.restrict_stdin = Some(on != 0),
                Directive::RestrictStdout => server.restrict_stdout = Some(on != 0),
                _ => server.verbose_debugging = Some(on != 0),
            }
        }
        Some(Directive::RestrictEmbedded) => {
            if let Err(msg) = main_server_only(cmd) {
                return error_string(cmd, &msg);
            }
            // SAFETY: cmd->server is the server whose section is being read.
            let server = unsafe { server_config(cmd.server) };
            server.restrict_embedded = Some(on != 0);
        }
        Some(Directive::ScriptReloading) => {
            // SAFETY: cmd->server is the server whose section is being read.
            let server = unsafe { server_config(cmd.server) };
            server.script_reloading = Some(on != 0);
        }
        _ => {}
    }
    std::ptr::null()
}

/// `create_server_config`.
pub unsafe extern "C" fn create_server_config(
    p: *mut ffi::apr_pool_t,
    _: *mut ffi::server_rec,
) -> *mut c_void {
    // SAFETY: httpd passes the live configuration pool.
    unsafe { Pool::from_ptr(p) }
        .store(ServerConfig::default())
        .cast()
}

/// `merge_server_config`.
pub unsafe extern "C" fn merge_server_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: both are ServerConfigs this module created.
    let merged = unsafe { ServerConfig::merge(&*base.cast(), &*add.cast()) };
    // SAFETY: live configuration pool.
    unsafe { Pool::from_ptr(p) }.store(merged).cast()
}

/// `create_dir_config`.
pub unsafe extern "C" fn create_dir_config(p: *mut ffi::apr_pool_t, _: *mut c_char) -> *mut c_void {
    // SAFETY: live configuration pool.
    unsafe { Pool::from_ptr(p) }
        .store(DirConfig::default())
        .cast()
}

/// `merge_dir_config`.
pub unsafe extern "C" fn merge_dir_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    // SAFETY: both are DirConfigs this module created.
    let merged = unsafe { DirConfig::merge(&*base.cast(), &*add.cast()) };
    // SAFETY: live pool (configuration or request).
    unsafe { Pool::from_ptr(p) }.store(merged).cast()
}

//! Hook registration and the `extern "C"` trampolines: each catches panics, so httpd never
//! unwinds through Rust frames; a panic in a request becomes a 500 and a log line.

use rswsgi_protocol::Code;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use tracing::{error, Level};

use crate::config::{self, ServerConfig};
use crate::directives::server_config;
use crate::ffi;
use crate::httpd::request::Request;
use crate::httpd::{cstr, log};
use crate::supervisor::{self, GroupPlan};

/// The handler name requests mapped by `WSGIScriptAlias` get (the same as mod_wsgi's, so
/// `AddHandler wsgi-script` configurations keep their meaning).
pub const HANDLER: &std::ffi::CStr = c"wsgi-script";

/// `register_hooks`.
pub unsafe extern "C" fn register(p: *mut ffi::apr_pool_t) {
    let _ = tracing::subscriber::set_global_default(log::ApacheSubscriber);
    let middle = ffi::APR_HOOK_MIDDLE as i32;
    let none = std::ptr::null();
    static AFTER_ALIAS: [Pointer; 2] =
        [Pointer(c"mod_alias.c".as_ptr()), Pointer(std::ptr::null())];
    // SAFETY: registering hook functions with httpd while the module loads; the predecessor
    // list is a static NULL-terminated array of static strings.
    unsafe {
        ffi::ap_hook_check_config(Some(check_config), none, none, middle);
        ffi::ap_hook_post_config(Some(post_config), none, none, middle);
        ffi::ap_hook_translate_name(
            Some(translate_name),
            AFTER_ALIAS.as_ptr().cast(),
            none,
            middle,
        );
        ffi::ap_hook_handler(Some(handler), none, none, middle);
        ffi::ap_hook_child_init(Some(child_init), none, none, middle);
        ffi::ap_hook_monitor(Some(monitor), none, none, middle);
        ffi::rswsgi_register_status_hook(Some(status_hook));
        crate::auth::register(p);
    }
}

#[repr(transparent)]
struct Pointer(*const std::os::raw::c_char);
// SAFETY: points at immutable static strings.
unsafe impl Sync for Pointer {}

/// Every server_rec of the configuration: the main server, then the virtual hosts.
fn servers(s: *mut ffi::server_rec) -> Vec<*mut ffi::server_rec> {
    let mut out = Vec::new();
    let mut cur = s;
    while !cur.is_null() {
        out.push(cur);
        // SAFETY: the server list is live for the configuration's lifetime.
        cur = unsafe { (*cur).next };
    }
    out
}

/// The distinct configurations of every server: a virtual host with none of this module's
/// directives shares the main server's record, which must count once.
fn server_configs<'a>(s: *mut ffi::server_rec) -> Vec<&'a ServerConfig> {
    let mut configs: Vec<&ServerConfig> = Vec::new();
    for server in servers(s) {
        // SAFETY: every server in the list has this module's configuration.
        let c: &ServerConfig = unsafe { server_config(server) };
        if !configs.iter().any(|seen| std::ptr::eq(*seen, c)) {
            configs.push(c);
        }
    }
    configs
}

unsafe extern "C" fn check_config(
    pconf: *mut ffi::apr_pool_t,
    _: *mut ffi::apr_pool_t,
    _: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> i32 {
    let result = catch_unwind(|| {
        for warning in crate::directives::take_warnings() {
            log::server(
                Level::WARN,
                &format!("{}: mod_rswsgi: {warning}", Code::DirectiveWarning),
            );
        }
        check_alone()?;
        assign_implicit_groups(s)?;
        let configs = server_configs(s);
        config::check_all(configs.iter().copied())?;
        for (g, at) in configs.iter().flat_map(|c| c.groups.iter()) {
            // Unknown script-user, script-group and socket-user names stop httpd here.
            crate::daemon_ids::resolve(g).map_err(|e| format!("{e} (at {at})"))?;
        }
        warn_shared_interpreters(&configs);
        if configs.iter().any(|c| !c.groups.is_empty()) {
            supervisor::check_socket_prefix(&socket_prefix(pconf, configs[0]))?;
        }
        crate::pyhome::check(&configs)
    });
    match result {
        Ok(Ok(())) => ffi::OK as i32,
        Ok(Err(msg)) => {
            log::server(
                Level::ERROR,
                &format!(
                    "{}: mod_rswsgi configuration error: {msg}",
                    Code::ConfigError
                ),
            );
            ffi::HTTP_INTERNAL_SERVER_ERROR as i32
        }
        Err(_) => ffi::HTTP_INTERNAL_SERVER_ERROR as i32,
    }
}

/// Refuses to run beside the real mod_wsgi: both read the same directives (whichever loaded
/// first would get them all), and this module answers to its name (`mod_wsgi.c`).
fn check_alone() -> Result<(), String> {
    let ours = std::ptr::addr_of!(crate::rswsgi_module).cast_mut();
    // SAFETY: ap_top_module heads httpd's list of loaded modules, which does not change while
    // the configuration is checked; every name is a static string.
    let mut m = unsafe { ffi::ap_top_module };
    while !m.is_null() {
        // SAFETY: as above.
        let (name, next) = unsafe { (cstr((*m).name), (*m).next) };
        if m != ours && name == Some("mod_wsgi.c") {
            return Err("mod_wsgi is loaded too (LoadModule wsgi_module ...): load either mod_wsgi or mod_rswsgi, not both (a2dismod wsgi)".into());
        }
        m = next;
    }
    Ok(())
}

/// Warns, once per daemon group, when it serves mounts that mod_wsgi would have run in
/// separate sub-interpreters (see [`config::app_group::shared_interpreter_warning`]).
fn warn_shared_interpreters(configs: &[&ServerConfig]) {
    for c in configs {
        for (g, _) in &c.groups {
            let implicit = c.implicit_group.as_deref() == Some(g.name.as_str());
            let mounts = configs.iter().flat_map(|o| o.aliases.iter()).filter(|a| {
                a.process_group.as_deref() == Some(g.name.as_str())
                    || implicit && a.process_group.is_none() && c.aliases.contains(a)
            });
            let configured = |a: &config::ScriptAlias| c.application_group_for(&a.script);
            if let Some(w) =
                config::app_group::shared_interpreter_warning(&g.name, mounts, configured)
            {
                log::server(
                    Level::WARN,
                    &format!("{}: mod_rswsgi: {w}", Code::SharedInterpreter),
                );
            }
        }
    }
}

/// Gives each server whose mounts name no daemon group its implicit group (unless the main
/// server says `WSGIRestrictEmbedded On`), logging a notice for each: see
/// [`config::add_implicit_group`]. Named `embedded:HOST:PORT` after the server.
fn assign_implicit_groups(s: *mut ffi::server_rec) -> Result<(), String> {
    note_handler_lines(s);
    // SAFETY: every server in the list has this module's configuration; nothing else holds a
    // reference to it while the configuration is checked.
    let main = unsafe { server_config(s) };
    if main.restrict_embedded == Some(true) {
        return Ok(());
    }
    let (options, python_path) = (main.implicit_options.clone(), main.python_path.clone());
    let mut seen: Vec<*const ServerConfig> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, server) in servers(s).into_iter().enumerate() {
        // SAFETY: as above.
        let c = unsafe { server_config(server) };
        if seen.contains(&(c as *const ServerConfig)) {
            continue;
        }
        seen.push(c as *const ServerConfig);
        if c.implicit_group.is_some() || !config::needs_implicit_group(c) {
            continue;
        }
        // SAFETY: server_hostname is NULL or a configuration-pool string; port is plain data.
        let (host, port) = unsafe { (cstr((*server).server_hostname), (*server).port) };
        let mut name = format!("embedded:{}:{port}", host.unwrap_or("localhost"));
        if names.contains(&name) {
            name.push_str(&format!(":{i}"));
        }
        let notice =
            config::add_implicit_group(c, &name, options.as_deref(), python_path.as_deref())?;
        log::notice(&format!("mod_rswsgi: {notice}"));
        names.push(name);
    }
    Ok(())
}

/// Gives each server the lines of the configuration files, in its part of them, that give
/// files the `wsgi-script` handler (a virtual host without this module's directives shares
/// the main server's record, and its lines go there).
fn note_handler_lines(s: *mut ffi::server_rec) {
    let lines = crate::conftree::wsgi_handler_lines();
    for (i, server) in servers(s).into_iter().enumerate() {
        // SAFETY: every server in the list has this module's configuration; nothing else holds
        // a reference to it while the configuration is checked.
        let c = unsafe { server_config(server) };
        // SAFETY: defn_name is NULL or a configuration-pool string; the line is plain data.
        let key = unsafe { (cstr((*server).defn_name), (*server).defn_line_number) };
        let here = |l: &&crate::conftree::HandlerLine| match &l.vhost {
            None => i == 0,
            Some((file, line)) => i > 0 && key.0 == Some(file.as_str()) && key.1 == *line,
        };
        for l in lines.iter().filter(here) {
            let line = (l.text.clone(), l.directory.clone());
            if !c.wsgi_handler_lines.contains(&line) {
                c.wsgi_handler_lines.push(line);
            }
        }
    }
}

unsafe extern "C" fn post_config(
    pconf: *mut ffi::apr_pool_t,
    _: *mut ffi::apr_pool_t,
    _: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> i32 {
    const KEY: &std::ffi::CStr = c"mod_rswsgi:post_config_seen";
    // httpd runs post_config once before it detaches and again for real; daemons start on the
    // second pass only, so their parent is the long-lived httpd parent.
    // SAFETY: s->process->pool lives for the whole httpd process; userdata is a plain flag.
    let first = unsafe {
        let ppool = (*(*s).process).pool;
        let mut seen: *mut c_void = std::ptr::null_mut();
        ffi::apr_pool_userdata_get(&mut seen, KEY.as_ptr(), ppool);
        if seen.is_null() {
            ffi::apr_pool_userdata_set(
                std::ptr::dangling::<c_void>(),
                KEY.as_ptr(),
                Some(ffi::apr_pool_cleanup_null),
                ppool,
            );
        }
        seen.is_null()
    };
    if first {
        return ffi::OK as i32;
    }
    match catch_unwind(AssertUnwindSafe(|| start_daemons(pconf, s))) {
        Ok(Ok(())) => ffi::OK as i32,
        Ok(Err(msg)) => {
            log::server(
                Level::ERROR,
                &format!("{}: mod_rswsgi: {msg}", Code::StartFailed),
            );
            ffi::HTTP_INTERNAL_SERVER_ERROR as i32
        }
        Err(_) => {
            error!(
                "{}: internal error while starting daemon processes",
                Code::StartFailed
            );
            ffi::HTTP_INTERNAL_SERVER_ERROR as i32
        }
    }
}

/// `WSGISocketPrefix`, else `rswsgi` in httpd's runtime directory.
fn socket_prefix(pconf: *mut ffi::apr_pool_t, main: &ServerConfig) -> String {
    match &main.socket_prefix {
        Some(p) => p.clone(),
        // SAFETY: pconf is live; the result is a pool string or NULL.
        None => unsafe { cstr(ffi::ap_runtime_dir_relative(pconf, c"rswsgi".as_ptr())) }
            .unwrap_or("/tmp/rswsgi")
            .to_string(),
    }
}

fn start_daemons(pconf: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) -> Result<(), String> {
    let configs = server_configs(s);
    let main = configs[0];
    // The daemons write to the main server's error log (httpd's parent's stderr), so its
    // level is theirs.
    // SAFETY: `s` is the main server httpd passed to post_config, its configuration read.
    let apache_level = unsafe { log::module_level(s) };
    let log_level = rswsgi_protocol::LogLevel::from_apache(apache_level)
        .unwrap_or(rswsgi_protocol::LogLevel::DEFAULT);
    let mut plans = Vec::new();
    for c in &configs {
        for (g, _) in &c.groups {
            let mut config = g.clone();
            if config.python_home.is_none() {
                config.python_home = main.python_home.clone();
            }
            // WSGISwitchInterval is embedded mode's under mod_wsgi: the implicit groups'.
            let implicit = configs
                .iter()
                .any(|c| c.implicit_group.as_deref() == Some(g.name.as_str()));
            if implicit && config.conn.switch_interval.is_none() {
                config.conn.switch_interval = main.python_flags.switch_interval.clone();
            }
            // WSGISlowRequests is every group's, unless it has its own slow-requests=.
            if config.conn.slow_requests.is_none() {
                config.conn.slow_requests = main.slow_requests.clone();
            }
            let config::GroupScripts {
                scripts,
                allowed_scripts,
                allowed_dirs,
            } = config::group_scripts(&configs, &g.name);
            plans.push(GroupPlan {
                config,
                scripts,
                allowed_scripts,
                allowed_dirs,
                script_reloading: main.script_reloading.unwrap_or(true),
                restrict_streams: (
                    main.restrict_stdin == Some(true),
                    main.restrict_stdout == Some(true),
                ),
                verbose: main.verbose_debugging == Some(true),
                log_level,
                python_env: main.python_flags.environment(),
            });
        }
    }
    if plans.is_empty() {
        return Ok(());
    }
    let prefix = socket_prefix(pconf, main);
    let exe = crate::dispatch::daemon_executable(main.daemon_executable.as_deref());
    // SAFETY: s->process->pool is httpd's process pool, alive for the whole process.
    let ppool = unsafe { (*(*s).process).pool };
    supervisor::start(pconf, ppool, plans, &prefix, &exe)
}

unsafe extern "C" fn child_init(_: *mut ffi::apr_pool_t, _: *mut ffi::server_rec) {
    let _ = catch_unwind(supervisor::child_init);
    let _ = catch_unwind(crate::metrics::child_init);
}

/// The `monitor` hook: httpd's parent runs it from its maintenance loop (about every ten
/// seconds).
unsafe extern "C" fn monitor(_: *mut ffi::apr_pool_t, _: *mut ffi::server_rec) -> i32 {
    let _ = catch_unwind(supervisor::monitor);
    ffi::DECLINED
}

/// mod_status's `status_hook`: the daemon groups' section of `/server-status`.
unsafe extern "C" fn status_hook(r: *mut ffi::request_rec, flags: i32) -> i32 {
    let text = catch_unwind(|| {
        let groups = crate::metrics::handler::snapshots(false);
        crate::metrics::status::section(&groups, flags)
    });
    if let (Ok(text), false) = (text, r.is_null()) {
        // SAFETY: mod_status passes the live request it is answering; the buffer is valid
        // for its length.
        unsafe { ffi::ap_rwrite(text.as_ptr().cast(), text.len() as i32, r) };
    }
    ffi::OK as i32
}

unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> i32 {
    // SAFETY: httpd passes the live request being served on this thread.
    let Some(mut req) = (unsafe { Request::from_ptr(r) }) else {
        return ffi::DECLINED;
    };
    catch_unwind(AssertUnwindSafe(|| crate::dispatch::translate(&mut req))).unwrap_or(ffi::DECLINED)
}

unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> i32 {
    // SAFETY: httpd passes the live request being served on this thread.
    let Some(mut req) = (unsafe { Request::from_ptr(r) }) else {
        return ffi::DECLINED;
    };
    let metrics = crate::metrics::handler::is_ours(&req);
    if !metrics && !crate::dispatch::is_ours(&req) {
        return ffi::DECLINED;
    }
    match catch_unwind(AssertUnwindSafe(|| {
        if metrics {
            crate::metrics::handler::serve(&mut req)
        } else {
            crate::dispatch::serve(&mut req)
        }
    })) {
        Ok(status) => status,
        Err(_) => {
            log::request(
                &req,
                Level::ERROR,
                &format!(
                    "{}: internal error (panic) in mod_rswsgi while serving this request",
                    Code::ModulePanic
                ),
            );
            ffi::HTTP_INTERNAL_SERVER_ERROR as i32
        }
    }
}

//! Serving a request: map the URL to a script (translate_name), then hand the request to the
//! daemon group and relay its response (handler).

mod call;
mod exchange;
mod fdpass;
mod handshake;
pub mod hook;
mod link;
mod pool;
mod target;
mod wait;

use rswsgi_protocol::Code;
use target::Target;

use std::time::{Duration, Instant};

use tracing::Level;

use crate::config::HeadMapping;
use crate::config::{DirConfig, ServerConfig};
use crate::directives::module_config;
use crate::ffi;
use crate::hooks::HANDLER;
use crate::httpd::log;
use crate::httpd::request::Request;
use crate::supervisor;

/// mod_wsgi's other name for the `wsgi-script` handler (its `AddType` form).
const LEGACY_HANDLER: &str = "application/x-httpd-wsgi";

const NOTE_ALIAS: &str = "rswsgi.alias";
const NOTE_SCRIPT_NAME: &str = "rswsgi.script_name";

/// The methods a mount declares to Apache (the `Allow` header of a 405 or 501 the core sends,
/// such as its refusal of TRACE under `TraceEnable off`, decided before any handler runs).
/// Every method is passed to the application; these are the ones HTTP defines for a resource.
const MOUNT_METHODS: [u32; 6] = [
    ffi::M_GET,
    ffi::M_POST,
    ffi::M_PUT,
    ffi::M_DELETE,
    ffi::M_OPTIONS,
    ffi::M_PATCH,
];

/// The server's configuration; it lives as long as the configuration generation, which
/// outlasts every request.
fn server_config<'a>(r: &Request) -> &'a ServerConfig {
    // SAFETY: every server's slot holds the ServerConfig this module created.
    unsafe { &*module_config::<ServerConfig>(r.server_config()) }
}

fn dir_config<'a>(r: &Request) -> Option<&'a DirConfig> {
    // SAFETY: the request's per-dir vector holds this module's DirConfig (or NULL).
    unsafe { module_config::<DirConfig>(r.per_dir_config()).as_ref() }
}

/// Whether the handler serves this request: its Apache handler is `wsgi-script` (a
/// `WSGIScriptAlias` mount, or `AddHandler wsgi-script`) or the name of a `WSGIHandlerScript`.
pub fn is_ours(r: &Request) -> bool {
    match r.handler() {
        Some(h) if h == HANDLER.to_str().unwrap_or_default() || h == LEGACY_HANDLER => true,
        Some(h) => server_config(r).handler_script(h).is_some(),
        None => false,
    }
}

/// `translate_name`: a URL under a `WSGIScriptAlias` maps to its script.
pub fn translate(r: &mut Request) -> i32 {
    let Some(uri) = r.uri() else {
        return ffi::DECLINED;
    };
    let cfg = server_config(r);
    let pool = r.pool();
    let regex = |a: &crate::config::ScriptAlias| {
        crate::httpd::regex::substitute(a.regex, pool, uri, &a.script)
    };
    let Some(crate::config::UriMatch {
        index,
        script_name,
        path_info,
        expanded,
    }) = cfg.match_uri(uri, regex)
    else {
        return ffi::DECLINED;
    };
    let alias = &cfg.aliases[index];
    let (script_name, path_info) = if let Some(script) = expanded {
        // WSGIScriptAliasMatch: the expanded target must be a script that exists.
        let split = (script_name.to_vec(), path_info.to_vec());
        if let Err(status) = existing_script(&script) {
            return status;
        }
        r.set_filename_bytes(&script);
        split
    } else if alias.directory {
        match directory_script(alias, script_name, path_info) {
            Ok((file, target)) => {
                r.set_filename_bytes(&file);
                (target.script_name, target.path_info)
            }
            Err(status) => return status,
        }
    } else {
        let split = (script_name.to_vec(), path_info.to_vec());
        r.set_filename(&alias.script);
        split
    };
    r.set_path_info(&path_info);
    r.set_handler(HANDLER);
    r.allow_methods(&MOUNT_METHODS);
    let (notes, pool) = (r.notes(), r.pool());
    notes.set(pool, NOTE_ALIAS.as_bytes(), index.to_string().as_bytes());
    notes.set(pool, NOTE_SCRIPT_NAME.as_bytes(), &script_name);
    notes.set(pool, b"alias-forced-type", HANDLER.to_bytes());
    ffi::OK as i32
}

/// A file given the `wsgi-script` handler by `AddHandler` or `SetHandler` (not mounted by
/// `WSGIScriptAlias`), checked as mod_wsgi checks it: `Options ExecCGI` must be on where it
/// is (else 403), and it must be a file (404 when missing, 403 for a directory).
fn check_handled_file(r: &Request) -> Result<(), i32> {
    let refuse = |r: &Request, status: u32, why: &str| {
        log::request(
            r,
            Level::ERROR,
            &format!("{}: {why}", Code::HandledFileRefused),
        );
        Err(status as i32)
    };
    if !r.allows_exec_cgi() {
        return refuse(
            r,
            ffi::HTTP_FORBIDDEN,
            "Options ExecCGI is off in this directory",
        );
    }
    match r.file_is_dir() {
        None => refuse(
            r,
            ffi::HTTP_NOT_FOUND,
            "target WSGI script not found or unable to stat",
        ),
        Some(true) => refuse(
            r,
            ffi::HTTP_FORBIDDEN,
            "attempt to invoke a directory as a WSGI application",
        ),
        Some(false) => Ok(()),
    }
}

/// The script a request under a directory mount names (`WSGIScriptAlias /wsgi/ /srv/dir/`):
/// its path and split, or the status mod_wsgi answers: 403 for the directory itself (or a
/// subdirectory), 404 for a file that does not exist.
fn directory_script(
    alias: &crate::config::ScriptAlias,
    script_name: &[u8],
    path_info: &[u8],
) -> Result<(Vec<u8>, crate::config::DirectoryTarget), i32> {
    let Some(target) = alias.in_directory(script_name, path_info) else {
        return Err(ffi::HTTP_FORBIDDEN as i32);
    };
    let mut file = alias.script.trim_end_matches('/').as_bytes().to_vec();
    file.push(b'/');
    file.extend_from_slice(&target.file);
    existing_script(&file)?;
    Ok((file, target))
}

/// A script a URL names through a pattern or a directory mount must be a regular file: 404
/// when there is nothing there, 403 for anything else (a directory).
fn existing_script(path: &[u8]) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    match std::fs::metadata(std::ffi::OsStr::from_bytes(path)) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(ffi::HTTP_FORBIDDEN as i32),
        Err(_) => Err(ffi::HTTP_NOT_FOUND as i32),
    }
}

/// Where `rswsgi-daemon` is: `RSWSGIDaemonExecutable`, else `$RSWSGI_DAEMON`, else next to
/// this module's own file, else the path fixed at build time (`RSWSGI_DAEMON_DEFAULT`, by
/// default where the Debian package installs it).
pub fn daemon_executable(configured: Option<&str>) -> String {
    if let Some(p) = configured {
        return p.to_string();
    }
    if let Ok(p) = std::env::var("RSWSGI_DAEMON") {
        return p;
    }
    let mut info: libc::Dl_info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the loader's tables for an address inside this module.
    let found = unsafe { libc::dladdr(daemon_executable as *const libc::c_void, &mut info) } != 0;
    let module = if found {
        // SAFETY: on success dli_fname is NULL or the loader's NUL-terminated path string.
        unsafe { crate::httpd::cstr(info.dli_fname) }
    } else {
        None
    };
    if let Some(module) = module {
        let beside = std::path::Path::new(module).with_file_name("rswsgi-daemon");
        if beside.exists() {
            return beside.display().to_string();
        }
    }
    option_env!("RSWSGI_DAEMON_DEFAULT")
        .unwrap_or("/usr/lib/rswsgi/rswsgi-daemon")
        .to_string()
}

/// `REQUEST_METHOD` for the application: a HEAD request is passed as GET under
/// `WSGIMapHEADToGET On`, and under `Auto` when a content filter (one that may need the whole
/// response, such as DEFLATE) is the first output filter. Apache drops the body either way.
fn request_method(r: &Request, mapping: HeadMapping) -> &[u8] {
    let head = r.header_only() && r.method_number() == ffi::M_GET as i32;
    let as_get = match mapping {
        HeadMapping::Off => false,
        HeadMapping::On => head,
        HeadMapping::Auto => head && r.first_output_filter_is_content(),
    };
    if as_get {
        b"GET"
    } else {
        r.method()
    }
}

/// How the request body comes (`WSGIChunkedRequest` decides whether a chunked one is
/// refused); `Err(status)` when Apache refuses it.
fn request_body(r: &mut Request, dir: &DirConfig) -> Result<rswsgi_protocol::BodyKind, i32> {
    let chunked_policy = if dir.chunked_request == Some(true) {
        ffi::REQUEST_CHUNKED_DECHUNK
    } else {
        ffi::REQUEST_CHUNKED_ERROR
    };
    r.setup_client_block(chunked_policy)?;
    Ok(match r.body_expected() {
        (true, _) => rswsgi_protocol::BodyKind::Chunked,
        (false, remaining) if remaining > 0 => rswsgi_protocol::BodyKind::Length(remaining as u64),
        _ => rswsgi_protocol::BodyKind::None,
    })
}

/// The daemon group a request goes to unless a dispatch script says otherwise: its mount's
/// `process-group=` (a `WSGIScriptAlias` mount, or its `WSGIHandlerScript`), else the
/// `WSGIProcessGroup` in force, else its server's implicit group.
fn request_group(r: &Request, cfg: &ServerConfig, dir: &DirConfig) -> Option<String> {
    let alias = r
        .notes()
        .get(NOTE_ALIAS)
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| cfg.aliases.get(i));
    let handler_script = r.handler().and_then(|h| cfg.handler_script(h));
    // `%{GLOBAL}`, mod_wsgi's embedded mode, is the implicit group wherever it is written.
    let named = |g: Option<&String>| g.and_then(|g| cfg.named_group(g));
    alias
        .and_then(|a| a.process_group.clone())
        .or_else(|| handler_script.and_then(|h| named(h.process_group.as_ref())))
        .or_else(|| named(dir.process_group.as_ref()))
        .or(cfg.implicit_group.clone())
}

/// `WSGIRestrictProcess`: 500 (logged, as mod_wsgi answers) when requests here may not go to
/// `group` (chosen by a dispatch script, say).
fn restricted(r: &Request, cfg: &ServerConfig, dir: &DirConfig, group: &str) -> Result<(), i32> {
    if dir.may_use_group(group, cfg.implicit_group.as_deref()) {
        return Ok(());
    }
    log::request(
        r,
        Level::ERROR,
        &format!(
            "{}: daemon process group '{group}' may not be used here (WSGIRestrictProcess)",
            Code::GroupRestricted
        ),
    );
    Err(ffi::HTTP_INTERNAL_SERVER_ERROR as i32)
}

/// The endpoint of daemon group `group`, or 503 (logged) when it is not running.
fn group_endpoint(r: &Request, group: &str) -> Result<supervisor::Endpoint, i32> {
    supervisor::endpoints()
        .and_then(|e| e.get(group).cloned())
        .ok_or_else(|| {
            let index = crate::metrics::index_of(group);
            crate::metrics::count_cause(index, crate::metrics::Cause::NotRunning);
            log::request(
                r,
                Level::ERROR,
                &format!(
                    "{}: daemon group '{group}' is not running (see earlier errors at start-up)",
                    Code::GroupNotRunning
                ),
            );
            ffi::HTTP_SERVICE_UNAVAILABLE as i32
        })
}

/// The handler: forward the request to its daemon group and relay the response.
pub fn serve(r: &mut Request) -> i32 {
    let cfg = server_config(r);
    // Borrowed, not copied: this runs for every request.
    let default = DirConfig::default();
    let dir = dir_config(r).unwrap_or(&default);
    let alias = r
        .notes()
        .get(NOTE_ALIAS)
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| cfg.aliases.get(i));
    // Bytes throughout: a decoded URI need not be UTF-8 (PEP 3333 passes it as latin-1).
    let uri = r.uri().unwrap_or(b"/").to_vec();
    let script_name = match r.notes().get_bytes(NOTE_SCRIPT_NAME) {
        Some(s) => s.to_vec(),
        None => uri
            .strip_suffix(r.path_info().unwrap_or_default())
            .unwrap_or(&uri)
            .to_vec(),
    };
    let path_info = uri
        .strip_prefix(script_name.as_slice())
        .unwrap_or_default()
        .to_vec();
    let handler_script = r.handler().and_then(|h| cfg.handler_script(h));
    if alias.is_none() && handler_script.is_none() {
        if let Err(status) = check_handled_file(r) {
            return status;
        }
    }
    let Some(mut group) = request_group(r, cfg, dir) else {
        log::request(r, Level::ERROR, &format!("{}: no daemon process group for this request: rswsgi has no embedded mode; set WSGIProcessGroup or process-group=", Code::NoProcessGroup));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    };
    let mut chosen = hook::Dispatched::default();
    if let Some(script) = &dir.hooks.dispatch {
        chosen = match hook::dispatch(r, script, &group) {
            Ok(chosen) => chosen,
            Err(status) => return status,
        };
        if let Some(g) = chosen.process_group.take() {
            group = g;
        }
    }
    let endpoint = match restricted(r, cfg, dir, &group).and_then(|()| group_endpoint(r, &group)) {
        Ok(endpoint) => endpoint,
        Err(status) => return status,
    };
    let body = match request_body(r, dir) {
        Ok(body) => body,
        Err(status) => return status,
    };
    let pass_authorization = handler_script
        .and_then(|h| h.pass_authorization)
        .or(dir.pass_authorization)
        == Some(true);
    let callable = match (chosen.callable_object, handler_script) {
        (Some(c), _) => c,
        (None, Some(_)) => crate::config::HANDLER_CALLABLE.to_owned(),
        (None, None) => alias
            .and_then(|a| a.callable.clone())
            .or(dir.callable.clone())
            .unwrap_or_else(|| "application".into()),
    };
    let app_group = chosen.application_group.or_else(|| {
        alias
            .and_then(|a| a.application_group.clone())
            .or_else(|| handler_script.and_then(|h| h.application_group.clone()))
            .or(dir.application_group.clone())
    });
    let target = Target {
        group: &group,
        script_name: &script_name,
        path_info: &path_info,
        callable: &callable,
        application_group: app_group.as_deref(),
        pass_authorization,
        handler_script: handler_script.map_or("", |h| h.script.as_str()),
        hook: false,
    };
    let quiet: &[(&str, &[u8])] = match dir.ignore_activity {
        Some(true) => &[(rswsgi_protocol::carriers::IGNORE_ACTIVITY, b"1")],
        _ => &[],
    };
    let mut head = match target::encode_head(r, dir, &target, body, quiet) {
        Ok(head) => head,
        Err(status) => return status,
    };
    let policy = exchange::ResponsePolicy {
        error_override: dir.error_override == Some(true),
        sendfile: dir.enable_sendfile.unwrap_or_else(|| r.core_sendfile()),
        response_timeout: endpoint.response_socket_timeout,
        stats: endpoint.stats,
        peer_pid_known: endpoint.single_process,
    };
    let status = forward(r, &endpoint, &group, &mut head, |r, link, wire| {
        exchange::run(r, link, wire, &group, policy)
    })
    .unwrap_or_else(|status| status);
    crate::metrics::count_response(endpoint.stats, status, r.status());
    status
}

/// Sends the encoded request `head` to the group, on a pooled connection or a new one, until a
/// daemon takes it: one that is shutting down answers `Retry` without reading it, and a pooled
/// connection may have been dropped; either way the request is sent again, until
/// `connect-timeout` runs out. `exchange` runs one attempt (a relayed request, or a hook
/// call); `Err` is the status when no daemon took the request (logged).
fn forward<T>(
    r: &mut Request,
    endpoint: &supervisor::Endpoint,
    group: &str,
    head: &mut [u8],
    mut exchange: impl FnMut(&mut Request, &mut pool::Link, &[u8]) -> exchange::Outcome<T>,
) -> Result<T, i32> {
    let Some(secret) = supervisor::secret() else {
        log::request(
            r,
            Level::ERROR,
            &format!("{}: no connection secret: the daemon groups were not started (see earlier errors at start-up)", Code::NoSecret),
        );
        return Err(ffi::HTTP_SERVICE_UNAVAILABLE as i32);
    };
    let timeout = endpoint
        .socket_timeout
        .unwrap_or_else(|| Duration::from_micros(r.server_timeout_us().max(1_000_000) as u64));
    // What `connect-timeout` bounds: the time spent connecting to the group's socket. The time
    // a request then waits, in the socket's queue for a daemon to accept it or inside a daemon
    // that declines it later ("retry", as it shuts down), is the daemon's `queue-timeout`'s,
    // as under mod_wsgi, so it is added back.
    let mut deadline = Instant::now() + endpoint.connect_timeout;
    let counters = crate::metrics::group(endpoint.stats);
    let count = |f: fn(&crate::metrics::area::GroupCounters) -> &std::sync::atomic::AtomicU64| {
        if let Some(g) = counters {
            f(g).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            count(|g| &g.retries);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let (mut link, proof) = match pool::take(&endpoint.socket) {
            Some(link) => {
                crate::metrics::pool_idle(endpoint.stats, -1);
                (link, None)
            }
            None => match handshake::open(endpoint, &secret, left, timeout) {
                Ok((link, proof, queued)) => {
                    deadline += queued;
                    count(|g| &g.connects);
                    (link, Some(proof))
                }
                Err(e) if e.retryable() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => {
                    count(|g| &g.connect_failures);
                    crate::metrics::count_cause(
                        endpoint.stats,
                        crate::metrics::Cause::ConnectFailed,
                    );
                    return Err(not_connected(r, endpoint, group, &e));
                }
            },
        };
        let in_use = crate::metrics::InUse::new(endpoint.stats);
        let fresh = proof.is_some();
        link.seq = link.seq.wrapping_add(1);
        rswsgi_protocol::set_request_seq(head, link.seq);
        // A new connection's proof goes out with its first request, in one write.
        let wire = match proof {
            Some(proof) => std::borrow::Cow::Owned([&proof[..], head].concat()),
            None => std::borrow::Cow::Borrowed(&head[..]),
        };
        let sent = Instant::now();
        let outcome = exchange(r, &mut link, &wire);
        drop(in_use);
        if matches!(outcome, exchange::Outcome::Retry) {
            deadline += sent.elapsed();
        }
        match outcome {
            exchange::Outcome::Done { value, reusable } => {
                if reusable && pool::give_back(&endpoint.socket, link) {
                    crate::metrics::pool_idle(endpoint.stats, 1);
                }
                return Ok(value);
            }
            // A pooled connection the daemon had dropped: try the next one at once.
            exchange::Outcome::Retry if !fresh => {}
            exchange::Outcome::Retry if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            exchange::Outcome::Retry => {
                log::request(
                    r,
                    Level::ERROR,
                    &format!(
                        "{}: daemon processes of group '{group}' kept shutting down for {}s; \
                         giving up",
                        Code::GroupShuttingDown,
                        endpoint.connect_timeout.as_secs()
                    ),
                );
                crate::metrics::count_cause(endpoint.stats, crate::metrics::Cause::ShuttingDown);
                return Err(ffi::HTTP_SERVICE_UNAVAILABLE as i32);
            }
        }
    }
}

/// Logs why no connection to the group could be opened; the request gets a 503.
fn not_connected(
    r: &mut Request,
    endpoint: &supervisor::Endpoint,
    group: &str,
    e: &handshake::OpenError,
) -> i32 {
    let socket = &endpoint.socket;
    let msg = match e {
        handshake::OpenError::Connect(io) if io.kind() == std::io::ErrorKind::NotFound => format!(
            "the socket of daemon group '{group}' is missing ({socket}: {io}); it may have been \
             deleted (by a tmp cleaner?): a graceful restart of Apache creates it again"
        ),
        handshake::OpenError::Connect(io) => format!(
            "no daemon process of group '{group}' accepted the request within {}s at {socket}: {io} \
             (if the daemons keep failing to start, earlier log lines say why)",
            endpoint.connect_timeout.as_secs()
        ),
        other => format!("daemon group '{group}' at {socket}: {other}"),
    };
    log::request(r, Level::ERROR, &format!("{}: {msg}", Code::ConnectFailed));
    ffi::HTTP_SERVICE_UNAVAILABLE as i32
}

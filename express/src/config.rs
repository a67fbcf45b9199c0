//! From [`ServerOptions`] to a [`ServerConfig`]: every path found and made absolute,
//! the user looked up, and every check that can fail done before anything is written
//! or started.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::geteuid;

use crate::access::{check_access, Identity, Need};
use crate::app::AppOptions;
use crate::daemon::DaemonOptions;
use crate::handler::{
    default_cache_dir, find_sdk, is_native_library, is_native_source, BuildOptions, HANDLER_FILE,
};
use crate::hosts::HostOptions;
use crate::limits::{ProcessOptions, RequestOptions};
use crate::locate::{find_daemon, find_httpd, find_module, find_modules_dir};
use crate::logs::Logs;
use crate::options::{ApplicationType, ServerOptions, Timeouts};
use crate::proxy::ProxyOptions;
use crate::pyhome::check_python_home;
use crate::script::{check_module_name, check_script, MODULE_HANDLER_FILE};
use crate::site::SiteOptions;

/// A server ready to be written: the options resolved against the machine.
/// [`crate::render_httpd_conf`] renders it; its fields are public so that tests can
/// build one by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The httpd binary.
    pub httpd: PathBuf,
    /// Apache's modules directory.
    pub modules_dir: PathBuf,
    /// `mod_rswsgi.so`.
    pub module_path: PathBuf,
    /// `rswsgi-daemon`.
    pub daemon_path: PathBuf,
    /// The server root (absolute).
    pub server_root: PathBuf,
    /// The script `WSGIScriptAlias` mounts (absolute, symlinks resolved); for a native
    /// handler source, `<server root>/handler.so`, where [`crate::write_server_root`] puts
    /// the library it builds.
    pub script: PathBuf,
    /// The native handler source (`wsgi.rs`) to build, when the script given was one.
    pub native_source: Option<PathBuf>,
    /// With `--application-type module`, the module's dotted name; `script` is then
    /// `<server root>/handler.wsgi`, which [`crate::write_server_root`] writes to import it.
    pub module_entry: Option<String>,
    /// How to build it (SDK found, cache directory chosen).
    pub build: BuildOptions,
    /// The callable's name.
    pub callable_object: String,
    /// URL path of the application (`/` or `/sub`).
    pub mount_point: String,
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Daemon processes.
    pub processes: u32,
    /// Threads per daemon process.
    pub threads: u32,
    /// Apache's `MaxRequestWorkers`.
    pub max_clients: u32,
    /// Extra `WSGIDaemonProcess` options.
    pub daemon_options: Vec<String>,
    /// Slow-client and slow-request timeouts.
    pub timeouts: Timeouts,
    /// User and group to switch to (set only when running as root).
    pub identity: Option<Identity>,
    /// The daemons' Python home.
    pub python_home: Option<PathBuf>,
    /// The daemons' extra `sys.path` entries.
    pub python_path: Vec<PathBuf>,
    /// The daemons' working directory.
    pub working_directory: PathBuf,
    /// Error log to the terminal rather than `error_log`.
    pub log_to_terminal: bool,
    /// Write an access log.
    pub access_log: bool,
    /// Apache's `LogLevel`.
    pub log_level: String,
    /// Files to `Include`.
    pub include_files: Vec<PathBuf>,
    /// Lines appended verbatim.
    pub extra_directives: Vec<String>,
    /// httpd's start-up messages to a start-up log (`-E`).
    pub startup_log: bool,
    /// Serve on when the script fails to load.
    pub keep_serving_on_load_error: bool,
    /// Seconds to wait for the daemons' first load of the script.
    pub load_wait: u64,
    /// Group names, socket prefix, environ additions.
    pub app: AppOptions,
    /// The daemons' behaviour (`locale` and `lang` always set).
    pub daemon: DaemonOptions,
    /// Where the logs go and their formats.
    pub logs: Logs,
    /// The site: document root (always set), aliases, MIME types (when the system has them), ...
    pub site: SiteOptions,
    /// Host names, TLS (files absolute and present) and HTTP/2.
    pub hosts: HostOptions,
    /// Proxied mount points and host names.
    pub proxy: ProxyOptions,
    /// The metrics endpoint, server-status and the health drain file (checked).
    pub status: crate::status::StatusOptions,
    /// Request handling.
    pub requests: RequestOptions,
    /// The httpd process (`server_mpm` holds the one MPM chosen).
    pub process: ProcessOptions,
}

impl ServerConfig {
    /// Whether the daemons serve a native handler (no Python).
    pub fn is_native(&self) -> bool {
        self.native_source.is_some() || is_native_library(&self.script)
    }

    /// The daemon process group's name: `--process-group`, else `localhost:PORT` as
    /// mod_wsgi-express names it.
    pub fn process_group(&self) -> String {
        self.app
            .process_group
            .clone()
            .unwrap_or_else(|| format!("localhost:{}", self.port))
    }

    /// `WSGISocketPrefix`: `--socket-prefix`, else `<root>/wsgi`.
    pub fn socket_prefix(&self) -> PathBuf {
        self.app
            .socket_prefix
            .clone()
            .unwrap_or_else(|| self.server_root.join("wsgi"))
    }

    /// `HOST:PORT` as Apache's `Listen` wants it (IPv6 addresses in brackets).
    pub fn listen_address(&self) -> String {
        self.listen_address_on(self.port)
    }

    /// `HOST:port` for another port of the same host (the HTTPS one).
    pub fn listen_address_on(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }

    /// The host part of the URLs to print: `localhost` for a wildcard address.
    pub fn url_host(&self) -> String {
        match self.host.as_str() {
            "0.0.0.0" | "::" | "*" => "localhost".to_owned(),
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_owned(),
        }
    }

    /// The URL to print: `http://HOST:PORT/mount/` (the server name's, when one is given).
    pub fn url(&self) -> String {
        let host = self
            .hosts
            .server_name
            .clone()
            .unwrap_or_else(|| self.url_host());
        let mount = self.mount_point.trim_end_matches('/');
        format!("http://{host}:{}{mount}/", self.port)
    }

    /// The variables httpd (and so every daemon) gets in its environment on top of the
    /// inherited ones, after the `--envvars-script`: each `--setenv` pair whose name is a
    /// shell identifier (every pair also goes into every request's environ, see
    /// [`crate::app::render_environ`]), then `PYTHON_EGG_CACHE` for `--python-eggs`.
    pub fn process_environment(&self) -> Vec<(String, String)> {
        let identifier = |name: &str| {
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        };
        self.app
            .setenv
            .chunks_exact(2)
            .filter(|p| identifier(&p[0]))
            .map(|p| (p[0].clone(), p[1].clone()))
            .chain(self.daemon.environment())
            .collect()
    }

    /// The pid file httpd writes (`--pid-file`, else `<root>/httpd.pid`).
    pub fn pid_file(&self) -> PathBuf {
        self.process
            .pid_file
            .clone()
            .unwrap_or_else(|| self.server_root.join("httpd.pid"))
    }
}

/// Apache's `LogLevel` keywords.
const LOG_LEVELS: [&str; 16] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// `--log-level` must be one of Apache's keywords (checked here, not left to httpd's AH00526).
fn check_log_level(level: &str) -> Result<()> {
    if LOG_LEVELS.contains(&level) {
        return Ok(());
    }
    bail!(
        "--log-level {level:?}: Apache's log levels are {}",
        LOG_LEVELS[..8].join(", ") + ", trace1 ... trace8"
    )
}

/// Resolves `opts`: finds httpd, the modules directory, the module and the daemon,
/// checks the script and its callable, the user (root must name one; others cannot),
/// that the user can reach every file the server needs, and that the python home is one
/// for the daemon's Python (see [`check_python_home`]). Writes nothing.
///
/// A native handler (`.rs` source or built `.so`) gets no Python home or path; for a
/// source, the SDK is found and the build cache chosen here, the library is mounted from
/// the server root, and the working directory defaults to the source's directory (the
/// server root when the user cannot enter it).
pub fn resolve(opts: &ServerOptions) -> Result<ServerConfig> {
    let port = match u16::try_from(opts.port) {
        Ok(port) if port > 0 => port,
        _ => bail!("--port {}: a port is a number from 1 to 65535", opts.port),
    };
    let httpd = find_httpd(opts.httpd_executable.as_deref())?;
    let server_root = absolute(&opts.server_root_or_default())?;
    let module_entry = match opts.application_type {
        ApplicationType::Module => {
            let entry = opts.script.to_string_lossy().into_owned();
            check_module_name(&entry)?;
            if check_module_name(&opts.callable_object).is_err()
                || opts.callable_object.contains('.')
            {
                bail!(
                    "--callable-object {:?}: not a Python name",
                    opts.callable_object
                );
            }
            Some(entry)
        }
        ApplicationType::Script => None,
    };
    let script = match &module_entry {
        Some(_) => server_root.join(MODULE_HANDLER_FILE),
        None => {
            let script = absolute(&opts.script)
                .and_then(|p| p.canonicalize().map_err(Into::into))
                .with_context(|| format!("WSGI script {}", opts.script.display()))?;
            check_script(&script, &opts.callable_object)?;
            script
        }
    };
    if opts.processes == 0 || opts.threads == 0 {
        bail!("--processes and --threads must be at least 1");
    }
    if opts.timeouts.socket_timeout == 0 {
        bail!("--socket-timeout must be at least 1");
    }
    check_log_level(&opts.log_level)?;
    if !opts.mount_point.starts_with('/') {
        bail!("--mount-point {} must start with /", opts.mount_point);
    }
    let identity = identity(opts)?;
    let modules_dir = find_modules_dir(opts.modules_directory.as_deref())?;
    let module_path = absolute(&find_module(opts.module_path.as_deref(), &modules_dir)?)?;
    let daemon_path = absolute(&find_daemon(
        opts.daemon_executable.as_deref(),
        &module_path,
    )?)?;
    let script_dir = script.parent().map(Path::to_path_buf).unwrap_or_default();
    let native_source = is_native_source(&script).then(|| script.clone());
    let native = native_source.is_some() || is_native_library(&script);
    let working_directory = match &opts.working_directory {
        Some(dir) => absolute(dir)?,
        None if native_source.is_some() && !enterable(identity.as_ref(), &script_dir) => {
            let who = identity
                .as_ref()
                .map(|i| i.user.as_str())
                .unwrap_or_default();
            crate::errln!(
                "express: user {who} cannot enter {}; the daemons' working directory is the \
                 server root (choose another with --working-directory)",
                script_dir.display()
            );
            server_root.clone()
        }
        // mod_wsgi-express's default for a module: the directory express runs in.
        None if module_entry.is_some() => absolute(Path::new("."))?,
        None => script_dir,
    };
    let build = match &native_source {
        Some(_) => BuildOptions {
            sdk_path: Some(find_sdk(opts.sdk_path.as_deref())?),
            cache_dir: Some(match &opts.cache_dir {
                Some(dir) => absolute(dir)?,
                None => default_cache_dir().unwrap_or_else(|| server_root.join("handler-cache")),
            }),
            cargo: None,
        },
        None => BuildOptions::default(),
    };
    let script = if native_source.is_some() {
        server_root.join(HANDLER_FILE)
    } else {
        script
    };
    if !working_directory.is_dir() && working_directory != server_root {
        bail!(
            "working directory {} is not a directory",
            working_directory.display()
        );
    }
    let python_home = if native {
        None
    } else {
        opts.python_home.as_deref().map(absolute).transpose()?
    };
    if let Some(home) = &python_home {
        if !home.is_dir() {
            bail!("python home {} is not a directory", home.display());
        }
    }
    let python_path = opts
        .python_path
        .iter()
        .filter(|_| !native)
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let include_files = opts
        .include_files
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let site = opts.site.resolve(&server_root.join("htdocs"))?;
    let logs = opts.logs.resolve(&server_root, &daemon_path)?;
    let process = opts.process.resolve(&modules_dir)?;
    let config = ServerConfig {
        httpd,
        modules_dir,
        module_path,
        daemon_path,
        server_root,
        script,
        native_source,
        module_entry,
        build,
        callable_object: opts.callable_object.clone(),
        mount_point: opts.mount_point.clone(),
        host: opts.host.clone(),
        port,
        processes: opts.processes,
        threads: opts.threads,
        max_clients: opts.max_clients_or_default(),
        daemon_options: [opts.all_daemon_options(), opts.reload.daemon_options()?].concat(),
        timeouts: opts.timeouts,
        identity,
        python_home,
        python_path,
        working_directory,
        // As in mod_wsgi-express, a --log-directory wins over --log-to-terminal.
        log_to_terminal: opts.log_to_terminal && opts.logs.log_directory.is_none(),
        access_log: opts.access_log,
        log_level: opts.log_level.clone(),
        include_files,
        extra_directives: opts.extra_directives.clone(),
        startup_log: opts.startup_log,
        keep_serving_on_load_error: opts.keep_serving_on_load_error,
        load_wait: opts.load_wait,
        app: opts.app.resolve()?,
        daemon: opts.daemon.resolve()?,
        logs,
        site,
        hosts: opts.hosts.resolve()?,
        proxy: opts.proxy.resolve()?,
        status: opts.status.resolve()?,
        requests: opts.requests.resolve()?,
        process,
    };
    if let Some(who) = &config.identity {
        check_reachable(&config, who)?;
    }
    if let Some(home) = &config.python_home {
        check_python_home(&config.daemon_path, home, config.identity.as_ref())?;
    }
    Ok(config)
}

/// Root must name a user to switch to; anyone else may name only themselves.
fn identity(opts: &ServerOptions) -> Result<Option<Identity>> {
    let euid = geteuid();
    if euid.is_root() {
        let Some(user) = &opts.user else {
            bail!(
                "running as root: pass --user USER (for example --user www-data) so that \
                 Apache's children and the daemons do not run as root"
            );
        };
        let id = Identity::lookup(user, opts.group.as_deref())?;
        if id.uid == 0 {
            bail!("--user {user} is root: the daemons must not run as root; pass an unprivileged user");
        }
        return Ok(Some(id));
    }
    if let Some(user) = &opts.user {
        let id = Identity::lookup(user, None)?;
        if id.uid != euid.as_raw() {
            bail!(
                "only root can switch user: you are uid {euid}, --user names {user} (uid {})",
                id.uid
            );
        }
    }
    if let Some(group) = &opts.group {
        let me = Identity::lookup(&format!("#{euid}"), Some(group))?;
        if me.gid != nix::unistd::getegid().as_raw() {
            bail!("only root can switch group: --group names {group}");
        }
    }
    Ok(None)
}

/// The switched-to user must reach the script, the working directory, the python
/// home and path, the module and the daemon binary.
fn check_reachable(config: &ServerConfig, who: &Identity) -> Result<()> {
    // A handler built from source (or a module's handler) is put into the server root
    // later, readable by all.
    if config.native_source.is_none() && config.module_entry.is_none() {
        check_access(who, &config.script, Need::Read, "the WSGI script")?;
    }
    if config.working_directory != config.server_root {
        check_access(
            who,
            &config.working_directory,
            Need::Enter,
            "the working directory",
        )?;
    }
    if let Some(home) = &config.python_home {
        check_access(who, home, Need::List, "the python home")?;
    }
    for dir in config.python_path.iter().filter(|d| d.exists()) {
        check_access(who, dir, Need::List, "the python path entry")?;
    }
    let auth = &config.site.auth;
    let scripts = [
        (&auth.host_access_script, "the --host-access-script"),
        (&auth.auth_user_script, "the --auth-user-script"),
        (&auth.auth_group_script, "the --auth-group-script"),
    ];
    for (script, what) in scripts {
        if let Some(script) = script {
            check_access(who, script, Need::Read, what)?;
        }
    }
    check_access(who, &config.module_path, Need::Read, "the module")?;
    check_access(who, &config.daemon_path, Need::Execute, "the daemon")?;
    Ok(())
}

/// Whether the user the daemons switch to (if any) can enter `dir`.
fn enterable(who: Option<&Identity>, dir: &Path) -> bool {
    match who {
        Some(who) => check_access(who, dir, Need::Enter, "the directory").is_ok(),
        None => true,
    }
}

/// `path` made absolute against the current directory (not canonicalized).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(env::current_dir()
        .context("reading the current directory")?
        .join(path))
}

//! `express`: the command line. Parsing only; the work is in the `rswsgi_express` library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use rswsgi_express::app::AppOptions;
use rswsgi_express::handler::install_library;
use rswsgi_express::hosts::{https_url, HostOptions};
use rswsgi_express::limits::{ProcessOptions, RequestOptions};
use rswsgi_express::proxy::ProxyOptions;
use rswsgi_express::site::SiteOptions;
use rswsgi_express::{build_handler, check_port, resolve, run_foreground};
use rswsgi_express::{errln, outln};
use rswsgi_express::{write_server_root, ApplicationType, BuildOptions, ServerOptions};
use rswsgi_express::{ServerRoot, Timeouts};

#[derive(Parser)]
#[command(
    name = "express",
    version,
    about = "Run a WSGI application under Apache httpd with mod_rswsgi daemon processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the server root and run httpd in the foreground until Ctrl-C or SIGTERM.
    StartServer(Args),
    /// Write the server root only; start it later with `<root>/apachectl`.
    SetupServer(Args),
    /// Compile a native handler (wsgi.rs) into a library, cached by content hash.
    BuildHandler(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The handler's Rust source (for example wsgi.rs).
    script: PathBuf,
    /// Copy the built library here [default: print the cached library's path].
    #[arg(short = 'o', long, value_name = "OUT.so")]
    output: Option<PathBuf>,
    /// The rswsgi SDK source [default: $RSWSGI_SDK, else next to express].
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
    /// Build cache [default: $XDG_CACHE_HOME/rswsgi/handlers or ~/.cache/rswsgi/handlers].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Args {
    /// The WSGI script to serve (wsgi.py), or a native handler (wsgi.rs, built and cached; or a built .so); with --application-type module, a module name.
    script: Option<PathBuf>,
    /// The entry point, instead of SCRIPT (it wins when both are given).
    #[arg(long, value_name = "FILE-PATH|MODULE")]
    entry_point: Option<PathBuf>,
    /// What the entry point is: a script file, or a Python module imported by its dotted name.
    #[arg(long, value_enum, value_name = "TYPE", default_value = "script")]
    application_type: ApplicationType,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (1-65535).
    #[arg(long, default_value_t = 8000)]
    port: u64,
    /// Daemon processes.
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// Threads per daemon process.
    #[arg(long, default_value_t = 5)]
    threads: u32,
    /// Directory for the generated configuration [default: /tmp/rswsgi-express-HOST:PORT:UID].
    #[arg(long)]
    server_root: Option<PathBuf>,
    /// User that Apache's children and the daemons run as (required as root).
    #[arg(long)]
    user: Option<String>,
    /// Group for them [default: the user's primary group].
    #[arg(long)]
    group: Option<String>,
    /// Python home or virtualenv for the daemons [default: $VIRTUAL_ENV].
    #[arg(long)]
    python_home: Option<PathBuf>,
    /// Directory to add to sys.path (repeatable).
    #[arg(long, value_name = "DIR")]
    python_path: Vec<PathBuf>,
    /// Name of the WSGI callable in the script.
    #[arg(long, default_value = "application")]
    callable_object: String,
    /// URL path to mount the application at.
    #[arg(long, default_value = "/")]
    mount_point: String,
    /// Send the error log (and the access log) to the terminal.
    #[arg(long)]
    log_to_terminal: bool,
    /// Write an access log.
    #[arg(long)]
    access_log: bool,
    /// Write httpd's own start-up messages to <root>/startup_log (to the terminal with --log-to-terminal).
    #[arg(long)]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::invalid_html_tags)]
    startup_log: bool,
    /// When the script fails to load, show the error and serve on (each request a 500) instead of stopping.
    #[arg(long)]
    keep_serving_on_load_error: bool,
    /// Seconds to wait for the daemons' first load of the script before serving anyway.
    #[arg(long, value_name = "SECS", default_value_t = rswsgi_express::startup::DEFAULT_LOAD_WAIT)]
    load_wait: u64,
    /// Apache's LogLevel.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// The httpd binary [default: /usr/sbin/apache2, apxs, or httpd on PATH].
    #[arg(long)]
    httpd_executable: Option<PathBuf>,
    /// Apache's modules directory [default: apxs -q LIBEXECDIR].
    #[arg(long)]
    modules_directory: Option<PathBuf>,
    /// mod_rswsgi.so [default: $RSWSGI_MODULE, else next to express].
    #[arg(long)]
    module_path: Option<PathBuf>,
    /// rswsgi-daemon [default: $RSWSGI_DAEMON, else next to express].
    #[arg(long)]
    daemon_executable: Option<PathBuf>,
    /// Working directory of the daemons [default: the script's directory].
    #[arg(long)]
    working_directory: Option<PathBuf>,
    /// Most simultaneous client connections [default: 10 + 1.5 × processes × threads].
    #[arg(long)]
    max_clients: Option<u32>,
    /// Extra Apache configuration file to Include (repeatable).
    #[arg(long, value_name = "FILE")]
    include_file: Vec<PathBuf>,
    /// Recycle a daemon process after this many requests (WSGIDaemonProcess maximum-requests).
    #[arg(long, value_name = "N")]
    maximum_requests: Option<u64>,
    /// Recycle a daemon process after this many seconds (restart-interval).
    #[arg(long, value_name = "SECS")]
    restart_interval: Option<u64>,
    /// Recycle a daemon process idle this many seconds (inactivity-timeout).
    #[arg(long, value_name = "SECS")]
    inactivity_timeout: Option<u64>,
    /// Give up a request after this many seconds with a 504, log its stack, recycle (request-timeout; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    request_timeout: u64,
    /// Apache's Timeout, and how long the module waits on a daemon (socket-timeout).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    socket_timeout: u64,
    /// Seconds to receive a request's headers (mod_reqtimeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    header_timeout: u64,
    /// Most seconds --header-min-rate may stretch the header timeout to (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    header_max_timeout: u64,
    /// Each time this many header bytes arrive, the header timeout grows by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    header_min_rate: u64,
    /// Seconds to receive a request's body (mod_reqtimeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    body_timeout: u64,
    /// Most seconds --body-min-rate may stretch the body timeout to (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    body_max_timeout: u64,
    /// Each time this many body bytes arrive, the body timeout grows by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    body_min_rate: u64,
    /// Seconds a recycling daemon lets requests finish (graceful-timeout, default 15).
    #[arg(long, value_name = "SECS")]
    graceful_timeout: Option<u64>,
    /// Seconds daemons get to finish when the server stops (shutdown-timeout, default 5).
    #[arg(long, value_name = "SECS")]
    shutdown_timeout: Option<u64>,
    /// Seconds a request waits for a daemon to accept it before a 503 (connect-timeout, default 15).
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<u64>,
    /// Recycle a daemon process whose resident memory exceeds this many bytes (memory-limit).
    #[arg(long, value_name = "BYTES")]
    memory_limit: Option<u64>,
    /// Recycle a daemon process after this much CPU time in seconds (cpu-time-limit).
    #[arg(long, value_name = "SECS")]
    cpu_time_limit: Option<u64>,
    /// The rswsgi SDK source, to build a .rs script [default: $RSWSGI_SDK, else next to express].
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
    /// Build cache for a .rs script [default: $XDG_CACHE_HOME/rswsgi/handlers or ~/.cache/rswsgi/handlers].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Write the server root only, as setup-server does.
    #[arg(long)]
    setup_only: bool,
    /// Accepted for mod_wsgi-express compatibility: express always enables sendfile.
    #[arg(long)]
    enable_sendfile: bool,
    #[command(flatten)]
    app: AppOptions,
    #[command(flatten)]
    site: SiteOptions,
    #[command(flatten)]
    hosts: HostOptions,
    #[command(flatten)]
    proxy: ProxyOptions,
    #[command(flatten)]
    requests: RequestOptions,
    #[command(flatten)]
    process: ProcessOptions,
}

impl Args {
    fn into_options(self) -> anyhow::Result<ServerOptions> {
        let Some(entry) = self.entry_point.or(self.script) else {
            anyhow::bail!("no application given: pass SCRIPT (or --entry-point)");
        };
        // --enable-sendfile asks for what express always does (EnableSendfile On).
        let _ = self.enable_sendfile;
        let mut o = ServerOptions::new(entry);
        o.application_type = self.application_type;
        o.app = self.app;
        o.site = self.site;
        o.hosts = self.hosts;
        o.proxy = self.proxy;
        o.requests = self.requests;
        o.process = self.process;
        o.host = self.host;
        o.port = match u16::try_from(self.port) {
            Ok(port) if port > 0 => port,
            _ => anyhow::bail!("--port {}: a port is a number from 1 to 65535", self.port),
        };
        o.processes = self.processes;
        o.threads = self.threads;
        o.server_root = self.server_root;
        o.user = self.user;
        o.group = self.group;
        o.python_home = self.python_home.or_else(|| {
            std::env::var_os("VIRTUAL_ENV")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        o.python_path = self.python_path;
        o.callable_object = self.callable_object;
        o.mount_point = self.mount_point;
        o.log_to_terminal = self.log_to_terminal;
        o.access_log = self.access_log;
        o.startup_log = self.startup_log;
        o.keep_serving_on_load_error = self.keep_serving_on_load_error;
        o.load_wait = self.load_wait;
        o.log_level = self.log_level;
        o.httpd_executable = self.httpd_executable;
        o.modules_directory = self.modules_directory;
        o.module_path = self.module_path;
        o.daemon_executable = self.daemon_executable;
        o.working_directory = self.working_directory;
        o.max_clients = self.max_clients;
        o.include_files = self.include_file;
        o.sdk_path = self.sdk_path;
        o.cache_dir = self.cache_dir;
        o.timeouts = Timeouts {
            header_timeout: self.header_timeout,
            header_max_timeout: self.header_max_timeout,
            header_min_rate: self.header_min_rate,
            body_timeout: self.body_timeout,
            body_max_timeout: self.body_max_timeout,
            body_min_rate: self.body_min_rate,
            request_timeout: self.request_timeout,
            socket_timeout: self.socket_timeout,
        };
        let lifecycle = [
            ("maximum-requests", self.maximum_requests),
            ("restart-interval", self.restart_interval),
            ("inactivity-timeout", self.inactivity_timeout),
            ("graceful-timeout", self.graceful_timeout),
            ("shutdown-timeout", self.shutdown_timeout),
            ("connect-timeout", self.connect_timeout),
            ("memory-limit", self.memory_limit),
            ("cpu-time-limit", self.cpu_time_limit),
        ];
        o.daemon_options = lifecycle
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .collect();
        Ok(o)
    }
}

fn describe(root: &ServerRoot) {
    let c = &root.config;
    outln!("Server URL         : {}", root.url);
    if let Some(url) = https_url(c) {
        outln!("Server URL (HTTPS) : {url}");
    }
    outln!("Server Root        : {}", root.dir.display());
    outln!("Server Conf        : {}", root.httpd_conf.display());
    match &root.error_log {
        Some(log) => outln!("Error Log File     : {} ({})", log.display(), c.log_level),
        None => outln!("Error Log File     : /dev/stderr ({})", c.log_level),
    }
    if let Some(log) = &root.startup_log {
        outln!("Startup Log File   : {}", log.display());
    }
    match &c.native_source {
        _ if c.module_entry.is_some() => {
            outln!(
                "WSGI Module        : {}",
                c.module_entry.as_deref().unwrap_or_default()
            );
        }
        Some(source) => {
            outln!("Native Handler     : {}", source.display());
            outln!("Handler Library    : {}", c.script.display());
        }
        None => outln!("WSGI Script        : {}", c.script.display()),
    }
    if c.site.serves_document_root {
        outln!("Document Root      : {}", c.site.document_root().display());
    }
    outln!("Daemon Processes   : {}", c.processes);
    outln!("Threads Per Process: {}", c.threads);
    outln!(
        "Request Timeout    : {} (seconds)",
        c.timeouts.request_timeout
    );
    outln!("Read Timeouts      : {}", c.timeouts.request_read_timeout());
    if let Some(id) = &c.identity {
        outln!("User / Group       : {} / {}", id.user, id.group);
    }
    if let Some(home) = &c.python_home {
        outln!("Python Home        : {}", home.display());
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::BuildHandler(args) => {
            let opts = BuildOptions {
                sdk_path: args.sdk_path,
                cache_dir: args.cache_dir,
                cargo: None,
            };
            let built = build_handler(&args.script, &opts)?;
            let library = match args.output {
                Some(out) => {
                    install_library(&built.library, &out, 0o755)?;
                    out
                }
                None => built.library,
            };
            outln!("{}", library.display());
            Ok(0)
        }
        Cmd::SetupServer(args) => setup(args),
        Cmd::StartServer(args) if args.setup_only => setup(args),
        Cmd::StartServer(args) => {
            let config = resolve(&args.into_options()?)?;
            check_port(&config.host, config.port)?;
            let root = write_server_root(&config)?;
            describe(&root);
            Ok(run_foreground(&root)?.exit_code())
        }
    }
}

/// `setup-server`, and `start-server --setup-only`.
fn setup(args: Args) -> Result<i32> {
    let root = write_server_root(&resolve(&args.into_options()?)?)?;
    describe(&root);
    outln!(
        "Server root written to {}; run `{} start` (or `foreground`) to start it.",
        root.dir.display(),
        root.apachectl.display()
    );
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            errln!("express: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! What a server is asked to be: the options of `express start-server` / `setup-server`.

use std::path::PathBuf;

use rswsgi_protocol::daemon_spec::{flags, DEFAULT_GRACEFUL_TIMEOUT};

use crate::app::AppOptions;
use crate::daemon::DaemonOptions;
use crate::hosts::HostOptions;
use crate::limits::{ProcessOptions, RequestOptions};
use crate::logs::LogOptions;
use crate::proxy::ProxyOptions;
use crate::site::SiteOptions;

/// An option table's defaults, as its `clap` declaration gives them (so that they are
/// declared once, for the command line and the library alike).
pub fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let matches = T::augment_args(clap::Command::new("defaults"))
        .try_get_matches_from(["defaults"])
        .expect("every option has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

/// What the entry point names (`--application-type`, as mod_wsgi-express).
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApplicationType {
    /// A WSGI script file (`wsgi.py`), or a native handler (`wsgi.rs`, `handler.so`).
    #[default]
    Script,
    /// A Python module to import by its dotted name (`mysite.wsgi`), with the working
    /// directory on `sys.path`.
    Module,
}

/// The fewest Apache request threads express configures: one child's worth at Apache's
/// default `ThreadLimit`. A relay thread costs about 100 KiB.
pub const MIN_RELAY_THREADS: u32 = 64;

/// The timeouts that bound slow clients and slow requests, with mod_wsgi-express's names
/// and defaults (the `[default: ...]` of `express start-server --help`). `header_*` and
/// `body_*` become `mod_reqtimeout`'s `RequestReadTimeout` (see
/// [`Timeouts::request_read_timeout`]): mpm_event reads a request's headers in a worker
/// thread, so without it a few hundred slow clients (slowloris) hold every Apache thread, and
/// a slow upload holds a daemon thread for as long as it trickles.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Give up a request after this many seconds with a 504, log its stack, recycle (request-timeout; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub request_timeout: u64,
    /// Apache's Timeout, and how long the module waits on a daemon (socket-timeout).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub socket_timeout: u64,
    /// Seconds to receive a request's headers (mod_reqtimeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub header_timeout: u64,
    /// Most seconds --header-min-rate may stretch the header timeout to (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub header_max_timeout: u64,
    /// Each time this many header bytes arrive, the header timeout grows by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    pub header_min_rate: u64,
    /// Seconds to receive a request's body (mod_reqtimeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub body_timeout: u64,
    /// Most seconds --body-min-rate may stretch the body timeout to (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub body_max_timeout: u64,
    /// Each time this many body bytes arrive, the body timeout grows by a second.
    #[arg(long, value_name = "BYTES", default_value_t = 500)]
    pub body_min_rate: u64,
}

impl Default for Timeouts {
    /// mod_wsgi-express's defaults, as declared for the command line.
    fn default() -> Self {
        clap_defaults()
    }
}

impl Timeouts {
    /// The arguments of `RequestReadTimeout`, composed as mod_wsgi-express composes them
    /// (`header=15-30,MinRate=500 body=15,MinRate=500` by default); a stage whose timeout
    /// is 0 gets `header=0` / `body=0` (no timeout), since mod_reqtimeout would otherwise
    /// apply its own defaults.
    pub fn request_read_timeout(&self) -> String {
        let stage = |name: &str, timeout: u64, max: u64, rate: u64| {
            let mut s = format!("{name}={timeout}");
            if timeout > 0 {
                if max > 0 {
                    s.push_str(&format!("-{max}"));
                }
                if rate > 0 {
                    s.push_str(&format!(",MinRate={rate}"));
                }
            }
            s
        };
        format!(
            "{} {}",
            stage(
                "header",
                self.header_timeout,
                self.header_max_timeout,
                self.header_min_rate
            ),
            stage(
                "body",
                self.body_timeout,
                self.body_max_timeout,
                self.body_min_rate
            )
        )
    }
}

/// Every option of `express start-server` and `express setup-server`, with
/// mod_wsgi-express's names and defaults: the command line flattens this table, and its
/// doc comments are the `--help` text. Build one with [`ServerOptions::new`] and set the
/// fields you need; [`crate::setup_server`] turns it into a server root.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
// The doc comments are the --help text, shown as written (not markdown).
#[allow(rustdoc::invalid_html_tags)]
pub struct ServerOptions {
    /// The WSGI script (`wsgi.py`) to serve, or a native handler: its Rust source
    /// (`wsgi.rs`, built with [`crate::build_handler`]) or a built library (`handler.so`);
    /// with [`ApplicationType::Module`], a module's dotted name. (On the command line, SCRIPT
    /// or `--entry-point`.)
    #[arg(skip)]
    pub script: PathBuf,
    /// What the entry point is: a script file, or a Python module imported by its dotted name.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t)]
    pub application_type: ApplicationType,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (1-65535).
    #[arg(long, default_value_t = 8000)]
    pub port: u64,
    /// Daemon processes.
    #[arg(long, default_value_t = 1)]
    pub processes: u32,
    /// Threads per daemon process.
    #[arg(long, default_value_t = 5)]
    pub threads: u32,
    /// Directory for the generated configuration [default: /tmp/rswsgi-express-HOST:PORT:UID].
    #[arg(long)]
    pub server_root: Option<PathBuf>,
    /// User that Apache's children and the daemons run as (required as root).
    #[arg(long)]
    pub user: Option<String>,
    /// Group for them [default: the user's primary group].
    #[arg(long)]
    pub group: Option<String>,
    /// Python home or virtualenv for the daemons [default: $VIRTUAL_ENV].
    #[arg(long)]
    pub python_home: Option<PathBuf>,
    /// Directory to add to sys.path (repeatable).
    #[arg(long, value_name = "DIR")]
    pub python_path: Vec<PathBuf>,
    /// Name of the WSGI callable in the script.
    #[arg(long, default_value = "application")]
    pub callable_object: String,
    /// URL path to mount the application at.
    #[arg(long, default_value = "/")]
    pub mount_point: String,
    /// Send the error log (and the access log) to the terminal.
    #[arg(long)]
    pub log_to_terminal: bool,
    /// Write an access log.
    #[arg(long)]
    pub access_log: bool,
    /// Write httpd's own start-up messages to <root>/startup_log (to the terminal with --log-to-terminal).
    #[arg(long)]
    pub startup_log: bool,
    /// When the script fails to load, show the error and serve on (each request a 500) instead of stopping.
    #[arg(long)]
    pub keep_serving_on_load_error: bool,
    /// Seconds to wait for the daemons' first load of the script before serving anyway.
    #[arg(long, value_name = "SECS", default_value_t = crate::startup::DEFAULT_LOAD_WAIT)]
    pub load_wait: u64,
    /// Apache's LogLevel.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// The httpd binary [default: /usr/sbin/apache2, apxs, or httpd on PATH].
    #[arg(long)]
    pub httpd_executable: Option<PathBuf>,
    /// Apache's modules directory [default: apxs -q LIBEXECDIR].
    #[arg(long)]
    pub modules_directory: Option<PathBuf>,
    /// mod_rswsgi.so [default: $RSWSGI_MODULE, else next to express].
    #[arg(long)]
    pub module_path: Option<PathBuf>,
    /// rswsgi-daemon [default: $RSWSGI_DAEMON, else next to express].
    #[arg(long)]
    pub daemon_executable: Option<PathBuf>,
    /// Working directory of the daemons [default: the script's directory].
    #[arg(long)]
    pub working_directory: Option<PathBuf>,
    /// Most simultaneous client connections [default: 10 + 1.5 × processes × threads].
    #[arg(long)]
    pub max_clients: Option<u32>,
    /// Extra Apache configuration file to Include (repeatable).
    #[arg(long = "include-file", value_name = "FILE")]
    pub include_files: Vec<PathBuf>,
    /// Recycle a daemon process after this many requests (WSGIDaemonProcess maximum-requests).
    #[arg(long, value_name = "N")]
    pub maximum_requests: Option<u64>,
    /// Recycle a daemon process after this many seconds (restart-interval).
    #[arg(long, value_name = "SECS")]
    pub restart_interval: Option<u64>,
    /// Recycle a daemon process idle this many seconds (inactivity-timeout).
    #[arg(long, value_name = "SECS")]
    pub inactivity_timeout: Option<u64>,
    /// Slow-client and slow-request timeouts (see [`Timeouts`]).
    #[command(flatten)]
    pub timeouts: Timeouts,
    /// Seconds a recycling daemon lets requests finish (graceful-timeout, default
    /// [`DEFAULT_GRACEFUL_TIMEOUT`]).
    #[arg(long, value_name = "SECS", help = format!(
        "Seconds a recycling daemon lets requests finish ({}, default {})",
        flags::GRACEFUL_TIMEOUT.option(),
        DEFAULT_GRACEFUL_TIMEOUT.as_secs()
    ))]
    pub graceful_timeout: Option<u64>,
    /// Seconds daemons get to finish when the server stops (shutdown-timeout, default 5).
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout: Option<u64>,
    /// Seconds a request waits for a daemon to accept it before a 503 (connect-timeout, default 15).
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// Recycle a daemon process whose resident memory exceeds this many bytes (memory-limit).
    #[arg(long, value_name = "BYTES")]
    pub memory_limit: Option<u64>,
    /// Recycle a daemon process after this much CPU time in seconds (cpu-time-limit).
    #[arg(long, value_name = "SECS")]
    pub cpu_time_limit: Option<u64>,
    /// The rswsgi SDK source, to build a .rs script [default: $RSWSGI_SDK, else next to express].
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
    /// Build cache for a .rs script [default: $XDG_CACHE_HOME/rswsgi/handlers or ~/.cache/rswsgi/handlers].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Process and application group names, socket prefix, environ additions.
    #[command(flatten)]
    pub app: AppOptions,
    /// The daemons' timeouts, buffers, locale, Python options and reloading.
    #[command(flatten)]
    pub daemon: DaemonOptions,
    /// Log directory and names, formats, rotation.
    #[command(flatten)]
    pub logs: LogOptions,
    /// Static files, aliases, error documents, compression, rewrite rules, CGI.
    #[command(flatten)]
    pub site: SiteOptions,
    /// Host names, TLS and HTTP/2.
    #[command(flatten)]
    pub hosts: HostOptions,
    /// Mount points and host names proxied to other servers.
    #[command(flatten)]
    pub proxy: ProxyOptions,
    /// Request body limit, chunked bodies, keep-alive, backlog, trusted proxies.
    #[command(flatten)]
    pub requests: RequestOptions,
    /// MPM, pid file, process name, environment script.
    #[command(flatten)]
    pub process: ProcessOptions,
    /// Reloading on code changes (`reload.rs`).
    #[command(flatten)]
    pub reload: crate::reload::ReloadOptions,
    /// The metrics endpoint, server-status and the health drain file (`status.rs`).
    #[command(flatten)]
    pub status: crate::status::StatusOptions,
    /// Extra configuration lines appended verbatim (library only; the tests use it).
    #[arg(skip)]
    pub extra_directives: Vec<String>,
    /// Extra `WSGIDaemonProcess` options (`maximum-requests=100`, …) (library only); they
    /// come after the recycling options above, and after (so override) the ones express
    /// sets itself.
    #[arg(skip)]
    pub daemon_options: Vec<String>,
}

impl ServerOptions {
    /// The defaults of `express start-server SCRIPT` with no other option.
    pub fn new(script: impl Into<PathBuf>) -> Self {
        ServerOptions {
            script: script.into(),
            ..clap_defaults()
        }
    }

    /// The server root: the one given, else `/tmp/rswsgi-express-HOST:PORT:UID`
    /// (named like mod_wsgi-express's `/tmp/mod_wsgi-HOST:PORT:UID`).
    pub fn server_root_or_default(&self) -> PathBuf {
        match &self.server_root {
            Some(root) => root.clone(),
            None => {
                let uid = nix::unistd::geteuid();
                let host = self.host.replace('/', "_");
                PathBuf::from(format!("/tmp/rswsgi-express-{host}:{}:{uid}", self.port))
            }
        }
    }

    /// Apache's `MaxRequestWorkers`: the option, else 10 + 1.5 × processes × threads as
    /// mod_wsgi-express sizes it, but at least [`MIN_RELAY_THREADS`]. The headroom matters:
    /// when every worker of a child is busy, Apache's event MPM closes all of that child's
    /// idle keep-alive connections, which clients see as resets and reconnects (p99 of a
    /// second). Here Apache's threads only relay requests to the daemons, so they are cheap,
    /// and requests beyond the daemons' capacity wait on the daemon socket instead.
    pub fn max_clients_or_default(&self) -> u32 {
        self.max_clients.unwrap_or_else(|| {
            let threads = u64::from(self.processes) * u64::from(self.threads);
            let wanted = ((threads * 3).div_ceil(2) + 10).max(u64::from(MIN_RELAY_THREADS));
            u32::try_from(wanted).unwrap_or(u32::MAX)
        })
    }

    /// The `WSGIDaemonProcess` options of the group: those of the recycling flags that are
    /// given (`maximum-requests=100`, ...), then [`ServerOptions::daemon_options`].
    pub fn all_daemon_options(&self) -> Vec<String> {
        // The daemon's limits are named as daemon_spec names them; shutdown-timeout and
        // connect-timeout are the module's own (the supervisor's and the relay's).
        let recycling = [
            (flags::MAXIMUM_REQUESTS.option(), self.maximum_requests),
            (flags::RESTART_INTERVAL.option(), self.restart_interval),
            (flags::INACTIVITY_TIMEOUT.option(), self.inactivity_timeout),
            (flags::GRACEFUL_TIMEOUT.option(), self.graceful_timeout),
            ("shutdown-timeout", self.shutdown_timeout),
            ("connect-timeout", self.connect_timeout),
            (flags::MEMORY_LIMIT.option(), self.memory_limit),
            (flags::CPU_TIME_LIMIT.option(), self.cpu_time_limit),
        ];
        recycling
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .chain(self.daemon_options.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_mod_wsgi_express() {
        let o = ServerOptions::new("/srv/app/wsgi.py");
        assert_eq!(o.port, 8000);
        assert_eq!(o.processes, 1);
        assert_eq!(o.threads, 5);
        assert_eq!(o.callable_object, "application");
        assert_eq!(o.max_clients_or_default(), MIN_RELAY_THREADS);
        assert_eq!(o.application_type, ApplicationType::Script);
        assert_eq!(
            (o.host.as_str(), o.log_level.as_str()),
            ("127.0.0.1", "info")
        );
        assert_eq!(o.load_wait, crate::startup::DEFAULT_LOAD_WAIT);
        assert!(o.all_daemon_options().is_empty());
        assert_eq!(
            o.timeouts.request_read_timeout(),
            "header=15-30,MinRate=500 body=15,MinRate=500"
        );
        assert_eq!(
            (o.timeouts.request_timeout, o.timeouts.socket_timeout),
            (60, 60)
        );
        let off = Timeouts {
            header_timeout: 0,
            body_max_timeout: 40,
            body_min_rate: 0,
            ..Timeouts::default()
        };
        assert_eq!(off.request_read_timeout(), "header=0 body=15-40");
        let root = o.server_root_or_default();
        let root = root.to_str().unwrap();
        assert!(
            root.starts_with("/tmp/rswsgi-express-127.0.0.1:8000:"),
            "{root}"
        );
    }

    #[test]
    fn recycling_flags_become_daemon_options_with_the_daemons_names() {
        let mut o = ServerOptions::new("x.py");
        o.maximum_requests = Some(100);
        o.graceful_timeout = Some(3);
        o.connect_timeout = Some(7);
        o.cpu_time_limit = Some(9);
        o.daemon_options = vec!["queue-timeout=2".into()];
        assert_eq!(
            o.all_daemon_options(),
            [
                "maximum-requests=100",
                "graceful-timeout=3",
                "connect-timeout=7",
                "cpu-time-limit=9",
                "queue-timeout=2"
            ]
        );
        for limit in ["maximum-requests", "graceful-timeout", "cpu-time-limit"] {
            assert!(rswsgi_protocol::daemon_spec::LIMITS.contains(&limit));
        }
    }

    #[test]
    fn max_clients_scales_with_threads() {
        let mut o = ServerOptions::new("x.py");
        o.processes = 4;
        o.threads = 5;
        assert_eq!(o.max_clients_or_default(), 64);
        o.threads = 20;
        assert_eq!(o.max_clients_or_default(), 130);
        o.max_clients = Some(7);
        assert_eq!(o.max_clients_or_default(), 7);
    }
}

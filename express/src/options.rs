//! What a server is asked to be: the options of `express start-server` / `setup-server`.

use std::path::PathBuf;

use crate::app::AppOptions;
use crate::hosts::HostOptions;
use crate::limits::{ProcessOptions, RequestOptions};
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
/// and defaults. `header_*` and `body_*` become `mod_reqtimeout`'s `RequestReadTimeout`
/// (see [`Timeouts::request_read_timeout`]): mpm_event reads a request's headers in a worker
/// thread, so without it a few hundred slow clients (slowloris) hold every Apache thread, and
/// a slow upload holds a daemon thread for as long as it trickles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Seconds to receive the request line and headers (`--header-timeout`, 15; 0: none).
    pub header_timeout: u64,
    /// Most seconds the header timeout is stretched to by `header_min_rate`
    /// (`--header-max-timeout`, 30; 0: no limit).
    pub header_max_timeout: u64,
    /// Each time this many header bytes arrive, the header timeout grows by a second
    /// (`--header-min-rate`, 500; 0: never).
    pub header_min_rate: u64,
    /// Seconds to receive the request body (`--body-timeout`, 15; 0: none).
    pub body_timeout: u64,
    /// Most seconds the body timeout is stretched to (`--body-max-timeout`, 0: no limit).
    pub body_max_timeout: u64,
    /// Each time this many body bytes arrive, the body timeout grows by a second
    /// (`--body-min-rate`, 500).
    pub body_min_rate: u64,
    /// A request running longer is given up with a 504 and its daemon recycles
    /// (`--request-timeout`, 60; `WSGIDaemonProcess request-timeout`; 0: never).
    pub request_timeout: u64,
    /// Apache's `Timeout` and how long the module waits on a daemon (`--socket-timeout`,
    /// 60; `WSGIDaemonProcess socket-timeout`).
    pub socket_timeout: u64,
}

impl Default for Timeouts {
    /// mod_wsgi-express's defaults.
    fn default() -> Self {
        Timeouts {
            header_timeout: 15,
            header_max_timeout: 30,
            header_min_rate: 500,
            body_timeout: 15,
            body_max_timeout: 0,
            body_min_rate: 500,
            request_timeout: 60,
            socket_timeout: 60,
        }
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
/// mod_wsgi-express's names and defaults. Build one with [`ServerOptions::new`]
/// and set the fields you need; [`crate::setup_server`] turns it into a server root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The WSGI script (`wsgi.py`) to serve, or a native handler: its Rust source
    /// (`wsgi.rs`, built with [`crate::build_handler`]) or a built library (`handler.so`);
    /// with [`ApplicationType::Module`], a module's dotted name.
    pub script: PathBuf,
    /// What `script` names (`--application-type`, default `script`).
    pub application_type: ApplicationType,
    /// Address to listen on (`--host`, default `127.0.0.1`).
    pub host: String,
    /// Port to listen on (`--port`, default 8000).
    pub port: u16,
    /// Daemon processes in the group (`--processes`, default 1).
    pub processes: u32,
    /// Worker threads per daemon process (`--threads`, default 5).
    pub threads: u32,
    /// Where to write the configuration (`--server-root`); default
    /// `/tmp/rswsgi-express-HOST:PORT:UID`, see [`ServerOptions::server_root_or_default`].
    pub server_root: Option<PathBuf>,
    /// User that Apache's children and the daemons run as (`--user`); required as root.
    pub user: Option<String>,
    /// Group for them (`--group`); default the user's primary group.
    pub group: Option<String>,
    /// Python home or virtualenv for the daemons (`--python-home`).
    pub python_home: Option<PathBuf>,
    /// Extra directories on `sys.path` (`--python-path`, repeatable).
    pub python_path: Vec<PathBuf>,
    /// Name of the WSGI callable in the script (`--callable-object`, default `application`).
    pub callable_object: String,
    /// URL path the application is mounted at (`--mount-point`, default `/`).
    pub mount_point: String,
    /// Send the error log to the terminal (`--log-to-terminal`).
    pub log_to_terminal: bool,
    /// Write an access log (`--access-log`): `access_log` in the server root,
    /// or standard output with `--log-to-terminal`.
    pub access_log: bool,
    /// Apache's `LogLevel` (`--log-level`, default `info`).
    pub log_level: String,
    /// The httpd binary (`--httpd-executable`); found on the system otherwise.
    pub httpd_executable: Option<PathBuf>,
    /// Apache's modules directory (`--modules-directory`); asked of `apxs` otherwise.
    pub modules_directory: Option<PathBuf>,
    /// `mod_rswsgi.so` (`--module-path`, env `RSWSGI_MODULE`); next to `express` otherwise.
    pub module_path: Option<PathBuf>,
    /// `rswsgi-daemon` (`--daemon-executable`, env `RSWSGI_DAEMON`); next to `express` otherwise.
    pub daemon_executable: Option<PathBuf>,
    /// Working directory of the daemons (`--working-directory`, mod_wsgi's `home=`);
    /// default the script's directory.
    pub working_directory: Option<PathBuf>,
    /// Apache's request threads (`--max-clients`); default 10 + 1.5 × processes × threads,
    /// at least [`MIN_RELAY_THREADS`].
    pub max_clients: Option<u32>,
    /// Extra configuration files appended with `Include` (`--include-file`, repeatable).
    pub include_files: Vec<PathBuf>,
    /// Extra configuration lines appended verbatim (library only; the tests use it).
    pub extra_directives: Vec<String>,
    /// Extra `WSGIDaemonProcess` options (`maximum-requests=100`, …), from the lifecycle
    /// flags; they come after (and so override) the ones express sets itself.
    pub daemon_options: Vec<String>,
    /// Slow-client and slow-request timeouts (see [`Timeouts`]).
    pub timeouts: Timeouts,
    /// The rswsgi SDK source for building a `.rs` script (`--sdk-path`, env `RSWSGI_SDK`).
    pub sdk_path: Option<PathBuf>,
    /// Cache directory for native handler builds (`--cache-dir`); default
    /// `$XDG_CACHE_HOME/rswsgi/handlers` or `~/.cache/rswsgi/handlers`, else in the server root.
    pub cache_dir: Option<PathBuf>,
    /// httpd's own start-up messages to `<root>/startup_log`, or to standard error with
    /// `log_to_terminal` (`--startup-log`, httpd's `-E`).
    pub startup_log: bool,
    /// When the script fails to load, say so and serve on instead of stopping
    /// (`--keep-serving-on-load-error`).
    pub keep_serving_on_load_error: bool,
    /// Seconds `start-server` waits for the daemons' first load of the script before it
    /// serves anyway (`--load-wait`, default [`crate::startup::DEFAULT_LOAD_WAIT`]).
    pub load_wait: u64,
    /// Process and application group names, socket prefix, environ additions.
    pub app: AppOptions,
    /// Static files, aliases, error documents, compression, rewrite rules, CGI.
    pub site: SiteOptions,
    /// Host names, TLS and HTTP/2.
    pub hosts: HostOptions,
    /// Mount points and host names proxied to other servers.
    pub proxy: ProxyOptions,
    /// Request body limit, chunked bodies, keep-alive, backlog, trusted proxies.
    pub requests: RequestOptions,
    /// MPM, pid file, process name, environment script.
    pub process: ProcessOptions,
}

impl ServerOptions {
    /// The defaults of `express start-server SCRIPT` with no other option.
    pub fn new(script: impl Into<PathBuf>) -> Self {
        ServerOptions {
            script: script.into(),
            application_type: ApplicationType::Script,
            host: "127.0.0.1".to_owned(),
            port: 8000,
            processes: 1,
            threads: 5,
            server_root: None,
            user: None,
            group: None,
            python_home: None,
            python_path: Vec::new(),
            callable_object: "application".to_owned(),
            mount_point: "/".to_owned(),
            log_to_terminal: false,
            access_log: false,
            log_level: "info".to_owned(),
            httpd_executable: None,
            modules_directory: None,
            module_path: None,
            daemon_executable: None,
            working_directory: None,
            max_clients: None,
            daemon_options: Vec::new(),
            timeouts: Timeouts::default(),
            include_files: Vec::new(),
            extra_directives: Vec::new(),
            sdk_path: None,
            cache_dir: None,
            startup_log: false,
            keep_serving_on_load_error: false,
            load_wait: crate::startup::DEFAULT_LOAD_WAIT,
            app: AppOptions::default(),
            site: SiteOptions::default(),
            hosts: HostOptions::default(),
            proxy: ProxyOptions::default(),
            requests: RequestOptions::default(),
            process: ProcessOptions::default(),
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

    /// The daemon process group's name: `--process-group`, else `localhost:PORT` as
    /// mod_wsgi-express names it.
    pub fn process_group(&self) -> String {
        self.app.group_name(self.port)
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
        assert_eq!(o.process_group(), "localhost:8000");
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

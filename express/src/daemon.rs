//! The daemon processes' own behaviour: mod_wsgi-express's `--startup-timeout`,
//! `--queue-timeout`, `--deadlock-timeout`, `--eviction-timeout`, `--interrupt-timeout`,
//! the buffer sizes, `--daemon-backlog`, `--locale`/`--lang`, `--umask`, `--display-name`,
//! the Python interpreter options (`--python-warnings`, `--python-optimize`,
//! `--dont-write-bytecode`, `--switch-interval`, `--python-eggs`), `--disable-reloading` and
//! `--ignore-activity`. Each becomes a `WSGIDaemonProcess` option or one of the module's
//! directives; the option names are the daemon's own ([`flags`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};
use rswsgi_protocol::daemon_spec::flags;

use crate::config::{absolute, ServerConfig};
use crate::render::{conf_path, conf_word};

/// The actions a Python warnings filter may start with (`python -W ACTION:...`).
pub const WARNING_ACTIONS: [&str; 7] = [
    "default", "error", "ignore", "always", "all", "module", "once",
];

/// The locale express gives the daemons when neither `--locale` nor `--lang` is given and
/// the environment's is unset, `C` or `POSIX` (mod_wsgi-express tries `en_US.UTF-8` first;
/// Debian always has `C.UTF-8`, not always `en_US.UTF-8`).
pub const FALLBACK_LOCALE: &str = "C.UTF-8";

/// How the daemon processes behave, with mod_wsgi-express's names and defaults.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
// The doc comments are the --help text, shown as written (not markdown).
#[allow(rustdoc::invalid_html_tags)]
pub struct DaemonOptions {
    /// Seconds a daemon may take to start (Python and the script's first load) before it is restarted (startup-timeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub startup_timeout: u64,
    /// Seconds a request may wait for a daemon worker before a 504, the application not called (queue-timeout; 0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 45)]
    pub queue_timeout: u64,
    /// Seconds the daemon's Python GIL may stay unobtainable before the daemon is restarted (deadlock-timeout; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub deadlock_timeout: u64,
    /// Seconds a daemon recycled by SIGUSR1 lets its requests finish (eviction-timeout) [default: --graceful-timeout].
    #[arg(long, value_name = "SECS")]
    pub eviction_timeout: Option<u64>,
    /// After --request-timeout, raise mod_wsgi.RequestTimeout in the request and recycle only if it still runs this many seconds later (interrupt-timeout) [default: recycle at once].
    #[arg(long, value_name = "SECS")]
    pub interrupt_timeout: Option<u64>,
    /// Largest response head in bytes; a larger one is a 500 (header-buffer-size) [default: 1 MiB].
    #[arg(long, value_name = "BYTES")]
    pub header_buffer_size: Option<u64>,
    /// Largest piece of response body a daemon hands to Apache at once (response-buffer-size) [default: 1 MiB].
    #[arg(long, value_name = "BYTES")]
    pub response_buffer_size: Option<u64>,
    /// SO_SNDBUF of each connection a daemon accepts (send-buffer-size) [default: the system's].
    #[arg(long, value_name = "BYTES")]
    pub send_buffer_size: Option<u64>,
    /// SO_RCVBUF of each connection a daemon accepts (receive-buffer-size) [default: the system's].
    #[arg(long, value_name = "BYTES")]
    pub receive_buffer_size: Option<u64>,
    /// Seconds each write of a response to the client may take (response-socket-timeout) [default: --socket-timeout].
    #[arg(long, value_name = "SECS")]
    pub response_socket_timeout: Option<u64>,
    /// Backlog of the daemon group's listening socket (listen-backlog).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub daemon_backlog: u32,
    /// Each daemon process adds a random 0..N to --maximum-requests, so they do not recycle together (maximum-requests-jitter).
    #[arg(long, value_name = "N")]
    pub maximum_requests_jitter: Option<u64>,
    /// The daemons' LC_ALL (and LANG unless --lang is given) [default: the environment's, C.UTF-8 for C or POSIX].
    #[arg(long, value_name = "NAME")]
    pub locale: Option<String>,
    /// The daemons' LANG [default: --locale].
    #[arg(long, value_name = "NAME")]
    pub lang: Option<String>,
    /// The daemons' umask, in octal (umask) [default: httpd's].
    #[arg(long, value_name = "0NNN")]
    pub umask: Option<String>,
    /// The daemons' process title in ps; %{GROUP} becomes (wsgi:GROUP) (display-name) [default: %{GROUP}].
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// A Python warnings filter, ACTION[:MESSAGE[:CATEGORY[:MODULE[:LINENO]]]] as python -W takes (WSGIPythonWarnings; repeatable).
    #[arg(long, value_name = "SPEC")]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::broken_intra_doc_links)]
    pub python_warnings: Vec<String>,
    /// The daemons' Python optimization level, as python -O (1) or -OO (2) (WSGIPythonOptimize).
    #[arg(long, value_name = "LEVEL", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub python_optimize: u8,
    /// The daemons' Python writes no .pyc files, as python -B (WSGIDontWriteBytecode On).
    #[arg(long)]
    pub dont_write_bytecode: bool,
    /// The daemons' sys.setswitchinterval() in seconds (switch-interval) [default: Python's, 0.005].
    #[arg(long, value_name = "SECS")]
    pub switch_interval: Option<String>,
    /// Log each request slower than this many seconds, with its id and duration, and once while it still runs (the group's slow-requests=, mod_wsgi-express's WSGISlowRequests) [default: off].
    #[arg(long, value_name = "SECS")]
    pub slow_requests: Option<String>,
    /// The Python egg cache directory: PYTHON_EGG_CACHE in httpd's environment and so the daemons' [default: none].
    #[arg(long, value_name = "DIR")]
    pub python_eggs: Option<PathBuf>,
    /// Do not recycle a daemon when its WSGI script changes on disk (WSGIScriptReloading Off).
    #[arg(long)]
    pub disable_reloading: bool,
    /// A URL path whose requests do not count as activity for --inactivity-timeout (WSGIIgnoreActivity; repeatable).
    #[arg(long, value_name = "URL-PATH")]
    pub ignore_activity: Vec<String>,
}

impl Default for DaemonOptions {
    /// mod_wsgi-express's defaults, as declared for the command line.
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl DaemonOptions {
    /// Checks the values and settles the locale (see [`default_locale`]): the result has
    /// both `locale` and `lang` set, and `python_eggs` absolute.
    pub fn resolve(&self) -> Result<DaemonOptions> {
        let mut out = self.clone();
        if let Some(umask) = &self.umask {
            let ok = !umask.is_empty()
                && umask.len() <= 4
                && umask.bytes().all(|b| (b'0'..=b'7').contains(&b));
            if !ok {
                bail!("--umask {umask:?}: not an octal mode such as 0022");
            }
        }
        if let Some(interval) = &self.switch_interval {
            match interval.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 1e9 => {}
                _ => bail!("--switch-interval {interval:?}: a positive number of seconds"),
            }
        }
        if let Some(secs) = &self.slow_requests {
            match secs.parse::<f64>() {
                Ok(s) if (0.0..=1e9).contains(&s) => {}
                _ => bail!("--slow-requests {secs:?}: a number of seconds of at least 0"),
            }
        }
        for spec in &self.python_warnings {
            let action = spec.split(':').next().unwrap_or_default();
            if !WARNING_ACTIONS.contains(&action) || spec.contains(',') {
                bail!(
                    "--python-warnings {spec:?}: one filter, ACTION[:MESSAGE[:CATEGORY[:MODULE[:LINENO]]]], \
                     ACTION one of {}",
                    WARNING_ACTIONS.join(", ")
                );
            }
        }
        for url in &self.ignore_activity {
            if !url.starts_with('/') {
                bail!("--ignore-activity {url:?}: a URL path starting with /");
            }
        }
        let names = [
            ("--locale", &self.locale),
            ("--lang", &self.lang),
            ("--display-name", &self.display_name),
        ];
        for (flag, value) in names {
            if let Some(v) = value {
                if v.is_empty() || v.contains(char::is_control) {
                    bail!("{flag} {v:?}: must be a non-empty word without control characters");
                }
            }
        }
        let locale = self
            .locale
            .clone()
            .or_else(|| self.lang.clone())
            .unwrap_or_else(default_locale);
        out.lang = Some(self.lang.clone().unwrap_or_else(|| locale.clone()));
        out.locale = Some(locale);
        out.python_eggs = self.python_eggs.as_deref().map(absolute).transpose()?;
        Ok(out)
    }

    /// The `WSGIDaemonProcess` options (`startup-timeout=15`, `lang=…`, …), in the daemon's
    /// names; those not given are left to the module's defaults.
    pub fn wsgi_options(&self) -> Result<Vec<String>> {
        let numbers = [
            (flags::STARTUP_TIMEOUT.option(), Some(self.startup_timeout)),
            (flags::QUEUE_TIMEOUT.option(), Some(self.queue_timeout)),
            (
                flags::DEADLOCK_TIMEOUT.option(),
                Some(self.deadlock_timeout),
            ),
            (flags::EVICTION_TIMEOUT.option(), self.eviction_timeout),
            (flags::INTERRUPT_TIMEOUT.option(), self.interrupt_timeout),
            (flags::HEADER_BUFFER_SIZE.option(), self.header_buffer_size),
            (
                flags::RESPONSE_BUFFER_SIZE.option(),
                self.response_buffer_size,
            ),
            (flags::SEND_BUFFER_SIZE.option(), self.send_buffer_size),
            (
                flags::RECEIVE_BUFFER_SIZE.option(),
                self.receive_buffer_size,
            ),
            ("response-socket-timeout", self.response_socket_timeout),
            (
                flags::LISTEN_BACKLOG.option(),
                Some(u64::from(self.daemon_backlog)),
            ),
            (
                flags::MAXIMUM_REQUESTS_JITTER.option(),
                self.maximum_requests_jitter,
            ),
        ];
        let mut out: Vec<String> = numbers
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .collect();
        let words = [
            ("lang", &self.lang),
            ("locale", &self.locale),
            ("umask", &self.umask),
            (flags::SWITCH_INTERVAL.option(), &self.switch_interval),
            (flags::SLOW_REQUESTS.option(), &self.slow_requests),
        ];
        for (name, value) in words {
            if let Some(v) = value {
                out.push(conf_word(&format!("{name}={v}"))?);
            }
        }
        Ok(out)
    }

    /// The `display-name=` of the group (`%{GROUP}` unless `--display-name` is given).
    pub fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or("%{GROUP}")
    }

    /// Variables express puts into httpd's environment (and so the daemons') for these
    /// options: `PYTHON_EGG_CACHE` for `--python-eggs`.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.python_eggs
            .iter()
            .map(|dir| ("PYTHON_EGG_CACHE".to_owned(), dir.display().to_string()))
            .collect()
    }
}

/// mod_wsgi-express's default locale: the environment's (`LC_ALL`, else `LC_CTYPE`, else
/// `LANG`), or [`FALLBACK_LOCALE`] when that is unset, `C` or `POSIX`.
pub fn default_locale() -> String {
    let from_env = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
    match from_env {
        Some(l) if !matches!(l.to_ascii_uppercase().as_str(), "C" | "POSIX") => l,
        _ => FALLBACK_LOCALE.to_owned(),
    }
}

/// The module's directives for the Python interpreter options, `--disable-reloading` and
/// `--ignore-activity` (main server).
pub fn render_directives(c: &ServerConfig) -> Result<String> {
    let d = &c.daemon;
    let mut out = String::new();
    for spec in &d.python_warnings {
        writeln!(out, "WSGIPythonWarnings {}", conf_word(spec)?)?;
    }
    if d.python_optimize > 0 {
        writeln!(out, "WSGIPythonOptimize {}", d.python_optimize)?;
    }
    if d.dont_write_bytecode {
        out.push_str("WSGIDontWriteBytecode On\n");
    }
    if d.disable_reloading {
        out.push_str("WSGIScriptReloading Off\n");
    }
    for url in &d.ignore_activity {
        writeln!(
            out,
            "<Location {}>\n  WSGIIgnoreActivity On\n</Location>",
            conf_word(url)?
        )?;
    }
    if let Some(eggs) = &d.python_eggs {
        // Only to show it in the configuration; the variable is set in httpd's environment.
        writeln!(out, "# PYTHON_EGG_CACHE={}", conf_path(eggs)?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_mod_wsgi_express() {
        let d = DaemonOptions::default();
        assert_eq!(
            (d.startup_timeout, d.queue_timeout, d.deadlock_timeout),
            (15, 45, 60)
        );
        assert_eq!(d.daemon_backlog, 100);
        let mut d = d;
        d.locale = Some("de_DE.UTF-8".into());
        let r = d.resolve().unwrap();
        assert_eq!(r.lang.as_deref(), Some("de_DE.UTF-8"));
        assert_eq!(
            r.wsgi_options().unwrap(),
            [
                "startup-timeout=15",
                "queue-timeout=45",
                "deadlock-timeout=60",
                "listen-backlog=100",
                "lang=de_DE.UTF-8",
                "locale=de_DE.UTF-8"
            ]
        );
        for limit in ["startup-timeout", "queue-timeout", "header-buffer-size"] {
            assert!(rswsgi_protocol::daemon_spec::LIMITS.contains(&limit));
        }
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |f: fn(&mut DaemonOptions), needle: &str| {
            let mut d = DaemonOptions::default();
            f(&mut d);
            let e = d.resolve().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        bad(|d| d.umask = Some("0999".into()), "--umask");
        bad(
            |d| d.switch_interval = Some("-1".into()),
            "--switch-interval",
        );
        bad(|d| d.slow_requests = Some("-1".into()), "--slow-requests");
        bad(
            |d| d.python_warnings = vec!["loud".into()],
            "--python-warnings",
        );
        bad(
            |d| d.ignore_activity = vec!["healthz".into()],
            "--ignore-activity",
        );
        bad(|d| d.locale = Some("a\nb".into()), "--locale");
    }
}

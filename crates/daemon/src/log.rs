//! Logging to stderr (Apache's error log) in Apache's own line format:
//!
//! ```text
//! [Wed Nov 25 08:10:14.123456 2026] [wsgi:error] [pid 1234:tid 5678] [request XYZ] message
//! ```
//!
//! A multi-line message (a traceback) becomes one prefixed line per message line. The request
//! id comes from an event's `request_id` field, or else from the request the current thread is
//! serving ([`RequestScope`]).
//!
//! The daemon writes to the error log's descriptor directly, so httpd's `LogLevel` cannot drop
//! its lines: [`init`] filters them by the level the module passed (`--log-level`), as httpd
//! would. Apache's `notice` level, which httpd writes whatever the `LogLevel`, has no `tracing`
//! counterpart: [`always`] writes such a line.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use rswsgi_protocol::LogLevel;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

thread_local! {
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the stderr logger: it writes the lines Apache's `level` keeps, and with `verbose`
/// (`WSGIVerboseDebugging On`) also every debug line.
pub fn init(level: LogLevel, verbose: bool) {
    let filter = match verbose {
        true => filter_for(level).max(LevelFilter::DEBUG),
        false => filter_for(level),
    };
    // A second call (there is none) would fail harmlessly.
    let _ = tracing_subscriber::registry()
        .with(ApacheLog.with_filter(filter))
        .try_init();
}

/// The `tracing` levels Apache's `level` keeps: none below `error` (`crit` and above keep no
/// line the daemon writes), `warn` at `notice` (no event is a notice), `trace` from `trace1`.
fn filter_for(level: LogLevel) -> LevelFilter {
    match level {
        l if l < LogLevel::ERROR => LevelFilter::OFF,
        LogLevel::ERROR => LevelFilter::ERROR,
        LogLevel::WARN | LogLevel::NOTICE => LevelFilter::WARN,
        LogLevel::INFO => LevelFilter::INFO,
        LogLevel::DEBUG => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Writes `msg` as a line of Apache level `label` (`notice`, `error`) whatever the log level:
/// for the start-up report, which express reads from the log at any `--log-level`, as httpd
/// writes its own `notice` lines at any `LogLevel`.
pub fn always(label: &str, msg: &str) {
    write_lines(label, None, msg);
}

/// Marks the current thread as serving the request with this id until dropped.
pub struct RequestScope(());

impl RequestScope {
    /// Enters a request; `id` is its `mod_wsgi.request_id`, if it had one.
    pub fn enter(id: Option<String>) -> Self {
        REQUEST_ID.with(|r| *r.borrow_mut() = id);
        RequestScope(())
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        REQUEST_ID.with(|r| *r.borrow_mut() = None);
    }
}

/// The layer that writes each event as Apache-style lines.
struct ApacheLog;

#[derive(Default)]
struct Fields {
    message: String,
    request_id: Option<String>,
    extra: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "request_id" => self.request_id = Some(value.to_owned()),
            name => {
                let _ = write!(self.extra, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "request_id" => self.request_id = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for ApacheLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let request_id = fields
            .request_id
            .or_else(|| REQUEST_ID.with(|r| r.borrow().clone()));
        let text = fields.message + &fields.extra;
        write_lines(level_name(*event.metadata().level()), request_id, &text);
    }
}

/// Writes `text` to stderr, each of its lines with the Apache prefix of level `label`.
fn write_lines(label: &str, request_id: Option<String>, text: &str) {
    let mut prefix = String::with_capacity(96);
    push_timestamp(&mut prefix);
    let _ = write!(
        prefix,
        " [wsgi:{label}] [pid {}:tid {}] ",
        std::process::id(),
        nix::unistd::gettid()
    );
    if let Some(id) = request_id.filter(|id| !id.is_empty()) {
        prefix.push_str(&rswsgi_protocol::codes::request_tag(id.as_bytes()));
    }
    let mut out = String::with_capacity(text.len() + prefix.len() + 8);
    for line in text.trim_end_matches('\n').split('\n') {
        out.push_str(&prefix);
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    // One write per event, so lines from several threads do not interleave mid-line.
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace1",
    }
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Appends `[Wed Nov 25 08:10:14.123456 2026]` in local time, as Apache writes it.
fn push_timestamp(out: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain old data, so all-zero is a valid value; `localtime_r` only writes
    // into the `tm` we pass and reads `secs`, both of which live for the whole call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return;
        }
        tm
    };
    let _ = write!(
        out,
        "[{} {} {:02} {:02}:{:02}:{:02}.{:06} {}]",
        DAYS.get(tm.tm_wday as usize).unwrap_or(&"???"),
        MONTHS.get(tm.tm_mon as usize).unwrap_or(&"???"),
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_micros(),
        tm.tm_year + 1900
    );
}

/// The effective user, for error lines about files it cannot read: `name (uid N)`.
pub fn effective_user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_levels_keep_what_httpd_would() {
        let filter = |name: &str| filter_for(name.parse().unwrap());
        assert_eq!(filter("crit"), LevelFilter::OFF);
        assert_eq!(filter("error"), LevelFilter::ERROR);
        assert_eq!(filter("warn"), LevelFilter::WARN);
        assert_eq!(filter("notice"), LevelFilter::WARN);
        assert_eq!(filter("info"), LevelFilter::INFO);
        assert_eq!(filter("debug"), LevelFilter::DEBUG);
        assert_eq!(filter("trace8"), LevelFilter::TRACE);
    }

    #[test]
    fn timestamp_has_apache_shape() {
        let mut s = String::new();
        push_timestamp(&mut s);
        // [Wed Nov 25 08:10:14.123456 2026]
        assert_eq!(s.len(), 33, "{s}");
        assert!(s.starts_with('[') && s.ends_with(']'), "{s}");
        assert_eq!(&s[20..21], ".", "{s}");
    }
}

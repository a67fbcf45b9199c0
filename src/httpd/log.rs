//! Logging into httpd's error log. Text is formatted in Rust and passed as the argument of a
//! fixed `"%s"` format: Rust-built text is never a printf format.
//!
//! [`ApacheSubscriber`] routes `tracing` events to the main server's error log;
//! [`request`] logs about one request (with the client address and request log id).

use std::ffi::CString;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};

use super::request::Request;
use crate::ffi;

fn apache_level(level: &Level) -> i32 {
    (match *level {
        Level::ERROR => ffi::APLOG_ERR,
        Level::WARN => ffi::APLOG_WARNING,
        Level::INFO => ffi::APLOG_INFO,
        Level::DEBUG => ffi::APLOG_DEBUG,
        Level::TRACE => ffi::APLOG_TRACE1,
    }) as i32
}

fn c_text(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs were replaced")
}

const FMT: &std::ffi::CStr = c"%s";
const FILE: &std::ffi::CStr = c"mod_rswsgi.c";

/// Logs `msg` about request `r` at `level`, through `ap_log_rerror` (so an `ErrorLogFormat`
/// with `%L` shows the log id) and with `[request ID] ` in front of the text once the request
/// has a log id (the default `ErrorLogFormat` has no `%L`): the form the daemons write too.
///
/// Control characters in `msg` (which may hold bytes a daemon or a client sent: an
/// application's error message, a URL) are written as `\xNN`, so the line stays one line.
pub fn request(r: &Request, level: Level, msg: &str) {
    let msg = rswsgi_protocol::codes::one_line(msg);
    let text = match r.logged_id() {
        Some(id) => c_text(&format!("{}{msg}", rswsgi_protocol::codes::request_tag(id))),
        None => c_text(&msg),
    };
    // SAFETY: r is a live request; the format is a fixed "%s" consuming exactly one C string.
    unsafe {
        ffi::ap_log_rerror_(
            FILE.as_ptr(),
            line!() as i32,
            crate::module_index(),
            apache_level(&level),
            0,
            r.as_ptr(),
            FMT.as_ptr(),
            text.as_ptr(),
        )
    }
}

/// Logs `msg` to the main server's error log at `level`.
pub fn server(level: Level, msg: &str) {
    server_at(apache_level(&level), msg);
}

/// Logs `msg` at Apache's `notice` level, which httpd writes whatever the `LogLevel` (as its
/// own "resuming normal operations"): for what an operator should see once at start-up.
pub fn notice(msg: &str) {
    server_at(ffi::APLOG_NOTICE as i32, msg);
}

fn server_at(level: i32, msg: &str) {
    let text = c_text(msg);
    // SAFETY: ap_server_conf is NULL or the live main server (httpd accepts NULL); the format
    // is a fixed "%s" consuming exactly one C string.
    unsafe {
        ffi::ap_log_error_(
            FILE.as_ptr(),
            line!() as i32,
            crate::module_index(),
            level,
            0,
            ffi::ap_server_conf,
            FMT.as_ptr(),
            text.as_ptr(),
        )
    }
}

/// The log level that applies to this module's lines in server `s` (Apache's `APLOG_*`
/// number): its own `LogLevel rswsgi:LEVEL` when one is set, else the server's `LogLevel`.
/// This is httpd's `ap_get_server_module_loglevel`, a macro in its headers.
///
/// # Safety
/// `s` must be a live `server_rec` whose configuration has been read (post_config).
pub unsafe fn module_level(s: *const ffi::server_rec) -> i32 {
    let index = crate::module_index();
    // SAFETY: the caller passes a live server_rec. `module_levels` is NULL or an array with one
    // entry per module (httpd sizes it by `conf_vector_length`, which every module index is
    // below); an entry below 0 means the module has no level of its own.
    unsafe {
        let log = &(*s).log;
        let own = match usize::try_from(index) {
            Ok(i) if !log.module_levels.is_null() => i32::from(*log.module_levels.add(i)),
            _ => -1,
        };
        if own < 0 {
            log.level
        } else {
            own
        }
    }
}

/// A `tracing` subscriber that writes every event to httpd's error log; httpd's `LogLevel`
/// decides what is kept. Spans are not tracked.
pub struct ApacheSubscriber;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl tracing::Subscriber for ApacheSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message(String::new());
        event.record(&mut msg);
        server(*event.metadata().level(), &msg.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

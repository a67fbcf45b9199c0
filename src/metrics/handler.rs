//! The `rswsgi-metrics` handler: `SetHandler rswsgi-metrics` in a `<Location>` serves the
//! Prometheus text of every daemon group; `?health` answers whether each group can serve
//! (for load balancers), 503 while `RSWSGIHealthDrainFile` exists.

use crate::config::ServerConfig;
use crate::directives::module_config;
use crate::ffi;
use crate::httpd::request::Request;

use super::render::{self, Snapshot};

/// The exposition format's content type.
const PROMETHEUS_TYPE: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";

/// Whether the request is for this handler.
pub fn is_ours(r: &Request) -> bool {
    r.handler() == Some(super::HANDLER)
}

/// Every group's snapshot now (`usage`: read each process's `/proc` figures).
pub fn snapshots(usage: bool) -> Vec<Snapshot> {
    let parent = nix::unistd::getppid().as_raw();
    super::groups()
        .iter()
        .map(|g| render::snapshot(g, parent, usage))
        .collect()
}

/// The health answer: the status and its text body.
pub fn health(groups: &[Snapshot], drain: Option<&str>) -> (u16, String) {
    if let Some(path) = drain {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return (503, format!("draining: {path} exists\n")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Cannot tell: better drained than serving against the operator's wish.
            Err(e) => return (503, format!("draining: cannot check {path}: {e}\n")),
        }
    }
    let bad: Vec<String> = groups
        .iter()
        .filter_map(|s| Some(format!("group '{}': {}", s.name, s.unhealthy()?)))
        .collect();
    if bad.is_empty() {
        (
            200,
            format!("ok: {} daemon group(s) can serve\n", groups.len()),
        )
    } else {
        (503, format!("unavailable: {}\n", bad.join("; ")))
    }
}

/// Serves the endpoint: GET and HEAD only (405 otherwise).
pub fn serve(r: &mut Request) -> i32 {
    if r.method_number() != ffi::M_GET as i32 {
        // SAFETY: `allowed` is a plain field of the live request.
        unsafe { (*r.as_ptr()).allowed |= 1 << ffi::M_GET };
        return ffi::HTTP_METHOD_NOT_ALLOWED as i32;
    }
    let health_asked = r.args().split(|b| *b == b'&').any(|a| a == b"health");
    let (status, body, ctype): (u16, String, &[u8]) = if health_asked {
        // SAFETY: every server's slot holds the ServerConfig this module created.
        let cfg: &ServerConfig = unsafe { &*module_config::<ServerConfig>(r.server_config()) };
        let (status, body) = health(&snapshots(false), cfg.health_drain_file.as_deref());
        (status, body, b"text/plain; charset=utf-8")
    } else {
        (200, render::prometheus(&snapshots(true)), PROMETHEUS_TYPE)
    };
    r.set_status(status, b"");
    r.set_content_type(ctype);
    r.set_content_length(body.len() as i64);
    r.headers_out().set(r.pool(), b"Cache-Control", b"no-store");
    if !r.header_only() {
        // SAFETY: the request is live; the buffer is valid for its length.
        unsafe { ffi::ap_rwrite(body.as_ptr().cast(), body.len() as i32, r.as_ptr()) };
    }
    ffi::OK as i32
}

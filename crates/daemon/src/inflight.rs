//! The registry of requests in progress: one slot per worker thread, so a worker only ever
//! locks its own slot (the monitor on the main thread is the only other reader), and a slot's
//! strings keep their capacity from one request to the next (entering a request copies its
//! id, method and URL into them: no allocation once they are large enough).
//!
//! It serves the stuck-request report (`SIGUSR2`, and a request passing `request-timeout`:
//! every request in flight with its id, method, URL, age and Python stack), `request-timeout`
//! itself and `slow-requests`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rswsgi_protocol::Code;

use crate::backend::Backend;
use crate::conn::{Request, RequestIo};

/// What one worker is serving.
pub struct Entry {
    /// Whether the worker is serving a request.
    pub active: bool,
    /// When it began.
    pub started: Instant,
    /// Its `mod_wsgi.request_id`.
    pub id: String,
    /// `REQUEST_METHOD`.
    pub method: String,
    /// Its URL (`REQUEST_URI`).
    pub url: String,
    /// The worker's `pthread_self` (Python's thread ident).
    pub thread: u64,
    /// Its connection, kept only when `request-timeout` may give it up.
    pub io: Option<RequestIo>,
    /// Given up (504) at `request-timeout`.
    pub given_up: bool,
    /// When `mod_wsgi.RequestTimeout` was raised in its thread (`interrupt-timeout`).
    pub interrupted: Option<Instant>,
    /// Logged as still running past `slow-requests`.
    slow_logged: bool,
}

impl Entry {
    fn new() -> Self {
        Entry {
            active: false,
            started: Instant::now(),
            id: String::new(),
            method: String::new(),
            url: String::new(),
            thread: 0,
            io: None,
            given_up: false,
            interrupted: None,
            slow_logged: false,
        }
    }
}

/// One slot per worker.
pub struct Registry {
    slots: Box<[Mutex<Entry>]>,
}

/// A copy of an entry, taken by the monitor.
pub struct Snapshot {
    /// The worker.
    pub worker: usize,
    /// Its request's id.
    pub id: String,
    /// Method.
    pub method: String,
    /// URL.
    pub url: String,
    /// How long it has run.
    pub age: Duration,
    /// The worker's thread.
    pub thread: u64,
}

impl Registry {
    /// A registry for `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Registry {
            slots: (0..workers).map(|_| Mutex::new(Entry::new())).collect(),
        }
    }

    /// Worker `worker` begins `req`; `io` is kept when the request may be given up.
    pub fn enter(&self, worker: usize, req: &Request, io: Option<&RequestIo>) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        let mut e = slot.lock();
        e.active = true;
        e.started = Instant::now();
        e.id.clear();
        e.id.push_str(&req.meta.request_id);
        e.method.clear();
        e.method.push_str(&String::from_utf8_lossy(
            req.get("REQUEST_METHOD").unwrap_or_default(),
        ));
        e.url.clear();
        req.push_url(&mut e.url);
        // SAFETY: pthread_self has no preconditions.
        e.thread = unsafe { libc::pthread_self() } as u64;
        e.io = io.cloned();
        e.given_up = false;
        e.interrupted = None;
        e.slow_logged = false;
    }

    /// Worker `worker` is done with its request; `slow`: log it when it ran longer.
    pub fn leave(&self, worker: usize, slow: Option<Duration>) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        let mut e = slot.lock();
        e.active = false;
        e.io = None;
        if let Some(limit) = slow {
            let took = e.started.elapsed();
            if took > limit {
                tracing::warn!(
                    request_id = e.id.as_str(),
                    "{}: slow request: {} {} took {:.3}s (slow-requests {}s)",
                    Code::SlowRequest,
                    escape(&e.method),
                    escape(&e.url),
                    took.as_secs_f64(),
                    limit.as_secs_f64()
                );
            }
        }
    }

    /// Logs, once each, the requests still running past `limit` (`slow-requests`).
    pub fn check_slow(&self, limit: Duration) {
        self.for_each_active(|worker, e| {
            let age = e.started.elapsed();
            if !e.slow_logged && age > limit {
                e.slow_logged = true;
                tracing::warn!(
                    request_id = e.id.as_str(),
                    "{}: slow request: {} {} still running after {:.3}s on worker {worker} \
                     (slow-requests {}s)",
                    Code::SlowRequest,
                    escape(&e.method),
                    escape(&e.url),
                    age.as_secs_f64(),
                    limit.as_secs_f64()
                );
            }
        });
    }

    /// Runs `f` on every active entry, one slot locked at a time.
    pub fn for_each_active(&self, mut f: impl FnMut(usize, &mut Entry)) {
        for (worker, slot) in self.slots.iter().enumerate() {
            let mut e = slot.lock();
            if e.active {
                f(worker, &mut e);
            }
        }
    }

    /// Copies of the active entries.
    pub fn snapshot(&self) -> Vec<Snapshot> {
        let mut out = Vec::new();
        self.for_each_active(|worker, e| {
            out.push(Snapshot {
                worker,
                id: e.id.clone(),
                method: e.method.clone(),
                url: e.url.clone(),
                age: e.started.elapsed(),
                thread: e.thread,
            })
        });
        out
    }

    /// Logs every request in flight (the stuck-request report), `why` saying what asked for
    /// it: one record per request, its Python stack on the lines that follow.
    pub fn report(&self, backend: &dyn Backend, why: &str) {
        let requests = self.snapshot();
        tracing::warn!(
            "{}: {} request(s) in flight ({why})",
            Code::InFlightRequest,
            requests.len()
        );
        for s in requests {
            let stack = match backend.stack_of(s.thread) {
                Some(stack) => format!("; Python stack:\n{}", escape_stack(&stack)),
                None => "; no Python stack (a native handler, or not running Python)".into(),
            };
            tracing::warn!(
                request_id = s.id.as_str(),
                "{}: in flight: {} {} for {:.3}s on worker {}{stack}",
                Code::InFlightRequest,
                escape(&s.method),
                escape(&s.url),
                s.age.as_secs_f64(),
                s.worker
            );
        }
    }
}

/// `text` with control characters (and backslashes) escaped as `\xNN`, so that nothing a
/// client put in a URL can end a log line or forge another.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A stack's lines, each escaped as [`escape`] does; the line breaks between them are kept
/// (the logger writes each line with the daemon's prefix and the request's id).
fn escape_stack(stack: &str) -> String {
    stack
        .trim_end()
        .split('\n')
        .map(escape)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(escape("/a\nb\r\x1b[31m\\"), "/a\\x0ab\\x0d\\x1b[31m\\\\");
        assert_eq!(escape("/caf\u{e9}?q=1"), "/caf\u{e9}?q=1");
        assert_eq!(
            escape_stack("  File \"x\"\n    f()\u{85}x\n"),
            "  File \"x\"\n    f()\\x85x"
        );
    }
}

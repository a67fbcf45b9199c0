//! The `mod_wsgi` module applications import (`mod_wsgi.py` plus the functions here), and the
//! per-process facts behind it: worker thread ids, request counts, the current request's
//! `request_data()` dict, and the events subscribers get.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The mod_wsgi API level rswsgi provides: `mod_wsgi.version` and the environ's
/// `mod_wsgi.version` (mod_wsgi 6's keys, types and module attributes; docs/wsgi.md).
pub const API_VERSION: (u32, u32, u32) = (6, 0, 0);

/// What the `mod_wsgi` module says about this process.
#[derive(Debug, Clone, Default)]
pub struct ProcessFacts {
    /// The daemon process group (`mod_wsgi.process_group`).
    pub group: String,
    /// Processes in the group (`mod_wsgi.maximum_processes`).
    pub processes: u32,
    /// Worker threads in this process (`mod_wsgi.threads_per_process`).
    pub threads: u32,
}

/// Counters behind `process_metrics()`.
struct Counters {
    started: SystemTime,
    requests: AtomicU64,
    busy_us: AtomicU64,
    active: AtomicUsize,
    next_thread: AtomicUsize,
    per_thread: Box<[AtomicU64]>,
}

static COUNTERS: OnceLock<Counters> = OnceLock::new();
static MODULE: OnceLock<Py<PyModule>> = OnceLock::new();
/// `mod_wsgi.event_callbacks` and `mod_wsgi.shutdown_callbacks`, checked on every request.
static SUBSCRIBERS: OnceLock<[Py<PyList>; 2]> = OnceLock::new();

thread_local! {
    /// This worker's `mod_wsgi.thread_id` (1-based; 0 outside the workers).
    static THREAD_ID: Cell<usize> = const { Cell::new(0) };
    /// Whether this thread is running a request, and its `request_data()` dict once asked for.
    static REQUEST: RefCell<Option<Option<Py<PyDict>>>> = const { RefCell::new(None) };
}

/// Seconds since the epoch, as mod_wsgi's float times.
pub fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `mod_wsgi.py` as the module `mod_wsgi` (so `import mod_wsgi` finds it) and sets the
/// process's attributes on it.
pub fn install(py: Python<'_>, facts: &ProcessFacts) -> PyResult<()> {
    let threads = facts.threads.max(1) as usize;
    let _ = COUNTERS.set(Counters {
        started: SystemTime::now(),
        requests: AtomicU64::new(0),
        busy_us: AtomicU64::new(0),
        active: AtomicUsize::new(0),
        next_thread: AtomicUsize::new(1),
        per_thread: (0..threads).map(|_| AtomicU64::new(0)).collect(),
    });
    let source = CString::new(include_str!("mod_wsgi.py"))
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let module = PyModule::from_code(py, &source, c"mod_wsgi.py", c"mod_wsgi")?;
    module.setattr("version", API_VERSION)?;
    module.setattr("process_group", &facts.group)?;
    // One interpreter per daemon process: every application group runs in it.
    module.setattr("application_group", "")?;
    module.setattr("maximum_processes", facts.processes.max(1))?;
    module.setattr("threads_per_process", facts.threads.max(1))?;
    module.add_function(wrap_pyfunction!(process_metrics, &module)?)?;
    module.add_function(wrap_pyfunction!(request_data, &module)?)?;
    module.setattr(
        "FileWrapper",
        super::interp::support(py)?.getattr("FileWrapper")?,
    )?;
    let list = |name: &str| -> PyResult<Py<PyList>> {
        Ok(module.getattr(name)?.cast_into::<PyList>()?.unbind())
    };
    let _ = SUBSCRIBERS.set([list("event_callbacks")?, list("shutdown_callbacks")?]);
    let _ = MODULE.set(module.unbind());
    Ok(())
}

/// Gives the calling worker thread its `mod_wsgi.thread_id`.
pub fn enter_worker() {
    if let Some(c) = COUNTERS.get() {
        THREAD_ID.set(c.next_thread.fetch_add(1, Ordering::Relaxed));
    }
}

/// This worker's `mod_wsgi.thread_id`.
pub fn thread_id() -> usize {
    THREAD_ID.get()
}

/// A request running on this thread, from [`RequestRun::begin`] until dropped: counted in
/// `process_metrics()`, and `request_data()` works.
pub struct RequestRun {
    started: Instant,
}

impl RequestRun {
    /// Marks the start of a request on this thread.
    pub fn begin() -> Self {
        REQUEST.with_borrow_mut(|r| *r = Some(None));
        if let Some(c) = COUNTERS.get() {
            c.active.fetch_add(1, Ordering::Relaxed);
        }
        RequestRun {
            started: Instant::now(),
        }
    }

    /// When the request began.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl Drop for RequestRun {
    fn drop(&mut self) {
        // Dropped with the GIL held (app.rs), so the dict goes at once.
        REQUEST.with_borrow_mut(|r| *r = None);
        if let Some(c) = COUNTERS.get() {
            c.active.fetch_sub(1, Ordering::Relaxed);
            c.requests.fetch_add(1, Ordering::Relaxed);
            let busy = self.started.elapsed().as_micros() as u64;
            c.busy_us.fetch_add(busy, Ordering::Relaxed);
            if let Some(n) = THREAD_ID.get().checked_sub(1) {
                if let Some(count) = c.per_thread.get(n) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// `mod_wsgi.request_data()`: a dict that lives as long as the current request.
#[pyfunction]
fn request_data(py: Python<'_>) -> PyResult<Py<PyDict>> {
    REQUEST.with_borrow_mut(|r| match r {
        Some(data) => Ok(data
            .get_or_insert_with(|| PyDict::new(py).unbind())
            .clone_ref(py)),
        None => Err(PyRuntimeError::new_err("no active request for thread")),
    })
}

/// `mod_wsgi.process_metrics()`: this process's counters, with mod_wsgi's keys.
#[pyfunction]
fn process_metrics(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    let Some(c) = COUNTERS.get() else {
        return Ok(d);
    };
    let now = SystemTime::now();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let (user, system) = usage.map_or((0.0, 0.0), |u| (secs(u.user_time()), secs(u.system_time())));
    d.set_item("pid", std::process::id())?;
    d.set_item("request_count", c.requests.load(Ordering::Relaxed))?;
    d.set_item(
        "request_busy_time",
        c.busy_us.load(Ordering::Relaxed) as f64 / 1e6,
    )?;
    d.set_item("memory_max_rss", usage.map_or(0, |u| u.max_rss() * 1024))?;
    d.set_item(
        "memory_rss",
        crate::lifecycle::resident_bytes().unwrap_or(0),
    )?;
    d.set_item("cpu_user_time", user)?;
    d.set_item("cpu_system_time", system)?;
    d.set_item("cpu_time", user + system)?;
    d.set_item("active_requests", c.active.load(Ordering::Relaxed))?;
    let threads = PyList::empty(py);
    for (i, count) in c.per_thread.iter().enumerate() {
        let n = count.load(Ordering::Relaxed);
        if n > 0 {
            let t = PyDict::new(py);
            t.set_item("thread_id", i + 1)?;
            t.set_item("request_count", n)?;
            threads.append(t)?;
        }
    }
    d.set_item("request_threads", threads.len())?;
    d.set_item("threads", threads)?;
    d.set_item("restart_time", epoch_secs(c.started))?;
    d.set_item("current_time", epoch_secs(now))?;
    d.set_item(
        "running_time",
        now.duration_since(c.started)
            .map_or(0.0, |d| d.as_secs_f64()),
    )?;
    Ok(d)
}

/// True when some callback subscribed to events: only then are events built.
pub fn has_subscribers(py: Python<'_>) -> bool {
    SUBSCRIBERS
        .get()
        .is_some_and(|lists| lists.iter().any(|l| !l.bind(py).is_empty()))
}

/// Publishes event `name` with the keyword arguments `event` to the subscribers. A callback
/// that raises is logged and the others still run.
pub fn publish(py: Python<'_>, name: &str, event: &Bound<'_, PyDict>) {
    let Some(m) = MODULE.get() else {
        return;
    };
    // In a request, the event carries its request_data() dict.
    if let Ok(data) = request_data(py) {
        let _ = event.set_item(intern!(py, "request_data"), data);
    }
    if let Err(e) = m
        .bind(py)
        .call_method1(intern!(py, "_publish"), (name, event))
    {
        super::errors::log_exception(py, &e, &format!("publishing the {name} event failed"));
    }
}

/// The `process_stopping` event (and `subscribe_shutdown` callbacks): this process is about
/// to stop or recycle, for `reason` (mod_wsgi's names: `maximum_requests`, ...; empty for a
/// plain stop).
pub fn process_stopping(reason: &str) {
    Python::attach(|py| {
        if !has_subscribers(py) {
            return;
        }
        let event = PyDict::new(py);
        if event.set_item("shutdown_reason", reason).is_ok() {
            publish(py, "process_stopping", &event);
        }
    });
}

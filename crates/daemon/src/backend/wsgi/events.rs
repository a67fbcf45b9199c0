//! The per-request events of `mod_wsgi.subscribe_events`: `request_started`,
//! `request_finished` and `request_exception`, with mod_wsgi 6's keyword arguments (those
//! rswsgi has the data for). Built only when a callback subscribed.

use std::time::{Instant, SystemTime};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::modwsgi::{self, epoch_secs};
use crate::conn::Request;

/// `request_started`: just before the application is called.
pub fn request_started(
    py: Python<'_>,
    req: &Request,
    app: &Bound<'_, PyAny>,
    env: &Bound<'_, PyDict>,
) {
    let event = PyDict::new(py);
    let built = (|| -> PyResult<()> {
        for key in [
            "request_start",
            "queue_start",
            "daemon_start",
            "application_start",
        ] {
            if let Some(v) = env.get_item(format!("mod_wsgi.{key}"))? {
                event.set_item(key, v)?;
            }
        }
        event.set_item("request_id", &req.meta.request_id)?;
        event.set_item("thread_id", modwsgi::thread_id())?;
        let server_pid = req
            .get_str("mod_wsgi.server_pid")
            .and_then(|p| p.parse::<u32>().ok());
        event.set_item("server_pid", server_pid)?;
        event.set_item("application_object", app)?;
        event.set_item("callable_object", &req.meta.callable)?;
        event.set_item("request_environ", env)?;
        Ok(())
    })();
    publish(py, "request_started", &event, built);
}

/// `request_finished`: the response is complete (or failed), `close()` has been called.
pub fn request_finished(py: Python<'_>, started: Instant, status: Option<u16>) {
    let event = PyDict::new(py);
    let built = (|| -> PyResult<()> {
        event.set_item("application_finish", epoch_secs(SystemTime::now()))?;
        event.set_item("application_time", started.elapsed().as_secs_f64())?;
        event.set_item("status", status)?;
        Ok(())
    })();
    publish(py, "request_finished", &event, built);
}

/// `request_exception`: the application (or its result) raised `err`.
pub fn request_exception(py: Python<'_>, req: &Request, err: &PyErr) {
    let event = PyDict::new(py);
    let built = (|| -> PyResult<()> {
        event.set_item("request_id", &req.meta.request_id)?;
        let info = PyTuple::new(
            py,
            [
                err.get_type(py).into_any(),
                err.value(py).clone().into_any(),
                err.traceback(py)
                    .map_or_else(|| py.None().into_bound(py), Bound::into_any),
            ],
        )?;
        event.set_item("exception_info", info)?;
        Ok(())
    })();
    publish(py, "request_exception", &event, built);
}

fn publish(py: Python<'_>, name: &str, event: &Bound<'_, PyDict>, built: PyResult<()>) {
    match built {
        Ok(()) => modwsgi::publish(py, name, event),
        Err(e) => {
            super::errors::log_exception(py, &e, &format!("building the {name} event failed"))
        }
    }
}

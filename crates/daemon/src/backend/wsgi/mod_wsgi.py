"""The `mod_wsgi` module as rswsgi's daemon provides it (importable by applications).

rswsgi-daemon runs this source as the module `mod_wsgi` before any WSGI script loads, then
sets the attributes that describe the process (`process_group`, `application_group`,
`maximum_processes`, `threads_per_process`, `version`) and the functions backed by the
daemon (`process_metrics`, `request_data`). See docs/wsgi.md for what mod_wsgi has and this
module does not."""

import sys

# Filled in by the daemon (interp.rs) right after this module runs.
version = (0, 0, 0)
process_group = ""
application_group = ""
maximum_processes = 1
threads_per_process = 1

event_callbacks = []
shutdown_callbacks = []


class RequestTimeout(BaseException):
    """mod_wsgi's request-timeout exception class. rswsgi gives up a request that runs past
    request-timeout (504) and recycles the process; with interrupt-timeout it raises this in
    the request's thread instead, and recycles only if the request goes on."""


def subscribe_events(callback):
    """callback(name, **event) runs for each event: request_started, request_finished,
    request_exception and process_stopping. A dict it returns is merged into the event
    passed to the callbacks after it."""
    event_callbacks.append(callback)


def subscribe_shutdown(callback):
    """callback('process_stopping', shutdown_reason=...) runs once when this daemon process
    begins to stop or recycle, before the requests in progress have finished."""
    shutdown_callbacks.append(callback)


def server_metrics():
    """Apache's scoreboard is not visible from rswsgi's daemons: None, which is also what
    mod_wsgi returns while WSGIServerMetrics is Off (its default)."""
    return None


def _call(callbacks, name, event):
    for callback in list(callbacks):
        try:
            merged = callback(name, **event)
        except Exception:
            print("Exception in %s event callback %r:" % (name, callback), file=sys.stderr)
            sys.excepthook(*sys.exc_info())
            continue
        if isinstance(merged, dict):
            event.update(merged)


def _publish(name, event):
    """Runs the subscribers of event `name` (called by the daemon)."""
    _call(event_callbacks, name, event)
    if name == "process_stopping":
        _call(shutdown_callbacks, name, event)

"""Test app: reports what an application written for mod_wsgi looks for, as JSON: the
mod_wsgi.* / apache.version environ keys with their types, the importable mod_wsgi module's
attributes, process_metrics(), request_data() and the events it subscribed to."""

import atexit
import sys
import threading

import mod_wsgi

EVENTS = []
LOCK = threading.Lock()


def on_event(name, **event):
    with LOCK:
        EVENTS.append((name, sorted(event)))
    if name == "request_started":
        return {"merged_by_first": True}


def second(name, **event):
    if name == "request_started":
        assert event.get("merged_by_first") is True, "a returned dict is merged"
        mod_wsgi.request_data()["seen_by_event"] = event["request_environ"]["PATH_INFO"]


def on_shutdown(name, **event):
    print("SHUTDOWN-CALLBACK %s reason=%r" % (name, event.get("shutdown_reason")), file=sys.stderr)


mod_wsgi.subscribe_events(on_event)
mod_wsgi.subscribe_events(second)
mod_wsgi.subscribe_shutdown(on_shutdown)
atexit.register(lambda: print("ATEXIT-HANDLER ran", file=sys.stderr))


def describe(value):
    return "%s:%r" % (type(value).__name__, value)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("failing on purpose")
    lines = []
    for k, v in sorted(environ.items()):
        if k.startswith(("mod_wsgi.", "apache.")):
            lines.append("env.%s=%s" % (k, describe(v)))
    for k in ("PATH", "HTTPS", "SCRIPT_FILENAME", "wsgi.run_once"):
        lines.append("plain.%s=%s" % (k, describe(environ.get(k))))
    for name in ("version", "process_group", "application_group", "maximum_processes",
                 "threads_per_process", "subscribe_events", "subscribe_shutdown",
                 "process_metrics", "server_metrics", "request_data", "FileWrapper",
                 "RequestTimeout"):
        value = getattr(mod_wsgi, name, None)
        lines.append("module.%s=%s" % (name, describe(value) if not callable(value) or
                                       isinstance(value, type) else "callable"))
    for k, v in sorted(mod_wsgi.process_metrics().items()):
        lines.append("metrics.%s=%s" % (k, describe(v)))
    lines.append("server_metrics=%r" % (mod_wsgi.server_metrics(),))
    data = mod_wsgi.request_data()
    data["x"] = 1
    lines.append("request_data=%r" % (sorted(data.items()),))
    lines.append("same_data=%r" % (data is mod_wsgi.request_data(),))
    with LOCK:
        for name, keys in EVENTS:
            lines.append("event.%s=%s" % (name, ",".join(keys)))
    body = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]

"""Test app for request ids and error codes in the error log (tests/request_ids.rs).

/raise raises in `boom`; /sleep/N sleeps N seconds in `stuck_here`; /die kills its own daemon
process mid-request; /long sends more body than its Content-Length, /short less; /errors
writes a line to wsgi.errors. Anything else answers "ok PID"."""

import os
import signal
import time


def boom():
    raise ValueError("request-ids test exception")


def stuck_here(seconds):
    time.sleep(seconds)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/raise":
        boom()
    if path.startswith("/sleep/"):
        stuck_here(float(path.rsplit("/", 1)[1]))
    if path == "/die":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    if path == "/long":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"abcdef"]
    if path == "/short":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"abc"]
    if path == "/errors":
        print("APP-LINE \\ [raw]", file=environ["wsgi.errors"])
    body = ("ok %d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

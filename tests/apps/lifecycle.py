"""Test app for daemon lifecycle tests: answers "VERSION PID"; /sleep/N sleeps N seconds first
(in `slow_route`, whose name the request-timeout test looks for in the logged stack)."""

import os
import sys
import time

import mod_wsgi

VERSION = "1"


def on_shutdown(name, **event):
    print("SHUTDOWN %s reason=%r" % (name, event.get("shutdown_reason")), file=sys.stderr, flush=True)


mod_wsgi.subscribe_shutdown(on_shutdown)


def slow_route(seconds):
    print("slow_route started: %s seconds" % seconds, flush=True)
    time.sleep(seconds)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/sleep/"):
        slow_route(float(path.rsplit("/", 1)[1]))
    if path.startswith("/burn/"):
        deadline = time.process_time() + float(path.rsplit("/", 1)[1])
        while time.process_time() < deadline:
            pass
    if path == "/stream":
        def stream():
            yield b"first chunk\n"
            print("stream paused", flush=True)
            time.sleep(5)
            yield b"second chunk\n"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream()
    if path == "/huge-headers":
        start_response("200 OK", [("X-Big-%d" % i, "v" * 8000) for i in range(200)])
        return [b"not sent"]
    if path == "/env":
        mask = os.umask(0)
        os.umask(mask)
        body = ("LANG=%s\nLC_ALL=%s\numask=%04o\n" % (
            os.environ.get("LANG", ""), os.environ.get("LC_ALL", ""), mask)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = ("%s %d\n" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""Test app for daemon lifecycle tests: answers "VERSION PID"; /sleep/N sleeps N seconds first
(in `slow_route`, whose name the request-timeout test looks for in the logged stack)."""

import os
import time

VERSION = "1"


def slow_route(seconds):
    time.sleep(seconds)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/sleep/"):
        slow_route(float(path.rsplit("/", 1)[1]))
    body = ("%s %d\n" % (VERSION, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

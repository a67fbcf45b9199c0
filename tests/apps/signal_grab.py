"""Test app: tries to take over SIGTERM and SIGUSR1 as it imports (as some libraries do), then
answers with its pid and what signal.signal() returned."""

import os
import signal

CAUGHT = []


def grab(signum, frame):
    CAUGHT.append(signum)


PREVIOUS = signal.signal(signal.SIGTERM, grab)
signal.signal(signal.SIGUSR1, grab)


def application(environ, start_response):
    body = ("pid=%d\nprevious=%r\n" % (os.getpid(), PREVIOUS)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

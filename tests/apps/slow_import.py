"""Test app whose import takes 30 seconds: a daemon with startup-timeout=1 must give up on it."""

import time

time.sleep(30)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"too late\n"]

"""Test app of tests/fault_injection.rs.

GET /big answers 1 MiB of a known pattern (large enough for the response ring); anything
else answers `pid=<the daemon's pid>`.
"""

import os

PATTERN = bytes(range(256)) * 4096


def application(environ, start_response):
    if environ.get("PATH_INFO", "") == "/big":
        body = PATTERN
    else:
        body = b"pid=%d\n" % os.getpid()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]

"""Test app: each request writes one line to wsgi.errors and one to sys.stderr (both
marked with the request's path), which must reach the error log at every log level."""

import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    environ["wsgi.errors"].write("wsgi-errors-line %s\n" % path)
    print("stderr-line %s" % path, file=sys.stderr, flush=True)
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [body]

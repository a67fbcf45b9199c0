"""Test app: a POST reads its whole body (logging that it started); anything else answers ok."""

import sys


def application(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        print("slow-body: reading the upload", file=sys.stderr, flush=True)
        body = b"read %d\n" % len(environ["wsgi.input"].read())
    else:
        body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""Serves data.bin (beside this script) through wsgi.file_wrapper."""

import os

DATA = os.path.join(os.path.dirname(__file__), "data.bin")


def application(environ, start_response):
    f = open(DATA, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )
    return environ["wsgi.file_wrapper"](f, 65536)

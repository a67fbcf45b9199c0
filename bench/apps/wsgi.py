"""The benchmark's WSGI application: one script, one route per benchmarked app.

Every server under test (rswsgi, mod_wsgi, gunicorn, granian) loads this same file, so a
server is started once for all the Python rows. Dispatching on PATH_INFO is one dict lookup.

    /hello   raw WSGI, a 13-byte body
    /flask   a Flask JSON route
    /big     raw WSGI, a 1 MiB body (one bytes object)
    /file    a 1 MiB file sent through wsgi.file_wrapper
    /post    reads the whole request body (64 KiB reads) and answers its length
    /stream  a generator yielding 10,000 lines of 27 bytes (a CSV export, say); ?lines=N for
             another count (bench/run.sh times one download of 300,000)
    /sse     20 server-sent events 50 ms apart, each carrying the time it was yielded
             (bench/sse.py measures how late each arrives)

`bench/run.sh` copies this file to its staging directory and writes `data/1mib.bin` beside it.
"""

import os
import time

from flask import Flask, jsonify

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_FILE = os.path.join(HERE, "data", "1mib.bin")

HELLO = b"Hello, world!"  # 13 bytes
BIG = b"x" * (1024 * 1024)

flask_app = Flask(__name__)


@flask_app.route("/flask")
def flask_json():
    return jsonify(message="Hello, world!", server="bench")


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


def big(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))],
    )
    return [BIG]


def file(environ, start_response):
    f = open(DATA_FILE, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(f, 65536)
    return iter(lambda: f.read(65536), b"")


def post(environ, start_response):
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    total = 0
    while remaining > 0:
        chunk = stream.read(min(65536, remaining))
        if not chunk:
            break
        total += len(chunk)
        remaining -= len(chunk)
    body = b"%d\n" % total
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


STREAM_LINE = b"2026-12-01,12345,abcdefghi\n"  # 27 bytes
STREAM_LINES = 10_000


def stream(environ, start_response):
    query = environ.get("QUERY_STRING", "")
    lines = STREAM_LINES
    if query.startswith("lines="):
        lines = min(int(query[len("lines="):]), 1_000_000)
    start_response("200 OK", [("Content-Type", "text/csv")])
    for _ in range(lines):
        yield STREAM_LINE


SSE_EVENTS = 20
SSE_GAP = 0.05  # seconds


def sse(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    for i in range(SSE_EVENTS):
        if i:
            time.sleep(SSE_GAP)
        yield b"data: %.6f\n\n" % time.time()


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]


ROUTES = {
    "/hello": hello,
    "/flask": flask_app,
    "/big": big,
    "/file": file,
    "/post": post,
    "/stream": stream,
    "/sse": sse,
}


def application(environ, start_response):
    return ROUTES.get(environ.get("PATH_INFO", ""), not_found)(environ, start_response)

"""Test app for PEP 3333 and HTTP semantics: one route per behaviour, named by the last
segment of PATH_INFO (so /limited/hash is /hash under a <Location /limited> section).

State that tests inspect afterwards (close() calls, exceptions seen by the app) is kept per
process in EVENTS under a key the test chooses (?key=...) and read back with /events?key=...,
so the tests run one daemon process.

/validated/... serves the same routes wrapped in wsgiref.validate.validator (the mount point
becomes /validated, as a dispatching middleware would do).
"""

import hashlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
import wsgiref.validate
from urllib.parse import parse_qs, unquote_to_bytes

EVENTS = {}
RELEASE = {}
LOCK = threading.Condition()
FILE_DATA = bytes(range(256)) * 1200  # 307200 bytes


def record(key, event):
    if key:
        with LOCK:
            EVENTS.setdefault(key, []).append(event)
            LOCK.notify_all()


def query(environ):
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[0] for k, v in q.items()}


def text(start_response, body, status="200 OK", headers=()):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        + list(headers),
    )
    return [body]


def describe(value):
    if isinstance(value, str):
        return "str\t" + ascii(value)
    return "%s\t%s" % (type(value).__name__, ascii(value))


# ---- environ ---------------------------------------------------------------------------


def r_environ(environ, start_response):
    lines = ["%s\t%s" % (k, describe(v)) for k, v in sorted(environ.items())]
    lines.append("environ.type\t%s" % type(environ).__name__)
    lines.append("python.warnoptions\tlist\t%s" % ascii(sys.warnoptions))
    return text(start_response, "\n".join(lines) + "\n")


def r_log(environ, start_response):
    marker = query(environ).get("marker", "marker")
    environ["wsgi.errors"].write("%s via wsgi.errors\n" % marker)
    print("%s via print" % marker)
    logging.getLogger("rswsgi-test").error("%s via logging", marker)
    if query(environ).get("raise"):
        raise RuntimeError("%s raised" % marker)
    return text(start_response, environ.get("mod_wsgi.request_id", ""))


# ---- wsgi.input ------------------------------------------------------------------------


def r_input(environ, start_response):
    q = query(environ)
    mode = q.get("mode", "read")
    size = int(q.get("size", "-1"))
    stream = environ["wsgi.input"]
    parts = []
    if mode == "read":
        parts.append(stream.read())
    elif mode == "read_minus1":
        parts.append(stream.read(-1))
    elif mode == "read_none":
        parts.append(stream.read(None))
    elif mode == "read_n":
        while True:
            chunk = stream.read(size)
            assert len(chunk) <= size
            if not chunk:
                break
            parts.append(chunk)
    elif mode == "readline":
        while True:
            line = stream.readline(size) if size >= 0 else stream.readline()
            if not line:
                break
            parts.append(line)
    elif mode == "readlines":
        while True:
            lines = stream.readlines(size) if size >= 0 else stream.readlines()
            if not lines:
                break
            parts.append(b"".join(lines))
            if size < 0:
                break
    elif mode == "iter":
        parts.extend(stream)
    body = b"".join(parts)
    after = [len(stream.read(10)), len(stream.read(-1)), len(stream.readline())]
    return text(
        start_response,
        "len=%d\nsha256=%s\npieces=%d\nafter=%s\n"
        % (len(body), hashlib.sha256(body).hexdigest(), len(parts), after),
    )


def r_hash(environ, start_response):
    digest = hashlib.sha256()
    total = 0
    read = environ["wsgi.input"].read
    while True:
        chunk = read(65536)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
    return text(start_response, "len=%d\nsha256=%s\n" % (total, digest.hexdigest()))


def r_expect(environ, start_response):
    time.sleep(int(query(environ).get("delay", "0")) / 1000.0)
    body = environ["wsgi.input"].read(1 << 20)
    return text(start_response, "len=%d\n" % len(body))


def r_noread(environ, start_response):
    return text(start_response, "did not read\n")


def r_upload_abort(environ, start_response):
    key = query(environ).get("key")
    total = 0
    try:
        while True:
            chunk = environ["wsgi.input"].read(65536)
            if not chunk:
                break
            total += len(chunk)
            record(key, "read %d" % total)
    except OSError as e:
        record(key, "OSError after %d: %s" % (total, e))
        raise
    record(key, "eof after %d" % total)
    return text(start_response, "len=%d\n" % total)


# ---- start_response --------------------------------------------------------------------


def r_status(environ, start_response):
    q = query(environ)
    status = unquote_to_bytes(q["s"]).decode(q.get("enc", "latin-1"))
    start_response(status, [("Content-Type", "text/plain")])
    return [b"custom status\n"]


def r_header(environ, start_response):
    q = query(environ)
    name = q.get("name", "X-Test")
    name = unquote_to_bytes(name).decode("latin-1")
    value = unquote_to_bytes(q.get("value", "")).decode(q.get("enc", "latin-1"))
    start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
    return [b"header accepted\n"]


def r_header_bytes(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), (b"X-Bytes", b"v")])
    return [b"bytes header accepted\n"]


def r_header_tuple(environ, start_response):
    start_response("200 OK", (("Content-Type", "text/plain"),))
    return [b"tuple headers accepted\n"]


def r_multi(environ, start_response):
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
        ],
    )
    return [b"multi\n"]


def r_exc_before(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Original", "1")])
    try:
        raise ValueError("replaced before output")
    except ValueError:
        start_response(
            "500 Replaced",
            [("Content-Type", "text/plain"), ("X-Replaced", "1")],
            sys.exc_info(),
        )
    return [b"replaced\n"]


def r_exc_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"first block\n"
        try:
            raise ValueError("raised after output began")
        except ValueError:
            start_response("500 Too Late", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never\n"

    return body()


def r_twice(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        start_response("201 Created", [("Content-Type", "text/plain")])
    except Exception as e:
        return [("second call raised %s\n" % type(e).__name__).encode()]
    return [b"second call accepted\n"]


# ---- write() and Content-Length --------------------------------------------------------


def r_write(environ, start_response):
    key = query(environ)["key"]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"")
    write(b"first\n")
    with LOCK:
        released = LOCK.wait_for(lambda: RELEASE.pop(key, False), timeout=20)
    return [b"second\n" if released else b"timed out waiting for release\n"]


def r_release(environ, start_response):
    with LOCK:
        RELEASE[query(environ)["key"]] = True
        LOCK.notify_all()
    return text(start_response, "released\n")


def r_cl_excess(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"01234", b"56789"]


def r_cl_short(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"01234"]


def r_one_item(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello world\n"]


def r_generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"one\n"
        yield b""
        yield b"two\n"

    return body()


def r_stream(environ, start_response):
    q = query(environ)
    n, interval = int(q.get("n", "5")), int(q.get("interval", "200")) / 1000.0
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        for i in range(n):
            if i:
                time.sleep(interval)
            yield b""
            yield ("tick %d %.3f\n" % (i, time.time())).encode()

    return body()


def r_lines(environ, start_response):
    """n lines of `size` bytes (numbered), one yield each, as fast as Python goes."""
    q = query(environ)
    n, size = int(q.get("n", "10")), int(q.get("size", "32"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        for i in range(n):
            yield b"%-*d\n" % (size - 1, i)

    return body()


def r_blocks(environ, start_response):
    """Blocks of the given `sizes` (comma-separated) of seeded random bytes, one yield each,
    with their SHA-256 in X-Sha256 and a Content-Length; `pause` ms after the first block,
    `cl=0` leaves the Content-Length off."""
    import random

    q = query(environ)
    sizes = [int(n) for n in q.get("sizes", "1").split(",")]
    rng = random.Random(q.get("seed", "0"))
    blocks = [rng.randbytes(n) for n in sizes]
    pause = int(q.get("pause", "0")) / 1000.0
    digest = hashlib.sha256(b"".join(blocks)).hexdigest()
    headers = [("Content-Type", "application/octet-stream"), ("X-Sha256", digest)]
    if q.get("cl", "1") != "0":
        headers.append(("Content-Length", str(sum(sizes))))
    start_response("200 OK", headers)

    def body():
        for i, block in enumerate(blocks):
            if i == 1 and pause:
                time.sleep(pause)
            yield block

    return body()


def r_burst(environ, start_response):
    """n small lines at once, then a pause of `pause` ms, then the line "last"."""
    q = query(environ)
    n, pause = int(q.get("n", "100")), int(q.get("pause", "500")) / 1000.0
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        for i in range(n):
            yield b"line %d\n" % i
        time.sleep(pause)
        yield b"last\n"

    return body()


# ---- close() and errors ----------------------------------------------------------------


class Closing:
    """An iterable with close(): records its calls."""

    def __init__(self, key, blocks, fail_at=None):
        self.key, self.blocks, self.fail_at = key, blocks, fail_at

    def __iter__(self):
        for i, block in enumerate(self.blocks):
            if i == self.fail_at:
                raise RuntimeError("iterable failed at block %d" % i)
            yield block

    def close(self):
        record(self.key, "close")


def r_close(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    fail_at = int(q["fail_at"]) if "fail_at" in q else None
    return Closing(q.get("key"), [b"a\n", b"b\n", b"c\n"], fail_at)


def r_disconnect(environ, start_response):
    q = query(environ)
    key, interval = q.get("key"), int(q.get("interval", "50")) / 1000.0
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        try:
            for i in range(int(q.get("n", "400"))):
                record(key, "yield %d" % i)
                yield b"x" * 1024 + b"\n"
                time.sleep(interval)
            record(key, "finished")
        finally:
            record(key, "finally")

    return body()


def r_raise_before(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        raise RuntimeError("raised before the first block")
        yield b"never"

    return body()


def r_raise_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"first block\n"
        raise RuntimeError("raised after the first block")

    return body()


# ---- HEAD ------------------------------------------------------------------------------


def r_head(environ, start_response):
    body = b"hello head\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("X-Method", environ["REQUEST_METHOD"])],
    )
    return [body]


# ---- wsgi.file_wrapper -----------------------------------------------------------------


class TrackedFile(io.BufferedReader):
    key = None

    def close(self):
        record(self.key, "file closed")
        super().close()


class ReadOnly:
    """A file-like object with read() and close() only."""

    def __init__(self, data, key):
        self.data, self.key = io.BytesIO(data), key

    def read(self, n=-1):
        return self.data.read(n)

    def close(self):
        record(self.key, "filelike closed")


def plain_file():
    """A file holding FILE_DATA, written once, for open(path, "rb")."""
    global PLAIN_PATH
    with LOCK:
        if PLAIN_PATH is None:
            fd, path = tempfile.mkstemp(prefix="rswsgi-semantics-")
            with os.fdopen(fd, "wb") as f:
                f.write(FILE_DATA)
            PLAIN_PATH = path
        return PLAIN_PATH


PLAIN_PATH = None


def r_file(environ, start_response):
    q = query(environ)
    kind = q.get("kind", "file")
    headers = [("Content-Type", "application/octet-stream")]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    if kind == "file":
        raw = tempfile.TemporaryFile()
        raw.write(FILE_DATA)
        raw.seek(0)
        f = TrackedFile(raw)
        f.key = q.get("key")
        f.seek(int(q.get("offset", "0")))
    elif kind == "plain":
        f = open(plain_file(), "rb")
        f.seek(int(q.get("offset", "0")))
    elif kind == "named":
        f = tempfile.NamedTemporaryFile()
        f.write(FILE_DATA)
        f.seek(int(q.get("offset", "0")))
    elif kind == "gzip":
        import gzip

        raw = tempfile.TemporaryFile()
        with gzip.GzipFile(fileobj=raw, mode="wb") as z:
            z.write(FILE_DATA)
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb")
    elif kind == "bytesio":
        f = io.BytesIO(FILE_DATA)
        f.seek(int(q.get("offset", "0")))
    else:
        f = ReadOnly(FILE_DATA, q.get("key"))
    start_response("200 OK", headers)
    blksize = int(q.get("blksize", "8192"))
    return environ["wsgi.file_wrapper"](f, blksize)


def r_events(environ, start_response):
    q = query(environ)
    key = q["key"]
    wait_for = q.get("wait_for")
    with LOCK:
        if wait_for:
            LOCK.wait_for(
                lambda: any(e.startswith(wait_for) for e in EVENTS.get(key, [])), timeout=10
            )
        events = list(EVENTS.get(key, []))
    return text(start_response, "".join(e + "\n" for e in events))


ROUTES = {
    "/environ": r_environ,
    "/log": r_log,
    "/input": r_input,
    "/hash": r_hash,
    "/expect": r_expect,
    "/noread": r_noread,
    "/upload-abort": r_upload_abort,
    "/status": r_status,
    "/header": r_header,
    "/header-bytes": r_header_bytes,
    "/header-tuple": r_header_tuple,
    "/multi": r_multi,
    "/exc-before": r_exc_before,
    "/exc-after": r_exc_after,
    "/twice": r_twice,
    "/write": r_write,
    "/release": r_release,
    "/cl-excess": r_cl_excess,
    "/cl-short": r_cl_short,
    "/one-item": r_one_item,
    "/generator": r_generator,
    "/stream": r_stream,
    "/lines": r_lines,
    "/burst": r_burst,
    "/blocks": r_blocks,
    "/close": r_close,
    "/disconnect": r_disconnect,
    "/raise-before": r_raise_before,
    "/raise-after": r_raise_after,
    "/head": r_head,
    "/file": r_file,
    "/events": r_events,
}


def dispatch(environ, start_response):
    # The last path segment names the route, so tests can put routes under <Location>
    # prefixes with their own configuration (/chunked/input, /deflate/head, ...).
    route = ROUTES.get("/" + environ.get("PATH_INFO", "").rsplit("/", 1)[-1])
    if route is None:
        return text(start_response, "no such route\n", "404 Not Found")
    return route(environ, start_response)


validated = wsgiref.validate.validator(dispatch)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/validated/"):
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/validated"
        environ["PATH_INFO"] = path[len("/validated"):]
        return validated(environ, start_response)
    return dispatch(environ, start_response)

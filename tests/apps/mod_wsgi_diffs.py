"""Test app for behaviours where rswsgi once differed from mod_wsgi (tests/mod_wsgi_diffs.rs).

Routes are named by the last segment of PATH_INFO; any other path echoes SCRIPT_NAME and
PATH_INFO (as ascii() of the str the app sees) and the method.
"""

from urllib.parse import parse_qs


def query(environ):
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[0] for k, v in q.items()}


def r_echo(environ, start_response):
    lines = [
        "SCRIPT_NAME=%s" % ascii(environ.get("SCRIPT_NAME")),
        "PATH_INFO=%s" % ascii(environ.get("PATH_INFO")),
        "PATH_INFO.type=%s" % type(environ.get("PATH_INFO")).__name__,
        "REQUEST_METHOD=%s" % environ.get("REQUEST_METHOD"),
    ]
    body = ("\n".join(lines) + "\n").encode("ascii")
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


def r_empty(environ, start_response):
    """A body with no Content-Length that is, or turns out to be, empty."""
    q = query(environ)
    kind = q.get("kind", "list")
    if "read" in q:
        environ["wsgi.input"].read()
    headers = [] if "bare" in q else [("Content-Type", "text/plain")]
    start_response(q.get("status", "200 OK"), headers)
    if kind == "list":
        return []
    if kind == "bytes":
        return [b""]
    if kind == "many":
        return [b"", b"", b""]
    if kind == "tuple":
        return ()
    if kind == "generator":
        return (b for b in [])
    if kind == "generator-empty-items":
        return (b for b in [b"", b""])
    if kind == "closing":
        return Closing([])
    raise ValueError("unknown kind %r" % kind)


class Closing:
    """An empty iterable with a close() method (WSGI calls it after the body)."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def close(self):
        pass


def r_empty_write(environ, start_response):
    """start_response's write() called with b"" only, then an empty iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"")
    return []


def r_status_header(environ, start_response):
    value = query(environ).get("value", "200 OK")
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Status", value)]
    )
    return [b"status header accepted\n"]


ROUTES = {
    "empty": r_empty,
    "empty-write": r_empty_write,
    "status-header": r_status_header,
}


def application(environ, start_response):
    last = environ.get("PATH_INFO", "").rsplit("/", 1)[-1]
    return ROUTES.get(last, r_echo)(environ, start_response)

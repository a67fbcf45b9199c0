"""Test app: answers every request with its WSGI environ as KEY=VALUE lines.

GET /boom raises an exception (the server must answer 500 and keep serving).
"""

import os


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.endswith("/boom"):
        raise RuntimeError("boom: raised on purpose by the probe app")
    lines = []
    for key in sorted(environ):
        value = environ[key]
        if isinstance(value, (str, int, bool)) or isinstance(value, tuple):
            lines.append("%s=%s" % (key, value))
    lines.append("probe.pid=%d" % os.getpid())
    lines.append("probe.uid=%d" % os.getuid())
    lines.append("probe.cwd=%s" % os.getcwd())
    body = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]

"""Test app for express's site options: what the environ says, a streamed body, an upload."""

import hashlib
import os

CHUNK = bytes(range(256)) * 256  # 64 KiB


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        size = int(environ.get("QUERY_STRING") or "0")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return stream(size)
    if path.startswith("/status/"):
        status = path[len("/status/"):]
        body = b"the application's own error page\n"
        start_response(status + " From App", [("Content-Type", "text/plain"),
                                              ("Content-Length", str(len(body))),
                                              ("X-From-App", "yes")])
        return [body]
    if path == "/upload":
        digest, length = hashlib.sha256(), 0
        stream_in = environ["wsgi.input"]
        while True:
            data = stream_in.read(1 << 16)
            if not data:
                break
            digest.update(data)
            length += len(data)
        return text(start_response, "length=%d\nsha256=%s\n" % (length, digest.hexdigest()))
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "wsgi.url_scheme", "HTTPS",
            "HTTP_HOST", "SSL_PROTOCOL", "SERVER_PROTOCOL", "REQUEST_METHOD", "FROM_SETENV",
            "FROM_ENVVARS", "mod_wsgi.process_group", "mod_wsgi.application_group")
    body = "".join("%s=%s\n" % (k, environ.get(k)) for k in keys)
    body += "os.FROM_ENVVARS=%s\n" % os.environ.get("FROM_ENVVARS")
    return text(start_response, body, [("X-Request-Method", environ["REQUEST_METHOD"])])


def stream(size):
    sent = 0
    while sent < size:
        piece = CHUNK[: size - sent]
        sent += len(piece)
        yield piece


def text(start_response, body, extra=()):
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))] + list(extra))
    return [data]

"""Test app for the privilege model: tries what an unprivileged daemon must not be able to do
and reports each outcome as KEY=VALUE lines (ok, or the exception's class name)."""

import os
import socket


def attempt(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the class name is the result
        return type(e).__name__


def write_root_file():
    with open("/root/rswsgi-privilege-test", "w") as f:
        f.write("should not be possible")


def bind_low_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", int(os.environ.get("RSWSGI_LOW_PORT", "81"))))
    finally:
        s.close()


def read_shadow():
    with open("/etc/shadow") as f:
        f.read(1)


def application(environ, start_response):
    lines = [
        "uid=%d" % os.getuid(),
        "euid=%d" % os.geteuid(),
        "gid=%d" % os.getgid(),
        "groups=%s" % ",".join(str(g) for g in sorted(os.getgroups())),
        "write_root=%s" % attempt(write_root_file),
        "bind_low_port=%s" % attempt(bind_low_port),
        "read_shadow=%s" % attempt(read_shadow),
    ]
    body = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

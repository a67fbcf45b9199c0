"""Test app: GET /exit/N ends the daemon process with os._exit(N); anything else answers
`pid=PID`."""

import os


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/exit/"):
        os._exit(int(path[len("/exit/"):]))
    body = ("pid=%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

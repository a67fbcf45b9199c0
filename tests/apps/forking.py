"""Test app for fork safety: requests that fork, in the ways applications really do.

/fork-return   os.fork(); the child answers SECRET-OF-CHILD-... and returns into the server
/fork-exit     os.fork(); the child raises SystemExit (sys.exit) inside the application
/mp            a multiprocessing 'fork' Process, left running for a few seconds
anything else  echoes its path, so a test can tell whose response it got
"""

import multiprocessing
import os
import sys
import time


def linger():
    time.sleep(4)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/fork-return":
        body = b"PARENT-OF-REQUEST-A" if os.fork() else b"SECRET-OF-CHILD-OF-REQUEST-A"
    elif path == "/fork-exit":
        if os.fork() == 0:
            sys.exit(3)
        body = b"PARENT-OF-FORK-EXIT"
    elif path == "/mp":
        p = multiprocessing.get_context("fork").Process(target=linger)
        p.start()
        body = ("PARENT-OF-MP child=%d" % p.pid).encode()
    else:
        body = ("ECHO %s" % path).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""Test app: uses multiprocessing's spawn start method from a request (which starts a fresh
interpreter from sys.executable) and reports what the interpreter looks like."""

import math
import multiprocessing
import sys


def application(environ, start_response):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result = pool.apply(math.factorial, (10,))
    body = "factorial=%d\nexecutable=%s\nprefix=%s\n" % (result, sys.executable, sys.prefix)
    body = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

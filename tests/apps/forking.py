"""Test app for fork safety: requests that fork, in the ways applications really do.

/fork-return   os.fork(); the child answers SECRET-OF-CHILD-... and returns into the server
/fork-exit     os.fork(); the child raises SystemExit (sys.exit) inside the application
/mp            a multiprocessing 'fork' Process, left running for a few seconds
/stray         writes a whole forged response (numbered for request 12345, body STOLEN) on
               every connection the daemon has open to Apache, as a stray writer would
anything else  echoes its path, so a test can tell whose response it got
"""

import multiprocessing
import os
import socket
import stat
import struct
import sys
import time


def linger():
    """The multiprocessing child: records what its descriptors point at (for the test, in
    /tmp/rswsgi-mp-fds-PID), then lingers."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass
    path = "/tmp/rswsgi-mp-fds-%d" % os.getpid()
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(links))
    os.rename(path + ".tmp", path)
    time.sleep(4)


def forged_response(seq):
    """ResponseHead, Body, ResponseEnd frames of protocol version 2, numbered `seq`."""
    def frame(kind, payload):
        return struct.pack("<BI", kind, len(payload)) + payload

    name, value = b"Content-Length", b"6"
    head = struct.pack("<QHI", seq, 200, 2) + b"OK" + struct.pack("<I", 1)
    head += struct.pack("<I", len(name)) + name + struct.pack("<I", len(value)) + value
    return frame(5, head) + frame(3, b"STOLEN") + frame(6, struct.pack("<Q", seq))


def write_everywhere(data):
    """Writes `data` to every connected UNIX stream socket this process has open."""
    hits = 0
    for fd in range(3, 1024):
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family != socket.AF_UNIX or s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            s.getpeername()
            os.write(fd, data)
            hits += 1
        except OSError:
            pass
        finally:
            s.close()
    return hits


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
    elif path == "/stray":
        body = ("STRAY wrote to %d connections" % write_everywhere(forged_response(12345))).encode()
    else:
        body = ("ECHO %s" % path).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

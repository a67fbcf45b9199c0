# What the daemon process looks like from inside: its connections' socket buffer sizes, the
# GIL switch interval, its pid, the exceptions /spin saw; a 32 MiB response at /big; /spin and
# /spin-forever run until interrupted (the latter swallows the interruption) (tests/daemon_options.rs).
import os
import socket
import sys


def connections():
    """SO_SNDBUF/SO_RCVBUF of every connected UNIX socket this process holds."""
    found = []
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        try:
            if not os.readlink('/proc/self/fd/%d' % fd).startswith('socket:'):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if s.family != socket.AF_UNIX or s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            found.append('%d/%d' % (s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                                    s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)))
        finally:
            s.close()
    return found


BIG = 32 << 20
INTERRUPTED = []


def spin(swallow):
    """Busy Python code (which an asynchronous exception interrupts at once)."""
    while True:
        try:
            while True:
                pass
        except BaseException as e:
            INTERRUPTED.append(type(e).__name__)
            if not swallow:
                raise


def application(environ, start_response):
    if environ['PATH_INFO'] in ('/spin', '/spin-forever'):
        spin(swallow=environ['PATH_INFO'] == '/spin-forever')
    if environ['PATH_INFO'] == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(BIG))])
        return (b'x' * (64 << 10) for _ in range(BIG // (64 << 10)))
    lines = ['pid=%d' % os.getpid(),
             'switch_interval=%r' % sys.getswitchinterval(),
             'interrupted=%s' % ','.join(INTERRUPTED),
             'sockets=%s' % ' '.join(connections())]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('\n'.join(lines) + '\n').encode()]

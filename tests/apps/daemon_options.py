# What the daemon process looks like from inside: its connections' socket buffer sizes, the
# GIL switch interval, its pid (tests/daemon_options.rs).
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


def application(environ, start_response):
    lines = ['pid=%d' % os.getpid(),
             'switch_interval=%r' % sys.getswitchinterval(),
             'sockets=%s' % ' '.join(connections())]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('\n'.join(lines) + '\n').encode()]

"""A hand-made rswsgi protocol client, for the security tests: run as some local user, it
connects to a daemon socket, reads the daemon's challenge, answers with a proof made from a
key it guessed (it cannot know the real secret), and sends a RequestHead (protocol version
4, whose RequestHead is version 3's) that forges REMOTE_USER, HTTPS and REMOTE_ADDR in its environ and names its own script in
the head's typed script field (SCRIPT_FILENAME) — and, for a daemon that would take the
environ's word, as a SCRIPT_FILENAME pair too.

Usage: attack_client.py SOCKET SCRIPT_FILENAME
Prints one line: CONNECT-FAILED <errno name>, or CHALLENGE <n> GOT <n> <hex of the first
bytes> (what the daemon sent after the handshake; 0 bytes means it closed the connection
unserved).

A daemon that sends no challenge within two seconds is taken for one of protocol version 1
(before connection authentication), which it then speaks: the version-1 preamble and a
RequestHead without a sequence number or typed fields, naming the script in its environ. That
is how the attack worked before the fix, so the tests can show that it did.
"""

import errno
import hashlib
import hmac
import socket
import struct
import sys

PREAMBLE = b"RSWSGI" + struct.pack(">H", 4)


def frame(kind, payload):
    return struct.pack("<BI", kind, len(payload)) + payload


def sized(b):
    return struct.pack("<I", len(b)) + b


def request_head(seq, environ, script=None):
    """A RequestHead with no body: version 3 and 4 (seq, body kind, typed fields: request start,
    script, callable, request id, application group; then the environ), or version 1 (no
    seq, no typed fields) when seq is None."""
    out = b"" if seq is None else struct.pack("<Q", seq)
    out += b"\x00"
    if seq is not None:
        out += struct.pack("<Q", 0) + sized(script) + sized(b"application")
        out += sized(b"forged-id") + sized(b"")
    out += struct.pack("<I", len(environ))
    for k, v in environ:
        out += sized(k) + sized(v)
    return frame(1, out)


def main():
    path, script = sys.argv[1], sys.argv[2].encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        print("CONNECT-FAILED", errno.errorcode.get(e.errno, e.errno))
        return
    challenge = b""
    legacy = False
    s.settimeout(2)
    try:
        while len(challenge) < 24:
            chunk = s.recv(24 - len(challenge))
            if not chunk:
                break
            challenge += chunk
    except socket.timeout:
        legacy = True
    except OSError:
        pass
    s.settimeout(10)
    nonce = challenge[8:24]
    guess = hmac.new(b"\x00" * 32, b"rswsgi v2 module->daemon connection proof" + nonce, hashlib.sha256)
    environ = [
        (b"REQUEST_METHOD", b"GET"),
        (b"SCRIPT_NAME", b""),
        (b"PATH_INFO", b"/forged"),
        (b"REQUEST_URI", b"/forged"),
        (b"QUERY_STRING", b""),
        (b"SERVER_NAME", b"localhost"),
        (b"SERVER_PORT", b"80"),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"wsgi.url_scheme", b"https"),
        (b"HTTPS", b"on"),
        (b"REMOTE_USER", b"admin"),
        (b"REMOTE_ADDR", b"10.6.6.6"),
        (b"SCRIPT_FILENAME", script),
    ]
    if legacy:
        wire = b"RSWSGI" + struct.pack(">H", 1) + request_head(None, environ)
    else:
        wire = PREAMBLE + guess.digest() + request_head(1, environ, script)
    try:
        s.sendall(wire)
    except OSError:
        pass
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    print("CHALLENGE", len(challenge), "GOT", len(got), got[:64].hex())


main()

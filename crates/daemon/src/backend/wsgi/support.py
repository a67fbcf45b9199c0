"""Python-side helpers of rswsgi-daemon (loaded once per process as `_rswsgi_support`)."""

import codecs
import io
import os
import site
import stat
import sys
import traceback
import types


def prepend_site_dirs(dirs):
    """site.addsitedir() each directory (so .pth files are honoured), then move every entry
    that added to the front of sys.path, keeping their order."""
    before = set(sys.path)
    for d in dirs:
        site.addsitedir(d)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p in before]
    sys.path[:] = added + rest


def activate_virtualenv(home):
    """Make the virtualenv at `home` the environment, like virtualenv's activate_this.py.
    Returns its site-packages directory."""
    v = sys.version_info
    site_packages = os.path.join(home, "lib", "python%d.%d" % (v[0], v[1]), "site-packages")
    prepend_site_dirs([site_packages])
    sys.prefix = sys.exec_prefix = home
    return site_packages


class _LogRaw(io.RawIOBase):
    """The binary side of sys.stdout/sys.stderr: bytes written are decoded as UTF-8 (a
    character split across writes is kept for the next) and handed to a text log object,
    which logs each complete line."""

    def __init__(self, log, name):
        super().__init__()
        self._log = log
        self._name = name
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def name(self):
        return self._name

    def writable(self):
        return True

    def write(self, b):
        data = bytes(b)
        self._log.write(self._decoder.decode(data))
        return len(data)

    def fileno(self):
        raise io.UnsupportedOperation("%s is the Apache error log, not a file" % self._name)

    def flush(self):
        self._log.flush()


def text_stream(log, name):
    """sys.stdout/sys.stderr as mod_wsgi gives them: a line-buffered io.TextIOWrapper
    (errors='replace') over a binary object whose lines go to the error log, so `.buffer`,
    `.name`, `.errors` and `.line_buffering` exist and `fileno()` raises OSError."""
    buffered = io.BufferedWriter(_LogRaw(log, name))
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="replace", line_buffering=True)


class Restricted:
    """sys.stdin or sys.stdout under WSGIRestrictStdin/WSGIRestrictStdout On, as mod_wsgi
    gives them: any use raises OSError naming the stream."""

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, attr):
        raise OSError("%s access restricted by mod_wsgi" % object.__getattribute__(self, "_name"))

    def __repr__(self):
        return "<restricted %s>" % object.__getattribute__(self, "_name")


def restrict_signals():
    """As mod_wsgi (WSGIRestrictSignal's default): the application cannot take over this
    process's signals, which the daemon uses to stop and recycle. signal.signal() called in
    the daemon process logs that it is ignored, with the caller's stack, and returns the
    handler in place; in a process the application forked it works as usual."""
    import signal

    original = signal.signal
    daemon_pid = os.getpid()

    def intercept(signalnum, handler):
        if os.getpid() != daemon_pid:
            return original(signalnum, handler)
        print("Ignoring Python signal handler registration for signal %d in the WSGI daemon "
              "process; rswsgi manages its signals." % int(signalnum), file=sys.stderr)
        traceback.print_stack(file=sys.stderr)
        return signal.getsignal(signalnum)

    intercept.__wrapped__ = original
    signal.signal = intercept


def load_script(name, path, source):
    """Run a WSGI script file as the module `name` and return the module."""
    code = compile(source, path, "exec", dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def module_files():
    """The source file of every module in sys.modules that has one, for reload-on-changes
    (as mod_wsgi-express's monitor: a `.pyc`/`.pyo` stands for its `.py`), as file-system
    bytes; and (name, error) of each module whose `__file__` cannot be a file name."""
    files, unusable = [], []
    for name, module in list(sys.modules.items()):
        try:
            path = getattr(module, "__file__", None)
        except Exception:
            continue
        if not isinstance(path, str) or not path:
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        try:
            files.append(os.fsencode(path))
        except (UnicodeError, TypeError) as e:
            unusable.append((str(name), "%s: %s" % (type(e).__name__, e)))
    return files, unusable


def format_exception(exc, tb=None):
    """The full traceback of `exc` (raised with traceback `tb`) as text."""
    if tb is None:
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


_PLAIN_FILES = (io.FileIO, io.BufferedReader, io.BufferedRandom)


def _unwrap_tempfile(f):
    """The file inside a tempfile.NamedTemporaryFile wrapper, else `f` itself. (tempfile is
    not imported here: if the application never imported it, `f` is no such wrapper.)"""
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None and isinstance(f, getattr(tempfile, "_TemporaryFileWrapper", ())):
        return f.file
    return f


class FileWrapper:
    """wsgi.file_wrapper: iterates a file-like object in blocks and closes it.

    The daemon sends a FileWrapper returned by the application itself (see app.rs): from the
    file's current position, at most Content-Length bytes, in blocks of at least `blksize`.
    Iterating it (as middleware may) reads `blksize` bytes at a time."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def file_wrapper_source(wrapper):
    """How to send a FileWrapper: (length, descriptor, offset).

    length is the bytes left from the current position when the wrapped object is a binary
    file (an io.FileIO, io.BufferedReader or io.BufferedRandom, or a subclass, possibly inside a
    tempfile wrapper) on a regular file, else None: other file-like objects are read until they
    end, since what their read() returns need not match the descriptor behind fileno() (a
    gzip.GzipFile, say). descriptor is given only for exactly those types (a subclass may
    override read()): Apache can then send the bytes from it without their being read here."""
    f = _unwrap_tempfile(wrapper.filelike)
    if not isinstance(f, _PLAIN_FILES):
        return None, None, 0
    try:
        if f.writable():
            f.flush()
        fd = f.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, None, 0
        offset = f.tell()
        plain = fd if type(f) in _PLAIN_FILES else None
        return max(st.st_size - offset, 0), plain, offset
    except Exception:
        return None, None, 0
    try:
        if f.closed:
            return None
        if f.writable():
            f.flush()
        return f.fileno(), f.tell()
    except Exception:
        return None

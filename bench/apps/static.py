"""Writes the static files that the "Apache static file" server serves: for each app, a file
holding exactly the body the app answers (same size), so the static row is the ceiling for
anything behind Apache.

    BENCH_VENV/bin/python static.py STAGED_WSGI_PY OUT_DIR POST_BYTES

Runs the staged wsgi.py in-process (it needs Flask, hence the bench virtualenv's python).
"""

import importlib.util
import io
import os
import sys
from wsgiref.util import setup_testing_defaults

# The body of examples/native/wsgi.rs's route "/" (run.sh checks the live size against it).
NATIVE_BODY = b"Hello from Rust!\n"


def call(app, path, method="GET", body=b""):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    status = []
    chunks = app(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        data = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    if not status or not status[0].startswith("200"):
        sys.exit(f"static.py: {method} {path} answered {status}")
    return data


def main():
    script, out, post_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = importlib.util.spec_from_file_location("bench_wsgi", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.application
    bodies = {
        "hello": call(app, "/hello"),
        "flask": call(app, "/flask"),
        "big": call(app, "/big"),
        "file": call(app, "/file"),
        "post": call(app, "/post", "POST", b"x" * post_bytes),
        "stream": call(app, "/stream"),
        "native": NATIVE_BODY,
    }
    os.makedirs(out, exist_ok=True)
    for name, data in bodies.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Serves examples/flask/wsgi.py with the release build: what `make run` does.
# As root the server must switch to an unprivileged user (www-data), and that user
# may not be able to read the checkout (say, under /root): so the binaries and the
# example are first copied to a root-owned, world-readable $RUN_DIR (/opt/rswsgi/run).
# Usage: VENV=... PORT=8000 HOST=127.0.0.1 scripts/run-example.sh [more express options]
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}/release
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
: "${VENV:?set VENV to the Flask virtualenv (make run does)}"

if [ "$(id -u)" -eq 0 ]; then
  RUN_USER=${RUN_USER:-www-data}
  RUN_DIR=${RUN_DIR:-/opt/rswsgi/run}
  mkdir -p "$RUN_DIR/bin" "$RUN_DIR/flask"
  chmod 0755 "$RUN_DIR" "$RUN_DIR/bin" "$RUN_DIR/flask"
  install -m 0755 "$TARGET/express" "$TARGET/rswsgi-daemon" "$RUN_DIR/bin/"
  install -m 0644 "$TARGET/libmod_rswsgi.so" "$RUN_DIR/bin/mod_rswsgi.so"
  install -m 0644 examples/flask/wsgi.py "$RUN_DIR/flask/wsgi.py"
  exec "$RUN_DIR/bin/express" start-server "$RUN_DIR/flask/wsgi.py" \
    --host "$HOST" --port "$PORT" --python-home "$VENV" --user "$RUN_USER" "$@"
else
  exec "$TARGET/express" start-server examples/flask/wsgi.py \
    --host "$HOST" --port "$PORT" --python-home "$VENV" "$@"
fi

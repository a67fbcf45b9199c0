#!/usr/bin/env bash
# Installs what rswsgi needs to build and test on Debian 12, idempotently:
#   - Debian packages (apt-get, only those missing),
#   - a virtualenv of Debian's /usr/bin/python3 with Flask, Django and Mercurial at $VENV,
#   - the system user rswsgi-test that the end-to-end tests run servers as (root only).
# Usage: VENV=/opt/rswsgi/venv scripts/setup.sh
set -euo pipefail
umask 022

if [ "$(id -u)" -eq 0 ]; then
  VENV=${VENV:-/opt/rswsgi/venv}
else
  VENV=${VENV:-$HOME/.cache/rswsgi/venv}
fi
TEST_USER=rswsgi-test
# debhelper, dpkg-dev and lintian build and check the Debian package (make deb, tests/debian_package.rs);
# strace shows which system calls Apache sends a file with (tests/mod_wsgi_directives.rs);
# haproxy, logrotate and systemd (systemd-analyze) run what docs/deployment.md documents (tests/deployment.rs).
PACKAGES=(apache2 apache2-utils apache2-dev libclang-dev python3-dev python3-venv build-essential pkg-config curl openssl iproute2 wrk
  debhelper dpkg-dev lintian strace haproxy logrotate systemd)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run 'make setup' as root (or apt-get install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian starts the distribution's Apache on :80 when it installs it; rswsgi runs its own.
  for pkg in "${missing[@]}"; do
    if [ "$pkg" = haproxy ]; then
      # Debian starts haproxy when it installs it; the tests run their own.
      service haproxy stop >/dev/null 2>&1 || true
      if command -v systemctl >/dev/null 2>&1; then systemctl disable haproxy >/dev/null 2>&1 || true; fi
      update-rc.d haproxy disable >/dev/null 2>&1 || true
    fi
    if [ "$pkg" = apache2 ]; then
      service apache2 stop >/dev/null 2>&1 || true
      if command -v systemctl >/dev/null 2>&1; then systemctl disable apache2 >/dev/null 2>&1 || true; fi
      update-rc.d apache2 disable >/dev/null 2>&1 || true
    fi
  done
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import flask, django, mercurial, trac, prometheus_client' >/dev/null 2>&1; then
  echo "setup: creating the virtualenv $VENV (Debian's python3 + Flask, Django, Mercurial, Trac and prometheus_client)"
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check flask django mercurial trac prometheus_client
fi

if [ "$(id -u)" -eq 0 ] && ! getent passwd "$TEST_USER" >/dev/null; then
  echo "setup: creating the system user $TEST_USER"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$TEST_USER"
fi

echo "setup: done (venv $VENV)"

#!/usr/bin/env bash
# rswsgi benchmark (issue 7): rswsgi against mod_wsgi and the Apache-proxied set-ups, on loopback.
#
#   bench/run.sh [--quick] [--duration S] [--warmup S] [--servers a,b] [--apps a,b]
#                [--connections 16,64] [--port N] [--out FILE] [--no-build] [--no-install]
#                [--check-only]
#   make bench [ARGS="--quick"]
#
# Installs what it needs (wrk, apache2, apache2-dev; a bench virtualenv with mod_wsgi, gunicorn,
# granian, Flask), builds rswsgi, stages the apps where the server user can read them, then
# runs each server alone with 2 processes x 4 threads: warm-up, idle RSS, then every app at
# every connection count twice with wrk (keep-alive). Prints the tables and writes
# bench/RESULTS.md. Every server it starts is stopped by process group, also on Ctrl-C.
# See bench/README.md.
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH=$REPO/bench
PY=/usr/bin/python3
REPORT=$BENCH/report.py

ALL_SERVERS=(rswsgi modwsgi-daemon modwsgi-embedded static apache-gunicorn apache-granian granian)
ALL_APPS=(hello flask big file post stream native)
QUICK_APPS=(hello flask)
PROCESSES=2
THREADS=4
POST_BYTES=$((256 * 1024))
DOWNLOAD_LINES=300000   # the timed download of the stream row: 300,000 yields of 27 bytes

DURATION="" WARMUP="" QUICK=0 BUILD=1 INSTALL=1 CHECK_ONLY=0
SERVERS_ARG="" APPS_ARG="" CONNS_ARG="16,64"
PORT=${BENCH_PORT:-8800}
OUT=$BENCH/RESULTS.md
WRK_THREADS=${WRK_THREADS:-2}
WRK_TIMEOUT=${WRK_TIMEOUT:-5}

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --servers) SERVERS_ARG=$2; shift ;;
    --apps) APPS_ARG=$2; shift ;;
    --connections) CONNS_ARG=$2; shift ;;
    --port) PORT=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --check-only) CHECK_ONLY=1 ;;
    -h|--help) usage ;;
    *) echo "bench: unknown option $1" >&2; usage 2 >&2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-2}; WARMUP=${WARMUP:-1}
  [ -n "$APPS_ARG" ] || APPS_ARG=$(IFS=,; echo "${QUICK_APPS[*]}")
else
  DURATION=${DURATION:-10}; WARMUP=${WARMUP:-3}
fi
IFS=, read -r -a SERVERS <<<"${SERVERS_ARG:-$(IFS=,; echo "${ALL_SERVERS[*]}")}"
IFS=, read -r -a APPS <<<"${APPS_ARG:-$(IFS=,; echo "${ALL_APPS[*]}")}"
IFS=, read -r -a CONNS <<<"$CONNS_ARG"
BACKEND_PORT=$((PORT + 1))
for s in "${SERVERS[@]}"; do
  [[ " ${ALL_SERVERS[*]} " == *" $s "* ]] || { echo "bench: unknown server $s (${ALL_SERVERS[*]})" >&2; exit 2; }
done
for a in "${APPS[@]}"; do
  [[ " ${ALL_APPS[*]} " == *" $a "* ]] || { echo "bench: unknown app $a (${ALL_APPS[*]})" >&2; exit 2; }
done

# shellcheck source=bench/defaults.sh
. "$BENCH/defaults.sh"
TARGET=${CARGO_TARGET_DIR:-target}/release
[[ $TARGET == /* ]] || TARGET=$REPO/$TARGET
STAGE=$WORK/stage
LOGS=$WORK/logs/$(date +%Y%m%d-%H%M%S)
RESULTS=$LOGS/results.jsonl
META=$LOGS/meta.tsv
APACHE=/usr/sbin/apache2
MODULES_DIR=/usr/lib/apache2/modules

log() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ install and build

install_packages() {
  local pkgs=(wrk apache2 apache2-dev python3-dev python3-venv build-essential curl) missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"; exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [[ " ${missing[*]} " == *" apache2 "* ]]; then   # Debian starts its own Apache on :80
    service apache2 stop >/dev/null 2>&1 || true
    update-rc.d apache2 disable >/dev/null 2>&1 || true
  fi
}

ensure_venv() {
  local stamp want
  want=$(sha256sum "$BENCH/requirements.txt" | cut -d' ' -f1)
  stamp=$BENCH_VENV/.bench-requirements
  if [ -x "$BENCH_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "creating the bench virtualenv $BENCH_VENV (mod_wsgi is compiled: about a minute)"
  mkdir -p "$(dirname "$BENCH_VENV")"
  /usr/bin/python3 -m venv "$BENCH_VENV"
  "$BENCH_VENV/bin/python" -m pip install --quiet wheel
  APXS=/usr/bin/apxs "$BENCH_VENV/bin/python" -m pip install --quiet -r "$BENCH/requirements.txt"
  echo "$want" >"$stamp"
}

# Copies binaries and apps where the server user can read them (the checkout may be under /root).
stage() {
  rm -rf "$STAGE" "$WORK/servers"
  mkdir -p "$STAGE/bin" "$STAGE/apps/data" "$WORK/servers" "$LOGS"
  install -m 0755 "$TARGET/express" "$TARGET/rswsgi-daemon" "$STAGE/bin/"
  install -m 0644 "$TARGET/libmod_rswsgi.so" "$STAGE/bin/mod_rswsgi.so"
  install -m 0644 "$BENCH/apps/wsgi.py" "$STAGE/apps/wsgi.py"
  head -c $((1024 * 1024)) /dev/urandom >"$STAGE/apps/data/1mib.bin"
  if [[ " ${APPS[*]} " == *" native "* ]]; then
    "$TARGET/express" build-handler "$REPO/examples/native/wsgi.rs" \
      --sdk-path "$REPO/crates/sdk" -o "$STAGE/apps/native.so" >/dev/null
  fi
  "$BENCH_VENV/bin/python" "$BENCH/apps/static.py" "$STAGE/apps/wsgi.py" "$STAGE/static" "$POST_BYTES"
  chmod -R a+rX "$STAGE"
}

collect_meta() {
  v() { "$BENCH_VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
  {
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'machine\t%s cores, %s, %s GiB RAM, kernel %s\n' "$(nproc)" \
      "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
      "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" "$(uname -r)"
    printf 'rswsgi\tgit %s%s, release build\n' "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')" \
      "$(git -C "$REPO" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
    printf 'Apache\t%s\n' "$("$APACHE" -v | sed -n 's/^Server version: //p')"
    printf 'Python\t%s (Debian /usr/bin/python3, every server)\n' "$(/usr/bin/python3 --version | cut -d' ' -f2)"
    printf 'mod_wsgi\t%s\n' "$(v mod_wsgi)"
    printf 'gunicorn\t%s\n' "$(v gunicorn)"
    printf 'granian\t%s\n' "$(v granian)"
    printf 'Flask\t%s\n' "$(v flask)"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
    printf 'settings\t%s processes x %s threads per server; wrk -t %s, keep-alive, %s s per run (warm-up %s s per app), connections %s; best of 2 runs%s\n' \
      "$PROCESSES" "$THREADS" "$WRK_THREADS" "$DURATION" "$WARMUP" "${CONNS[*]}" \
      "$([ "$QUICK" = 1 ] && echo '; --quick')"
  } >"$META"
}

# ------------------------------------------------------------------ servers

SERVER_PIDS=()   # process-group leaders started for the current server (setsid)

spawn() { # NAME COMMAND...: runs COMMAND in a new session (so a new process group)
  local name=$1; shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  SERVER_PIDS+=("$!")
}

as_user() { # prefix for servers that have no user option of their own
  if [ -n "$RUN_USER" ]; then echo setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --init-groups --; fi
}

# Apache for the static file and proxy rows: the front end mod_wsgi-express generates for
# daemon mode (event MPM, 2 children x 11 threads, KeepAliveTimeout 2, unlimited keep-alive
# requests), except that both children always run (no child stopped and started as the load
# varies, which closes keep-alive connections in the middle of a measurement).
write_front_conf() { # ROOT static|proxy
  local root=$1 mode=$2
  mkdir -p "$root"
  {
    cat <<EOF
ServerRoot $root
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile $root/httpd.pid
DefaultRuntimeDir $root
EOF
    [ -n "$RUN_USER" ] && printf 'User %s\nGroup %s\n' "$RUN_USER" "$(id -gn "$RUN_USER")"
    cat <<EOF
LoadModule mpm_event_module $MODULES_DIR/mod_mpm_event.so
<IfModule !unixd_module>
  LoadModule unixd_module $MODULES_DIR/mod_unixd.so
</IfModule>
<IfModule !log_config_module>
  LoadModule log_config_module $MODULES_DIR/mod_log_config.so
</IfModule>
LoadModule authz_core_module $MODULES_DIR/mod_authz_core.so
LoadModule mime_module $MODULES_DIR/mod_mime.so
TypesConfig /etc/mime.types
StartServers 2
ServerLimit 2
ThreadLimit 11
ThreadsPerChild 11
MinSpareThreads 11
MaxSpareThreads 22
MaxRequestWorkers 22
MaxConnectionsPerChild 0
Timeout 60
KeepAlive On
KeepAliveTimeout 2
MaxKeepAliveRequests 0
ErrorLog $root/error_log
LogLevel warn
<Directory />
  AllowOverride None
  Require all denied
</Directory>
EOF
    if [ "$mode" = static ]; then
      cat <<EOF
EnableSendfile On
DocumentRoot $STAGE/static
<Directory $STAGE/static>
  Require all granted
</Directory>
EOF
    else
      cat <<EOF
LoadModule proxy_module $MODULES_DIR/mod_proxy.so
LoadModule proxy_http_module $MODULES_DIR/mod_proxy_http.so
DocumentRoot $root
<Location />
  Require all granted
</Location>
ProxyPass / http://127.0.0.1:$BACKEND_PORT/
ProxyPassReverse / http://127.0.0.1:$BACKEND_PORT/
EOF
    fi
  } >"$root/httpd.conf"
}

start_rswsgi() { # SCRIPT
  local args=(start-server "$1" --host 127.0.0.1 --port "$PORT" --processes "$PROCESSES"
              --threads "$THREADS" --server-root "$WORK/servers/rswsgi" --log-level warn)
  [[ $1 == *.py ]] && args+=(--python-home "$BENCH_VENV")
  [ -n "$RUN_USER" ] && args+=(--user "$RUN_USER")
  spawn rswsgi "$STAGE/bin/express" "${args[@]}"
}

start_modwsgi() { # daemon|embedded
  local args=(start-server "$STAGE/apps/wsgi.py" --host 127.0.0.1 --port "$PORT"
              --processes "$PROCESSES" --threads "$THREADS" --working-directory "$STAGE/apps"
              --server-root "$WORK/servers/modwsgi-$1" --log-level warn --locale C.UTF-8)
  [ "$1" = embedded ] && args+=(--embedded-mode)
  [ -n "$RUN_USER" ] && args+=(--user "$RUN_USER" --group "$(id -gn "$RUN_USER")")
  spawn "modwsgi-$1" "$BENCH_VENV/bin/mod_wsgi-express" "${args[@]}"
}

start_gunicorn() { # PORT
  # shellcheck disable=SC2046
  spawn gunicorn $(as_user) "$BENCH_VENV/bin/gunicorn" --chdir "$STAGE/apps" -k gthread \
    -w "$PROCESSES" --threads "$THREADS" -b "127.0.0.1:$1" --log-level warning \
    --no-control-socket wsgi:application
}

start_granian() { # PORT
  # shellcheck disable=SC2046
  spawn granian $(as_user) "$BENCH_VENV/bin/granian" --interface wsgi --host 127.0.0.1 \
    --port "$1" --workers "$PROCESSES" --blocking-threads "$THREADS" \
    --working-dir "$STAGE/apps" --log-level warning wsgi:application
}

start_apache() { # NAME static|proxy
  write_front_conf "$WORK/servers/$1" "$2"
  spawn "$1" "$APACHE" -f "$WORK/servers/$1/httpd.conf" -DFOREGROUND
}

wait_ready() { # URL: until it answers 200, while every started process lives
  local url=$1 deadline=$((SECONDS + 60)) pid
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && return 0
    for pid in "${SERVER_PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { log "a process of the server exited (see $LOGS)"; return 1; }
    done
    sleep 0.2
  done
  log "$url did not answer 200 within 60 s"; return 1
}

port_free() { ! ss -Htln "sport = :$1" | grep -q .; }

stop_servers() { # every process group started for the current server, then stragglers by PID
  [ ${#SERVER_PIDS[@]} -gt 0 ] || return 0
  local pids pid i
  pids=$("$PY" "$REPORT" pids "${SERVER_PIDS[@]}")
  for pid in "${SERVER_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for i in $(seq 100); do   # up to 20 s for a graceful stop
    local alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVER_PIDS=()
  for i in $(seq 50); do port_free "$PORT" && port_free "$BACKEND_PORT" && break; sleep 0.2; done
}

WRK_PID=""
on_exit() {
  if [ -n "$WRK_PID" ]; then kill "$WRK_PID" 2>/dev/null || true; wait "$WRK_PID" 2>/dev/null || true; fi
  stop_servers
}
trap on_exit EXIT
trap 'log interrupted; exit 130' INT TERM

# ------------------------------------------------------------------ measuring

# The URL of APP on the server of this start (the native handler is mounted at /).
url_of() { # APP NATIVE_START
  if [ "$2" = 1 ]; then echo "http://127.0.0.1:$PORT/"; else echo "http://127.0.0.1:$PORT/$1"; fi
}

run_wrk() { # APP URL CONNS DURATION LOGFILE
  local app=$1 url=$2 conns=$3 duration=$4 t=$WRK_THREADS
  [ "$conns" -lt "$t" ] && t=$conns
  local env=()
  [ "$app" = post ] && env=(BENCH_POST_BYTES="$POST_BYTES")
  # In the background and waited for: wrk handles SIGINT itself (it stops and reports), so
  # run in the foreground it would swallow Ctrl-C; `wait` lets the INT trap run at once.
  env "${env[@]}" wrk -t "$t" -c "$conns" -d "${duration}s" --timeout "${WRK_TIMEOUT}s" \
    --latency -s "$BENCH/wrk/bench.lua" "$url" >"$5" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || true
  WRK_PID=""
}

# One answer per app before measuring: status 200 and the same body size as the static file.
check_app() { # SERVER APP URL
  local got want
  if [ "$2" = post ]; then
    got=$(head -c "$POST_BYTES" /dev/zero | curl -s -o /dev/null -w '%{http_code} %{size_download}' \
      --max-time 10 --data-binary @- -H 'Content-Type: application/octet-stream' "$3" || true)
  else
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 10 "$3" || true)
  fi
  want="200 $(stat -c %s "$STAGE/static/$2")"
  if [ "$got" = "$want" ]; then
    log "  $1 $2: $got"
  else
    log "WARNING: $1 $2 answered '$got', expected '$want'"
  fi
}

record_failed() { # SERVER APP REASON
  printf '{"kind": "failed", "server": "%s", "app": "%s", "reason": "%s"}\n' "$1" "$2" "$3" >>"$RESULTS"
}

# Starts SERVER (for APPS of this start), warms up, measures, stops.
bench_start() { # SERVER NATIVE_START APP...
  local server=$1 native=$2; shift 2
  local apps=("$@") app conns rep rss
  log "== $server: ${apps[*]}"
  case $server in
    rswsgi)
      if [ "$native" = 1 ]; then start_rswsgi "$STAGE/apps/native.so"; else start_rswsgi "$STAGE/apps/wsgi.py"; fi ;;
    modwsgi-daemon) start_modwsgi daemon ;;
    modwsgi-embedded) start_modwsgi embedded ;;
    static) start_apache static static ;;
    apache-gunicorn|apache-granian)
      if [ "$server" = apache-gunicorn ]; then start_gunicorn "$BACKEND_PORT"; else start_granian "$BACKEND_PORT"; fi
      if wait_ready "http://127.0.0.1:$BACKEND_PORT/hello"; then start_apache "$server" proxy; fi ;;
    granian) start_granian "$PORT" ;;
  esac
  if ! wait_ready "$(url_of "${apps[0]}" "$native")"; then
    for app in "${apps[@]}"; do record_failed "$server" "$app" "did not start"; done
    stop_servers; return
  fi
  for app in "${apps[@]}"; do
    check_app "$server" "$app" "$(url_of "$app" "$native")"
    if [ "$CHECK_ONLY" = 1 ]; then continue; fi
    run_wrk "$app" "$(url_of "$app" "$native")" 64 "$WARMUP" "$LOGS/$server-$app-warmup.txt"
  done
  if [ "$CHECK_ONLY" = 1 ]; then stop_servers; return; fi
  sleep 1
  rss=$("$PY" "$REPORT" rss "${SERVER_PIDS[@]}")
  for app in "${apps[@]}"; do
    printf '{"kind": "idle", "server": "%s", "app": "%s", "rss_kib": %s}\n' "$server" "$app" "$rss" >>"$RESULTS"
  done
  for app in "${apps[@]}"; do
    # One download of 300,000 yields (8.1 MB) at a time, timed: best of three.
    if [ "$app" = stream ]; then
      for rep in 1 2 3; do
        curl -s -o /dev/null --max-time 60 -w '%{http_code} %{size_download} %{time_total}\n' \
          "$(url_of stream "$native")?lines=$DOWNLOAD_LINES" || true
      done >"$LOGS/$server-download.txt"
      "$PY" "$REPORT" record-download --results "$RESULTS" --server "$server" \
        --lines "$DOWNLOAD_LINES" <"$LOGS/$server-download.txt"
    fi
    for conns in "${CONNS[@]}"; do
      for rep in 1 2; do
        local out=$LOGS/$server-$app-c$conns-$rep.txt sse_pid=""
        # During the stream row's first run: how late server-sent events arrive under load.
        if [ "$app" = stream ] && [ "$rep" = 1 ]; then
          "$PY" "$BENCH/sse.py" "$(url_of sse "$native")" 0.5 >"$LOGS/$server-sse-c$conns.txt" 2>&1 &
          sse_pid=$!
        fi
        run_wrk "$app" "$(url_of "$app" "$native")" "$conns" "$DURATION" "$out"
        rss=$("$PY" "$REPORT" rss "${SERVER_PIDS[@]}")
        "$PY" "$REPORT" record --results "$RESULTS" --server "$server" --app "$app" \
          --conns "$conns" --rep "$rep" --rss "$rss" <"$out"
        if [ -n "$sse_pid" ]; then
          wait "$sse_pid" || true
          "$PY" "$REPORT" record-sse --results "$RESULTS" --server "$server" --conns "$conns" \
            <"$LOGS/$server-sse-c$conns.txt"
        fi
      done
    done
  done
  stop_servers
}

# ------------------------------------------------------------------ main

if [ "$INSTALL" = 1 ]; then install_packages; ensure_venv; fi
if [ "$BUILD" = 1 ]; then (cd "$REPO" && cargo build --release --workspace); fi
for port in "$PORT" "$BACKEND_PORT"; do
  port_free "$port" || { log "port $port is in use (pick another with --port)"; exit 1; }
done
stage
collect_meta
log "logs and raw wrk output in $LOGS"

for server in "${SERVERS[@]}"; do
  py_apps=()
  for app in "${APPS[@]}"; do [ "$app" = native ] || py_apps+=("$app"); done
  want_native=0
  if [[ " ${APPS[*]} " == *" native "* ]]; then want_native=1; fi
  if [ "$server" = static ]; then
    bench_start static 0 "${APPS[@]}"
    continue
  fi
  if [ ${#py_apps[@]} -gt 0 ]; then bench_start "$server" 0 "${py_apps[@]}"; fi
  if [ "$server" = rswsgi ] && [ "$want_native" = 1 ]; then bench_start rswsgi 1 native; fi
done

if [ "$CHECK_ONLY" = 1 ]; then
  if grep -q failed "$RESULTS" 2>/dev/null; then log "some server did not start"; exit 1; fi
  log "check done"; exit 0
fi
echo
"$PY" "$REPORT" table --results "$RESULTS" --meta "$META" --out "$OUT"

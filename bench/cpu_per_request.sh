#!/usr/bin/env bash
# CPU time per request of one rswsgi build, for A/B comparisons on a machine that is not idle
# (throughput then moves with whatever else runs; the CPU a request costs moves much less).
#
#   bench/cpu_per_request.sh BINDIR PATH [--connections N] [--duration S] [--runs R] [--port P]
#
# BINDIR holds `express`, `rswsgi-daemon` and the module (`libmod_rswsgi.so` or
# `mod_rswsgi.so`), e.g. a copy of target/release of each build. PATH is one of the bench
# app's routes (/hello, /flask, /big, /post with a 256 KiB body ...). Uses the app and
# virtualenv that bench/run.sh staged (run `bench/run.sh --check-only` first). Starts express
# (2 processes x 4 threads, as run.sh), warms up, then for each run drives PATH with wrk and
# prints, from /proc, the CPU seconds (user + system) the daemons and Apache's processes
# spent, divided by the requests served.
# Interleave two builds' runs (A B A B ...) and compare the medians. Stops what it started, by
# process group.
set -euo pipefail

BIN=${1:?usage: bench/cpu_per_request.sh BINDIR PATH [--connections N] [--duration S] [--runs R]}
URL_PATH=${2:?usage: bench/cpu_per_request.sh BINDIR PATH ...}
shift 2
CONNS=16 DURATION=5 RUNS=3 PORT=${BENCH_PORT:-8850}
while [ $# -gt 0 ]; do
  case $1 in
    --connections) CONNS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --port) PORT=$2; shift ;;
    *) echo "cpu_per_request: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

BENCH=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/defaults.sh
. "$BENCH/defaults.sh"
STAGE=$WORK/stage
[ -f "$STAGE/apps/wsgi.py" ] || { echo "cpu_per_request: nothing staged in $STAGE; run bench/run.sh --check-only first" >&2; exit 1; }
ROOT=$(mktemp -d /tmp/rswsgi-cpu-XXXXXX)
chmod 755 "$ROOT"
args=(start-server "$STAGE/apps/wsgi.py" --host 127.0.0.1 --port "$PORT" --processes 2 --threads 4
      --server-root "$ROOT/root" --log-level warn --python-home "$BENCH_VENV")
[ -n "$RUN_USER" ] && args+=(--user "$RUN_USER")
setsid "$BIN/express" "${args[@]}" >"$ROOT/express.log" 2>&1 </dev/null &
LEADER=$!
stop() { kill -TERM -- "-$LEADER" 2>/dev/null || true; wait "$LEADER" 2>/dev/null || true; rm -rf "$ROOT"; }
trap stop EXIT

url=http://127.0.0.1:$PORT$URL_PATH
for _ in $(seq 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && break
  kill -0 "$LEADER" 2>/dev/null || { echo "cpu_per_request: the server exited:" >&2; cat "$ROOT/express.log" >&2; exit 1; }
  sleep 0.2
done

# Clock ticks (utime + stime) of the session's processes whose name matches $1.
ticks() {
  local re=$1 t=0 pid st comm rest
  for pid in $(ps -e -o pid=,sid= | awk -v s="$LEADER" '$2==s{print $1}'); do
    st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    comm=${st#*(}; comm=${comm%%)*}
    [[ $comm =~ $re ]] || continue
    rest=${st##*) }
    # shellcheck disable=SC2086
    set -- $rest
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}

# /post sends a 256 KiB body, as run.sh's post row does (its wrk script reads BENCH_POST_BYTES).
wrk_args=()
if [ "$URL_PATH" = /post ]; then
  export BENCH_POST_BYTES=${BENCH_POST_BYTES:-262144}
  wrk_args=(-s "$(dirname "$0")/wrk/bench.lua")
fi
wrk -t2 -c"$CONNS" -d2s "${wrk_args[@]}" "$url" >/dev/null
hz=$(getconf CLK_TCK)
for i in $(seq "$RUNS"); do
  d0=$(ticks '^(rswsgi|worker|reload|ring|\(wsgi)'); a0=$(ticks '^(apache2|httpd)')
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "${wrk_args[@]}" "$url")
  d1=$(ticks '^(rswsgi|worker|reload|ring|\(wsgi)'); a1=$(ticks '^(apache2|httpd)')
  n=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  awk -v i="$i" -v n="$n" -v rps="$rps" -v hz="$hz" -v d=$((d1 - d0)) -v a=$((a1 - a0)) 'BEGIN {
    us = 1e6 / hz / n
    printf "run %d: %d requests, %.0f req/s; CPU per request: daemons %.0f us, Apache %.0f us, both %.0f us\n",
      i, n, rps, d * us, a * us, (d + a) * us
  }'
done

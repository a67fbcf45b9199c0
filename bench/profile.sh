#!/usr/bin/env bash
# Where the time goes when rswsgi serves one benchmark app: a system-wide `perf record` while
# wrk drives it, summarised by process and by function. Used for the rows of bench/RESULTS.md
# whose target is not met.
#
#   bench/profile.sh APP [--connections N] [--duration S] [--port N]
#
# APP is one of hello flask big file post stream native. Uses what bench/run.sh staged in
# $BENCH_WORK/stage (run `bench/run.sh --check-only` first on a fresh machine); installs perf
# (Debian's linux-perf) when it is missing. Starts one express server as run.sh does
# (2 processes x 4 threads), stops it again by process group, and prints:
#   - req/s and latency from wrk during the recording,
#   - CPU samples per command (apache2 = Apache's children, worker-N = daemon threads, wrk),
#   - the hottest functions overall, and in Apache's children.
set -euo pipefail

APP=${1:?usage: bench/profile.sh APP [--connections N] [--duration S] [--port N]}
shift
CONNS=16 DURATION=8 PORT=${BENCH_PORT:-8800}
while [ $# -gt 0 ]; do
  case $1 in
    --connections) CONNS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --port) PORT=$2; shift ;;
    *) echo "profile: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $APP in hello|flask|big|file|post|stream|native) ;; *) echo "profile: unknown app $APP" >&2; exit 2 ;; esac

BENCH=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/defaults.sh
. "$BENCH/defaults.sh"
STAGE=$WORK/stage
OUT=$WORK/profile/$APP-c$CONNS
[ -x "$STAGE/bin/express" ] || { echo "profile: nothing staged in $STAGE; run bench/run.sh --check-only first" >&2; exit 1; }

if ! command -v perf >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-perf
fi

rm -rf "$OUT" && mkdir -p "$OUT"
script=$STAGE/apps/wsgi.py path=/$APP
if [ "$APP" = native ]; then script=$STAGE/apps/native.so path=/; fi
args=(start-server "$script" --host 127.0.0.1 --port "$PORT" --processes 2 --threads 4
      --server-root "$OUT/root" --log-level warn)
[[ $script == *.py ]] && args+=(--python-home "$BENCH_VENV")
[ -n "$RUN_USER" ] && args+=(--user "$RUN_USER")
setsid "$STAGE/bin/express" "${args[@]}" >"$OUT/express.log" 2>&1 </dev/null &
LEADER=$!
stop() { kill -TERM -- "-$LEADER" 2>/dev/null || true; wait "$LEADER" 2>/dev/null || true; }
trap stop EXIT

url=http://127.0.0.1:$PORT$path
for _ in $(seq 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ] && break
  kill -0 "$LEADER" 2>/dev/null || { echo "profile: the server exited (see $OUT)" >&2; exit 1; }
  sleep 0.2
done
wrk_args=(-t 2 -c "$CONNS" --latency)
if [ "$APP" = post ]; then
  printf 'wrk.method = "POST"\nwrk.body = string.rep("x", 262144)\n' >"$OUT/post.lua"
  wrk_args+=(-s "$OUT/post.lua")
fi
wrk "${wrk_args[@]}" -d 2s "$url" >/dev/null    # warm-up
perf record -a -g -o "$OUT/perf.data" -- sleep "$DURATION" 2>"$OUT/perf-record.log" &
PERF=$!
wrk "${wrk_args[@]}" -d "$((DURATION + 1))s" "$url" >"$OUT/wrk.txt"
wait "$PERF"
stop
trap - EXIT

echo "== $APP, $CONNS connections: wrk"
grep -E "Requests/sec|Latency  |99%|Socket errors|Non-2xx" "$OUT/wrk.txt" || true
echo
echo "== CPU samples by command (share of all samples, both cores)"
perf report -i "$OUT/perf.data" --no-children --sort comm -g none --percent-limit 0.5 2>/dev/null \
  | grep -vE '^(#|$)'
echo
echo "== by command and object"
perf report -i "$OUT/perf.data" --no-children --sort comm,dso -g none --percent-limit 1 2>/dev/null \
  | grep -vE '^(#|$)'
echo
echo "== hottest functions, every process"
perf report -i "$OUT/perf.data" --no-children --sort sym -g none 2>/dev/null \
  | grep -vE '^(#|$)' | head -25
echo
echo "== hottest functions in Apache's children"
perf report -i "$OUT/perf.data" --no-children --comm apache2 --sort sym -g none 2>/dev/null \
  | grep -vE '^(#|$)' | head -25
echo
echo "(perf data and wrk output: $OUT)"

# Where the benchmark scripts keep their state, sourced by run.sh and profile.sh: as root the
# servers run as www-data ($BENCH_USER) and everything lives under /opt/rswsgi; otherwise the
# servers run as the caller and everything lives under ~/.cache/rswsgi.
if [ "$(id -u)" -eq 0 ]; then
  RUN_USER=${BENCH_USER:-www-data}     # servers never run as root
  BENCH_VENV=${BENCH_VENV:-/opt/rswsgi/bench-venv}
  WORK=${BENCH_WORK:-/opt/rswsgi/bench}
else
  RUN_USER=""
  BENCH_VENV=${BENCH_VENV:-$HOME/.cache/rswsgi/bench-venv}
  WORK=${BENCH_WORK:-$HOME/.cache/rswsgi/bench}
fi

#!/usr/bin/python3
"""Helper of bench/run.sh (standard library only, run with /usr/bin/python3).

    report.py pids ROOT_PID...          the roots and all their descendants, one line
    report.py rss ROOT_PID...           summed RSS (KiB) of those process trees
    report.py record --results FILE --server S --app A --conns N --rep R --rss KIB < wrk-output
                                        appends one run (wrk's BENCH_JSON line) to FILE
    report.py table --results FILE --meta FILE --out RESULTS.md
                                        prints the tables and writes RESULTS.md

results FILE is JSON lines: {"kind": "run" | "idle" | "failed" | "sse", "server", "app", ...}.
"""

import argparse
import json
import os
import sys

# Display order and labels.
SERVERS = [
    ("rswsgi", "rswsgi (express)"),
    ("modwsgi-daemon", "mod_wsgi-express daemon"),
    ("modwsgi-embedded", "mod_wsgi-express embedded"),
    ("static", "Apache static file"),
    ("apache-gunicorn", "Apache → gunicorn gthread"),
    ("apache-granian", "Apache → granian"),
    ("granian", "granian alone"),
]
APPS = [
    ("hello", "raw WSGI hello, 13 bytes"),
    ("flask", "Flask JSON route"),
    ("big", "raw WSGI 1 MiB response"),
    ("file", "1 MiB file through wsgi.file_wrapper"),
    ("post", "POST 256 KiB, read fully by the app"),
    ("stream", "10,000 yields of 27 bytes (270 KB, chunked)"),
    ("native", "native Rust hello (examples/native/wsgi.rs `/`), rswsgi only"),
]
BASELINE = "modwsgi-daemon"
CEILING = "static"

# Processes that launch a server but serve nothing: left out of the RSS sums.
LAUNCHERS = {"express"}


# ---------------------------------------------------------------- processes


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree(roots):
    children = _children_map()
    seen, todo = [], [int(r) for r in roots]
    while todo:
        pid = todo.pop()
        if pid in seen or not os.path.exists(f"/proc/{pid}"):
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return 0
    if status.get("Name", "").strip() in LAUNCHERS:
        return 0
    return int(status.get("VmRSS", "0 kB").split()[0])


def cmd_pids(args):
    print(" ".join(str(p) for p in tree(args.roots)))


def cmd_rss(args):
    print(sum(rss_kib(p) for p in tree(args.roots)))


# ---------------------------------------------------------------- recording


def parse_wrk(text):
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    return None


def cmd_record(args):
    text = sys.stdin.read()
    stats = parse_wrk(text)
    rec = {"kind": "run", "server": args.server, "app": args.app, "conns": args.conns,
           "rep": args.rep, "rss_kib": args.rss}
    if stats is None:
        rec["kind"] = "failed"
        rec["reason"] = "wrk printed no result: " + " ".join(text.split())[-200:]
    else:
        rec.update(stats)
        rec["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
        rec["errors"] = sum(stats[k] for k in stats if k.startswith("errors_"))
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if stats is None:
        print(f"    {args.server} {args.app} c={args.conns} #{args.rep}: {rec['reason']}",
              file=sys.stderr)
    else:
        print(f"    {args.server:17} {args.app:6} c={args.conns:<3} #{args.rep}: "
              f"{rec['rps']:9.0f} req/s  p50 {stats['p50_us'] / 1000:7.2f} ms  "
              f"p99 {stats['p99_us'] / 1000:7.2f} ms  errors {rec['errors']}", file=sys.stderr)


def cmd_record_sse(args):
    """Records bench/sse.py's result (its BENCH_SSE line on stdin)."""
    rec = {"kind": "sse", "server": args.server, "app": "stream", "conns": args.conns}
    for line in sys.stdin.read().splitlines():
        if line.startswith("BENCH_SSE "):
            rec.update(json.loads(line[len("BENCH_SSE ") :]))
    rec.setdefault("events", 0)
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"    {args.server:17} sse    c={args.conns:<3}: {rec['events']} events, "
          f"median {rec.get('median_ms')} ms, max {rec.get('max_ms')} ms", file=sys.stderr)


def cmd_record_download(args):
    """Records the stream row's timed downloads (curl's "status bytes seconds" lines)."""
    times = []
    for line in sys.stdin.read().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "200" and int(parts[1]) == 27 * args.lines:
            times.append(float(parts[2]))
    rec = {"kind": "download", "server": args.server, "app": "stream", "lines": args.lines,
           "best_s": min(times) if times else None, "runs": len(times)}
    with open(args.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"    {args.server:17} download {args.lines} lines: best {rec['best_s']} s of "
          f"{len(times)} complete", file=sys.stderr)


# ---------------------------------------------------------------- table


def load(path):
    runs, idle, failed, sse = {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            rec = json.loads(line)
            key = (rec["server"], rec["app"])
            if rec["kind"] == "sse":
                sse[(rec["server"], rec["conns"])] = rec
            elif rec["kind"] == "download":
                sse[(rec["server"], "download")] = rec
            elif rec["kind"] == "run":
                runs.setdefault(key + (rec["conns"],), []).append(rec)
            elif rec["kind"] == "idle":
                idle[key] = rec["rss_kib"]
            else:
                failed.setdefault(key, rec.get("reason", "failed"))
    return runs, idle, failed, sse


def ms(value):
    return "—" if value is None else f"{value:.1f}"


def sse_table(sse):
    """How late server-sent events arrived while the stream row ran (bench/sse.py)."""
    if not sse:
        return []
    out = ["### sse: 20 server-sent events 50 ms apart, read during the stream row's first run\n",
           "Time from each yield to its arrival at the client: no block may be held back.\n",
           "| server | conns | events | median ms | max ms |", "|---|--:|--:|--:|--:|"]
    for server, label in SERVERS:
        for conns in sorted(c for s, c in sse if s == server and c != "download"):
            r = sse[(server, conns)]
            out.append(f"| {label} | {conns} | {r['events']} | {ms(r.get('median_ms'))} | "
                       f"{ms(r.get('max_ms'))} |")
    out.append("")
    return out + download_table(sse)


def download_table(sse):
    """The stream row's timed single download of 300,000 yields."""
    downloads = {s: r for (s, c), r in sse.items() if c == "download"}
    if not downloads:
        return []
    base = (downloads.get("modwsgi-daemon") or {}).get("best_s")
    lines = next(iter(downloads.values()))["lines"]
    out = [f"### download: one response of {lines:,} yields of 27 bytes, alone, best of 3\n",
           "| server | seconds | ÷ mod_wsgi daemon (its time over this one) |", "|---|--:|--:|"]
    for server, label in SERVERS:
        r = downloads.get(server)
        if r is None:
            continue
        t = r.get("best_s")
        shown = "—" if t is None else f"{t:.3f}"
        out.append(f"| {label} | {shown} | {ratio(base, t) if t else '—'} |")
    out.append("")
    return out


def best(recs):
    """The better of the repeated runs (highest req/s); errors summed over all of them."""
    top = max(recs, key=lambda r: r["rps"])
    return {
        "rps": top["rps"], "p50": top["p50_us"] / 1000, "p99": top["p99_us"] / 1000,
        "errors": sum(r["errors"] for r in recs),
        "rss_load": max(r["rss_kib"] for r in recs), "n": len(recs),
    }


def mib(kib):
    return "—" if kib is None else f"{kib / 1024:.1f}"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}×"


def tables(runs, idle, failed):
    out = []
    conns_all = sorted({k[2] for k in runs})
    for app, app_desc in APPS:
        for conns in conns_all:
            rows = {s: best(runs[(s, app, conns)]) for s, _ in SERVERS if (s, app, conns) in runs}
            missing = [s for s, _ in SERVERS if (s, app) in failed and s not in rows]
            if not rows and not missing:
                continue
            base = rows.get(BASELINE, {}).get("rps")
            ceil = rows.get(CEILING, {}).get("rps")
            out.append(f"### {app}: {app_desc}, {conns} connections\n")
            out.append("| server | req/s | p50 ms | p99 ms | errors | RSS idle MiB | "
                       "RSS load MiB | ÷ mod_wsgi daemon | ÷ static |")
            out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
            for server, label in SERVERS:
                if server in rows:
                    r = rows[server]
                    out.append(
                        f"| {label} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                        f"{r['errors']} | {mib(idle.get((server, app)))} | {mib(r['rss_load'])} | "
                        f"{ratio(r['rps'], base)} | {ratio(r['rps'], ceil)} |")
                elif server in missing:
                    out.append(f"| {label} | failed: {failed[(server, app)]} "
                               "| | | | | | | |")
            out.append("")
    return out


def summary(runs):
    """One line per app × connections: each server's req/s ÷ mod_wsgi-express daemon mode."""
    conns_all = sorted({k[2] for k in runs})
    present = [(s, l) for s, l in SERVERS if any(k[0] == s for k in runs)]
    out = ["| app | conns | " + " | ".join(l for _, l in present) + " |",
           "|---|--:|" + "--:|" * len(present)]
    for app, _ in APPS:
        for conns in conns_all:
            rows = {s: best(runs[(s, app, conns)])["rps"] for s, _ in present
                    if (s, app, conns) in runs}
            if not rows:
                continue
            base = rows.get(BASELINE) if app != "native" else rows.get(CEILING)
            cells = [ratio(rows.get(s), base) for s, _ in present]
            out.append(f"| {app} | {conns} | " + " | ".join(cells) + " |")
    return out


def cmd_table(args):
    runs, idle, failed, sse = load(args.results)
    meta = []
    with open(args.meta) as f:
        for line in f:
            if "\t" in line:
                key, value = line.rstrip("\n").split("\t", 1)
                meta.append((key, value))
    body = tables(runs, idle, failed) + sse_table(sse)
    summ = summary(runs) if runs else []
    text = "\n".join(body)
    md = ["# rswsgi benchmark results", "",
          "Written by `bench/run.sh` (see bench/README.md); every number below is from one run.",
          ""]
    md += [f"- **{k}**: {v}" for k, v in meta]
    md += ["",
           "Each measurement ran twice back to back; the table shows the better run (higher "
           "req/s) and its p50/p99. *errors* are non-2xx/3xx responses plus socket errors "
           "(connect, read, write, timeout), summed over both runs. *RSS idle* is the summed RSS "
           "of the server's processes (httpd + daemons, or the server's own processes; "
           "launchers left out) after warm-up, *RSS load* the largest sample taken right after "
           "a measurement. *÷ mod_wsgi daemon* is req/s over mod_wsgi-express daemon mode's, "
           "*÷ static* over Apache serving a static file of the same size, same run.", ""]
    md += ["## Results", "", text]
    if summ:
        md += ["## Ratios to mod_wsgi-express daemon mode", "",
               "The native row is relative to Apache's static file instead.", ""] + summ + [""]
    with open(args.out, "w") as f:
        f.write("\n".join(md))
    print(text)
    if summ:
        print("Ratios to mod_wsgi-express daemon mode (native row: to Apache's static file):\n")
        print("\n".join(summ))
    print(f"\nwritten to {args.out}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pids")
    p.add_argument("roots", nargs="+")
    p.set_defaults(func=cmd_pids)
    p = sub.add_parser("rss")
    p.add_argument("roots", nargs="+")
    p.set_defaults(func=cmd_rss)
    p = sub.add_parser("record")
    for name in ("results", "server", "app"):
        p.add_argument("--" + name, required=True)
    for name in ("conns", "rep", "rss"):
        p.add_argument("--" + name, required=True, type=int)
    p.set_defaults(func=cmd_record)
    p = sub.add_parser("record-sse")
    for name in ("results", "server"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--conns", required=True, type=int)
    p.set_defaults(func=cmd_record_sse)
    p = sub.add_parser("record-download")
    for name in ("results", "server"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--lines", required=True, type=int)
    p.set_defaults(func=cmd_record_download)
    p = sub.add_parser("table")
    for name in ("results", "meta", "out"):
        p.add_argument("--" + name, required=True)
    p.set_defaults(func=cmd_table)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

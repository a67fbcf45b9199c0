"""Yield-to-arrival latency of server-sent events: reads URL (the bench app's /sse, whose every
event carries the time.time() at which it was yielded) and prints one line

    BENCH_SSE {"status": 200, "events": 20, "median_ms": ..., "max_ms": ...}

    /usr/bin/python3 sse.py URL [DELAY_SECONDS]

Server and client share the machine's clock. Standard library only.
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", url.path)
    resp = conn.getresponse()
    late_ms = []
    while True:
        line = resp.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            late_ms.append((time.time() - float(line[6:])) * 1000)
    result = {
        "status": resp.status,
        "events": len(late_ms),
        "median_ms": statistics.median(late_ms) if late_ms else None,
        "max_ms": max(late_ms) if late_ms else None,
    }
    print("BENCH_SSE " + json.dumps(result))


if __name__ == "__main__":
    main()

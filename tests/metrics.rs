//! The metrics endpoint (`express --server-metrics`, `SetHandler rswsgi-metrics`), scraped
//! through real httpd and parsed with Prometheus's own text parser (`prometheus_client`):
//! counters move by exactly the requests sent, the busy-thread gauge and the listen queue
//! follow slow requests, a `kill -9` and a `maximum-requests` recycle are counted under their
//! reasons, `?health` drains, and clients other than 127.0.0.1 are refused.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::curl::curl;
use common::express::Express;
use common::{procs, Stage};

const APP: &str = r#"
import os, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path.startswith('/sleep/'):
        time.sleep(float(path.rsplit('/', 1)[1]))
    if path == '/file':
        f = open(__file__, 'rb')
        size = os.fstat(f.fileno()).st_size
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(size))])
        return environ['wsgi.file_wrapper'](f, 65536)
    if path == '/echo':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    if path == '/fds':
        links = []
        for fd in os.listdir('/proc/self/fd'):
            try:
                links.append(os.readlink('/proc/self/fd/' + fd))
            except OSError:
                pass
        return [('\n'.join(links) + '\n').encode()]
    return [b'hello\n']
"#;

/// Reads Prometheus text with `prometheus_client.parser` and prints one
/// `name<TAB>label=value,...<TAB>value` line per sample.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()) if kv[0] != 'group')
        print('%s\t%s\t%r' % (s.name, labels, s.value))
"#;

/// One scrape: (sample name, labels other than `group`) → value.
type Scrape = BTreeMap<(String, String), f64>;

fn scrape(express: &Express, venv: &std::path::Path) -> Scrape {
    let r = express.get("/server-metrics").expect("scrape");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut py = Command::new(venv.join("bin/python"))
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    py.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused:\n{}", r.text());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let (name, labels, value) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let value = value.parse().unwrap();
            ((name.to_owned(), labels.to_owned()), value)
        })
        .collect()
}

fn value(s: &Scrape, name: &str, labels: &str) -> f64 {
    *s.get(&(name.to_owned(), labels.to_owned()))
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {s:#?}"))
}

/// A scrape once `name{labels}` reads `expected` (the module counts a request just after its
/// response went out, so a client can be a moment ahead of the counters), or after 5 s.
fn settled(
    express: &Express,
    venv: &std::path::Path,
    name: &str,
    labels: &str,
    expected: f64,
) -> Scrape {
    let mut last = scrape(express, venv);
    procs::wait_until(Duration::from_secs(5), || {
        last = scrape(express, venv);
        value(&last, name, labels) >= expected
    });
    thread::sleep(Duration::from_millis(200));
    scrape(express, venv)
}

fn get_ok(express: &Express, path: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(express.get(path).map(|r| r.status), Some(200));
    }
}

/// `n` requests to `/sleep/SECS` at once, in threads.
fn slow(express: &Express, n: usize, secs: u32) -> Vec<thread::JoinHandle<Option<u16>>> {
    (0..n)
        .map(|_| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], express.port));
            thread::spawn(move || {
                common::http::get(addr, &format!("/sleep/{secs}"))
                    .ok()
                    .map(|r| r.status)
            })
        })
        .collect()
}

fn counters_move_by_the_requests_sent(express: &Express, venv: &std::path::Path) {
    // wait_serving's requests are counted by now.
    thread::sleep(Duration::from_millis(300));
    let before = scrape(express, venv);
    get_ok(express, "/", 5);
    let done = value(&before, "rswsgi_requests_total", "class=2xx") + 5.0;
    let after = settled(express, venv, "rswsgi_requests_total", "class=2xx", done);
    for (name, labels) in [
        ("rswsgi_requests_total", "class=2xx"),
        ("rswsgi_daemon_requests_total", ""),
        ("rswsgi_request_duration_seconds_count", ""),
        ("rswsgi_queue_wait_seconds_count", ""),
    ] {
        let moved = value(&after, name, labels) - value(&before, name, labels);
        assert_eq!(moved, 5.0, "{name}{{{labels}}}");
    }
    assert_eq!(value(&after, "rswsgi_processes", ""), 1.0);
    let out = value(&after, "rswsgi_response_bytes_total", "");
    assert_eq!(
        out - value(&before, "rswsgi_response_bytes_total", ""),
        30.0
    );
    // A request body in, a file out (BodyFile, zero-copy).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], express.port));
    let echo = common::http::request(addr, "POST", "/echo", &[], Some(&[b'x'; 1000])).unwrap();
    assert_eq!(echo.body.len(), 1000);
    let file = express.get("/file").unwrap();
    assert_eq!(file.status, 200);
    let files = value(&after, "rswsgi_bodyfile_responses_total", "") + 1.0;
    let s = settled(express, venv, "rswsgi_bodyfile_responses_total", "", files);
    assert_eq!(value(&s, "rswsgi_bodyfile_responses_total", ""), files);
    assert_eq!(
        value(&s, "rswsgi_request_bytes_total", ""),
        value(&after, "rswsgi_request_bytes_total", "") + 1000.0
    );
    let sent = (1000 + file.body.len()) as f64;
    assert_eq!(value(&s, "rswsgi_response_bytes_total", ""), out + sent);
}

fn busy_threads_and_the_listen_queue(express: &Express, venv: &std::path::Path) {
    let first = slow(express, 2, 3);
    thread::sleep(Duration::from_millis(1500));
    let s = scrape(express, venv);
    assert_eq!(value(&s, "rswsgi_threads", "state=busy"), 2.0);
    assert_eq!(value(&s, "rswsgi_threads", "state=idle"), 0.0);
    // More slow requests than threads: new connections wait in the listen queue.
    let more = slow(express, 6, 1);
    let queued = procs::wait_until(Duration::from_secs(3), || {
        scrape(express, venv)
            .get(&("rswsgi_listen_queue_depth".into(), String::new()))
            .is_some_and(|v| *v > 0.0)
    });
    assert!(queued, "the listen queue never showed a waiting connection");
    let health = express.get("/server-metrics?health").unwrap();
    for h in first.into_iter().chain(more) {
        assert_eq!(h.join().unwrap(), Some(200));
    }
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(health.text().contains("saturated"), "{}", health.text());
}

fn restarts_by_reason(express: &Express, venv: &std::path::Path) {
    let restarts = |reason: &str| {
        let s = scrape(express, venv);
        value(
            &s,
            "rswsgi_daemon_restarts_total",
            &format!("reason={reason}"),
        )
    };
    let crashed = restarts("crashed");
    let s = scrape(express, venv);
    let pid = daemon_pid(&s);
    let closed = "cause=connection-closed,code=502";
    let (closed_before, failed_before) = (
        value(&s, "rswsgi_responses_total", closed),
        value(&s, "rswsgi_requests_total", "class=5xx"),
    );
    // Killed in the middle of a request: that request is a 502.
    let in_flight = slow(express, 1, 5);
    thread::sleep(Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let counted = procs::wait_until(Duration::from_secs(10), || {
        restarts("crashed") == crashed + 1.0
    });
    assert!(counted, "kill -9 not counted as crashed");
    assert_eq!(
        in_flight.into_iter().next().unwrap().join().unwrap(),
        Some(502)
    );
    let s = settled(
        express,
        venv,
        "rswsgi_requests_total",
        "class=5xx",
        failed_before + 1.0,
    );
    assert_eq!(
        value(&s, "rswsgi_responses_total", closed),
        closed_before + 1.0
    );
    assert_eq!(
        value(&s, "rswsgi_requests_total", "class=5xx"),
        failed_before + 1.0
    );
    assert!(procs::wait_until(Duration::from_secs(20), || {
        express.get("/").is_some_and(|r| r.status == 200)
    }));
    // --maximum-requests 30: the fresh process recycles after 30 requests.
    let recycled = restarts("maximum-requests");
    let fresh = daemon_pid(&scrape(express, venv));
    get_ok(express, "/", 30);
    let counted = procs::wait_until(Duration::from_secs(10), || {
        restarts("maximum-requests") == recycled + 1.0
    });
    assert!(counted, "the maximum-requests recycle was not counted");
    // SIGUSR1 (eviction) is a recycle by signal.
    let signalled = restarts("signal");
    // Once the recycled process is gone and its replacement listens.
    assert!(procs::wait_until(Duration::from_secs(20), || {
        let s = scrape(express, venv);
        value(&s, "rswsgi_processes", "") == 1.0
            && value(&s, "rswsgi_processes_listening", "") == 1.0
            && daemon_pid(&s) != fresh
    }));
    let pid = daemon_pid(&scrape(express, venv));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let counted = procs::wait_until(Duration::from_secs(20), || {
        restarts("signal") == signalled + 1.0
    });
    assert!(counted, "the SIGUSR1 recycle was not counted under signal");
    assert_eq!(restarts("crashed"), crashed + 1.0);
}

/// The pid of a live daemon process, from the per-process series.
fn daemon_pid(s: &Scrape) -> i32 {
    s.keys()
        .find(|(n, _)| n == "rswsgi_process_resident_memory_bytes")
        .and_then(|(_, l)| l.strip_prefix("pid="))
        .expect("a daemon pid")
        .parse()
        .unwrap()
}

fn health_and_drain(express: &Express) {
    let ok = procs::wait_until(Duration::from_secs(20), || {
        express
            .get("/server-metrics?health")
            .is_some_and(|r| r.status == 200)
    });
    assert!(
        ok,
        "{:?}",
        express.get("/server-metrics?health").map(|r| r.text())
    );
    let drain = express.root.join("drain");
    std::fs::write(&drain, b"").unwrap();
    let r = express.get("/server-metrics?health").unwrap();
    assert_eq!(r.status, 503);
    assert!(r.text().contains("draining"), "{}", r.text());
    std::fs::remove_file(&drain).unwrap();
    let r = express.get("/server-metrics?health").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let post = common::http::request(
        std::net::SocketAddr::from(([127, 0, 0, 1], express.port)),
        "POST",
        "/server-metrics",
        &[],
        Some(b"x"),
    )
    .unwrap();
    assert_eq!(post.status, 405);
}

/// The daemon maps its group's area and closes the descriptor, so the application (and what
/// it runs) holds no statistics memfd.
fn the_application_holds_no_statistics_descriptor(express: &Express) {
    let fds = express.get("/fds").unwrap().text();
    assert!(fds.contains("socket:"), "{fds}");
    assert!(!fds.contains("memfd:rswsgi"), "{fds}");
}

fn only_localhost(express: &Express) {
    let dir = express.stage.subdir("far");
    let from = |path: &str| curl(&dir, &express.url(path), &["--interface", "127.0.0.2"]).status;
    assert_eq!(from("/server-metrics"), 403);
    assert_eq!(from("/server-status"), 403);
    // The application's own URL space is untouched.
    assert_eq!(from("/"), 200);
    assert_eq!(from("/server-metrics-not"), 200);
}

fn server_status_shows_the_group(express: &Express) {
    let group = format!("localhost_{}", express.port);
    let auto = express.get("/server-status?auto").unwrap();
    assert_eq!(auto.status, 200);
    let text = auto.text();
    for key in [
        "Processes: 1",
        "BusyThreads: 0",
        "IdleThreads: 2",
        "Queue: 0",
    ] {
        let line = format!("RswsgiGroup-{group}-{key}\n");
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    let html = express.get("/server-status").unwrap().text();
    assert!(html.contains("<h3>Group localhost:"), "{html}");
}

#[test]
fn metrics_endpoint_counts_what_happens() {
    let venv = require!(venv);
    let stage = Stage::new("metrics");
    let script = stage.write("app/wsgi.py", APP);
    let args = [
        "--processes",
        "1",
        "--threads",
        "2",
        "--maximum-requests",
        "30",
        "--server-metrics",
        "--server-status",
    ];
    let mut express = Express::start_script(stage, script, &args);
    express.wait_serving();
    let venv = venv.as_path();
    counters_move_by_the_requests_sent(&express, venv);
    the_application_holds_no_statistics_descriptor(&express);
    only_localhost(&express);
    busy_threads_and_the_listen_queue(&express, venv);
    health_and_drain(&express);
    restarts_by_reason(&express, venv);
    server_status_shows_the_group(&express);
    println!(
        "sample scrape:\n{}",
        express.get("/server-metrics").unwrap().text()
    );
    express.stop();
}

#[test]
fn counters_survive_a_graceful_restart() {
    let venv = require!(venv);
    let stage = Stage::new("metrics-graceful");
    let script = stage.write("app/wsgi.py", APP);
    let args = ["--processes", "1", "--threads", "2", "--server-metrics"];
    let mut express = Express::start_script(stage, script, &args);
    express.wait_serving();
    get_ok(&express, "/", 4);
    // wait_serving's request and these four.
    let before = settled(&express, &venv, "rswsgi_requests_total", "class=2xx", 5.0);
    let served = value(&before, "rswsgi_requests_total", "class=2xx");
    assert_eq!(served, 5.0);
    let httpd = express.started_pids()[0];
    let resumed = |e: &Express| e.error_log().matches("resuming normal operations").count();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(httpd),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    assert!(procs::wait_until(Duration::from_secs(20), || resumed(
        &express
    ) >= 2));
    assert!(procs::wait_until(Duration::from_secs(20), || {
        express
            .get("/server-metrics?health")
            .is_some_and(|r| r.status == 200)
    }));
    get_ok(&express, "/", 3);
    let after = settled(
        &express,
        &venv,
        "rswsgi_requests_total",
        "class=2xx",
        served + 3.0,
    );
    assert_eq!(
        value(&after, "rswsgi_requests_total", "class=2xx"),
        served + 3.0
    );
    assert!(
        value(&after, "rswsgi_daemon_requests_total", "")
            >= value(&before, "rswsgi_daemon_requests_total", "") + 3.0
    );
    // The retired daemon is not a restart.
    for reason in ["crashed", "signal"] {
        let labels = format!("reason={reason}");
        assert_eq!(value(&after, "rswsgi_daemon_restarts_total", &labels), 0.0);
    }
    dead_childrens_pools_are_not_counted(&express, &venv, httpd);
    express.stop();
}

/// Every Apache child killed: the pooled connections they held leave the gauges.
fn dead_childrens_pools_are_not_counted(express: &Express, venv: &std::path::Path, httpd: i32) {
    let s = scrape(express, venv);
    assert!(value(&s, "rswsgi_pool_connections", "state=idle") > 0.0);
    let children: Vec<i32> = procs::children(httpd)
        .into_iter()
        .filter(|p| p.comm == "apache2" || p.comm == "httpd")
        .map(|p| p.pid)
        .collect();
    assert!(!children.is_empty());
    for pid in &children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(procs::wait_until(Duration::from_secs(10), || {
        children.iter().all(|p| !procs::alive(*p))
    }));
    let cleared = procs::wait_until(Duration::from_secs(20), || {
        express
            .get("/server-metrics")
            .is_some_and(|r| r.status == 200)
            && {
                let s = scrape(express, venv);
                value(&s, "rswsgi_pool_connections", "state=idle") == 0.0
                    && value(&s, "rswsgi_pool_connections", "state=in_use") == 0.0
            }
    });
    assert!(cleared, "{:#?}", scrape(express, venv));
}

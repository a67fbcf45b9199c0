//! Request ids and error codes in the error log, through real httpd (issue 19, items 3–5): a
//! traceback, a `wsgi.errors` line, a request-timeout, a daemon's death and Content-Length
//! violations are each logged with the request id (`[request ID]`) that the access log (`%L`,
//! the last field of express's default format) shows for the same request, and with their
//! stable codes; `kill -USR2` on a daemon logs every request in flight with its id, method,
//! URL and Python stack; `slow-requests=` and `WSGISlowRequests` log slow requests.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{http, procs, repo_root, TestServer};

fn app() -> String {
    repo_root()
        .join("tests/apps/request_ids.py")
        .display()
        .to_string()
}

/// The request id the access log shows for the request whose line contains `marker`: the
/// line's last field (`%L`).
fn access_id(server: &TestServer, marker: &str) -> String {
    let path = server.root.dir.join("access_log");
    let mut id = None;
    procs::wait_until(Duration::from_secs(15), || {
        let log = fs::read_to_string(&path).unwrap_or_default();
        id = log
            .lines()
            .find(|l| l.contains(marker))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned);
        id.is_some()
    });
    let id = id.unwrap_or_else(|| {
        panic!(
            "no access-log line for {marker}:\n{}",
            fs::read_to_string(&path).unwrap_or_default()
        )
    });
    assert!(id.len() > 4 && id != "-", "access log id {id:?}");
    id
}

/// Waits until the error log has a line with every one of `parts`; returns that line.
fn wait_line(server: &TestServer, parts: &[&str]) -> String {
    let mut found = None;
    procs::wait_until(Duration::from_secs(15), || {
        found = server
            .root
            .read_error_log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no error-log line with {parts:?}:\n{}", server.logs()))
}

/// `[request ID] CODE:` as a line about the request carries it.
fn tagged(id: &str, code: &str) -> String {
    format!("[request {id}] {code}:")
}

fn with_access_log(threads: u32) -> common::Builder {
    TestServer::builder(&app()).access_log().threads(threads)
}

#[test]
fn a_traceback_and_wsgi_errors_carry_the_access_logs_request_id() {
    require!(venv);
    let server = with_access_log(2).start();
    assert_eq!(server.get("/raise?m=tb-1").status, 500);
    let id = access_id(&server, "m=tb-1");
    // The daemon's line that introduces the traceback, the traceback's own lines (uncoded),
    // and the module's line about the failed request all name the request.
    wait_line(&server, &[&tagged(&id, "RSWSGI0501"), "request_ids.py"]);
    wait_line(
        &server,
        &[
            &format!("[request {id}] ValueError: request-ids test exception"),
            "[wsgi:error]",
        ],
    );
    wait_line(&server, &[&tagged(&id, "RSWSGI0105"), "[client "]);

    // wsgi.errors: the application's text, byte for byte after the prefix, and no code.
    assert_eq!(server.get("/errors?m=we-1").status, 200);
    let id = access_id(&server, "m=we-1");
    let line = wait_line(&server, &[&format!("[request {id}] APP-LINE \\ [raw]")]);
    assert!(line.ends_with("] APP-LINE \\ [raw]"), "{line}");
    assert!(
        !line.contains("RSWSGI"),
        "application text carries no code: {line}"
    );
}

#[test]
fn a_request_timeout_is_logged_with_its_id_and_stack_before_the_504() {
    require!(venv);
    let server = with_access_log(3)
        .daemon_option("request-timeout=1")
        .daemon_option("graceful-timeout=1")
        .start();
    let r = server.get("/sleep/30?m=to-1");
    assert_eq!(r.status, 504, "{}\n{}", r.text(), server.logs());
    let id = access_id(&server, "m=to-1");
    wait_line(
        &server,
        &[&tagged(&id, "RSWSGI0417"), "request-timeout of 1s"],
    );
    // The in-flight report, written before the request is given up: its method, URL and the
    // Python stack of its thread.
    wait_line(
        &server,
        &[
            &tagged(&id, "RSWSGI0420"),
            "in flight: GET /sleep/30?m=to-1",
        ],
    );
    wait_line(&server, &[&format!("[request {id}]"), "in stuck_here"]);
    wait_line(
        &server,
        &["RSWSGI0420: 1 request(s) in flight (request-timeout of 1s)"],
    );
    // The module's line about the 504.
    wait_line(&server, &[&tagged(&id, "RSWSGI0107"), "[client "]);
    // The process recycles; the request still sleeping outlasts graceful-timeout.
    wait_line(
        &server,
        &["RSWSGI0419: exiting with 1 request(s) still in progress"],
    );
}

#[test]
fn a_daemon_death_joins_the_requests_502_to_the_supervisors_line() {
    require!(venv);
    let server = with_access_log(2).start();
    let pid = server.daemons(1)[0].pid;
    let r = server.get("/die?m=dd-1");
    assert_eq!(r.status, 502, "{}\n{}", r.text(), server.logs());
    let id = access_id(&server, "m=dd-1");
    let line = wait_line(&server, &[&tagged(&id, "RSWSGI0102")]);
    assert!(line.contains(&format!("(daemon pid {pid})")), "{line}");
    wait_line(
        &server,
        &[
            &format!("RSWSGI0207: daemon process {pid} of group"),
            "killed by signal SIGKILL",
        ],
    );
}

#[test]
fn content_length_violations_carry_codes_and_ids() {
    require!(venv);
    let server = with_access_log(2).start();
    let long = server.get("/long?m=cl-long");
    assert_eq!(long.body, b"abc");
    let id = access_id(&server, "m=cl-long");
    wait_line(&server, &[&tagged(&id, "RSWSGI0109")]);
    // A short body: the client connection is closed, which the client sees as an error.
    let _ = http::get(server.addr, "/short?m=cl-short");
    let id = access_id(&server, "m=cl-short");
    wait_line(&server, &[&tagged(&id, "RSWSGI0110")]);
}

#[test]
fn sigusr2_logs_every_request_in_flight_with_its_stack() {
    require!(venv);
    let server = with_access_log(4).start();
    let pid = server.daemons(1)[0].pid;
    let addr = server.addr;
    let clients: Vec<_> = ["m=u2-a", "m=u2-b"]
        .into_iter()
        .map(|m| thread::spawn(move || http::get(addr, &format!("/sleep/4?{m}"))))
        .collect();
    // Ask until both are in the report (the clients may take a moment to reach the daemon).
    let both = procs::wait_until(Duration::from_secs(3), || {
        // SAFETY: kill has no memory preconditions; pid is the test server's daemon.
        unsafe { libc::kill(pid, libc::SIGUSR2) };
        thread::sleep(Duration::from_millis(300));
        let log = server.root.read_error_log();
        log.contains("in flight: GET /sleep/4?m=u2-a")
            && log.contains("in flight: GET /sleep/4?m=u2-b")
    });
    assert!(both, "no report of both requests:\n{}", server.logs());
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap().status, 200);
    }
    // The report's ids are those the access log shows once the requests finished.
    for m in ["m=u2-a", "m=u2-b"] {
        let id = access_id(&server, m);
        let line = wait_line(
            &server,
            &[&tagged(&id, "RSWSGI0420"), "in flight: GET /sleep/4?"],
        );
        assert!(line.contains(m) && line.contains("Python stack:"), "{line}");
        wait_line(&server, &[&format!("[request {id}]"), "in stuck_here"]);
    }
    wait_line(&server, &["request(s) in flight (SIGUSR2)"]);
    // The daemon lives on.
    assert_eq!(server.daemons(1)[0].pid, pid);
}

#[test]
fn slow_requests_are_logged_with_id_and_duration() {
    require!(venv);
    let server = with_access_log(2)
        .daemon_option("slow-requests=0.5")
        .start();
    assert_eq!(server.get("/sleep/1.5?m=slow-1").status, 200);
    assert_eq!(server.get("/?m=fast-1").status, 200);
    let id = access_id(&server, "m=slow-1");
    wait_line(
        &server,
        &[
            &tagged(&id, "RSWSGI0421"),
            "GET /sleep/1.5?m=slow-1 still running after",
        ],
    );
    let done = wait_line(
        &server,
        &[&tagged(&id, "RSWSGI0421"), "GET /sleep/1.5?m=slow-1 took "],
    );
    assert!(done.contains("(slow-requests 0.5s)"), "{done}");
    let fast = access_id(&server, "m=fast-1");
    assert!(
        !server
            .root
            .read_error_log()
            .contains(&tagged(&fast, "RSWSGI0421")),
        "a fast request is not slow:\n{}",
        server.logs()
    );
}

#[test]
fn wsgislowrequests_applies_to_groups_without_their_own() {
    require!(venv);
    let server = with_access_log(2).directive("WSGISlowRequests 0.3").start();
    assert_eq!(server.get("/sleep/0.8?m=ws-1").status, 200);
    let id = access_id(&server, "m=ws-1");
    wait_line(
        &server,
        &[&tagged(&id, "RSWSGI0421"), "took ", "(slow-requests 0.3s)"],
    );
}

#[test]
fn in_a_group_of_several_processes_the_502_claims_no_daemon_pid() {
    require!(venv);
    // The socket's peer credentials are the last listen() caller's: possibly another daemon.
    let server = with_access_log(2).processes(2).start();
    assert_eq!(server.get("/die?m=dd-2").status, 502, "{}", server.logs());
    let id = access_id(&server, "m=dd-2");
    let line = wait_line(&server, &[&tagged(&id, "RSWSGI0102")]);
    assert!(!line.contains("(daemon pid"), "{line}");
    wait_line(
        &server,
        &["RSWSGI0207: daemon process", "killed by signal SIGKILL"],
    );
}

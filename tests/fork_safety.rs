//! Fork safety through real Apache: an application that forks (and lets the child return
//! into the server, `sys.exit` in it, or leaves a multiprocessing child running) never sends
//! the child's output to anyone. The forking request gets its parent's response, and every
//! later request, on the same pooled daemon connection or a fresh one, gets its own.

mod common;

use std::time::Duration;

use common::raw::{head, RawConn};
use common::semantics::wait_log;
use common::TestServer;

fn server() -> TestServer {
    TestServer::builder("tests/apps/forking.py")
        .processes(1)
        .threads(2)
        .start()
}

/// Sends `path` on `c` (kept alive) and returns the status and body.
fn get(c: &mut RawConn, path: &str) -> (u16, String) {
    c.send(&head("GET", path, &[])).unwrap();
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (r.status, r.text())
}

/// Requests `/b0`… on the keep-alive connection `c` (so the same Apache thread, and the daemon
/// connection it just used, serves them) and on fresh connections, and checks each answer.
fn others_get_their_own(srv: &TestServer, c: &mut RawConn, tag: &str) {
    for i in 0..8 {
        let path = format!("/{tag}-b{i}");
        assert_eq!(
            get(c, &path),
            (200, format!("ECHO {path}")),
            "{}",
            srv.logs()
        );
        let fresh = srv.get(&format!("{path}-fresh"));
        assert_eq!(
            (fresh.status, fresh.text()),
            (200, format!("ECHO {path}-fresh")),
            "{}",
            srv.logs()
        );
    }
}

#[test]
fn a_child_that_returns_into_the_server_writes_nothing() {
    require!(venv);
    let srv = server();
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(20));
    assert_eq!(get(&mut c, "/warm-up"), (200, "ECHO /warm-up".into()));
    for round in 0..3 {
        assert_eq!(
            get(&mut c, "/fork-return"),
            (200, "PARENT-OF-REQUEST-A".into()),
            "round {round}: {}",
            srv.logs()
        );
        others_get_their_own(&srv, &mut c, &format!("ret{round}"));
    }
    const RETURNED: &str = "a process forked by the application returned into rswsgi";
    let log = wait_log(&srv, |l| l.contains(RETURNED));
    assert!(log.contains(RETURNED), "{log}");
    assert!(!log.contains("SECRET-OF-CHILD"), "{log}");
    assert!(!log.contains("cannot wait on an idle connection"), "{log}");
}

#[test]
fn a_child_that_calls_sys_exit_blames_nobody() {
    require!(venv);
    let srv = server();
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(20));
    for round in 0..3 {
        assert_eq!(
            get(&mut c, "/fork-exit"),
            (200, "PARENT-OF-FORK-EXIT".into()),
            "round {round}: {}",
            srv.logs()
        );
        others_get_their_own(&srv, &mut c, &format!("exit{round}"));
    }
    let log = srv.root.read_error_log();
    assert!(
        !log.contains("SystemExit"),
        "the child's exit is not reported: {log}"
    );
    assert!(!log.contains(" 500 "), "{log}");
}

#[test]
fn a_multiprocessing_child_left_running_touches_no_connection() {
    require!(venv);
    let srv = server();
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(20));
    let (status, body) = get(&mut c, "/mp");
    assert_eq!(status, 200, "{}", srv.logs());
    assert!(body.starts_with("PARENT-OF-MP child="), "{body}");
    let child: i32 = body.rsplit('=').next().unwrap().parse().unwrap();
    assert!(
        common::procs::alive(child),
        "the multiprocessing child is running"
    );
    // The child holds none of the daemon's connections or its listening socket: each of its
    // descriptors that were the daemon's now points at a dead socket pair end. The child
    // itself lists them, from its target function (so after the fork handlers have run).
    let listing = std::path::PathBuf::from(format!("/tmp/rswsgi-mp-fds-{child}"));
    assert!(
        common::procs::wait_until(Duration::from_secs(10), || listing.exists()),
        "the multiprocessing child listed its descriptors\n{}",
        srv.logs()
    );
    let links = std::fs::read_to_string(&listing).unwrap();
    let _ = std::fs::remove_file(&listing);
    others_get_their_own(&srv, &mut c, "mp");
    assert!(
        links
            .lines()
            .all(|l| !l.starts_with("anon_inode:[eventpoll]")),
        "the child kept the daemon's epoll set: {links}"
    );
}

#[test]
fn a_stray_writer_on_the_daemon_connections_reaches_nobody() {
    require!(venv);
    let srv = server();
    // Several pooled daemon connections, from concurrent requests.
    let warm: Vec<_> = (0..6)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || common::http::get(addr, &format!("/warm{i}")).unwrap())
        })
        .collect();
    for w in warm {
        assert_eq!(w.join().unwrap().status, 200);
    }
    // The application writes a whole forged response, numbered for another request, on every
    // connection the daemon holds: its own, and each idle pooled one.
    let stray = srv.get("/stray");
    assert!(!stray.text().contains("STOLEN"), "{stray:?}");
    assert_eq!(
        stray.status, 502,
        "its own connection got the forged response first"
    );
    let mut answered = 0;
    for i in 0..40 {
        let path = format!("/after{i}");
        let r = srv.get(&path);
        assert!(
            !r.text().contains("STOLEN"),
            "{path} got the forged response: {r:?}"
        );
        if r.status == 200 {
            assert_eq!(r.text(), format!("ECHO {path}"));
            answered += 1;
        } else {
            assert_eq!(r.status, 502, "{path}: {r:?}");
        }
    }
    assert!(
        answered >= 30,
        "only {answered} of 40 answered after the stray writes"
    );
    let log = srv.root.read_error_log();
    assert!(
        log.contains("frame for request #12345 arrived where request #"),
        "{log}"
    );
}

//! Faults around the daemon groups (issue 11): a daemon socket deleted or replaced behind
//! httpd's back is bound anew on the next graceful restart; Apache's children do not hold the
//! daemons' listening socket; a daemon's end is logged as what it was (exit status or signal);
//! a daemon waiting out its restart back-off is not root and does not outlive httpd.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{http, procs, repo_root, test_user, Stage, TestServer};

fn probe() -> String {
    repo_root()
        .join("tests/apps/probe.py")
        .display()
        .to_string()
}

/// The daemon socket of the server's only group (the one `*.sock` in its server root).
fn socket_of(server: &TestServer) -> PathBuf {
    let socks: Vec<PathBuf> = fs::read_dir(&server.root.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .collect();
    assert_eq!(socks.len(), 1, "one group, one socket: {socks:?}");
    socks[0].clone()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions; every pid here is a process we started.
    unsafe { libc::kill(pid, sig) };
}

/// Whether `/` is answered by a daemon that is not one of `old`.
fn served_by_new_daemon(server: &TestServer, old: &[i32]) -> bool {
    match http::get(server.addr, "/") {
        Ok(r) if r.status == 200 => r
            .kv("probe.pid")
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| !old.contains(&p)),
        _ => false,
    }
}

/// Sends httpd a graceful restart and asserts that it survives and its new daemons serve.
fn graceful_restart_serves(server: &TestServer) {
    let old: Vec<i32> = server.daemons(1).iter().map(|p| p.pid).collect();
    signal(server.pid(), libc::SIGUSR1);
    let served = procs::wait_until(Duration::from_secs(30), || {
        !procs::alive(server.pid()) || served_by_new_daemon(server, &old)
    });
    assert!(
        procs::alive(server.pid()),
        "httpd died on the graceful restart:\n{}",
        server.logs()
    );
    assert!(
        served,
        "the new daemons do not serve after the graceful restart:\n{}",
        server.logs()
    );
}

#[test]
fn a_deleted_daemon_socket_is_bound_anew_on_graceful_restart() {
    require!(venv);
    let server = TestServer::builder(&probe()).threads(2).start();
    let sock = socket_of(&server);
    fs::remove_file(&sock).unwrap();
    graceful_restart_serves(&server);
    let meta = fs::symlink_metadata(&sock).unwrap();
    assert!(
        meta.file_type().is_socket(),
        "{} is a socket again",
        sock.display()
    );
    assert!(
        server.logs().contains("RSWSGI0204:"),
        "the new socket is logged:\n{}",
        server.logs()
    );
}

#[test]
fn a_replaced_daemon_socket_is_bound_anew_on_graceful_restart() {
    require!(venv);
    // socket-timeout bounds each request that reaches the impostor instead of a daemon.
    let server = TestServer::builder(&probe())
        .threads(2)
        .daemon_option("socket-timeout=3")
        .start();
    let sock = socket_of(&server);
    fs::remove_file(&sock).unwrap();
    let impostor = UnixListener::bind(&sock).unwrap();
    impostor.set_nonblocking(true).unwrap();
    graceful_restart_serves(&server);
    match impostor.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a connection reached the socket that replaced the daemon's: {other:?}"),
    }
}

/// The sockfs inode of the listening UNIX socket bound at `path` (`/proc/net/unix`).
fn listening_inode(path: &Path) -> Option<String> {
    let table = fs::read_to_string("/proc/net/unix").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = accepting.
        (f.len() >= 8 && f[3] == "00010000" && Path::new(f[7]) == path).then(|| f[6].to_string())
    })
}

/// Whether process `pid` has the socket with `inode` open.
fn holds_socket(pid: i32, inode: &str) -> bool {
    let want = format!("socket:[{inode}]");
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|e| e.ok())
                .any(|e| fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want))
        })
        .unwrap_or(false)
}

/// Sends `GET /` on a raw connection and waits at most `limit` for anything: the status
/// line, or the connection closing or being refused. `None` when nothing came (a hang).
fn first_answer(addr: std::net::SocketAddr, limit: Duration) -> Option<String> {
    let mut stream = match TcpStream::connect_timeout(&addr, limit) {
        Ok(s) => s,
        Err(e) => return Some(format!("connect: {e}")),
    };
    stream.set_read_timeout(Some(limit)).unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => Some(format!("read: {e}")),
    }
}

#[test]
fn apache_children_do_not_hold_the_daemon_socket() {
    require!(venv);
    let server = TestServer::builder(&probe())
        .threads(2)
        .daemon_option("connect-timeout=2")
        .start();
    assert_eq!(server.get("/").status, 200);
    let sock = socket_of(&server);
    let inode = listening_inode(&sock).expect("the daemon socket is listening");
    let daemons = server.daemons(1);
    assert!(
        daemons.iter().all(|d| holds_socket(d.pid, &inode)),
        "the daemons hold their socket (else this test proves nothing): {daemons:?}"
    );
    let children: Vec<i32> = server
        .httpd_processes()
        .iter()
        .map(|p| p.pid)
        .filter(|&p| p != server.pid())
        .collect();
    assert!(!children.is_empty(), "no Apache children");
    let holding: Vec<i32> = children
        .iter()
        .copied()
        .filter(|&p| holds_socket(p, &inode))
        .collect();
    assert!(
        holding.is_empty(),
        "Apache children {holding:?} hold the daemons' listening socket {}",
        sock.display()
    );

    // httpd's parent is killed: its daemons go, and a request that an orphaned Apache child
    // takes fails at once (no one holds the socket in LISTEN any more) instead of hanging.
    signal(server.pid(), libc::SIGKILL);
    let gone = procs::wait_until(Duration::from_secs(10), || {
        daemons.iter().all(|d| !procs::alive(d.pid))
    });
    let started = Instant::now();
    let answer = if gone {
        first_answer(server.addr, Duration::from_secs(15))
    } else {
        None
    };
    let waited = started.elapsed();
    eprintln!("after httpd's parent was killed: {answer:?} in {waited:?}");
    for &p in &children {
        signal(p, libc::SIGKILL);
    }
    procs::wait_until(Duration::from_secs(10), || {
        children.iter().all(|&p| !procs::alive(p))
    });
    assert!(gone, "the daemons did not exit with httpd's parent");
    let answer = answer.unwrap_or_else(|| panic!("the request hung for {waited:?}"));
    assert!(
        answer.starts_with("connect:") || answer.contains(" 503 ") || answer.starts_with("read:"),
        "after {waited:?}: {answer:?}"
    );
}

/// The supervisor's line about the end of daemon `pid`, once it is logged.
fn death_line(server: &TestServer, pid: i32) -> String {
    let needle = format!("daemon process {pid} of group");
    let mut line = None;
    procs::wait_until(Duration::from_secs(10), || {
        line = server
            .root
            .read_error_log()
            .lines()
            .find(|l| l.contains(&needle))
            .map(str::to_string);
        line.is_some()
    });
    line.unwrap_or_else(|| panic!("no '{needle}' line:\n{}", server.logs()))
}

#[test]
fn exit_statuses_and_signals_are_logged_as_what_they_were() {
    require!(venv);
    let server = TestServer::builder("tests/apps/exits.py")
        .threads(2)
        .start();
    let first = server.daemons(1)[0].pid;
    let r = http::get(server.addr, "/exit/1");
    assert!(r.is_err() || r.unwrap().status >= 500);
    let line = death_line(&server, first);
    assert!(line.contains("exited with status 1 "), "{line}");

    let mut second = 0;
    procs::wait_until(Duration::from_secs(10), || {
        second = procs::daemons_of(server.pid(), &server.bins.daemon)
            .first()
            .map_or(0, |p| p.pid);
        second != 0 && second != first
    });
    assert!(second != 0 && second != first, "{}", server.logs());
    signal(second, libc::SIGKILL);
    let line = death_line(&server, second);
    assert!(line.contains("was killed by signal SIGKILL "), "{line}");
}

/// The pid of the daemon started after the supervisor logged a restart of group `group`
/// delayed by `delay`, once both lines are in the log.
fn delayed_start(server: &TestServer, group: &str, delay: &str) -> Option<i32> {
    let log = server.root.read_error_log();
    let mut lines = log
        .lines()
        .skip_while(|l| !(l.contains(&format!("of group '{group}'")) && l.contains(delay)));
    lines.next()?;
    let line = lines.find(|l| l.contains(&format!("of group '{group}'")))?;
    let rest = line.split("started daemon process ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_daemon_waiting_out_its_back_off_is_not_root_and_dies_with_httpd() {
    require!(venv);
    let user = test_user().expect("runs as root, so daemons switch to the test user");
    let uid = nix::unistd::User::from_name(&user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    let stage = Stage::new("backoff");
    let failing = stage.write("app/failing.py", "import os\nos._exit(1)\n");
    let server = TestServer::builder(&probe())
        .mount_point("/main")
        .directive("WSGIDaemonProcess failing processes=1 threads=1")
        .directive(&format!(
            "WSGIScriptAlias /failing {} process-group=failing",
            failing.display()
        ))
        .start();
    // Deaths 1, 2, 3 restart after 0, 1, 2 s; the fourth waits 4 s.
    let mut waiting = None;
    procs::wait_until(Duration::from_secs(40), || {
        waiting = delayed_start(&server, "failing", "restarting in 4s");
        waiting.is_some()
    });
    let pid = waiting.unwrap_or_else(|| panic!("no 4 s back-off:\n{}", server.logs()));
    assert!(procs::alive(pid), "{pid} is waiting out its back-off");
    // The supervisor logs the start as soon as it has forked; the child drops privileges
    // straight after, then sleeps. Give it that moment (well within the 4 s back-off).
    procs::wait_until(Duration::from_secs(2), || {
        procs::status_ids(pid, "Uid") == Some(vec![uid; 4])
    });
    assert_ne!(
        procs::exe(pid).as_deref(),
        Some(server.bins.daemon.as_path()),
        "{pid} has not exec'd the daemon yet"
    );
    assert_eq!(
        procs::status_ids(pid, "Uid").unwrap(),
        vec![uid; 4],
        "the child waiting out the back-off runs as the daemon user"
    );

    let children: Vec<i32> = server
        .httpd_processes()
        .iter()
        .map(|p| p.pid)
        .filter(|&p| p != server.pid() && p != pid)
        .collect();
    signal(server.pid(), libc::SIGKILL);
    let died = procs::wait_until(Duration::from_secs(2), || !procs::alive(pid));
    for &p in &children {
        signal(p, libc::SIGKILL);
    }
    procs::wait_until(Duration::from_secs(10), || {
        children.iter().all(|&p| !procs::alive(p))
    });
    if !died {
        signal(pid, libc::SIGKILL);
    }
    assert!(died, "the waiting child outlived httpd's parent");
    assert!(
        server
            .root
            .read_error_log()
            .contains("exited with status 1 "),
        "an exit at import is logged as such:\n{}",
        server.logs()
    );
}

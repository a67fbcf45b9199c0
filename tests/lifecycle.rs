//! Daemon lifecycle through real httpd: graceful restarts under load lose no request, a killed
//! daemon is replaced and its group keeps serving.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{http, procs, repo_root, TestServer};

fn probe() -> String {
    repo_root()
        .join("tests/apps/probe.py")
        .display()
        .to_string()
}

/// Sends requests (each on its own connection) from `clients` threads until `stop`, counting
/// successes and failures (anything but a 200, or an I/O error).
fn load(
    server: &TestServer,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> (
    Vec<thread::JoinHandle<()>>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let threads = (0..clients)
        .map(|_| {
            let (addr, stop, ok, failed) = (server.addr, stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match http::get(addr, "/load") {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::SeqCst),
                        Ok(r) => {
                            eprintln!("request failed: {} {}", r.status, r.text());
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();
    (threads, ok, failed)
}

#[test]
fn graceful_restarts_under_load_lose_no_request() {
    let server = TestServer::builder(&probe())
        .processes(2)
        .threads(4)
        .start();
    let before: Vec<i32> = server.daemons(2).iter().map(|p| p.pid).collect();
    assert_eq!(before.len(), 2, "{}", server.logs());

    let stop = Arc::new(AtomicBool::new(false));
    let (threads, ok, failed) = load(&server, 4, &stop);
    for _ in 0..3 {
        let served = ok.load(Ordering::SeqCst);
        assert!(
            procs::wait_until(Duration::from_secs(20), || ok.load(Ordering::SeqCst)
                > served + 50),
            "requests stopped being served:\n{}",
            server.logs()
        );
        // SAFETY: kill has no memory-safety preconditions; httpd is our child.
        unsafe { libc::kill(server.pid(), libc::SIGUSR1) };
    }
    let served = ok.load(Ordering::SeqCst);
    assert!(
        procs::wait_until(Duration::from_secs(20), || ok.load(Ordering::SeqCst)
            > served + 50),
        "requests stopped being served after the restarts:\n{}",
        server.logs()
    );
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests across graceful restarts:\n{}",
        server.logs()
    );

    // The old daemons finished and exited; the new generation serves; nothing leaks.
    let after: Vec<i32> = server.daemons(2).iter().map(|p| p.pid).collect();
    assert_eq!(
        after.len(),
        2,
        "daemons after the restarts: {after:?}\n{}",
        server.logs()
    );
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "new daemons serve: {before:?} -> {after:?}"
    );
    assert!(
        procs::wait_until(Duration::from_secs(10), || before
            .iter()
            .all(|&p| !procs::alive(p))),
        "old daemons did not exit:\n{}",
        server.logs()
    );
    let logs = server.logs();
    assert!(
        !logs.contains("seg fault"),
        "httpd's parent crashed:\n{logs}"
    );
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn a_killed_daemon_is_replaced_and_the_group_keeps_serving() {
    let server = TestServer::builder(&probe())
        .processes(2)
        .threads(2)
        .start();
    let daemons = server.daemons(2);
    assert_eq!(daemons.len(), 2, "{}", server.logs());
    let victim = daemons[0].pid;
    // SAFETY: kill has no memory-safety preconditions; the daemon is ours.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    for _ in 0..20 {
        assert_eq!(
            server.get("/").status,
            200,
            "the other daemon keeps serving:\n{}",
            server.logs()
        );
    }
    let mut replaced = Vec::new();
    assert!(
        procs::wait_until(Duration::from_secs(5), || {
            replaced = procs::daemons_of(server.pid(), &server.bins.daemon);
            replaced.len() == 2 && replaced.iter().all(|p| p.pid != victim)
        }),
        "the killed daemon was not replaced: {replaced:?}\n{}",
        server.logs()
    );
    assert!(
        server
            .logs()
            .contains(&format!("daemon process {victim} of group")),
        "the death is logged:\n{}",
        server.logs()
    );
    // No zombie left behind.
    assert!(
        procs::get(victim).is_none(),
        "daemon {victim} left a zombie"
    );
}

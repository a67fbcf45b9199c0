//! Large response blocks through the response ring, with real Apache: bodies at sizes around
//! the ring's and the frames' boundaries arrive byte-exact (one request after another on
//! pooled connections, and many at once); a client too slow for the ring gets every byte
//! through the socket instead; and a daemon killed mid-ring aborts that response only.

mod common;

use std::time::Duration;

use common::raw::{head, RawConn};
use common::{procs, semantics, sha256_hex};
use rswsgi_protocol::ring::{RING_DATA, RING_MIN_BLOCK, RING_SLICE};
use rswsgi_protocol::MAX_BODY_CHUNK;

/// The `/blocks` path for blocks of `sizes`.
fn blocks(sizes: &[usize], extra: &str) -> String {
    let list: Vec<String> = sizes.iter().map(|n| n.to_string()).collect();
    format!(
        "/blocks?sizes={}&seed={}{extra}",
        list.join(","),
        list.join("-")
    )
}

/// Fetches `path` on a new connection and checks the body against the app's digest.
fn fetch_exact(addr: std::net::SocketAddr, path: &str, total: usize) {
    let mut c = RawConn::connect(addr);
    c.send(&head("GET", path, &[("Connection", "close")]))
        .unwrap();
    let resp = c.read_response(false).unwrap();
    assert_eq!(resp.status, 200, "{path}");
    assert!(
        resp.complete,
        "{path}: {} of {total} bytes",
        resp.body.len()
    );
    assert_eq!(resp.body.len(), total, "{path}");
    assert_eq!(
        Some(sha256_hex(&resp.body).as_str()),
        resp.header("X-Sha256"),
        "{path}"
    );
}

#[test]
fn bodies_around_the_ring_and_frame_boundaries_arrive_byte_exact() {
    require!(venv);
    let srv = semantics::builder().start();
    let (min, slice, ring) = (RING_MIN_BLOCK, RING_SLICE, RING_DATA);
    let cases: Vec<Vec<usize>> = vec![
        vec![min - 1],
        vec![min],
        vec![slice - 1],
        vec![slice],
        vec![slice + 1],
        vec![ring - 1],
        vec![ring],
        vec![ring + 1],
        vec![3 * ring + 17],
        vec![MAX_BODY_CHUNK + 1],
        vec![5 << 20],
        // Small and large blocks mixed: the small ones go through the socket between slices.
        vec![100, 40_000, 7, 300_000, ring, 1, slice, min - 1, min, 9],
    ];
    for sizes in &cases {
        let total = sizes.iter().sum();
        fetch_exact(srv.addr, &blocks(sizes, ""), total);
        fetch_exact(srv.addr, &blocks(sizes, "&cl=0"), total);
    }
    // The blocks went through a ring (the daemon maps its memfd), not only the socket.
    let daemon = srv.daemons(1)[0].pid;
    let maps = procs::maps(daemon).unwrap_or_default();
    assert!(maps.contains("rswsgi-ring"), "no ring mapped in the daemon");
    // Many at once: each pooled connection has its own ring.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                for j in 0..4 {
                    let sizes = [ring + i * 1000 + j, slice * 3 + 5, min + i];
                    fetch_exact(addr, &blocks(&sizes, ""), sizes.iter().sum());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Rings of idle connections give their pages back: the daemon's shared memory, which
    // the rings just used hold, goes down to (nearly) none.
    let shmem = || rss_shmem_kib(daemon);
    let busy = shmem();
    assert!(
        busy >= 1024,
        "{busy} KiB of shared memory after 8 connections used rings"
    );
    assert!(
        procs::wait_until(Duration::from_secs(10), || shmem() < 512),
        "{} KiB of ring memory still held by idle connections",
        shmem()
    );
    fetch_exact(
        srv.addr,
        &blocks(&[RING_DATA * 2 + 1], ""),
        RING_DATA * 2 + 1,
    );
    srv.stop();
}

/// `RssShmem` of process `pid`, in KiB.
fn rss_shmem_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("RssShmem:"));
    let kib = line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    kib.unwrap_or(0)
}

#[test]
fn a_client_too_slow_for_the_ring_gets_every_byte_through_the_socket() {
    require!(venv);
    let srv = semantics::builder().start();
    // 8 MiB in 1 MiB blocks: the ring fills while this client reads nothing, the daemon waits
    // for room, gives up on the ring and writes the rest into the socket.
    let sizes = [1 << 20; 8];
    let mut c = RawConn::connect(srv.addr);
    c.send(&head(
        "GET",
        &blocks(&sizes, ""),
        &[("Connection", "close")],
    ))
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let resp = c.read_response(false).unwrap();
    assert!(resp.complete, "{} bytes", resp.body.len());
    assert_eq!(
        Some(sha256_hex(&resp.body).as_str()),
        resp.header("X-Sha256")
    );
    // The connection (and its ring) serve the next request as well.
    fetch_exact(srv.addr, &blocks(&[RING_DATA + 3], ""), RING_DATA + 3);
    srv.stop();
}

#[test]
fn a_daemon_killed_mid_ring_aborts_that_response_and_the_next_is_served() {
    require!(venv);
    let srv = semantics::builder().start();
    let daemon = srv.daemons(1)[0].pid;
    let sizes = [RING_DATA, RING_DATA];
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(20));
    let path = blocks(&sizes, "&pause=3000");
    c.send(&head("GET", &path, &[("Connection", "close")]))
        .unwrap();
    let resp_head = c.read_head().unwrap();
    assert_eq!(resp_head.status, 200);
    // The first block is in the ring (or on its way) while the application pauses.
    std::thread::sleep(Duration::from_millis(500));
    // The daemon process of the server this test started.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let rest = c.read_rest(Duration::from_secs(15));
    // The block before the pause arrived whole; the response then ends short of its
    // Content-Length, so it cannot pass for complete.
    assert_eq!(rest.len(), RING_DATA, "bytes before the connection closed");
    // A new daemon serves the next request whole.
    assert!(procs::wait_until(Duration::from_secs(20), || {
        srv.daemons(1).first().is_some_and(|p| p.pid != daemon)
    }));
    fetch_exact(srv.addr, &blocks(&sizes, ""), 2 * RING_DATA);
    srv.stop();
}

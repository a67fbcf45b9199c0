//! Responses of many small blocks through real Apache: every byte arrives, in order, however
//! the module gathers them; blocks gathered are never held while the application pauses; and
//! a daemon thread whose client stalls waits for the socket with the GIL released, so the
//! process's other threads keep serving.

mod common;

use std::time::{Duration, Instant};

use common::raw::{head, RawConn};
use common::semantics;

/// Checks that `body` is exactly `n` lines of `size` bytes numbered 0 to n-1, in order.
fn assert_lines(body: &[u8], n: usize, size: usize) {
    assert_eq!(body.len(), n * size, "bytes");
    for (i, line) in body.chunks(size).enumerate() {
        let want = format!("{i:<width$}\n", width = size - 1);
        assert_eq!(line, want.as_bytes(), "line {i}");
    }
}

#[test]
fn many_small_blocks_arrive_whole_and_in_order() {
    require!(venv);
    let srv = semantics::builder().start();
    // Sizes around the module's gathering limits (16 KiB blocks, 64 KiB at once).
    for (n, size) in [
        (1, 8),
        (2, 8),
        (999, 27),
        (100_000, 27),
        (40, 16 << 10),
        (9, (16 << 10) + 1),
        (5, 64 << 10),
    ] {
        let resp = srv.get(&format!("/lines?n={n}&size={size}"));
        assert_eq!(resp.status, 200);
        assert_lines(&resp.body, n, size);
    }
    srv.stop();
}

#[test]
fn a_stalled_client_leaves_the_other_threads_serving() {
    require!(venv);
    let srv = semantics::builder().start();
    // 64 MB in a million yields: far more than the sockets between the daemon and this
    // client hold, so the daemon's writes must wait while the client reads nothing.
    let (n, size) = (1_000_000, 64);
    let mut stalled = RawConn::connect(srv.addr);
    stalled.set_read_timeout(Duration::from_secs(60));
    let path = format!("/lines?n={n}&size={size}");
    stalled
        .send(&head("GET", &path, &[("Connection", "close")]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..5 {
        let started = Instant::now();
        let resp = srv.get(&format!("/expect?i={i}"));
        assert_eq!(resp.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a request took {:?} while another thread's client was stalled",
            started.elapsed()
        );
    }
    let resp = stalled.read_response(false).unwrap();
    assert!(resp.complete);
    assert_lines(&resp.body, n, size);
    srv.stop();
}

#[test]
fn a_burst_of_blocks_arrives_before_the_application_pauses() {
    require!(venv);
    let srv = semantics::builder().start();
    let n = 2000;
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(30));
    let start = Instant::now();
    let path = format!("/burst?n={n}&pause=1500");
    c.send(&head("GET", &path, &[("Connection", "close")]))
        .unwrap();
    assert_eq!(c.read_head().unwrap().status, 200);
    let want: String = (0..n).map(|i| format!("line {i}\n")).collect();
    let mut burst = Vec::new();
    let mut burst_done = None;
    let mut last_at = None;
    while let Some((chunk, at)) = c.timed_chunk(start).unwrap() {
        if chunk.ends_with(b"last\n") {
            burst.extend_from_slice(&chunk[..chunk.len() - 5]);
            last_at = Some(at);
        } else {
            burst.extend_from_slice(&chunk);
        }
        if burst_done.is_none() && burst.len() >= want.len() {
            assert_eq!(burst, want.as_bytes());
            burst_done = Some(at);
        }
    }
    let (burst_done, last_at) = (burst_done.expect("the whole burst"), last_at.expect("last"));
    // Every block of the burst went out before the pause, none held back until "last".
    assert!(
        burst_done + Duration::from_millis(1000) < last_at,
        "the burst was complete at {burst_done:?}, the block after the pause came at {last_at:?}"
    );
    srv.stop();
}

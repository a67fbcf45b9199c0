//! Streaming through real Apache: every block flushed as it is yielded, a client disconnect
//! that stops the application within a block (close() runs, one log line), and
//! wsgi.file_wrapper.

mod common;

use std::time::{Duration, Instant};

use common::procs;
use common::raw::{head, RawConn};
use common::semantics::{self, events};

#[test]
fn each_block_reaches_the_client_when_it_is_yielded() {
    require!(venv);
    let srv = semantics::builder().start();
    let mut c = RawConn::connect(srv.addr);
    let start = Instant::now();
    c.send(&head(
        "GET",
        "/stream?n=5&interval=200",
        &[("Connection", "close")],
    ))
    .unwrap();
    let resp = c.read_head().unwrap();
    assert!(resp.is_chunked(), "{resp:?}");
    let mut arrivals = Vec::new();
    while let Some((chunk, at)) = c.timed_chunk(start).unwrap() {
        arrivals.push((String::from_utf8_lossy(&chunk).into_owned(), at));
    }
    // Five non-empty blocks, each its own chunk (the empty ones were skipped).
    assert_eq!(arrivals.len(), 5, "{arrivals:?}");
    for (i, (text, _)) in arrivals.iter().enumerate() {
        assert!(text.starts_with(&format!("tick {i} ")), "{arrivals:?}");
    }
    assert!(arrivals[0].1 < Duration::from_millis(1500), "{arrivals:?}");
    for pair in arrivals.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= Duration::from_millis(100) && gap <= Duration::from_millis(1000),
            "blocks yielded 200 ms apart arrived {gap:?} apart: {arrivals:?}"
        );
    }
    srv.stop();
}

/// Starts /disconnect?key=..., reads `blocks` blocks, closes the connection (abortively or
/// not), and returns (yields before the close, yields in all) once the generator's `finally`
/// has run.
fn disconnect(srv: &common::TestServer, key: &str, abortive: bool) -> (usize, usize) {
    let mut c = RawConn::connect(srv.addr);
    c.send(&head(
        "GET",
        &format!("/disconnect?key={key}&interval=200"),
        &[],
    ))
    .unwrap();
    assert_eq!(c.read_head().unwrap().status, 200);
    for _ in 0..3 {
        assert!(c.read_chunk().unwrap().is_some());
    }
    let before = events(srv, key, None)
        .iter()
        .filter(|e| e.starts_with("yield"))
        .count();
    if abortive {
        c.abort();
    } else {
        drop(c);
    }
    let ev = events(srv, key, Some("finally"));
    assert_eq!(ev.last().map(String::as_str), Some("finally"), "{ev:?}");
    assert!(!ev.iter().any(|e| e == "finished"), "{ev:?}");
    let total = ev.iter().filter(|e| e.starts_with("yield")).count();
    (before, total)
}

#[test]
fn client_disconnect_stops_the_application_within_a_block() {
    require!(venv);
    let srv = semantics::builder().start();
    let log_before = srv.root.read_error_log().lines().count();

    // A client that resets the connection: the module notices at once (it watches the client
    // socket while it waits for the daemon), so the generator's next block is its last: the
    // send fails, and its finally runs.
    let (before, total) = disconnect(&srv, "reset", true);
    assert!(
        total <= before + 1,
        "{} blocks were produced after the client went away",
        total - before
    );
    // A client that closes normally (FIN): TCP needs one more write to tell.
    let (before, total) = disconnect(&srv, "fin", false);
    assert!(
        total <= before + 2,
        "{} blocks were produced after the client went away",
        total - before
    );

    // The daemon thread is free again: all four threads serve concurrent requests.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                common::http::get(addr, &format!("/expect?delay=300&i={i}")).map(|r| r.status)
            })
        })
        .collect();
    let started = Instant::now();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 200);
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // At most one log line per disconnect, at info level.
    let mut new = Vec::new();
    procs::wait_until(Duration::from_secs(10), || {
        new = srv
            .root
            .read_error_log()
            .lines()
            .skip(log_before)
            .map(str::to_owned)
            .collect::<Vec<_>>();
        new.iter()
            .filter(|l| l.contains("client went away"))
            .count()
            >= 2
    });
    // (mpm_event's note about its small thread pool is about the test configuration.)
    let about: Vec<&String> = new.iter().filter(|l| !l.contains("[mpm_event:")).collect();
    assert!(
        about.len() <= 2,
        "more than one line per disconnect:\n{about:#?}"
    );
    assert!(
        about.iter().all(|l| l.contains(":info]")),
        "disconnects are logged at info level:\n{about:#?}"
    );
    srv.stop();
}

fn file_data() -> Vec<u8> {
    (0..307_200usize).map(|i| (i % 256) as u8).collect()
}

#[test]
fn file_wrapper_semantics() {
    require!(venv);
    // trace1 for the module: it logs each block it sends from a daemon's file descriptor.
    let srv = semantics::builder()
        .directive("LogLevel info rswsgi:trace1")
        .start();
    let data = file_data();
    let get = |path: &str| {
        let mut c = RawConn::connect(srv.addr);
        c.send(&head("GET", path, &[("Connection", "close")]))
            .unwrap();
        c.read_response(false).unwrap()
    };

    // A real file: all of it, with a Content-Length from its size, and close() called.
    let resp = get("/file?key=f1");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.header("Content-Length"),
        Some("307200"),
        "{:?}",
        resp.headers
    );
    assert!(resp.complete && resp.body == data);
    assert_eq!(events(&srv, "f1", Some("file closed")), ["file closed"]);

    // From the current position.
    let resp = get("/file?offset=1000");
    assert_eq!(resp.header("Content-Length"), Some("306200"));
    assert!(resp.body == data[1000..]);

    // Stops at the declared Content-Length (without complaint).
    let resp = get("/file?offset=10&cl=5000&blksize=64");
    assert!(
        resp.complete && resp.body == data[10..5010],
        "{}",
        resp.body.len()
    );

    // A Content-Length past the end of the file: the response is cut short and aborted.
    let resp = get("/file?cl=400000");
    assert!(!resp.complete && resp.body == data, "{}", resp.body.len());

    // Not a file: read() until it ends (chunked), and its close() is called.
    let resp = get("/file?kind=bytesio&offset=7");
    assert!(resp.is_chunked() && resp.complete && resp.body == data[7..]);
    let resp = get("/file?kind=readonly&key=f2&blksize=1000");
    assert!(resp.complete && resp.body == data);
    assert_eq!(
        events(&srv, "f2", Some("filelike closed")),
        ["filelike closed"]
    );

    let log = srv.root.read_error_log();
    assert!(
        !log.contains("more than its Content-Length"),
        "the file wrapper stops at Content-Length by itself:\n{log}"
    );
    assert!(
        !log.contains("file descriptor"),
        "a subclass of a file type is read, never sent by descriptor:\n{log}"
    );

    // A plain open(path, "rb") file and a NamedTemporaryFile go to Apache as descriptors
    // (zero-copy), with the same semantics: from the current position, stopping at the
    // declared Content-Length, cut short and aborted past the end of the file.
    for kind in ["plain", "named"] {
        let resp = get(&format!("/file?kind={kind}"));
        assert_eq!(resp.header("Content-Length"), Some("307200"), "{kind}");
        assert!(resp.complete && resp.body == data, "{kind}");
        let resp = get(&format!("/file?kind={kind}&offset=1000"));
        assert_eq!(resp.header("Content-Length"), Some("306200"), "{kind}");
        assert!(resp.complete && resp.body == data[1000..], "{kind}");
        let resp = get(&format!("/file?kind={kind}&offset=10&cl=5000"));
        assert!(resp.complete && resp.body == data[10..5010], "{kind}");
        let resp = get(&format!("/file?kind={kind}&cl=400000"));
        assert!(
            !resp.complete && resp.body == data,
            "{kind}: {}",
            resp.body.len()
        );
    }
    let log = srv.root.read_error_log();
    assert_eq!(
        log.matches("response block sent from the daemon's file descriptor")
            .count(),
        8,
        "{log}"
    );

    // A gzip.GzipFile has a fileno() whose bytes are not what read() returns: it is read.
    let resp = get("/file?kind=gzip");
    assert!(resp.is_chunked() && resp.complete && resp.body == data);
    srv.stop();
}

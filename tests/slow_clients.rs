//! Slow clients cannot starve a server express set up: mod_reqtimeout (loaded with
//! mod_wsgi-express's `RequestReadTimeout` defaults) gives up on clients that send their
//! headers or their body too slowly, which frees Apache's threads (mpm_event reads request
//! headers in a worker thread) and the daemon threads reading a trickling upload.
//!
//! The test holds 200 slow-header connections and 2 × threads slow uploads (to 127.0.0.1
//! only, each sending a byte every 500 ms, all ending by themselves within [`CLIENT_LIFE`])
//! and measures how long a normal request then takes. The timeouts are scaled down from the
//! defaults (header 15-30 s, body 15 s) to 2-4 s and 2 s so the test stays short; the
//! mechanism is the same, and the rendered defaults are checked by express's unit tests.
//! Without mod_reqtimeout the slow clients hold everything (Apache's `Timeout` applies per
//! read, and they send more often than that), so the normal request is not answered within
//! the bound.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::TestServer;
use rswsgi_express::Timeouts;

/// Slow-header connections.
const SLOW_HEADERS: usize = 200;
/// Daemon threads (one process).
const THREADS: u32 = 2;
/// Slow uploads: twice the daemon threads, so some wait for a thread too.
const SLOW_BODIES: usize = 2 * THREADS as usize;
/// `--header-timeout` and `--body-timeout` for the test.
const HEADER_TIMEOUT: u64 = 2;
const BODY_TIMEOUT: u64 = 2;
/// Every slow client gives up by itself after this long.
const CLIENT_LIFE: Duration = Duration::from_secs(40);

/// A client trickling one byte every 500 ms (well under `MinRate=500` bytes/s, so its
/// timeout is never stretched) until the server closes its connection or its life ends.
struct Trickler {
    conns: Vec<TcpStream>,
    /// Connections the server closed (EOF, a 408 or a reset).
    cut: usize,
}

impl Trickler {
    fn connect(addr: SocketAddr, n: usize, first: &[u8]) -> Trickler {
        let conns = (0..n)
            .map(|_| {
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    .expect("connect to 127.0.0.1");
                c.write_all(first).expect("send the first bytes");
                c.set_nonblocking(true).unwrap();
                c
            })
            .collect();
        Trickler { conns, cut: 0 }
    }

    /// Sends one more byte on each open connection; drops those the server closed.
    fn tick(&mut self) {
        let mut buf = [0u8; 512];
        let before = self.conns.len();
        self.conns.retain_mut(|c| match c.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => c.write_all(b"x").is_ok(),
            _ => false,
        });
        self.cut += before - self.conns.len();
    }
}

/// `GET /` on a fresh connection; returns the status line and how long it took.
fn normal_request(addr: SocketAddr, limit: Duration) -> (Result<String, String>, Duration) {
    let start = Instant::now();
    let result = (|| {
        let mut c = TcpStream::connect_timeout(&addr, limit).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(limit)).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)
            .map_err(|e| format!("{e} after {:?}", start.elapsed()))?;
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok(text.lines().next().unwrap_or_default().to_owned())
    })();
    (result, start.elapsed())
}

#[test]
fn slow_clients_do_not_starve_a_normal_request() {
    require!(venv);
    let server = TestServer::builder("tests/apps/slow_body.py")
        .threads(THREADS)
        .timeouts(Timeouts {
            header_timeout: HEADER_TIMEOUT,
            header_max_timeout: 2 * HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            ..Timeouts::default()
        })
        .start();
    let workers = server.root.config.max_clients as usize;
    let addr = server.addr;
    let started = Instant::now();

    // The uploads first, so that they hold the daemon threads.
    let upload =
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n\
                   Content-Length: 100000\r\n\r\nx";
    let mut bodies = Trickler::connect(addr, SLOW_BODIES, upload);
    let holding = common::procs::wait_until(Duration::from_secs(10), || {
        bodies.tick();
        server
            .root
            .read_error_log()
            .matches("slow-body: reading")
            .count()
            >= THREADS as usize
    });
    assert!(
        holding,
        "the uploads did not reach the app:\n{}",
        server.logs()
    );
    let mut headers = Trickler::connect(
        addr,
        SLOW_HEADERS,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
    );

    // A slow-header client holds one of Apache's `workers` threads until header-timeout,
    // and the ones queued behind them get a thread (and a fresh timeout) as those are cut,
    // (workers - uploads) at a time; the request then waits for a daemon thread, which the
    // uploads free after body-timeout each, `THREADS` at a time. Plus 3 s for the rest.
    let header_rounds = (SLOW_HEADERS + 1).div_ceil(workers - SLOW_BODIES) as u64;
    let body_rounds = SLOW_BODIES.div_ceil(THREADS as usize) as u64;
    let bound =
        Duration::from_secs(header_rounds * HEADER_TIMEOUT + body_rounds * BODY_TIMEOUT + 3);
    let probe = std::thread::spawn(move || normal_request(addr, bound));
    while !probe.is_finished() && started.elapsed() < CLIENT_LIFE {
        headers.tick();
        bodies.tick();
        std::thread::sleep(Duration::from_millis(500));
    }
    let (result, took) = probe.join().unwrap();
    let (still_open, cut) = (headers.conns.len(), headers.cut);
    drop(headers);
    drop(bodies);
    eprintln!(
        "normal request: {result:?} after {took:?} (bound {bound:?}, {workers} Apache threads); \
         slow-header connections cut by the server: {cut}, still open: {still_open}"
    );
    assert_eq!(
        result.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "the normal request was not answered within {bound:?}:\n{}",
        server.logs()
    );
    assert!(took <= bound, "took {took:?}, bound {bound:?}");
    assert!(
        cut > 0,
        "no slow-header connection was cut by mod_reqtimeout:\n{}",
        server.logs()
    );
    server.stop();
}

//! Native Rust handlers end to end: a `wsgi.rs` built with express's `build_handler`, served
//! by httpd + mod_rswsgi + an `rswsgi-daemon` that loads the library (no Python).

mod common;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::{procs, repo_root, semantics, TestServer};
use rswsgi_express::{build_handler, BuildOptions};
use sha2::{Digest, Sha256};

/// Builds `source` (relative to the repository root) into a handler library, with a build
/// cache shared by the tests of this binary (and kept between runs) under cargo's target
/// tmp directory.
fn built(source: &str) -> String {
    let opts = BuildOptions {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rswsgi-handlers")),
        ..BuildOptions::default()
    };
    let built = build_handler(&repo_root().join(source), &opts)
        .unwrap_or_else(|e| panic!("building {source}: {e:#}"));
    built.library.to_str().expect("UTF-8 path").to_owned()
}

fn example() -> TestServer {
    TestServer::builder(&built("examples/native/wsgi.rs")).start()
}

#[test]
fn hello_json_and_not_found() {
    require!(venv);
    let srv = example();
    let resp = srv.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello from Rust!\n");
    assert_eq!(resp.header("Content-Length"), Some("17"));
    let resp = srv.get("/json?x=1&y=%22");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let text = resp.text();
    assert!(
        text.starts_with("{\"method\":\"GET\",\"path\":\"/json\",\"query\":\"x=1&y=%22\""),
        "{text}"
    );
    assert!(text.contains("\"request_id\":\""), "{text}");
    let resp = srv.get("/nope");
    assert_eq!(resp.status, 404, "{resp:?}");
    // The daemon has the library loaded.
    let daemons = srv.daemons(1);
    assert_eq!(daemons.len(), 1, "{daemons:?}");
    let maps = procs::maps(daemons[0].pid).unwrap_or_default();
    assert!(maps.contains("/handler.so"), "handler not mapped:\n{maps}");
    srv.stop();
}

#[test]
fn headers_in_and_out() {
    require!(venv);
    let srv = TestServer::builder(&built("tests/apps/native/headers.rs")).start();
    let resp = srv.request(
        "GET",
        "/headers",
        &[
            ("X-Probe", "hello probe"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Content-Type", "text/x-test"),
        ],
        None,
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.kv("probe").as_deref(), Some("hello probe"), "{resp:?}");
    assert_eq!(resp.kv("multi").as_deref(), Some("one, two"), "{resp:?}");
    assert_eq!(resp.kv("content_type").as_deref(), Some("text/x-test"));
    assert_eq!(
        resp.kv("header:X-Probe").as_deref(),
        Some("hello probe"),
        "{resp:?}"
    );
    assert_eq!(resp.header("X-Answer"), Some("got hello probe"));
    let cookies: Vec<&str> = resp
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Set-Cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        cookies,
        ["a=1; Path=/", "b=2; Path=/; HttpOnly"],
        "{resp:?}"
    );

    // A streamed body with its own Content-Length: the write that completes it ends the
    // response; a write past it fails in the handler and is logged, and the client still gets
    // exactly the declared body.
    for path in ["/declared", "/declared?extra"] {
        let resp = srv.get(path);
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(resp.header("Content-Length"), Some("10"), "{path}");
        assert_eq!(resp.body, b"0123456789", "{path}");
    }
    // The daemon logs it after the response is complete, so wait for it.
    let excess = |l: &&str| l.contains("RSWSGI0508:") && l.contains("Content-Length of 10");
    let log = semantics::wait_log(&srv, |log| log.lines().any(|l| excess(&l)));
    assert_eq!(log.lines().filter(excess).count(), 1, "{log}");
    // A Status header is refused by the module (the status is the response's own): 500, and
    // the header never reaches the client.
    let resp = srv.get("/status-header");
    assert_eq!(resp.status, 500, "{resp:?}");
    assert!(resp.header("Status").is_none(), "{resp:?}");
    assert!(!resp.text().contains("accepted"), "{resp:?}");
    let needle = "RSWSGI0106: bad response headers from the application: the application sent a \
                  Status header ('404 Not Found')";
    let log = semantics::wait_log(&srv, |log| log.contains(needle));
    assert!(log.contains(needle), "{log}");
    srv.stop();
}

/// Deterministic pseudo-random bytes (xorshift64), generated piece by piece.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A response head read from a raw socket, the body left in the reader.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn line(r: &mut impl BufRead) -> io::Result<String> {
    let mut s = String::new();
    if r.read_line(&mut s)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
    }
    Ok(s.trim_end().to_owned())
}

fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let status_line = line(r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let l = line(r)?;
        if l.is_empty() {
            return Ok(Head { status, headers });
        }
        let (k, v) = l.split_once(':').expect("header line");
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
}

/// Reads the body (chunked, Content-Length or to the end), handing each piece to `data`
/// as it arrives from the socket.
fn read_body(r: &mut impl BufRead, head: &Head, mut data: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0; 64 * 1024];
    let mut copy = |r: &mut dyn BufRead, mut left: Option<usize>| -> io::Result<()> {
        while left != Some(0) {
            let want = left.map_or(buf.len(), |l| l.min(buf.len()));
            let n = r.read(&mut buf[..want])?;
            if n == 0 {
                return match left {
                    None => Ok(()),
                    Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body")),
                };
            }
            data(&buf[..n]);
            left = left.map(|l| l - n);
        }
        Ok(())
    };
    let chunked = head
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let size = line(r)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            if size == 0 {
                while !line(r)?.is_empty() {}
                return Ok(());
            }
            copy(r, Some(size))?;
            assert_eq!(line(r)?, "", "chunk not followed by CRLF");
        }
    }
    match head.header("Content-Length") {
        Some(len) => copy(r, Some(len.parse().expect("Content-Length"))),
        None => copy(r, None),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream
}

#[test]
fn upload_64_mib_is_streamed_back() {
    require!(venv);
    const TOTAL: usize = 64 << 20;
    // Over express's default --limit-request-body (mod_wsgi-express's 10 MiB).
    let srv = TestServer::builder(&built("examples/native/wsgi.rs"))
        .limit_request_body(0)
        .start();
    let stream = connect(srv.addr);
    let mut writer = stream.try_clone().expect("clone socket");
    let addr = srv.addr;
    // The upload is generated as it is sent and the echo hashed as it arrives: neither side
    // ever holds the 64 MiB, and reading while writing is required because the handler
    // streams the body back while it reads it.
    let sender = thread::spawn(move || -> io::Result<String> {
        write!(
            writer,
            "POST /echo HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {TOTAL}\r\n\r\n"
        )?;
        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        let mut hash = Sha256::new();
        let mut piece = vec![0; 256 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            noise.fill(&mut piece);
            writer.write_all(&piece)?;
            hash.update(&piece);
            sent += piece.len();
        }
        writer.flush()?;
        Ok(hex(&hash.finalize()))
    });
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader).expect("response head");
    assert_eq!(head.status, 200, "{:?}", head.headers);
    assert_eq!(
        head.header("Content-Type"),
        Some("application/octet-stream")
    );
    let mut hash = Sha256::new();
    let mut received = 0;
    read_body(&mut reader, &head, |d| {
        hash.update(d);
        received += d.len();
    })
    .expect("echoed body");
    let sent = sender.join().expect("sender").expect("sending the upload");
    assert_eq!(received, TOTAL);
    assert_eq!(hex(&hash.finalize()), sent, "echo differs from the upload");
    // The daemon is still fine afterwards.
    assert_eq!(srv.get("/").status, 200);
    srv.stop();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn streamed_response_arrives_incrementally() {
    require!(venv);
    let srv = example();
    let mut stream = connect(srv.addr);
    let start = Instant::now();
    write!(
        stream,
        "GET /stream HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        srv.addr
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader).expect("response head");
    assert_eq!(head.status, 200, "{:?}", head.headers);
    // When each line is complete (the handler writes one every 200 ms).
    let mut body = Vec::new();
    let mut arrivals = Vec::new();
    read_body(&mut reader, &head, |d| {
        body.extend_from_slice(d);
        let lines = body.iter().filter(|&&b| b == b'\n').count();
        while arrivals.len() < lines {
            arrivals.push(start.elapsed());
        }
    })
    .expect("streamed body");
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    assert_eq!(arrivals.len(), 5);
    // Nominally 800 ms between the first line and the last; buffered, they would arrive
    // together at the end.
    assert!(
        arrivals[4] - arrivals[0] >= Duration::from_millis(500),
        "lines arrived at {arrivals:?}: not streamed"
    );
    assert!(
        arrivals[2] - arrivals[0] >= Duration::from_millis(200),
        "lines arrived at {arrivals:?}: not streamed"
    );
    srv.stop();
}

#[test]
fn panic_is_a_500_and_the_daemon_keeps_serving() {
    require!(venv);
    let srv = example();
    let pid_before: Vec<i32> = srv.daemons(1).iter().map(|p| p.pid).collect();
    let resp = srv.get("/panic");
    assert_eq!(resp.status, 500, "{resp:?}");
    for _ in 0..3 {
        let resp = srv.get("/");
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.text(), "Hello from Rust!\n");
    }
    let pid_after: Vec<i32> = srv.daemons(1).iter().map(|p| p.pid).collect();
    assert_eq!(pid_before, pid_after, "the daemon was replaced");
    assert!(
        procs::wait_until(Duration::from_secs(10), || srv
            .root
            .read_error_log()
            .contains("this route panics on purpose")),
        "no error-log line for the panic:\n{}",
        srv.logs()
    );
    srv.stop();
}

/// `ABI_VERSION` as the SDK source declares it.
fn sdk_abi_version() -> u32 {
    let abi = std::fs::read_to_string(repo_root().join("crates/sdk/src/abi.rs")).unwrap();
    abi.lines()
        .find_map(|l| l.strip_prefix("pub const ABI_VERSION: u32 = "))
        .and_then(|v| v.trim_end_matches(';').parse().ok())
        .expect("ABI_VERSION in crates/sdk/src/abi.rs")
}

#[test]
fn wrong_abi_version_is_refused() {
    require!(venv);
    // Built like any handler; it declares ABI version 999 instead of the SDK's.
    let library = built("tests/apps/native/wrong_abi.rs");
    // Mounted under /app so that readiness can be polled at / (the empty document root)
    // while the daemon keeps failing.
    let srv = TestServer::builder(&library)
        .mount_point("/app")
        .ready_path("/")
        .start();
    // A request meanwhile waits for a daemon that never comes up (connect-timeout, 15 s by
    // default) and must not succeed.
    let addr = srv.addr;
    let request = thread::spawn(move || common::http::get(addr, "/app/"));
    let expected = format!(
        "was built with rswsgi handler ABI version 999, but this rswsgi-daemon speaks version {}",
        sdk_abi_version()
    );
    assert!(
        procs::wait_until(Duration::from_secs(20), || srv
            .root
            .read_error_log()
            .contains(&expected)),
        "no error-log line saying {expected:?}:\n{}",
        srv.logs()
    );
    let log = srv.root.read_error_log();
    let line = log.lines().find(|l| l.contains(&expected)).unwrap();
    assert!(line.contains("handler.so"), "{line}");
    assert!(line.contains("express build-handler"), "{line}");
    let resp = request.join().unwrap().expect("GET /app/");
    assert_eq!(resp.status, 503, "{resp:?}\n{}", srv.logs());
    srv.stop();
}

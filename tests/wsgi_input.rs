//! wsgi.input through real Apache: every read method, EOF at Content-Length, 100-continue on
//! the first read, chunked bodies (valid, malformed, refused), LimitRequestBody, truncated
//! uploads, and 25 pipelined requests on one connection.

mod common;

use std::time::{Duration, Instant};

use common::raw::{chunked, head, RawConn};
use common::semantics::{self, events, pseudo_random};
use common::sha256_hex;

/// Text with lines of varying length (some long), and no final newline.
fn lines_body(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while out.len() < len {
        let line_len = (i * 37) % 300 + if i.is_multiple_of(50) { 70_000 } else { 0 };
        out.extend((0..line_len).map(|j| b'a' + ((i + j) % 26) as u8));
        out.push(b'\n');
        i += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn every_read_method_streams_the_body_to_eof() {
    require!(venv);
    let srv = semantics::builder().start();
    let body = lines_body(300_000);
    let sha = sha256_hex(&body);
    let newlines = body.iter().filter(|&&c| c == b'\n').count();
    let cases: &[(&str, Option<usize>)] = &[
        ("mode=read", Some(1)),
        ("mode=read_minus1", Some(1)),
        ("mode=read_none", Some(1)),
        ("mode=read_n&size=7", Some(body.len().div_ceil(7))),
        ("mode=read_n&size=1000", Some(body.len().div_ceil(1000))),
        (
            "mode=read_n&size=100000",
            Some(body.len().div_ceil(100_000)),
        ),
        ("mode=read_n&size=10000000", Some(1)),
        // The last line has no newline: one more piece.
        ("mode=readline", Some(newlines + 1)),
        ("mode=readline&size=10", None),
        ("mode=readlines", Some(1)),
        ("mode=readlines&size=1000", None),
        ("mode=iter", Some(newlines + 1)),
    ];
    for (q, pieces) in cases {
        let resp = srv.post(&format!("/input?{q}"), &body);
        assert_eq!(resp.status, 200, "{q}: {resp:?}");
        assert_eq!(resp.kv("len"), Some(body.len().to_string()), "{q}");
        assert_eq!(resp.kv("sha256").as_deref(), Some(sha.as_str()), "{q}");
        // After EOF: read(10), read() and readline() all give b''.
        assert_eq!(resp.kv("after").as_deref(), Some("[0, 0, 0]"), "{q}");
        if let Some(p) = pieces {
            assert_eq!(resp.kv("pieces"), Some(p.to_string()), "{q}");
        }
    }
    // No body at all, and an empty body.
    let resp = srv.get("/input?mode=read");
    assert_eq!(resp.kv("len").as_deref(), Some("0"), "{resp:?}");
    let resp = srv.post("/input?mode=readline", b"");
    assert_eq!(resp.kv("len").as_deref(), Some("0"), "{resp:?}");
    srv.stop();
}

#[test]
fn expect_100_continue_is_answered_on_the_first_read_only() {
    require!(venv);
    let srv = semantics::builder().start();
    // The app waits 500 ms before reading: "100 Continue" must not come before.
    let mut c = RawConn::connect(srv.addr);
    let started = Instant::now();
    c.send(&head(
        "POST",
        "/expect?delay=500",
        &[("Content-Length", "5"), ("Expect", "100-continue")],
    ))
    .unwrap();
    let interim = c.read_head().unwrap();
    let waited = started.elapsed();
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(
        waited >= Duration::from_millis(450),
        "100 Continue came {waited:?} after the request, before the application read"
    );
    c.send(b"hello").unwrap();
    let resp = c.read_response(false).unwrap();
    assert_eq!(
        (resp.status, resp.kv("len")),
        (200, Some("5".into())),
        "{resp:?}"
    );

    // An application that never reads: no 100 Continue, just the response (and the
    // connection is not kept alive, since the body was never sent).
    c.send(&head(
        "POST",
        "/noread",
        &[("Content-Length", "5"), ("Expect", "100-continue")],
    ))
    .unwrap();
    let resp = c.read_head().unwrap();
    assert_eq!(
        resp.status, 200,
        "no 100 Continue for an unread body: {resp:?}"
    );
    srv.stop();
}

#[test]
fn chunked_bodies_refused_streamed_or_rejected() {
    require!(venv);
    let srv = semantics::builder().start();
    let data = pseudo_random(150_000, 1);

    // WSGIChunkedRequest Off (the default): 411.
    let mut c = RawConn::connect(srv.addr);
    let mut req = head("POST", "/input", &[("Transfer-Encoding", "chunked")]);
    req.extend(chunked(b"hello", 5));
    c.send(&req).unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 411);

    // WSGIChunkedRequest On: streamed to EOF, whatever the chunk sizes; extensions and
    // trailers are fine.
    for size in [1usize, 1000, 65536, 200_000] {
        let mut c = RawConn::connect(srv.addr);
        let mut req = head(
            "POST",
            "/chunked/input",
            &[("Transfer-Encoding", "chunked")],
        );
        let body = chunked(&data[..if size == 1 { 3000 } else { data.len() }], size);
        req.extend(body);
        c.send(&req).unwrap();
        let resp = c.read_response(false).unwrap();
        let expect = &data[..if size == 1 { 3000 } else { data.len() }];
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(
            resp.kv("sha256"),
            Some(sha256_hex(expect)),
            "chunks of {size}"
        );
    }
    let mut c = RawConn::connect(srv.addr);
    let mut req = head(
        "POST",
        "/chunked/input",
        &[("Transfer-Encoding", "chunked")],
    );
    req.extend(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
    c.send(&req).unwrap();
    let resp = c.read_response(false).unwrap();
    assert_eq!(resp.kv("len").as_deref(), Some("11"), "{resp:?}");

    // Malformed chunk sizes: 400, and the application saw OSError (never a short EOF).
    let mut c = RawConn::connect(srv.addr);
    let mut req = head(
        "POST",
        "/chunked/upload-abort?key=malformed",
        &[("Transfer-Encoding", "chunked")],
    );
    req.extend(b"5\r\nhello\r\nzz\r\nbad\r\n0\r\n\r\n");
    c.send(&req).unwrap();
    let resp = c.read_response(false).unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");
    let ev = events(&srv, "malformed", Some("OSError"));
    assert!(ev.iter().any(|e| e.starts_with("OSError")), "{ev:?}");
    assert!(!ev.iter().any(|e| e.starts_with("eof")), "{ev:?}");

    // Other transfer codings: 501 when chunked is last, 400 (Apache's core) otherwise.
    for (te, status) in [("gzip, chunked", 501), ("gzip", 400)] {
        let mut c = RawConn::connect(srv.addr);
        let mut req = head("POST", "/chunked/input", &[("Transfer-Encoding", te)]);
        req.extend(chunked(b"hello", 5));
        c.send(&req).unwrap();
        let resp = c.read_response(false).unwrap();
        assert_eq!(resp.status, status, "Transfer-Encoding: {te}: {resp:?}");
    }
    srv.stop();
}

#[test]
fn limit_request_body_is_413_and_the_daemon_survives() {
    require!(venv);
    let srv = semantics::builder().start();
    // A declared length over the limit: 413 before the application runs.
    let resp = srv.post("/limited/upload-abort?key=declared", &vec![b'x'; 200_000]);
    assert_eq!(resp.status, 413, "{resp:?}");
    assert!(events(&srv, "declared", None).is_empty());

    // A chunked body that grows past the limit: 413; the application saw OSError.
    let mut c = RawConn::connect(srv.addr);
    c.send(&head(
        "POST",
        "/limited/upload-abort?key=chunked",
        &[("Transfer-Encoding", "chunked")],
    ))
    .unwrap();
    let block = chunked(&[b'y'; 10_000], 10_000);
    let block = &block[..block.len() - 5]; // without the last chunk
    for _ in 0..30 {
        if c.send(block).is_err() {
            break; // Apache may close before all of it is sent
        }
    }
    let resp = c.read_response(false).unwrap();
    assert_eq!(resp.status, 413, "{resp:?}");
    let ev = events(&srv, "chunked", Some("OSError"));
    assert!(ev.iter().any(|e| e.starts_with("OSError")), "{ev:?}");

    // Within the limit all is well, and the daemon is still the same healthy process.
    let resp = srv.post("/limited/hash", &vec![b'z'; 50_000]);
    assert_eq!(resp.kv("len").as_deref(), Some("50000"), "{resp:?}");
    let log = srv.root.read_error_log();
    assert!(
        !log.contains("panicked") && !log.contains("exited"),
        "{log}"
    );
    srv.stop();
}

#[test]
fn truncated_upload_raises_oserror_in_the_app() {
    require!(venv);
    let srv = semantics::builder().start();
    // Content-Length body cut short by the client closing the connection.
    let mut c = RawConn::connect(srv.addr);
    c.send(&head(
        "POST",
        "/upload-abort?key=cl",
        &[("Content-Length", "1000000")],
    ))
    .unwrap();
    c.send(&pseudo_random(300_000, 2)).unwrap();
    let ev = events(&srv, "cl", Some("read 262144"));
    assert!(ev.contains(&"read 262144".to_string()), "{ev:?}");
    drop(c);
    // read(65536) blocks for the rest of its block, then raises: never a short body.
    let ev = events(&srv, "cl", Some("OSError"));
    assert!(
        ev.last()
            .is_some_and(|e| e.starts_with("OSError after 262144")
                && e.contains("closed the connection before sending the whole request body")),
        "the app must see OSError, never a short body: {ev:?}"
    );

    // A chunked body cut short in the middle of a chunk.
    let mut c = RawConn::connect(srv.addr);
    let mut req = head(
        "POST",
        "/chunked/upload-abort?key=chunked",
        &[("Transfer-Encoding", "chunked")],
    );
    req.extend(b"10000\r\n");
    req.extend(vec![b'q'; 30_000]);
    c.send(&req).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // let it arrive before the close
    drop(c);
    let ev = events(&srv, "chunked", Some("OSError"));
    assert!(ev.iter().any(|e| e.starts_with("OSError")), "{ev:?}");
    assert!(!ev.iter().any(|e| e.starts_with("eof")), "{ev:?}");
    srv.stop();
}

#[test]
fn twenty_five_pipelined_requests() {
    require!(venv);
    let srv = semantics::builder().start();
    let mut c = RawConn::connect(srv.addr);
    let mut all = Vec::new();
    let mut expect = Vec::new();
    for i in 0..25 {
        match i % 5 {
            0 => {
                all.extend(head("GET", "/one-item", &[]));
                expect.push((200, Some(b"hello world\n".to_vec()), false));
            }
            1 => {
                let body = pseudo_random(1000 + i * 1000, i as u64);
                all.extend(head(
                    "POST",
                    "/input?mode=read",
                    &[("Content-Length", &body.len().to_string())],
                ));
                all.extend(&body);
                let want = format!(
                    "len={}\nsha256={}\npieces=1\nafter=[0, 0, 0]\n",
                    body.len(),
                    sha256_hex(&body)
                );
                expect.push((200, Some(want.into_bytes()), false));
            }
            2 => {
                // A body the application never reads: Apache discards it.
                all.extend(head("POST", "/noread", &[("Content-Length", "3000")]));
                all.extend(vec![b'n'; 3000]);
                expect.push((200, Some(b"did not read\n".to_vec()), false));
            }
            3 => {
                all.extend(head("HEAD", "/head", &[]));
                expect.push((200, None, true));
            }
            _ => {
                all.extend(head(
                    "POST",
                    "/chunked/input?mode=readline",
                    &[("Transfer-Encoding", "chunked")],
                ));
                all.extend(chunked(b"line one\nline two\n", 4));
                let want = format!(
                    "len=18\nsha256={}\npieces=2\nafter=[0, 0, 0]\n",
                    sha256_hex(b"line one\nline two\n")
                );
                expect.push((200, Some(want.into_bytes()), false));
            }
        }
    }
    all.extend(head("GET", "/one-item", &[("Connection", "close")]));
    expect.push((200, Some(b"hello world\n".to_vec()), false));
    c.send(&all).unwrap();
    for (i, (status, body, head_only)) in expect.into_iter().enumerate() {
        let resp = c
            .read_response(head_only)
            .unwrap_or_else(|e| panic!("response {i}: {e}"));
        assert_eq!(resp.status, status, "response {i}: {resp:?}");
        assert!(resp.complete, "response {i}: {resp:?}");
        if let Some(b) = body {
            assert_eq!(resp.text(), String::from_utf8_lossy(&b), "response {i}");
        }
    }
    assert!(c.closed_within(Duration::from_secs(10)));
    srv.stop();
}

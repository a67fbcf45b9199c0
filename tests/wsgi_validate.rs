//! The semantics app wrapped in `wsgiref.validate.validator`, served by a daemon whose Python
//! runs with warnings as errors (`PYTHONWARNINGS=error`): no assertion, no warning.

mod common;

use common::raw::{chunked, head, RawConn};
use common::semantics;

#[test]
fn wsgiref_validator_finds_nothing() {
    require!(venv);
    let srv = semantics::builder()
        .env("PYTHONWARNINGS", "error")
        .ready_path("/validated/environ")
        .start();
    let body: Vec<u8> = (0..200_000u32).map(|i| b"abc\n"[i as usize % 4]).collect();
    let gets = [
        "/validated/environ?x=1",
        "/validated/one-item",
        "/validated/generator",
        "/validated/stream?n=3&interval=10",
        "/validated/close?key=v",
        "/validated/multi",
        "/validated/head",
        "/validated/on/head",
        "/validated/file",
        "/validated/file?kind=bytesio",
        "/validated/file?kind=readonly",
        "/validated/status?s=201%2520Created",
        "/validated/status?s=404%2520Not%2520Found",
        "/validated/header?name=X-Fine&value=ok",
        "/validated/input?mode=read_n&size=100",
    ];
    for path in gets {
        let resp = srv.get(path);
        assert!(resp.status < 500, "{path}: {resp:?}\n{}", srv.logs());
    }
    // exc_info replacing the head before output (its 500 is the application's own).
    let resp = srv.get("/validated/exc-before");
    assert_eq!((resp.status, resp.reason.as_str()), (500, "Replaced"));
    let resp = srv.request("HEAD", "/validated/head", &[], None);
    assert_eq!(resp.status, 200);
    for mode in [
        "read_n&size=4096",
        "readline",
        "readline&size=3",
        "readlines",
        "readlines&size=100",
        "iter",
    ] {
        let resp = srv.post(&format!("/validated/input?mode={mode}"), &body);
        assert_eq!(resp.status, 200, "{mode}: {resp:?}");
        assert_eq!(resp.kv("len"), Some(body.len().to_string()), "{mode}");
    }
    let resp = srv.post("/validated/hash", &body);
    assert_eq!(resp.kv("len"), Some(body.len().to_string()));
    // Chunked input and the write() callable, under validation too.
    let mut c = RawConn::connect(srv.addr);
    let mut req = head(
        "POST",
        "/validated/chunked/input?mode=readline",
        &[("Transfer-Encoding", "chunked"), ("Connection", "close")],
    );
    req.extend(chunked(b"one\ntwo\n", 3));
    c.send(&req).unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let mut w = RawConn::connect(srv.addr);
    w.send(&head(
        "GET",
        "/validated/write?key=vw",
        &[("Connection", "close")],
    ))
    .unwrap();
    assert_eq!(w.read_head().unwrap().status, 200);
    assert_eq!(w.read_chunk().unwrap().as_deref(), Some(&b"first\n"[..]));
    assert_eq!(srv.get("/release?key=vw").status, 200);
    assert_eq!(w.read_chunk().unwrap().as_deref(), Some(&b"second\n"[..]));

    // The daemon's Python really runs with warnings as errors.
    let env = semantics::environ(&srv.get("/validated/environ"));
    assert_eq!(
        env.get("python.warnoptions").map(|v| v.repr),
        Some("['error']".into())
    );

    let log = srv.root.read_error_log();
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "Warning",
        "Traceback",
        "garbage collected",
    ] {
        assert!(
            !log.contains(bad),
            "the validator complained ({bad}):\n{log}"
        );
    }
    // And the validator is really there: read() without a size is refused by it.
    let resp = srv.post("/validated/input?mode=read", b"x");
    assert_eq!(resp.status, 500, "{resp:?}");
    let log = semantics::wait_log(&srv, |l| l.contains("AssertionError"));
    assert!(log.contains("AssertionError"), "{log}");
    srv.stop();
}

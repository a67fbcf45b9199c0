//! The response side of PEP 3333 through real Apache: start_response validation and
//! hop-by-hop headers, exc_info, repeated headers, write(), Content-Length rules, errors
//! before and after output, and HEAD (WSGIMapHEADToGET).

mod common;

use std::time::Duration;

use common::raw::{head, one_request, RawConn, RawResponse};
use common::semantics::{self, events};
use common::TestServer;

/// Percent-encodes `b` twice: the app's query parser decodes once, then it decodes the
/// bytes itself (so any byte, including CR, LF and 0xE9, reaches it exactly).
fn enc2(b: &[u8]) -> String {
    b.iter().map(|c| format!("%25{c:02X}")).collect()
}

/// One request on its own connection, read raw.
fn raw(srv: &TestServer, method: &str, path: &str, extra: &[(&str, &str)]) -> RawResponse {
    one_request(srv.addr, method, path, extra)
}

#[test]
fn invalid_status_and_headers_are_500_and_never_reach_the_wire() {
    require!(venv);
    let srv = semantics::builder().start();
    let bad_status: &[(&[u8], &str, &str)] = &[
        (b"200", "latin-1", "invalid status"),
        (b"20 OK", "latin-1", "invalid status"),
        (b"2000 OK", "latin-1", "invalid status"),
        (b"OK 200", "latin-1", "invalid status"),
        (b"200 a\rEvil: 1", "latin-1", "control character"),
        (b"100 Continue", "latin-1", "below 200"),
        ("200 \u{20ac}uro".as_bytes(), "utf-8", "latin-1"),
    ];
    for (status, enc, why) in bad_status {
        let path = format!("/status?s={}&enc={enc}", enc2(status));
        let resp = raw(&srv, "GET", &path, &[]);
        assert_eq!(
            resp.status,
            500,
            "status {:?}: {resp:?}",
            String::from_utf8_lossy(status)
        );
        assert!(resp.header("Evil").is_none(), "{resp:?}");
        assert!(!resp.text().contains("custom status"), "{resp:?}");
        let log = semantics::wait_log(&srv, |l| l.contains(why));
        assert!(log.contains(why), "no log line saying {why:?}:\n{log}");
    }
    let bad_headers: &[(&[u8], &[u8], &str, &str)] = &[
        (b"X Bad", b"v", "latin-1", "not an HTTP token"),
        (b"X:Bad", b"v", "latin-1", "not an HTTP token"),
        (b"", b"v", "latin-1", "invalid header name"),
        (
            b"X-Split",
            b"a\r\nSet-Cookie: evil=1",
            "latin-1",
            "control character",
        ),
        (b"X-Ctl", b"a\x01b", "latin-1", "control character"),
        (
            b"X-Euro",
            "\u{20ac}".as_bytes(),
            "utf-8",
            "not latin-1 encodable",
        ),
    ];
    for (name, value, enc, why) in bad_headers {
        let path = format!(
            "/header?name={}&value={}&enc={enc}",
            enc2(name),
            enc2(value)
        );
        let resp = raw(&srv, "GET", &path, &[]);
        assert_eq!(
            resp.status,
            500,
            "{:?}: {resp:?}",
            String::from_utf8_lossy(name)
        );
        assert!(resp.header("Set-Cookie").is_none(), "{resp:?}");
        assert!(!resp.text().contains("header accepted"), "{resp:?}");
        let log = semantics::wait_log(&srv, |l| l.contains(why));
        assert!(log.contains(why), "no log line saying {why:?}:\n{log}");
    }
    for path in ["/header-bytes", "/header-tuple"] {
        let resp = raw(&srv, "GET", path, &[]);
        assert_eq!(resp.status, 500, "{path}: {resp:?}");
        assert!(!resp.text().contains("accepted"), "{resp:?}");
    }
    // Hop-by-hop headers from the application: 500, logged.
    for name in [
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authenticate",
        "Proxy-Whatever",
    ] {
        let path = format!("/header?name={name}&value=close");
        let resp = raw(&srv, "GET", &path, &[]);
        assert_eq!(resp.status, 500, "{name}: {resp:?}");
        assert!(!resp.text().contains("header accepted"), "{resp:?}");
        let needle = format!("hop-by-hop header \"{name}\"");
        let log = semantics::wait_log(&srv, |l| l.contains(&needle));
        assert!(log.contains(&needle), "{needle}:\n{log}");
    }
    // Valid latin-1 values pass byte for byte.
    let resp = raw(
        &srv,
        "GET",
        &format!("/header?name=X-Fine&value={}", enc2(b"caf\xe9\tx")),
        &[],
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.header("X-Fine").is_some_and(|v| v.starts_with("caf")),
        "{resp:?}"
    );
    srv.stop();
}

#[test]
fn exc_info_second_call_and_repeated_headers() {
    require!(venv);
    let srv = semantics::builder().start();
    // exc_info before output: status and headers are replaced.
    let resp = raw(&srv, "GET", "/exc-before", &[]);
    assert_eq!(
        (resp.status, resp.reason.as_str()),
        (500, "Replaced"),
        "{resp:?}"
    );
    assert_eq!(resp.header("X-Replaced"), Some("1"));
    assert!(resp.header("X-Original").is_none(), "{resp:?}");
    assert_eq!(resp.text(), "replaced\n");

    // exc_info after output: re-raised, so the response is aborted (no clean end).
    let resp = raw(&srv, "GET", "/exc-after", &[]);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "first block\n");
    assert!(
        !resp.complete,
        "an aborted response must not look complete: {resp:?}"
    );
    let log = semantics::wait_log(&srv, |l| l.contains("raised after output began"));
    assert!(log.contains("raised after output began"), "{log}");

    // A second start_response without exc_info raises.
    let resp = raw(&srv, "GET", "/twice", &[]);
    assert_eq!(resp.text(), "second call raised RuntimeError\n", "{resp:?}");

    // Repeated response headers stay separate.
    let resp = raw(&srv, "GET", "/multi", &[]);
    assert_eq!(
        resp.headers_named("Set-Cookie"),
        ["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(resp.headers_named("X-Multi"), ["one", "two"]);
    srv.stop();
}

#[test]
fn write_sends_before_it_returns() {
    require!(venv);
    let srv = semantics::builder().start();
    let mut c = RawConn::connect(srv.addr);
    c.send(&head("GET", "/write?key=w1", &[("Connection", "close")]))
        .unwrap();
    let resp = c.read_head().unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.is_chunked(), "{resp:?}");
    // The application is now blocked until /release: "first" must already be here.
    c.set_read_timeout(Duration::from_secs(10));
    let first = c.read_chunk().unwrap();
    assert_eq!(first.as_deref(), Some(&b"first\n"[..]));
    assert_eq!(srv.get("/release?key=w1").status, 200);
    assert_eq!(c.read_chunk().unwrap().as_deref(), Some(&b"second\n"[..]));
    assert_eq!(c.read_chunk().unwrap(), None);
    srv.stop();
}

#[test]
fn content_length_rules() {
    require!(venv);
    let srv = semantics::builder().start();
    // More than declared: cut at Content-Length, logged; the response itself is complete.
    let resp = raw(&srv, "GET", "/cl-excess", &[]);
    assert_eq!(resp.header("Content-Length"), Some("5"));
    assert_eq!(resp.text(), "01234");
    assert!(resp.complete);
    let log = semantics::wait_log(&srv, |l| l.contains("more than its Content-Length"));
    assert!(
        log.contains("more than its Content-Length of 5 bytes"),
        "{log}"
    );

    // Fewer than declared: the client connection is closed early, logged.
    let resp = raw(&srv, "GET", "/cl-short", &[]);
    assert_eq!(resp.text(), "01234");
    assert!(!resp.complete, "{resp:?}");
    let log = semantics::wait_log(&srv, |l| l.contains("sent 5 of the 10 bytes"));
    assert!(log.contains("sent 5 of the 10 bytes"), "{log}");

    // A one-item list without Content-Length gets one.
    let resp = raw(&srv, "GET", "/one-item", &[]);
    assert_eq!(resp.header("Content-Length"), Some("12"), "{resp:?}");
    assert!(!resp.is_chunked());

    // Otherwise: chunked for HTTP/1.1 (empty blocks skipped) ...
    let resp = raw(&srv, "GET", "/generator", &[]);
    assert!(resp.is_chunked() && resp.complete, "{resp:?}");
    assert_eq!(resp.text(), "one\ntwo\n");
    // ... and delimited by closing the connection for HTTP/1.0.
    let mut c = RawConn::connect(srv.addr);
    c.send(b"GET /generator HTTP/1.0\r\nHost: test.invalid\r\n\r\n")
        .unwrap();
    let resp = c.read_response(false).unwrap();
    assert!(
        !resp.is_chunked() && resp.header("Content-Length").is_none(),
        "{resp:?}"
    );
    assert_eq!(resp.text(), "one\ntwo\n");
    srv.stop();
}

#[test]
fn errors_before_and_after_output() {
    require!(venv);
    let srv = semantics::builder().start();
    let resp = raw(&srv, "GET", "/raise-before", &[]);
    assert_eq!(resp.status, 500, "{resp:?}");
    assert!(
        !resp.text().contains("raised before"),
        "no traceback on the wire"
    );
    let log = semantics::wait_log(&srv, |l| {
        l.contains("RuntimeError: raised before the first block")
    });
    assert!(log.contains("Traceback"), "{log}");
    assert!(
        log.contains("RuntimeError: raised before the first block"),
        "{log}"
    );

    let resp = raw(&srv, "GET", "/raise-after", &[]);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "first block\n");
    assert!(!resp.complete, "the connection must be aborted: {resp:?}");
    let log = semantics::wait_log(&srv, |l| l.contains("raised after the first block"));
    assert!(
        log.contains("RuntimeError: raised after the first block"),
        "{log}"
    );
    // The server keeps serving.
    assert_eq!(srv.get("/one-item").status, 200);
    srv.stop();
}

#[test]
fn close_is_called_on_completion_and_on_error() {
    require!(venv);
    let srv = semantics::builder().start();
    let resp = raw(&srv, "GET", "/close?key=done", &[]);
    assert_eq!(resp.text(), "a\nb\nc\n");
    assert_eq!(events(&srv, "done", Some("close")), ["close"]);

    // The iterable raises after output began: aborted, and close() still runs.
    let resp = raw(&srv, "GET", "/close?key=mid&fail_at=1", &[]);
    assert_eq!(resp.text(), "a\n");
    assert!(!resp.complete, "{resp:?}");
    assert_eq!(events(&srv, "mid", Some("close")), ["close"]);

    // It raises before any output: 500, and close() runs.
    let resp = raw(&srv, "GET", "/close?key=first&fail_at=0", &[]);
    assert_eq!(resp.status, 500);
    assert_eq!(events(&srv, "first", Some("close")), ["close"]);
    srv.stop();
}

#[test]
fn head_requests_and_wsgi_map_head_to_get() {
    require!(venv);
    let srv = semantics::builder().start();
    // (prefix, what the application sees for HEAD)
    let cases = [
        ("", "HEAD"),             // Auto (the default), no content filter
        ("/on", "GET"),           // On
        ("/off", "HEAD"),         // Off
        ("/deflate", "GET"),      // Auto with DEFLATE as an output filter
        ("/deflate-off", "HEAD"), // Off, even with DEFLATE
    ];
    for (prefix, seen) in cases {
        let path = format!("{prefix}/head");
        let get = raw(&srv, "GET", &path, &[]);
        let mut c = RawConn::connect(srv.addr);
        c.send(&head("HEAD", &path, &[("Connection", "close")]))
            .unwrap();
        let headr = c.read_response(true).unwrap();
        let rest = c.read_rest(Duration::from_secs(10));
        assert!(
            rest.is_empty(),
            "{path}: HEAD response with a body: {rest:?}"
        );
        assert_eq!(get.status, 200, "{path}: {get:?}");
        assert_eq!(get.text(), "hello head\n");
        assert_eq!(headr.header("X-Method"), Some(seen), "{path}: {headr:?}");
        assert_eq!(get.header("X-Method"), Some("GET"));
        for h in ["Content-Type", "Content-Length", "Vary", "Content-Encoding"] {
            assert_eq!(
                get.header(h),
                headr.header(h),
                "{path}: {h}\n{get:?}\n{headr:?}"
            );
        }
    }
    srv.stop();
}

//! Behaviours where rswsgi differed from mod_wsgi, found by differential testing (issue 12).

mod common;

use common::raw::{head, one_request, RawConn, RawResponse};
use common::semantics;
use common::TestServer;

const APP: &str = "tests/apps/mod_wsgi_diffs.py";

/// One request on its own connection, read raw.
fn raw(srv: &TestServer, method: &str, path: &str, extra: &[(&str, &str)]) -> RawResponse {
    one_request(srv.addr, method, path, extra)
}

/// A `Status` header in `start_response`'s headers is not WSGI (wsgiref.validate refuses it:
/// the status is start_response's first argument). It is refused with a 500 and a log line
/// naming it, whatever its value, and never reaches the client.
#[test]
fn status_header_from_the_app_is_a_500() {
    require!(venv);
    let srv = TestServer::builder(APP).ready_path("/x").start();
    for value in ["200+OK", "404+Not+Found", "x"] {
        let resp = raw(&srv, "GET", &format!("/status-header?value={value}"), &[]);
        assert_eq!(resp.status, 500, "Status: {value}: {resp:?}");
        assert!(resp.header("Status").is_none(), "{resp:?}");
        assert!(!resp.text().contains("accepted"), "{resp:?}");
    }
    let needle = "the Status header cannot be used in a WSGI response";
    let log = semantics::wait_log(&srv, |l| l.contains(needle));
    assert!(
        log.contains(needle),
        "no log line saying {needle:?}:\n{log}"
    );
    // Other headers are still fine.
    let resp = raw(&srv, "GET", "/x", &[]);
    assert_eq!(resp.status, 200, "{resp:?}");
}

/// The value of `key` in the echo route's `key=value` lines.
fn echoed(resp: &RawResponse, key: &str) -> String {
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.kv(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", resp.text()))
}

/// A path whose percent-decoded bytes are not UTF-8 (latin-1 `%E9`) reaches the app, as with
/// mod_wsgi: PATH_INFO is the decoded bytes as latin-1 (PEP 3333), for a mount at `/` and at
/// a sub-path. It used to be a 404 from Apache (the module's URI match wanted UTF-8).
#[test]
fn non_utf8_path_is_passed_as_latin1() {
    require!(venv);
    // (mount, [(request path, SCRIPT_NAME, PATH_INFO)]) as the app's ascii() shows them.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        (
            "/",
            &[
                ("/caf%E9", "''", r"'/caf\xe9'"),
                ("/app/caf%E9/x%FF", "''", r"'/app/caf\xe9/x\xff'"),
                ("/caf%C3%A9", "''", r"'/caf\xc3\xa9'"),
                ("/plain", "''", "'/plain'"),
            ],
        ),
        (
            "/app",
            &[
                ("/app/caf%E9", "'/app'", r"'/caf\xe9'"),
                ("/app/%E9/%E9", "'/app'", r"'/\xe9/\xe9'"),
                ("/app/caf%C3%A9", "'/app'", r"'/caf\xc3\xa9'"),
                ("/app", "'/app'", "''"),
            ],
        ),
    ];
    for (mount, requests) in cases {
        let srv = TestServer::builder(APP).mount_point(mount).start();
        for (path, script_name, path_info) in *requests {
            let resp = raw(&srv, "GET", path, &[]);
            assert_eq!(echoed(&resp, "SCRIPT_NAME"), *script_name, "{mount} {path}");
            assert_eq!(echoed(&resp, "PATH_INFO"), *path_info, "{mount} {path}");
            assert_eq!(echoed(&resp, "PATH_INFO.type"), "str", "{mount} {path}");
        }
        if *mount == "/app" {
            // Not under the mount: Apache's own 404, as before.
            assert_eq!(raw(&srv, "GET", "/ap%E9", &[]).status, 404);
            assert_eq!(raw(&srv, "GET", "/app%E9", &[]).status, 404);
        }
        srv.stop();
    }
}

/// Asserts that no `Allow` header of `resp` is empty (RFC 9110 lets it be, but an empty one
/// says the resource allows no method at all, which is never true of a WSGI mount).
fn allow_is_never_empty(resp: &RawResponse, what: &str) {
    for allow in resp.headers_named("Allow") {
        assert!(!allow.trim().is_empty(), "{what}: empty Allow: {resp:?}");
    }
}

/// TRACE is Apache's: with `TraceEnable off` (express's default) the core refuses it with a
/// 405, and with `TraceEnable on` it echoes the request as `message/http`; the application
/// never sees it, as with mod_wsgi. The 405's `Allow` lists the methods the mount passes on;
/// it used to be empty (the core builds it from the methods declared for the request, and
/// it is refused before any handler could declare one). OPTIONS goes to the application.
#[test]
fn trace_is_apaches_and_allow_is_never_empty() {
    require!(venv);
    for (mount, path) in [("/", "/x"), ("/app", "/app/x")] {
        let srv = TestServer::builder(APP).mount_point(mount).start();
        let resp = raw(&srv, "TRACE", path, &[]);
        assert_eq!(resp.status, 405, "{mount}: {resp:?}");
        allow_is_never_empty(&resp, "TRACE, TraceEnable off");
        let allow = resp.header("Allow").unwrap_or_default().to_owned();
        for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
            assert!(
                allow.split(',').any(|m| m.trim() == method),
                "{method}: {allow:?}"
            );
        }
        assert!(!allow.contains("TRACE"), "{allow:?}");
        let resp = raw(&srv, "OPTIONS", path, &[]);
        assert_eq!(echoed(&resp, "REQUEST_METHOD"), "OPTIONS", "{resp:?}");
        allow_is_never_empty(&resp, "OPTIONS");
        let resp = raw(&srv, "OPTIONS", "*", &[]);
        assert_eq!(resp.status, 200, "{resp:?}");
        allow_is_never_empty(&resp, "OPTIONS *");
        srv.stop();
    }
    let srv = TestServer::builder(APP).directive("TraceEnable on").start();
    let resp = raw(&srv, "TRACE", "/x", &[("X-Probe", "p1")]);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.header("Content-Type"),
        Some("message/http"),
        "{resp:?}"
    );
    let echo = resp.text();
    assert!(echo.starts_with("TRACE /x HTTP/1.1\r\n"), "{echo:?}");
    assert!(echo.contains("X-Probe: p1\r\n"), "{echo:?}");
    assert!(!echo.contains("REQUEST_METHOD"), "the app saw it: {echo:?}");
    allow_is_never_empty(&resp, "TRACE, TraceEnable on");
    srv.stop();
}

/// A body with no Content-Length that is known, or turns out, to be empty goes out with
/// `Content-Length: 0`, not chunked: the module passes nothing to Apache's filters before the
/// end of the response, so the core's content-length filter sees the whole (empty) body at
/// once, as it does behind mod_wsgi. HEAD gets the head alone (the core drops a zero
/// Content-Length from a HEAD answer), and keep-alive framing stays right.
#[test]
fn empty_bodies_have_content_length_zero() {
    require!(venv);
    let srv = TestServer::builder(APP).ready_path("/x").start();
    let kinds = [
        "empty?kind=list",
        "empty?kind=bytes",
        "empty?kind=many",
        "empty?kind=tuple",
        "empty?kind=generator",
        "empty?kind=generator-empty-items",
        "empty?kind=closing",
        "empty-write",
    ];
    for kind in kinds {
        let path = format!("/{kind}");
        // Three on one keep-alive connection (GET, HEAD, GET), then HTTP/1.0.
        let mut c = RawConn::connect(srv.addr);
        for method in ["GET", "HEAD", "GET"] {
            c.send(&head(method, &path, &[])).unwrap();
            let resp = c.read_response(method == "HEAD").unwrap();
            assert_eq!(resp.status, 200, "{method} {path}: {resp:?}");
            assert!(!resp.is_chunked(), "{method} {path}: {resp:?}");
            if method == "GET" {
                assert_eq!(resp.header("Content-Length"), Some("0"), "{path}: {resp:?}");
            } else {
                assert!(
                    matches!(resp.header("Content-Length"), None | Some("0")),
                    "HEAD {path}: {resp:?}"
                );
            }
        }
        let mut c = RawConn::connect(srv.addr);
        c.send(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        let resp = c.read_response(false).unwrap();
        assert_eq!(
            resp.header("Content-Length"),
            Some("0"),
            "1.0 {path}: {resp:?}"
        );
        assert!(resp.complete && resp.body.is_empty(), "{resp:?}");
    }
    srv.stop();
}

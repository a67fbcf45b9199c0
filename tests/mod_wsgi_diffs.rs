//! Behaviours where rswsgi differed from mod_wsgi, found by differential testing (issue 12).

mod common;

use common::raw::{head, RawConn, RawResponse};
use common::semantics;
use common::TestServer;

const APP: &str = "tests/apps/mod_wsgi_diffs.py";

/// One request on its own connection, read raw.
fn raw(srv: &TestServer, method: &str, path: &str, extra: &[(&str, &str)]) -> RawResponse {
    let mut c = RawConn::connect(srv.addr);
    let mut headers = extra.to_vec();
    headers.push(("Connection", "close"));
    c.send(&head(method, path, &headers)).unwrap();
    c.read_response(method == "HEAD")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A `Status` header in `start_response`'s headers is not WSGI (wsgiref.validate refuses it:
/// the status is start_response's first argument). It is refused with a 500 and a log line
/// naming it, whatever its value, and never reaches the client.
#[test]
fn status_header_from_the_app_is_a_500() {
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

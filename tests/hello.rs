//! The raw WSGI hello example, end to end through httpd and a daemon.

mod common;

use common::TestServer;

#[test]
fn raw_wsgi_hello() {
    require!(venv);
    let srv = TestServer::builder("examples/hello/wsgi.py").start();
    let resp = srv.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello from rswsgi!\n");
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    // Any path under the mount point reaches the same application.
    let resp = srv.get("/some/where?x=1");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello from rswsgi!\n");
    srv.stop();
}

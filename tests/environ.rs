//! The WSGI environ: SCRIPT_NAME/PATH_INFO split, standard keys, and header spoofing.

mod common;

use common::TestServer;

#[test]
fn at_root_script_name_is_empty() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py").start();
    let resp = srv.get("/a/b?x=1&y=2");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.kv("SCRIPT_NAME").as_deref(),
        Some(""),
        "{}",
        resp.text()
    );
    assert_eq!(
        resp.kv("PATH_INFO").as_deref(),
        Some("/a/b"),
        "{}",
        resp.text()
    );
    assert_eq!(resp.kv("QUERY_STRING").as_deref(), Some("x=1&y=2"));
    assert_eq!(resp.kv("REQUEST_METHOD").as_deref(), Some("GET"));
    assert_eq!(resp.kv("wsgi.url_scheme").as_deref(), Some("http"));
    assert_eq!(
        resp.kv("mod_wsgi.process_group"),
        Some(format!("localhost:{}", srv.addr.port()))
    );
    assert_eq!(resp.kv("SERVER_PORT"), Some(srv.addr.port().to_string()));
    srv.stop();
}

#[test]
fn under_a_mount_point_script_name_is_the_mount() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py")
        .mount_point("/sub")
        .start();
    let resp = srv.get("/sub/a/b");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.kv("SCRIPT_NAME").as_deref(),
        Some("/sub"),
        "{}",
        resp.text()
    );
    assert_eq!(
        resp.kv("PATH_INFO").as_deref(),
        Some("/a/b"),
        "{}",
        resp.text()
    );
    // Outside the mount point the application is not reached.
    let resp = srv.get("/a/b");
    assert_eq!(resp.status, 404, "{resp:?}");
    srv.stop();
}

#[test]
fn underscore_headers_cannot_spoof_dashed_ones() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py").start();
    let resp = srv.request(
        "GET",
        "/",
        &[("X_Forwarded_For", "evil"), ("X-Probe-Header", "fine")],
        None,
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert!(
        !text.contains("HTTP_X_FORWARDED_FOR") && !text.contains("evil"),
        "an underscore header reached the app:\n{text}"
    );
    assert_eq!(
        resp.kv("HTTP_X_PROBE_HEADER").as_deref(),
        Some("fine"),
        "{text}"
    );
    srv.stop();
}

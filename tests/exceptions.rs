//! An exception in the application is a 500 for that request only.

mod common;

use common::TestServer;

#[test]
fn app_exception_is_500_then_next_request_is_200() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py")
        .processes(1)
        .start();
    let first = srv.get("/");
    assert_eq!(first.status, 200, "{first:?}");
    let pid = first.kv("probe.pid").expect("probe.pid");
    for _ in 0..3 {
        let resp = srv.get("/boom");
        assert_eq!(resp.status, 500, "{resp:?}");
        assert!(
            !resp.text().contains("raised on purpose"),
            "the traceback must not reach the client: {resp:?}"
        );
        let resp = srv.get("/");
        assert_eq!(resp.status, 200, "{resp:?}");
        // The exception did not cost the daemon its life.
        assert_eq!(resp.kv("probe.pid").as_deref(), Some(pid.as_str()));
    }
    assert!(
        srv.root.read_error_log().contains("raised on purpose"),
        "the exception should be logged:\n{}",
        srv.logs()
    );
    srv.stop();
}

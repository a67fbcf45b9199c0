//! The Python runtime an application sees under a virtualenv, through real Apache:
//! `sys.executable` is the venv's interpreter, so multiprocessing's spawn start method (a fresh
//! interpreter) works from a request.

mod common;

use common::{test_venv, TestServer};

#[test]
fn multiprocessing_spawn_works_from_a_request() {
    let srv = TestServer::builder("tests/apps/spawn_app.py").start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let venv = test_venv();
    assert_eq!(
        r.kv("factorial").as_deref(),
        Some("3628800"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.kv("executable"),
        Some(venv.join("bin/python3").display().to_string())
    );
    assert_eq!(r.kv("prefix"), Some(venv.display().to_string()));
}

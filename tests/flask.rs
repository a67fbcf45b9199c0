//! The Flask example: routes, 404, and POST bodies of several sizes hashed by the app.

mod common;

use common::semantics::pseudo_random;
use common::{sha256_hex, TestServer};

/// The JSON string or number after `"key":` in `text` (Flask's compact output).
fn json_field(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        return Some(s[..s.find('"')?].to_owned());
    }
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

#[test]
fn flask_routes_and_404() {
    require!(venv);
    let srv = TestServer::builder("examples/flask/wsgi.py").start();

    let resp = srv.get("/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "Hello from Flask on rswsgi!\n");

    let resp = srv.get("/json");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.header("Content-Type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{resp:?}"
    );
    let text = resp.text();
    assert_eq!(
        json_field(&text, "message").as_deref(),
        Some("hello"),
        "{text}"
    );
    assert_eq!(
        json_field(&text, "server").as_deref(),
        Some("rswsgi"),
        "{text}"
    );
    assert_eq!(
        json_field(&text, "path").as_deref(),
        Some("/json"),
        "{text}"
    );

    let resp = srv.get("/no/such/route");
    assert_eq!(resp.status, 404, "{resp:?}");

    // GET on a POST-only route: Flask's 405 passes through unchanged.
    let resp = srv.get("/hash");
    assert_eq!(resp.status, 405, "{resp:?}");
    srv.stop();
}

#[test]
fn flask_post_bodies_are_hashed_exactly() {
    require!(venv);
    let srv = TestServer::builder("examples/flask/wsgi.py").start();
    for len in [0, 1, 65536, 8 << 20] {
        let body = pseudo_random(len, len as u64);
        let resp = srv.request(
            "POST",
            "/hash",
            &[("Content-Type", "application/octet-stream")],
            Some(&body),
        );
        assert_eq!(resp.status, 200, "POST /hash with {len} bytes: {resp:?}");
        let text = resp.text();
        assert_eq!(
            json_field(&text, "length"),
            Some(len.to_string()),
            "length for {len} bytes: {text}"
        );
        assert_eq!(
            json_field(&text, "sha256"),
            Some(sha256_hex(&body)),
            "sha256 for {len} bytes: {text}"
        );
    }
    srv.stop();
}

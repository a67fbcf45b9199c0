//! PEP 3333 environ through real Apache: types and encodings, absent variables, wsgi.*
//! flags, the request id, repeated headers, HTTPS, WSGIPassAuthorization and trusted proxy
//! headers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::raw::RawConn;
use common::semantics::{self, environ, py_str, Value};
use common::{free_port, procs, Stage, TestServer};

fn str_value(s: &str) -> Option<Value> {
    Some(Value {
        ty: "str".into(),
        repr: py_str(s),
    })
}

fn typed(ty: &str, repr: &str) -> Option<Value> {
    Some(Value {
        ty: ty.into(),
        repr: repr.into(),
    })
}

#[test]
fn environ_types_encodings_and_absent_variables() {
    require!(venv);
    let srv = semantics::builder()
        // express passes Authorization everywhere (as mod_wsgi-express); here the directive's
        // own default holds, and only /auth turns it on.
        .directive("WSGIPassAuthorization Off")
        .directive("LogFormat \"%L %U\" ids")
        .directive("CustomLog ids_log ids")
        .start();

    // Raw bytes: a latin-1 header value, a UTF-8 path, repeated headers and cookies.
    let mut c = RawConn::connect(srv.addr);
    let mut req = Vec::new();
    req.extend_from_slice(b"GET /caf%C3%A9/environ?x=1&y=%20 HTTP/1.1\r\nHost: test.invalid\r\n");
    req.extend_from_slice(b"X-Latin: caf\xe9\r\nX-Multi: a\r\nX-Multi: b\r\n");
    req.extend_from_slice(b"Cookie: a=1\r\nCookie: b=2; c=3\r\nX-Empty:\r\n");
    req.extend_from_slice(b"Authorization: Basic dTpw\r\nConnection: close\r\n\r\n");
    c.send(&req).unwrap();
    let resp = c.read_response(false).unwrap();
    let env = environ(&resp);
    let text = resp.text();

    assert!(text.contains("environ.type\tdict"), "{text}");
    // Every CGI variable is a str (decoded as latin-1).
    for (k, v) in env.iter() {
        if !k.contains('.') {
            assert_eq!(v.ty, "str", "{k} is not a str: {v:?}\n{text}");
        }
    }
    assert_eq!(
        env.get("PATH_INFO"),
        str_value("/caf\\xc3\\xa9/environ"),
        "{text}"
    );
    assert_eq!(env.get("SCRIPT_NAME"), str_value(""), "{text}");
    assert_eq!(env.get("QUERY_STRING"), str_value("x=1&y=%20"), "{text}");
    assert_eq!(env.get("HTTP_X_LATIN"), str_value("caf\\xe9"), "{text}");
    assert_eq!(env.get("HTTP_X_MULTI"), str_value("a, b"), "{text}");
    assert_eq!(env.get("HTTP_COOKIE"), str_value("a=1; b=2; c=3"), "{text}");
    assert_eq!(
        env.get("HTTP_X_EMPTY"),
        str_value(""),
        "a header sent empty is present"
    );
    assert_eq!(env.get("REQUEST_METHOD"), str_value("GET"));
    assert_eq!(env.get("SERVER_PROTOCOL"), str_value("HTTP/1.1"));
    assert_eq!(env.get("wsgi.version"), typed("tuple", "(1, 0)"));
    assert_eq!(env.get("wsgi.url_scheme"), str_value("http"));
    assert_eq!(env.get("wsgi.multithread"), typed("bool", "True"));
    assert_eq!(env.get("wsgi.multiprocess"), typed("bool", "False"));
    assert_eq!(env.get("wsgi.run_once"), typed("bool", "False"));
    assert_eq!(env.get("wsgi.input_terminated"), typed("bool", "True"));
    for key in ["wsgi.input", "wsgi.errors", "wsgi.file_wrapper"] {
        assert!(env.contains_key(key), "{key} missing:\n{text}");
    }
    // Missing variables are absent, not empty.
    for key in [
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "HTTP_AUTHORIZATION",
        "REMOTE_USER",
        "AUTH_TYPE",
        "HTTPS",
        "HTTP_CONTENT_TYPE",
        "HTTP_CONTENT_LENGTH",
    ] {
        assert!(!env.contains_key(key), "{key} should be absent:\n{text}");
    }

    // A body brings CONTENT_LENGTH and CONTENT_TYPE.
    let resp = srv.request(
        "POST",
        "/environ",
        &[("Content-Type", "application/x-test")],
        Some(b"hello"),
    );
    let env = environ(&resp);
    assert_eq!(env.get("CONTENT_LENGTH"), str_value("5"));
    assert_eq!(env.get("CONTENT_TYPE"), str_value("application/x-test"));
    assert_eq!(env.get("REQUEST_METHOD"), str_value("POST"));

    // WSGIPassAuthorization On (only under /auth) passes the header.
    let resp = srv.request(
        "GET",
        "/auth/environ",
        &[("Authorization", "Basic dTpw")],
        None,
    );
    assert_eq!(
        environ(&resp).get("HTTP_AUTHORIZATION"),
        str_value("Basic dTpw")
    );

    // mod_wsgi.request_id is Apache's %L, and every daemon log line about the request
    // carries it.
    let resp = srv.get("/log?marker=LOGMARK1");
    assert_eq!(resp.status, 200, "{resp:?}");
    let id = resp.text();
    assert!(!id.is_empty());
    let resp = srv.get("/log?marker=LOGMARK2&raise=1");
    assert_eq!(resp.status, 500, "{resp:?}");
    let ids_log = srv.root.dir.join("ids_log");
    let mut access = String::new();
    procs::wait_until(Duration::from_secs(10), || {
        access = std::fs::read_to_string(&ids_log).unwrap_or_default();
        access.contains("/log") && access.lines().filter(|l| l.ends_with(" /log")).count() >= 2
    });
    let logged: Vec<&str> = access
        .lines()
        .filter(|l| l.ends_with(" /log"))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(logged.len(), 2, "{access}");
    assert_eq!(logged[0], id, "mod_wsgi.request_id must equal %L\n{access}");
    let log = semantics::wait_log(&srv, |l| l.contains("LOGMARK2 raised"));
    for (marker, id) in [("LOGMARK1", logged[0]), ("LOGMARK2", logged[1])] {
        // The daemon's lines (the module's own lines carry the client address instead).
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(marker) && l.contains("] [wsgi:"))
            .collect();
        assert!(
            lines.len() >= 3,
            "{marker}: wsgi.errors, print and logging lines:\n{log}"
        );
        for line in lines {
            assert!(
                line.contains(&format!("[request {id}]")),
                "daemon log line without the request id {id}: {line}"
            );
        }
    }
    // The traceback of the failing request is tagged too.
    let traceback: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("] [wsgi:"))
        .filter(|l| l.contains(&format!("[request {}]", logged[1])))
        .collect();
    assert!(traceback.iter().any(|l| l.contains("Traceback")), "{log}");
    srv.stop();
}

#[test]
fn multiprocess_and_multithread_are_truthful() {
    require!(venv);
    let srv = TestServer::builder(semantics::APP)
        .processes(2)
        .threads(1)
        .ready_path("/environ")
        .start();
    let env = environ(&srv.get("/environ"));
    assert_eq!(env.get("wsgi.multithread"), typed("bool", "False"));
    assert_eq!(env.get("wsgi.multiprocess"), typed("bool", "True"));
    srv.stop();
}

/// A self-signed certificate and key for 127.0.0.1, made with the openssl command.
fn certificate(stage: &Stage) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (stage.dir.join("cert.pem"), stage.dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl (Debian package openssl)");
    assert!(status.success(), "openssl req failed");
    (cert, key)
}

#[test]
fn url_scheme_is_https_under_tls() {
    require!(venv);
    let stage = Stage::new("tls");
    let (cert, key) = certificate(&stage);
    let tls_port = free_port();
    let srv = TestServer::builder(semantics::APP)
        .ready_path("/environ")
        .directive(&semantics::load_module("ssl"))
        .directive(&format!("Listen 127.0.0.1:{tls_port}"))
        .directive(&format!(
            "<VirtualHost 127.0.0.1:{tls_port}>\n  WSGIPassAuthorization Off\n  SSLEngine on\n  SSLCertificateFile {}\n  SSLCertificateKeyFile {}\n</VirtualHost>",
            cert.display(),
            key.display()
        ))
        .start();
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "30"])
        .arg(format!("https://127.0.0.1:{tls_port}/environ"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl failed: {out:?}\n{}", srv.logs());
    assert!(text.contains("wsgi.url_scheme\tstr\t'https'"), "{text}");
    assert!(
        text.contains(&format!("SERVER_PORT\tstr\t'{tls_port}'")),
        "{text}"
    );
    // The plain port stays http.
    let env = environ(&srv.get("/environ"));
    assert_eq!(env.get("wsgi.url_scheme"), str_value("http"));
    srv.stop();
}

#[test]
fn trusted_proxy_headers_as_mod_wsgi() {
    require!(venv);
    let srv = TestServer::builder(semantics::APP)
        .ready_path("/environ")
        .directive(
            "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Host X-Forwarded-Proto X-Forwarded-Port X-Forwarded-Server",
        )
        .directive("<Location /trusted>\n  WSGITrustedProxies 127.0.0.1 10.0.0.0/8\n</Location>")
        .directive("<Location /untrusted>\n  WSGITrustedProxies 10.0.0.0/8\n</Location>")
        .start();
    let headers = [
        ("X-Forwarded-For", "203.0.113.7, 10.1.2.3"),
        ("X-Real-IP", "198.51.100.66"),
        ("X-Client-IP", "198.51.100.67"),
        ("X-Forwarded-Host", "www.example.com"),
        ("X-Host", "spoofed.example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-SSL", "off"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Server", "front.example.com"),
    ];

    // Trusted peer (127.0.0.1 is listed): the headers apply; untrusted synonyms are dropped.
    let env = environ(&srv.request("GET", "/trusted/environ", &headers, None));
    assert_eq!(env.get("REMOTE_ADDR"), str_value("203.0.113.7"));
    assert_eq!(env.get("HTTP_HOST"), str_value("www.example.com"));
    assert_eq!(env.get("wsgi.url_scheme"), str_value("https"));
    assert_eq!(env.get("SERVER_PORT"), str_value("443"));
    assert_eq!(env.get("SERVER_NAME"), str_value("front.example.com"));
    assert_eq!(
        env.get("HTTP_X_FORWARDED_FOR"),
        str_value("203.0.113.7, 10.1.2.3")
    );
    for gone in [
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_X_HOST",
        "HTTP_X_FORWARDED_SSL",
    ] {
        assert!(
            !env.contains_key(gone),
            "{gone} from a trusted proxy's request"
        );
    }

    // Untrusted peer: every proxy header of those kinds is stripped, nothing is applied.
    let env = environ(&srv.request("GET", "/untrusted/environ", &headers, None));
    assert_eq!(env.get("REMOTE_ADDR"), str_value("127.0.0.1"));
    assert_eq!(env.get("wsgi.url_scheme"), str_value("http"));
    assert_ne!(env.get("HTTP_HOST"), str_value("www.example.com"));
    assert_eq!(
        env.get("SERVER_PORT"),
        str_value(&srv.addr.port().to_string())
    );
    for gone in [
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_HOST",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_SSL",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_X_FORWARDED_SERVER",
    ] {
        assert!(!env.contains_key(gone), "{gone} from an untrusted peer");
    }

    // No WSGITrustedProxies: every peer is trusted, and the client is the first address.
    let env = environ(&srv.request("GET", "/environ", &headers, None));
    assert_eq!(env.get("REMOTE_ADDR"), str_value("203.0.113.7"));
    assert_eq!(env.get("wsgi.url_scheme"), str_value("https"));
    srv.stop();
}

//! `express` refuses to start, with one clear line, when something is wrong.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use common::{binaries, is_root, test_user, Stage};

/// Runs `express start-server SCRIPT` with the staged module and daemon and `args`.
fn express(stage: &Stage, script: &str, args: &[&str]) -> Output {
    let bins = stage.binaries();
    let mut cmd = Command::new(binaries().express);
    cmd.arg("start-server")
        .arg(script)
        .arg("--server-root")
        .arg(stage.dir.join("root"))
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon)
        .args(args)
        .env_remove("VIRTUAL_ENV");
    cmd.output().expect("run express")
}

fn user_args() -> Vec<String> {
    test_user()
        .map(|u| vec!["--user".to_owned(), u])
        .unwrap_or_default()
}

/// Asserts express failed with one line on stderr containing every needle, and
/// started nothing (no server root was even written).
fn assert_refused(stage: &Stage, out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "express succeeded:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line:\n{stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert!(
        !stage.dir.join("root").exists(),
        "express wrote a server root although it refused to start"
    );
}

fn args<'a>(owned: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    owned
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

#[test]
fn missing_script() {
    let stage = Stage::new("cli");
    let users = user_args();
    let out = express(&stage, "/nonexistent/dir/wsgi.py", &args(&users, &[]));
    assert_refused(&stage, &out, &["/nonexistent/dir/wsgi.py", "No such file"]);
}

#[test]
fn script_without_the_callable() {
    let stage = Stage::new("cli");
    let script = stage.write(
        "app/wsgi.py",
        "def app(environ, start_response):\n    pass\n",
    );
    let users = user_args();
    let out = express(&stage, script.to_str().unwrap(), &args(&users, &[]));
    assert_refused(&stage, &out, &["no callable named 'application'"]);
    // Naming the callable that is there makes the same script acceptable (setup only).
    let out = Command::new(binaries().express)
        .arg("setup-server")
        .arg(&script)
        .args(["--callable-object", "app", "--server-root"])
        .arg(stage.dir.join("root"))
        .args(["--module-path"])
        .arg(stage.dir.join("bin/mod_rswsgi.so"))
        .args(["--daemon-executable"])
        .arg(stage.dir.join("bin/rswsgi-daemon"))
        .args(users.iter())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn script_with_a_syntax_error() {
    let stage = Stage::new("cli");
    let script = stage.write("app/wsgi.py", "def application(:\n");
    let users = user_args();
    let out = express(&stage, script.to_str().unwrap(), &args(&users, &[]));
    assert_refused(&stage, &out, &["syntax error", "line 1"]);
}

#[test]
fn port_already_in_use() {
    let stage = Stage::new("cli");
    let script = stage.copy(
        &common::repo_root().join("examples/hello/wsgi.py"),
        "app/wsgi.py",
        0o644,
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let users = user_args();
    let out = express(
        &stage,
        script.to_str().unwrap(),
        &args(&users, &["--port", &port]),
    );
    assert_refused(
        &stage,
        &out,
        &[&format!("port {port} on 127.0.0.1 is already in use")],
    );
}

#[test]
fn root_needs_a_user_and_others_cannot_switch() {
    let stage = Stage::new("cli");
    let script = stage.copy(
        &common::repo_root().join("examples/hello/wsgi.py"),
        "app/wsgi.py",
        0o644,
    );
    if is_root() {
        let out = express(&stage, script.to_str().unwrap(), &[]);
        assert_refused(&stage, &out, &["running as root: pass --user USER"]);
        let out = express(&stage, script.to_str().unwrap(), &["--user", "root"]);
        assert_refused(&stage, &out, &["root"]);
    } else {
        let out = express(&stage, script.to_str().unwrap(), &["--user", "root"]);
        assert_refused(&stage, &out, &["only root can switch user"]);
    }
}

#[test]
fn unreadable_script_is_named_with_the_user() {
    let Some(user) = test_user() else { return };
    let stage = Stage::new("cli");
    let script = stage.write("private/wsgi.py", "def application(e, s):\n    pass\n");
    std::fs::set_permissions(
        stage.dir.join("private"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let out = express(&stage, script.to_str().unwrap(), &["--user", &user]);
    assert_refused(
        &stage,
        &out,
        &[
            &format!("user {user} cannot read"),
            script.to_str().unwrap(),
        ],
    );
}

#[test]
fn httpd_executable_that_does_not_exist() {
    let stage = Stage::new("cli");
    let users = user_args();
    let out = express(
        &stage,
        "/nonexistent/wsgi.py",
        &args(&users, &["--httpd-executable", "/nonexistent/httpd"]),
    );
    assert_refused(&stage, &out, &["--httpd-executable /nonexistent/httpd"]);
}

#[test]
fn port_and_log_level_are_checked_before_httpd_starts() {
    for (bad, needles) in [
        (&["--port", "0"][..], &["--port 0", "1 to 65535"][..]),
        (&["--port", "70000"], &["--port 70000", "1 to 65535"]),
        (
            &["--log-level", "verbose"],
            &["--log-level \"verbose\"", "emerg", "trace8"],
        ),
    ] {
        let stage = Stage::new("badarg");
        let script = stage.write("app/wsgi.py", "def application(e, s):\n    pass\n");
        let user = user_args();
        let out = express(&stage, script.to_str().unwrap(), &args(&user, bad));
        assert_refused(&stage, &out, needles);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("AH00526"),
            "{bad:?} was left to httpd"
        );
    }
}

#[test]
fn site_and_tls_options_are_checked_before_httpd_starts() {
    let stage = Stage::new("badsite");
    let key = stage.write(
        "tls/server.key",
        "not checked: the certificate is missing\n",
    );
    let key = key.to_str().unwrap().to_owned();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "--https-port",
                "8443",
                "--ssl-certificate-file",
                "/no/such.crt",
                "--ssl-certificate-key-file",
                &key,
            ],
            &["--ssl-certificate-file /no/such.crt: no such file"],
        ),
        (
            &["--https-port", "8443"],
            &["--https-port 8443 needs --ssl-certificate-file"],
        ),
        (&["--https-port", "0"], &["--https-port 0", "1 to 65535"]),
        (&["--https-only"], &["--https-only needs --https-port"]),
        (
            &["--server-mpm", "winnt"],
            &["--server-mpm winnt", "event, worker, prefork"],
        ),
        (
            &["--map-head-to-get", "sometimes"],
            &["--map-head-to-get sometimes", "Off, On or Auto"],
        ),
        (
            &["--document-root", "/no/such/dir"],
            &["--document-root /no/such/dir: not a directory"],
        ),
        (
            &["--url-alias", "/s", "/no/such/dir"],
            &["--url-alias /s /no/such/dir: no such file"],
        ),
        (
            &["--error-document", "200", "/x"],
            &["--error-document 200 /x", "400 to 599"],
        ),
        (
            &["--envvars-script", "/no/such.sh"],
            &["--envvars-script /no/such.sh: no such file"],
        ),
        (
            &["--trust-proxy-header", "X Bad"],
            &["--trust-proxy-header \"X Bad\""],
        ),
        (&["--application-type", "module"], &["is not a module name"]),
        (
            &["--proxy-mount-point", "/api", "ftp://127.0.0.1/"],
            &[
                "--proxy-mount-point /api \"ftp://127.0.0.1\"",
                "http:// or https://",
            ],
        ),
    ];
    for (bad, needles) in cases {
        let stage = Stage::new("badarg");
        let script = stage.write("app/wsgi.py", "def application(e, s):\n    pass\n");
        let user = user_args();
        let out = express(&stage, script.to_str().unwrap(), &args(&user, bad));
        assert_refused(&stage, &out, needles);
    }
    // No application at all.
    let out = Command::new(binaries().express)
        .arg("start-server")
        .output()
        .expect("run express");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.trim_end(),
        "express: no application given: pass SCRIPT (or --entry-point)"
    );
}

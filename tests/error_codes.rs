//! Operator lines that only unusual conditions produce, each provoked for real through express
//! and matched by its code (`docs/errors.md`):
//! - `RSWSGI0208`: a stop kills a daemon that is still serving past `--shutdown-timeout`;
//! - `RSWSGI0117`: a request whose head is larger than the protocol carries gets 431;
//! - `RSWSGI0111`: a script handled through `.htaccess` that names no daemon group is a 500;
//! - `RSWSGI0119`: an access script with no daemon group to run in is a 500, never a grant;
//! - `RSWSGI0422`: a virtualenv whose `site-packages` is gone is reported at start-up.

mod common;

use std::thread;
use std::time::Duration;

use common::express::Express;
use common::{http, procs};

const APP: &str = r#"
import time

def application(environ, start_response):
    if environ['PATH_INFO'] == '/hang':
        open(environ['HANG_MARK'], 'w').close()
        time.sleep(60)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok\n']
"#;

#[test]
fn a_stop_kills_a_daemon_still_serving_past_shutdown_timeout() {
    let stage = common::Stage::new("code-0208");
    // A directory the daemon's user may write its mark into (not above the socket
    // directory, which must stay unwritable to others).
    let marks = stage.subdir("marks");
    std::fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mark = marks.join("hanging");
    let script = stage.write("app/wsgi.py", APP);
    // The harness passes --shutdown-timeout 3; the daemon's own graceful timeout (15 s by
    // default) is longer, so it is httpd's parent that gives up on it.
    let mut e = Express::start_script(
        stage,
        script,
        &[
            "--setenv",
            "HANG_MARK",
            mark.to_str().unwrap(),
            "--processes",
            "1",
        ],
    );
    e.wait_serving();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    let hung = thread::spawn(move || http::get(addr, "/hang"));
    assert!(
        procs::wait_until(Duration::from_secs(20), || mark.exists()),
        "the request never reached the application:\n{}",
        e.logs()
    );
    // SAFETY: kill has no memory-safety preconditions; express is this test's child.
    unsafe { libc::kill(e.child.id() as i32, libc::SIGTERM) };
    let status = e.wait_exit(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", e.logs());
    let text = e.error_log();
    assert!(
        text.contains("RSWSGI0208"),
        "no RSWSGI0208 after stopping with a request in flight:\n{text}"
    );
    // The client's request was cut off, never answered as if it had succeeded.
    assert!(!matches!(hung.join().unwrap(), Ok(r) if r.status == 200 && r.complete));
}

#[test]
fn a_request_head_past_the_protocol_limit_gets_431() {
    let stage = common::Stage::new("code-0117");
    // Apache itself would refuse such headers first; raise its limits so the module sees them.
    let conf = stage.write(
        "limits.conf",
        "LimitRequestFieldSize 200000\nLimitRequestFields 200\n",
    );
    let script = stage.write("app/wsgi.py", APP);
    let mut e = Express::start_script(stage, script, &["--include-file", conf.to_str().unwrap()]);
    e.wait_serving();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], e.port));
    // 12 headers of 100 KB: 1.2 MB of environ, over the 1 MiB a request head may carry.
    let value = "v".repeat(100_000);
    let names: Vec<String> = (0..12).map(|i| format!("X-Big-{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    let r = http::request(addr, "GET", "/", &headers, None).expect("request");
    assert_eq!(r.status, 431, "{}", e.logs());
    assert!(
        procs::wait_until(Duration::from_secs(5), || e
            .error_log()
            .contains("RSWSGI0117")),
        "{}",
        e.logs()
    );
    // A normal request still works.
    assert_eq!(e.get("/").map(|r| r.status), Some(200));
}

/// A server with `WSGIRestrictEmbedded On` (so no implicit daemon group) and a directory
/// `/site` whose `.htaccess` (which the start-up checks do not read) holds `htaccess`, with
/// `AllowOverride allow`, and the `files` (name, contents) in it, staged in `stage`.
fn htaccess_site(
    stage: &common::Stage,
    files: &[(&str, &str)],
    htaccess: &str,
    allow: &str,
) -> common::TestServer {
    let site = stage.subdir("site");
    for (name, contents) in files {
        stage.write(&format!("site/{name}"), contents);
    }
    stage.write("site/.htaccess", htaccess);
    common::TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIRestrictEmbedded On")
        .directive(&format!("Alias /site {}", site.display()))
        .directive(&format!("<Directory {}>", site.display()))
        .directive(&format!("  AllowOverride {allow}"))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start()
}

/// `RSWSGI0111`: with `WSGIRestrictEmbedded On` there is no implicit group, so a file handled
/// by `wsgi-script` through an `.htaccess` names no daemon group: a 500 and the line, never
/// Python inside Apache.
#[test]
fn a_script_that_names_no_daemon_group_is_a_500() {
    let stage = common::Stage::new("code-0111");
    let srv = htaccess_site(
        &stage,
        &[("hello.wsgi", APP)],
        "Options +ExecCGI\nAddHandler wsgi-script .wsgi\n",
        "FileInfo Options",
    );
    let r = srv.get("/site/hello.wsgi");
    assert_eq!(r.status, 500, "{}", srv.logs());
    assert!(
        procs::wait_until(Duration::from_secs(5), || srv.logs().contains("RSWSGI0111")),
        "{}",
        srv.logs()
    );
}

/// `RSWSGI0119`: an access script set in an `.htaccess` where no daemon group applies (and
/// `WSGIRestrictEmbedded On`, so no implicit one) has nowhere to run: a 500 and the line,
/// never a grant.
#[test]
fn an_access_script_with_no_daemon_group_is_a_500() {
    let stage = common::Stage::new("code-0119");
    let access = stage.write(
        "access.py",
        "def allow_access(environ, host):\n    return True\n",
    );
    let srv = htaccess_site(
        &stage,
        &[("page.txt", "static page\n")],
        &format!("WSGIAccessScript {}\n", access.display()),
        "AuthConfig",
    );
    let r = srv.get("/site/page.txt");
    assert_eq!(r.status, 500, "{}", srv.logs());
    assert!(
        procs::wait_until(Duration::from_secs(5), || srv.logs().contains("RSWSGI0119")),
        "{}",
        srv.logs()
    );
}

/// `RSWSGI0422`: a virtualenv of the daemon's Python whose `site-packages` is gone still
/// serves (a script needing none of its packages), and the start-up says why its packages
/// will not be found.
#[test]
fn a_virtualenv_without_site_packages_is_reported() {
    let stage = common::Stage::new("code-0422");
    let venv = stage.dir.join("venv");
    let made = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv (Debian's python3-venv)");
    assert!(made.success());
    let lib = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_dir_all(lib.join("site-packages")).unwrap();
    let script = stage.write("app/wsgi.py", APP);
    let mut e = Express::start_script(stage, script, &["--python-home", venv.to_str().unwrap()]);
    e.wait_serving();
    assert_eq!(e.get("/").map(|r| r.status), Some(200), "{}", e.logs());
    assert!(
        procs::wait_until(Duration::from_secs(5), || e
            .error_log()
            .contains("RSWSGI0422")),
        "{}",
        e.logs()
    );
}

//! The Python runtime an application sees, through real Apache: `sys.executable` is the
//! venv's interpreter, so multiprocessing's spawn start method (a fresh interpreter) works from
//! a request; a virtualenv is isolated as its own `python` isolates it (`pyvenv.cfg`, `.pth`
//! files); the script's directory is on `sys.path`; `sys.stdout`/`sys.stderr` and
//! `wsgi.errors` reach the error log.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{procs, Stage, TestServer};

#[test]
fn multiprocessing_spawn_works_from_a_request() {
    let venv = require!(venv);
    let srv = TestServer::builder("tests/apps/spawn_app.py").start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
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

/// The two-file layout: `wsgi.py` imports the application from `myapp.py` beside it (express
/// makes the script's directory the group's `home=`, which is `sys.path[0]`), and what the
/// application prints reaches Apache's error log: `sys.stdout.buffer`, `print(file=
/// sys.stderr)` and `print(file=environ['wsgi.errors'])`, each line with the request's id.
#[test]
fn a_two_file_app_imports_its_sibling_and_its_output_reaches_the_error_log() {
    require!(venv);
    let sibling = r#"
import sys

def app(environ, start_response):
    sys.stdout.buffer.write(b"BUFFER-LINE caf\xc3\xa9\n")
    sys.stdout.flush()
    print("STDERR-LINE", file=sys.stderr)
    print("ERRORS-LINE", file=environ["wsgi.errors"])
    body = ("path0=%s\nrequest_id=%s\n" % (sys.path[0], environ["mod_wsgi.request_id"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;
    let stage = Stage::new("twofile");
    let script = stage.write("wsgi.py", "from myapp import app as application\n");
    let srv = TestServer::builder(script.to_str().unwrap())
        .beside("myapp.py", sibling)
        .start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let app_dir = srv.script.parent().unwrap().display().to_string();
    assert_eq!(r.kv("path0"), Some(app_dir), "{}", r.text());
    let id = r.kv("request_id").unwrap();
    assert!(!id.is_empty());
    for line in ["BUFFER-LINE café", "STDERR-LINE", "ERRORS-LINE"] {
        let want = format!("[request {id}] {line}");
        let found = procs::wait_until(Duration::from_secs(10), || {
            srv.root.read_error_log().contains(&want)
        });
        assert!(found, "{want:?} not in the error log:\n{}", srv.logs());
    }
}

const SITE_APP: &str = r#"
import sys

def application(environ, start_response):
    import editable_pkg
    body = "\n".join([
        "prefix=" + sys.prefix,
        "base_prefix=" + sys.base_prefix,
        "executable=" + sys.executable,
        "editable=" + editable_pkg.WHERE,
        "system_site=" + str(any(p.endswith("dist-packages") for p in sys.path)),
    ]).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// A virtualenv made by `python3 -m venv` (with or without `--system-site-packages`), holding
/// an editable install: a `.pth` file naming a source directory outside the venv.
fn venv_with_editable(stage: &Stage, name: &str, system_site: bool) -> PathBuf {
    let venv = stage.dir.join(name);
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-m", "venv", "--without-pip"]);
    if system_site {
        cmd.arg("--system-site-packages");
    }
    let status = cmd.arg(&venv).status().expect("python3 -m venv");
    assert!(status.success());
    let src = stage.write(
        &format!("{name}-src/editable_pkg/__init__.py"),
        &format!("WHERE = {name:?}\n"),
    );
    let src_dir = src.parent().unwrap().parent().unwrap();
    let site = venv.join("lib/python3.11/site-packages");
    std::fs::write(
        site.join("__editable__.editable_pkg-0.1.pth"),
        format!("{}\n", src_dir.display()),
    )
    .unwrap();
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&venv)
        .status();
    venv
}

#[test]
fn a_virtualenv_is_isolated_as_its_own_python_isolates_it() {
    require!(venv);
    let stage = Stage::new("venvs");
    for (name, system_site) in [("isolated", false), ("with-system", true)] {
        let venv = venv_with_editable(&stage, name, system_site);
        let script = stage.write(&format!("{name}.py"), SITE_APP);
        let srv = TestServer::builder(script.to_str().unwrap())
            .python_home(&venv)
            .start();
        let r = srv.get("/");
        assert_eq!(r.status, 200, "{}", srv.logs());
        let venv_s = venv.display().to_string();
        assert_eq!(
            r.kv("prefix").as_deref(),
            Some(venv_s.as_str()),
            "{}",
            r.text()
        );
        assert_eq!(r.kv("base_prefix").as_deref(), Some("/usr"));
        assert_eq!(r.kv("executable"), Some(format!("{venv_s}/bin/python3")));
        assert_eq!(
            r.kv("editable").as_deref(),
            Some(name),
            "the .pth was honoured"
        );
        assert_eq!(
            r.kv("system_site"),
            Some(if system_site { "True" } else { "False" }.to_string()),
            "Debian's dist-packages follow pyvenv.cfg's include-system-site-packages"
        );
    }
}

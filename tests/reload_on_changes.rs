//! `express --reload-on-changes` (issue 18): a daemon recycles, gracefully, when a file of a
//! module the application imported changes (not the script: `WSGIScriptReloading` already
//! covers that), or a `--reload-on-changes-file`; the replacement serves the new code, and a
//! request in flight when the file changed finishes on the old code.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::express::Express;
use common::{procs, Stage};

/// The script: answers `VERSION` of the module `helper` beside it and the first line of
/// `settings.txt` read at import; `/slow` logs that it started, sleeps 3 s, then answers.
const SCRIPT: &str = r#"
import os, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import helper

with open(os.path.join(os.path.dirname(__file__), "settings.txt")) as f:
    SETTING = f.readline().strip()

def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        print("slow request started", file=environ["wsgi.errors"], flush=True)
        time.sleep(3)
    body = ("%s %s %s %d\n" % (environ["PATH_INFO"], helper.VERSION, SETTING, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

/// How long the new code may take to be served after a file changed: the monitor looks once a
/// second, then the replacement process starts (Python and this application's imports, well
/// under a second on an idle machine); the rest is headroom for a loaded one.
const NEW_CODE_WITHIN: Duration = Duration::from_secs(5);

fn start(tag: &str) -> Express {
    let stage = Stage::new(tag);
    stage.write("app/helper.py", "VERSION = 'one'\n");
    stage.write("app/settings.txt", "alpha\n");
    let script = stage.write("app/wsgi.py", SCRIPT);
    let settings = stage.dir.join("app/settings.txt");
    let mut express = Express::start_script(
        stage,
        script,
        &[
            "--processes",
            "1",
            "--reload-on-changes",
            "--reload-on-changes-file",
            settings.to_str().unwrap(),
        ],
    );
    express.wait_serving();
    express
}

/// `GET path`'s body, asserting 200.
fn body(express: &Express, path: &str) -> String {
    let r = express
        .get(path)
        .unwrap_or_else(|| panic!("GET {path}\n{}", express.logs()));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), express.logs());
    r.text()
}

/// Rewrites `file` with `contents` (another size, so the change shows whatever the
/// file system's time resolution), then asks until `/` answers with `expect` in it; every
/// answer meanwhile must be a 200. Returns how long the new code took.
fn change_and_wait(express: &Express, file: &Path, contents: &str, expect: &str) -> Duration {
    fs::write(file, contents).unwrap();
    let changed = Instant::now();
    while changed.elapsed() < NEW_CODE_WITHIN {
        if body(express, "/").contains(expect) {
            return changed.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no {expect:?} within {NEW_CODE_WITHIN:?} of changing {}\n{}",
        file.display(),
        express.logs()
    );
}

#[test]
fn editing_an_imported_module_or_a_reload_file_serves_new_code() {
    require!(venv);
    let express = start("reload");
    let app = express.stage.dir.join("app");
    let first = body(&express, "/");
    assert!(first.starts_with("/ one alpha "), "{first}");
    let took = change_and_wait(
        &express,
        &app.join("helper.py"),
        "VERSION = 'two!'\n",
        " two! ",
    );
    eprintln!("helper.py changed: new code served after {took:?}");
    let took = change_and_wait(&express, &app.join("settings.txt"), "beta!\n", " beta! ");
    eprintln!("settings.txt changed: new code served after {took:?}");
    let log = express.error_log();
    assert!(
        log.contains("helper.py changed (reload-on-changes)"),
        "{log}"
    );
    express.stop();
}

#[test]
fn a_request_in_flight_when_a_module_changes_finishes() {
    require!(venv);
    let mut express = start("reload-inflight");
    let helper = express.stage.dir.join("app/helper.py");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], express.port));
    let slow = std::thread::spawn(move || common::http::get(addr, "/slow"));
    let started = procs::wait_until(Duration::from_secs(10), || {
        express.error_log().contains("slow request started")
    });
    assert!(started, "{}", express.logs());
    fs::write(&helper, "VERSION = 'two!'\n").unwrap();
    let recycling = procs::wait_until(Duration::from_secs(5), || {
        express
            .error_log()
            .contains("helper.py changed (reload-on-changes)")
    });
    assert!(recycling, "no recycle:\n{}", express.logs());
    let slow = slow.join().unwrap().expect("the slow request's response");
    assert_eq!(slow.status, 200, "{}", express.logs());
    assert!(slow.text().starts_with("/slow one "), "{}", slow.text());
    let new = procs::wait_until(NEW_CODE_WITHIN, || body(&express, "/").contains(" two! "));
    assert!(new, "{}", express.logs());
    assert!(express.running());
    express.stop();
}

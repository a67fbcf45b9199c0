//! Daemon-only tests: run `rswsgi-daemon` on a socket and speak the protocol to it.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{base_environ, Daemon};
use rswsgi_protocol::{self as proto, BodyKind};

fn env(d: &Daemon, path: &str, extra: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut e = base_environ(&d.script, path);
    e.extend(
        extra
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec())),
    );
    e
}

const HELLO: &str = include_str!("apps/hello.py");

#[test]
fn hello_world_and_sequential_requests() {
    let d = Daemon::start(HELLO, &[]);
    let mut c = d.connect();
    for _ in 0..2 {
        let r = c.request(&env(&d, "/", &[]), None);
        assert!(r.ended, "{r:?}");
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        assert_eq!(r.header("Content-Length"), Some("13"), "one-block list");
        assert_eq!(r.text(), "Hello, world!");
        assert!(r.reads.is_empty());
    }
}

const ENVIRON: &str = include_str!("apps/environ.py");

#[test]
fn environ_contents() {
    let d = Daemon::start(ENVIRON, &["--threads", "3"]);
    let e = env(
        &d,
        "/p",
        &[
            ("HTTP_X_NAME", b"caf\xe9"),
            ("wsgi.url_scheme", b"https"),
            ("wsgi.multithread", b"spoofed"),
            ("wsgi.version", b"spoofed"),
        ],
    );
    let mut e2 = e.clone();
    // The module's url_scheme wins over the default; spoofed wsgi.* keys do not.
    e2.retain(|(k, v)| !(k == b"wsgi.url_scheme" && v == b"http"));
    let r = d.connect().request(&e2, None);
    assert!(r.ended, "{r:?}");
    let text = r.text();
    for want in [
        "wsgi.version=(1, 0)",
        "wsgi.url_scheme='https'",
        "wsgi.multithread=True",
        "wsgi.multiprocess=False",
        "wsgi.run_once=False",
        "wsgi.input_terminated=True",
        "HTTP_X_NAME='café'",
        "PATH_INFO='/p'",
        "mod_wsgi.request_id='REQ-42'",
        "dict=True",
        "str_keys=True",
        "errors=True",
        "file=True",
    ] {
        assert!(text.lines().any(|l| l == want), "{want:?} not in\n{text}");
    }
    let log = d.wait_log("hello from print");
    let line = log
        .lines()
        .find(|l| l.contains("hello from print"))
        .unwrap_or_default();
    assert!(
        line.contains("[wsgi:error]") && line.contains("[request REQ-42]"),
        "{line}"
    );
}

const ECHO: &str = include_str!("apps/echo.py");

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn post_body_echo() {
    let d = Daemon::start(ECHO, &[]);
    let big = pattern(3 << 20);

    let r = d.connect().request(&env(&d, "/all", &[]), Some(&big));
    assert!(r.ended, "{:?}", r.error);
    assert!(
        r.body == big,
        "read() echo differs ({} bytes)",
        r.body.len()
    );
    assert!(r.reads.len() >= 3, "{:?}", r.reads);
    assert!(r.reads.iter().all(|&m| m as usize <= proto::MAX_BODY_CHUNK));

    let r = d.connect().request(&env(&d, "/pieces", &[]), Some(&big));
    assert!(
        r.body == big,
        "read(n) echo differs ({} bytes)",
        r.body.len()
    );
    assert!(r.reads.iter().all(|&m| m <= 300000), "{:?}", r.reads);

    // A chunked body answered in small pieces.
    let mut c = d.connect();
    c.send_request(&env(&d, "/all", &[]), BodyKind::Chunked);
    let r = c.read_response(&big[..100_000], 777);
    assert!(
        r.body == big[..100_000],
        "chunked echo ({} bytes)",
        r.body.len()
    );

    // No body: read() returns b"" without asking the module.
    let r = d.connect().request(&env(&d, "/all", &[]), None);
    assert!(r.ended && r.body.is_empty() && r.reads.is_empty(), "{r:?}");
}

#[test]
fn readline_and_iteration() {
    let d = Daemon::start(ECHO, &[]);
    let body = b"first line\nsecond\n\nlast";
    let r = d.connect().request(&env(&d, "/lines", &[]), Some(body));
    assert_eq!(r.text(), "first line\n|sec|ond\n|\n|last");
    let r = d.connect().request(&env(&d, "/readlines", &[]), Some(body));
    assert_eq!(r.text(), "first line\n|second\n|\n|last");
}

const FAILING: &str = include_str!("apps/failing.py");

#[test]
fn app_exception_gives_error_frame_and_daemon_keeps_serving() {
    let d = Daemon::start(FAILING, &[]);
    let mut c = d.connect();
    let r = c.request(&env(&d, "/boom", &[]), None);
    assert!(!r.head && !r.ended, "{r:?}");
    assert!(r.error.as_deref().unwrap_or("").contains("kaboom"), "{r:?}");
    assert!(c.closed(), "connection closed after an Error frame");
    let log = d.wait_log("ValueError: kaboom");
    assert!(log.contains("Traceback (most recent call last)"), "{log}");
    assert!(log.contains("app.py"), "{log}");
    assert!(
        log.contains("[request REQ-42] RSWSGI0501:") && log.contains("for /boom"),
        "{log}"
    );

    for path in ["/bad-header", "/str-item"] {
        let r = d.connect().request(&env(&d, path, &[]), None);
        assert!(r.error.is_some() && !r.head, "{path}: {r:?}");
    }
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended && r.text() == "fine", "{r:?}");
}

const STREAM: &str = include_str!("apps/stream.py");

#[test]
fn iterable_close_is_called() {
    let d = Daemon::start(STREAM, &[]);
    let marker = d.dir.0.join("closed-ok");
    let m = marker.to_str().unwrap_or_default().as_bytes();
    let r = d
        .connect()
        .request(&env(&d, "/", &[("HTTP_X_MARKER", m)]), None);
    assert!(r.ended, "{r:?}");
    assert_eq!(r.text(), "part1;part2;part3;");
    assert_eq!(r.header("Content-Length"), None);
    assert!(marker.exists(), "close() ran before ResponseEnd");

    // An error after the head: Error frame, and close() still called.
    let marker = d.dir.0.join("closed-fail");
    let m = marker.to_str().unwrap_or_default().as_bytes();
    let r = d
        .connect()
        .request(&env(&d, "/fail", &[("HTTP_X_MARKER", m)]), None);
    assert!(r.head && !r.ended, "{r:?}");
    assert_eq!(r.text(), "part1;");
    assert!(
        r.error.as_deref().unwrap_or("").contains("mid-stream"),
        "{r:?}"
    );
    assert!(marker.exists(), "close() after a failing iteration");
}

const WRITE: &str = include_str!("apps/write.py");

#[test]
fn write_callable() {
    let d = Daemon::start(WRITE, &[]);
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}");
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert_eq!(r.text(), "abcd");
    let xa: Vec<_> = r.headers.iter().filter(|(n, _)| n == "X-A").collect();
    assert_eq!(xa.len(), 2, "repeated headers kept apart: {:?}", r.headers);
    assert_eq!(
        r.header("Content-Length"),
        None,
        "head went out before the list"
    );
}

#[test]
fn connections_without_the_secret_are_refused_and_bad_frames_close_the_connection() {
    let d = Daemon::start(HELLO, &[]);
    // Something that is not the protocol at all, where the proof belongs.
    let mut c = d.connect_raw();
    c.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.closed());
    let log = d.wait_log("RSWSGI0411:");
    let who = format!("pid {} (uid {})", std::process::id(), nix::unistd::getuid());
    assert!(log.contains(&who), "{log}");
    // A well-formed client that does not know the secret: nothing reaches the app.
    let mut c = d.connect_with(&common::test_secret());
    c.send_request(&env(&d, "/", &[]), BodyKind::None);
    assert!(c.closed());
    d.wait_log("did not prove it comes from this Apache (wrong secret)");
    // A client that never answers the challenge is dropped, and does not hold a worker.
    let mut silent = d.connect_raw();
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended && r.text() == "Hello, world!", "{r:?}");
    assert!(silent.closed());

    // A frame of unknown kind after a good proof.
    let mut c = d.connect();
    c.send_request(&env(&d, "/", &[]), BodyKind::None);
    assert!(c.read_response(b"", 0).ended);
    c.write(&[99, 0, 0, 0, 0]);
    assert!(c.closed());
    // A body frame where a request head belongs.
    let mut c = d.connect();
    c.send_request(&env(&d, "/", &[]), BodyKind::None);
    assert!(c.read_response(b"", 0).ended);
    let mut out = Vec::new();
    proto::encode_body(&mut out, b"x").expect("encode");
    c.write(&out);
    assert!(c.closed());
    d.wait_log("RSWSGI0410:");
    // A request out of sequence: the first request must be number 1.
    let mut c = d.connect();
    c.send_request_numbered(2, &env(&d, "/", &[]), BodyKind::None);
    assert!(c.closed());
    d.wait_log("request number 2 where 1 was due");

    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended && r.text() == "Hello, world!", "{r:?}");
}

#[test]
fn connections_that_never_answer_cannot_exhaust_the_daemon() {
    // A descriptor limit the silent connections below would exhaust if they were all kept.
    let d = Daemon::start_with(HELLO, &["--threads", "1"], |cmd| {
        // SAFETY: setrlimit is async-signal-safe and only lowers this child's own limit.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd, || {
                let lim = libc::rlimit {
                    rlim_cur: 128,
                    rlim_max: 128,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    // Far more silent connections than are let wait; each gets its challenge and says nothing.
    let silent: Vec<_> = (0..200).map(|_| d.connect_raw()).collect();
    let log = d.wait_log("RSWSGI0403:");
    assert!(log.contains("more than 64 are waiting"), "{log}");
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended && r.text() == "Hello, world!", "{r:?}");
    // The oldest were closed by the daemon; the newest still wait.
    let mut silent = silent;
    assert!(silent[0].closed());
    drop(silent);
}

#[test]
fn a_script_outside_the_group_is_refused_even_on_an_authenticated_connection() {
    let d = Daemon::start(HELLO, &[]);
    let other = d.dir.0.join("other.py");
    std::fs::write(
        &other,
        "def application(e, s):\n    s('200 OK', [])\n    return [b'other']\n",
    )
    .unwrap();
    for forged in [other.to_str().unwrap(), "/etc/passwd"] {
        let mut environ = env(&d, "/", &[]);
        for (k, v) in environ.iter_mut() {
            if k == b"SCRIPT_FILENAME" {
                *v = forged.as_bytes().to_vec();
            }
        }
        let r = d.connect().request(&environ, None);
        assert!(!r.head, "{forged} was served: {r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("not a script of this daemon group"),
            "{r:?}"
        );
    }
    let log = d.wait_log("refusing to load /etc/passwd");
    assert!(
        !log.contains("root:"),
        "nothing of the file reached the log"
    );
    // A directory given with --allow-dir permits the scripts inside it.
    let d2 = Daemon::start(HELLO, &["--allow-dir", "/nonexistent-dir"]);
    let mut environ = env(&d2, "/", &[]);
    for (k, v) in environ.iter_mut() {
        if k == b"SCRIPT_FILENAME" {
            *v = b"/nonexistent-dir/app.py".to_vec();
        }
    }
    let r = d2.connect().request(&environ, None);
    assert!(
        !r.error
            .as_deref()
            .unwrap_or("")
            .contains("not a script of this daemon group"),
        "a script under --allow-dir is loaded (and here fails as missing): {r:?}"
    );
}

#[test]
fn missing_callable_and_broken_script() {
    let d = Daemon::start(HELLO, &["--callable", "nope"]);
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.error.is_some() && !r.head, "{r:?}");
    let log = d.wait_log("RSWSGI0505:");
    assert!(log.contains("'nope'"), "{log}");
    // The request may name its callable.
    let e = env(&d, "/", &[("mod_wsgi.callable_object", b"application")]);
    let r = d.connect().request(&e, None);
    assert!(r.ended, "{r:?}");

    // Scripts under the temp directory may be named, so the missing one below is looked for.
    let tmp = std::env::temp_dir();
    let d = Daemon::start(
        "import nonexistent_module_xyz\n",
        &["--allow-dir", tmp.to_str().unwrap()],
    );
    d.wait_log("ModuleNotFoundError");
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.error.is_some(), "{r:?}");

    let mut e = env(&d, "/", &[]);
    let missing = d.dir.0.join("missing.py");
    for (k, v) in e.iter_mut() {
        if k == b"SCRIPT_FILENAME" {
            *v = missing.to_str().unwrap_or_default().as_bytes().to_vec();
        }
    }
    let r = d.connect().request(&e, None);
    assert!(r.error.is_some(), "{r:?}");
    d.wait_log("RSWSGI0504:");
}

const SLOW: &str = include_str!("apps/slow.py");

#[test]
fn sigterm_finishes_requests_in_progress_then_exits() {
    let mut d = Daemon::start(SLOW, &[]);
    let mut c = d.connect();
    c.send_request(&env(&d, "/", &[]), BodyKind::None);
    d.wait_log("started");
    std::thread::sleep(Duration::from_millis(300));
    d.signal(libc::SIGTERM);
    let r = c.read_response(b"", 0);
    assert!(r.ended && r.text() == "slow", "{r:?}");
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("daemon exits on SIGTERM");
    assert_eq!(status.code(), Some(0));
    d.wait_log("received SIGTERM");
}

#[test]
fn exits_when_parent_is_gone() {
    let start = Instant::now();
    // Its real parent is this test, not pid 1: it must exit at once.
    let mut d = Daemon::start(HELLO, &["--parent-pid", "1"]);
    let status = d.wait_exit(Duration::from_secs(10)).expect("daemon exits");
    assert_eq!(status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(5));
    d.wait_log("went away");
}

#[test]
fn python_home_that_cannot_be_read_is_reported() {
    let mut d = Daemon::start(HELLO, &["--python-home", "/nonexistent/venv"]);
    let status = d.wait_exit(Duration::from_secs(10)).expect("daemon exits");
    assert_ne!(status.code(), Some(0));
    d.wait_log("cannot read python-home /nonexistent/venv as user");
}

const GONE: &str = include_str!("apps/gone.py");

#[test]
fn module_going_away_stops_the_response_and_closes_the_iterable() {
    // The module logs a client that went away; the daemon's line about it is debug-level.
    let d = Daemon::start(GONE, &["--verbose"]);
    let marker = d.dir.0.join("closed");
    let m = marker.to_str().unwrap_or_default().as_bytes();
    let mut c = d.connect();
    c.send_request(&env(&d, "/", &[("HTTP_X_MARKER", m)]), BodyKind::None);
    let first = c.reader.read_frame().expect("read").map(|f| f.kind());
    assert_eq!(first, Some(proto::FrameKind::ResponseHead));
    drop(c);
    d.wait_log("stopped sending the response for /");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "close() was not called");
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = d
        .connect()
        .request(&env(&d, "/short", &[("HTTP_X_MARKER", m)]), None);
    assert!(r.ended && r.text() == "short", "still serving: {r:?}");
}

const CATCH: &str = include_str!("apps/catch.py");

#[test]
fn body_error_from_the_module_raises_oserror() {
    let d = Daemon::start(CATCH, &[]);
    let mut c = d.connect();
    c.send_request(&env(&d, "/", &[]), BodyKind::Length(10));
    match c.reader.read_frame() {
        Ok(Some(proto::Frame::ReadBody { max, .. })) => assert_eq!(max, 10),
        other => panic!("expected ReadBody, got {other:?}"),
    }
    let mut out = Vec::new();
    proto::encode_error(&mut out, c.seq, b"client went away");
    c.write(&out);
    let r = c.read_response(b"", 0);
    assert!(r.ended, "{r:?}");
    assert!(
        r.text().starts_with("OSError:") && r.text().contains("client went away"),
        "{}",
        r.text()
    );
}

const VENV_APP: &str = include_str!("apps/venv_app.py");

#[test]
fn virtualenv_python_home_and_python_path() {
    let tmp = common::TempDir::new();
    let venv = tmp.0.join("venv");
    std::fs::create_dir_all(&venv).expect("venv dir");
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").expect("pyvenv.cfg");
    // The daemon picks lib/pythonX.Y for its own Python version.
    for minor in 6..=20 {
        let sp = venv.join(format!("lib/python3.{minor}/site-packages"));
        std::fs::create_dir_all(sp.join("pth-extra")).expect("site-packages");
        std::fs::write(sp.join("venvmod.py"), "VALUE = 'from venv'\n").expect("module");
        std::fs::write(sp.join("extra.pth"), "pth-extra\n").expect("pth");
    }
    let pp = tmp.0.join("pp");
    std::fs::create_dir_all(&pp).expect("pp dir");
    let pp_str = pp.to_str().unwrap_or_default();
    std::fs::write(pp.join("ppmod.py"), format!("DIR = {pp_str:?}\n")).expect("ppmod");
    let venv_str = venv.to_str().unwrap_or_default();
    let d = Daemon::start(
        VENV_APP,
        &[
            "--python-home",
            venv_str,
            "--python-path",
            pp_str,
            "--home",
            "/",
        ],
    );
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}");
    let text = r.text();
    for want in [
        "venv=from venv",
        "pth=True",
        &format!("prefix={venv_str}"),
        "order=True",
    ] {
        assert!(text.lines().any(|l| l == want), "{want:?} not in\n{text}");
    }
}

#[test]
fn real_prefix_python_home() {
    let d = Daemon::start(ENVIRON, &["--python-home", "/usr"]);
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}");
}

#[test]
fn worker_threads_serve_concurrently() {
    let d = Daemon::start(SLOW, &["--threads", "3"]);
    d.wait_log("started");
    let start = Instant::now();
    let mut clients: Vec<_> = (0..3).map(|_| d.connect()).collect();
    for c in &mut clients {
        c.send_request(&env(&d, "/", &[]), BodyKind::None);
    }
    for c in &mut clients {
        let r = c.read_response(b"", 0);
        assert!(r.ended && r.text() == "slow", "{r:?}");
    }
    // Three 1-second requests on three threads: the GIL is not held while they sleep.
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn the_home_directory_comes_first_in_sys_path_so_a_sibling_module_imports() {
    // The common two-file layout: wsgi.py does `from myapp import app`, with myapp.py in the
    // group's home= directory (express sets home= to the script's directory).
    let home = common::TempDir::new();
    std::fs::write(
        home.0.join("rswsgi_sibling_mod.py"),
        "def app(environ, start_response):\n    import sys\n    body = ('first=' + sys.path[0]).encode()\n    start_response('200 OK', [('Content-Length', str(len(body)))])\n    return [body]\n",
    )
    .unwrap();
    let d = Daemon::start(
        "from rswsgi_sibling_mod import app as application\n",
        &["--home", home.0.to_str().unwrap()],
    );
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    assert_eq!(r.text(), format!("first={}", home.0.display()));
}

const STDIO_APP: &str = r#"
import io, sys
def application(environ, start_response):
    sys.stdout.buffer.write("BUFFER-LINE caf\u00e9\n".encode())
    sys.stdout.buffer.flush()
    print("STDERR-LINE", file=sys.stderr)
    print("ERRORS-LINE", file=environ["wsgi.errors"])
    try:
        sys.stdout.fileno()
        fileno = "returned"
    except io.UnsupportedOperation:
        fileno = "UnsupportedOperation"
    facts = "%s %s %s %s %s" % (
        type(sys.stdout).__name__, sys.stdout.name, sys.stderr.name,
        sys.stdout.errors, sys.stdout.line_buffering,
    )
    errors = environ["wsgi.errors"]
    try:
        errors.fileno()
        errors_fileno = "returned"
    except OSError:
        errors_fileno = "OSError"
    errors.close()
    print("AFTER-CLOSE-LINE", file=errors)
    errors_facts = "%s %s %s" % (errors.name, errors.errors, errors_fileno)
    body = (facts + " " + fileno + " " + errors_facts).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"#;

#[test]
fn stdout_and_stderr_are_text_streams_with_a_buffer_whose_lines_reach_the_log() {
    let d = Daemon::start(STDIO_APP, &[]);
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    assert_eq!(
        r.text(),
        "TextIOWrapper <stdout> <stderr> replace True UnsupportedOperation \
         <wsgi.errors> replace OSError"
    );
    // Each line carries the id of the request it was written for.
    d.wait_log("[request REQ-42] BUFFER-LINE café");
    d.wait_log("[request REQ-42] STDERR-LINE");
    d.wait_log("[request REQ-42] ERRORS-LINE");
    // close() flushes, as mod_wsgi's, and the stream stays usable.
    d.wait_log("[request REQ-42] AFTER-CLOSE-LINE");
}

const SITE_APP: &str = r#"
import sys
def application(environ, start_response):
    body = "\n".join([
        "prefix=" + sys.prefix,
        "base_prefix=" + sys.base_prefix,
        "executable=" + sys.executable,
        "system_site=" + str(any(p.endswith("dist-packages") for p in sys.path)),
        "venv_after_stdlib=" + str(
            max(i for i, p in enumerate(sys.path) if p.endswith("site-packages"))
            > sys.path.index("/usr/lib/python3.11")
        ),
    ]).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"#;

#[test]
fn a_real_virtualenv_is_set_up_as_its_own_python_would_set_it_up() {
    // As the root crate's `require!(venv)`: skipped with a line when unset, unless
    // `make test` (RSWSGI_TEST_REQUIRE=1) asks for every test to run.
    let Ok(venv) = std::env::var("RSWSGI_TEST_VENV") else {
        let why = "needs RSWSGI_TEST_VENV, a virtualenv of /usr/bin/python3 (run make test)";
        assert!(std::env::var_os("RSWSGI_TEST_REQUIRE").is_none(), "{why}");
        let test = "a_real_virtualenv_is_set_up_as_its_own_python_would_set_it_up";
        let _ = writeln!(std::io::stderr(), "skipped: {test}: {why}");
        return;
    };
    let d = Daemon::start(SITE_APP, &["--python-home", &venv]);
    let r = d.connect().request(&env(&d, "/", &[]), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    let text = r.text();
    for want in [
        format!("prefix={venv}"),
        "base_prefix=/usr".to_string(),
        format!("executable={venv}/bin/python3"),
        // Debian's /usr/lib/python3/dist-packages stay out, as pyvenv.cfg says.
        "system_site=False".to_string(),
        "venv_after_stdlib=True".to_string(),
    ] {
        assert!(text.lines().any(|l| l == want), "{want} not in\n{text}");
    }
}

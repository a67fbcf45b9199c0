//! express's daemon flags, each checked by what it does to the running daemons: a
//! `--queue-timeout` 504, a `--startup-timeout` that fails a slow start, a
//! `--deadlock-timeout` restart, `--interrupt-timeout` keeping the process, a
//! `--header-buffer-size` 500, the locale, umask, process title and Python options the
//! application sees, `--daemon-backlog` on the socket, `--setenv` in `os.environ`,
//! `--disable-reloading` and `--slow-requests`.

mod common;

use std::time::{Duration, Instant};

use common::curl::curl;
use common::express::Express;
use common::{procs, Stage};

/// An application that reports what the daemon gave it, and misbehaves on request.
const APP: &str = r#"
import os, re, sys, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    headers = [('Content-Type', 'text/plain')]
    if path == '/slow':
        time.sleep(3)
    elif path == '/spin':
        end = time.time() + 30
        try:
            while time.time() < end:
                pass
        except BaseException as e:
            sys.stderr.write('spin interrupted by %s\n' % type(e).__name__)
            raise
    elif path == '/gil':
        # The re module holds the GIL throughout: a catastrophic backtrack takes minutes.
        re.match(r'(a+)+$', 'a' * 40 + 'b')
    elif path == '/bighead':
        headers.append(('X-Big', 'x' * 2000))
    mask = os.umask(0)
    os.umask(mask)
    lines = [
        'pid=%d' % os.getpid(),
        'LANG=%s' % os.environ.get('LANG'),
        'LC_ALL=%s' % os.environ.get('LC_ALL'),
        'umask=%04o' % mask,
        'optimize=%d' % sys.flags.optimize,
        'dont_write_bytecode=%s' % sys.dont_write_bytecode,
        'warnoptions=%s' % ','.join(sys.warnoptions),
        'switchinterval=%g' % sys.getswitchinterval(),
        'os.FROM_SETENV=%s' % os.environ.get('FROM_SETENV'),
        'FROM_SETENV=%s' % environ.get('FROM_SETENV'),
        'PYTHON_EGG_CACHE=%s' % os.environ.get('PYTHON_EGG_CACHE'),
        'version=1',
    ]
    start_response('200 OK', headers)
    return [('\n'.join(lines) + '\n').encode()]
"#;

/// express serving [`APP`] with `args`, in an environment without the variables the
/// Python options set (so that the test sees the options' effect, not the caller's).
fn start(tag: &str, args: &[&str]) -> Express {
    let stage = Stage::new(tag);
    let script = stage.write("app/wsgi.py", APP);
    let cwd = stage.dir.clone();
    let mut all = vec![script.to_str().unwrap().to_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut express = Express::launch_with(stage, &cwd, &all, |cmd| {
        for var in [
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONOPTIMIZE",
            "PYTHONWARNINGS",
            "LC_ALL",
            "LC_CTYPE",
            "LANG",
        ] {
            cmd.env_remove(var);
        }
    });
    express.wait_serving();
    express
}

/// A 3-second request on the one worker thread, and half a second later a quick one: the
/// statuses (slow, quick).
fn slow_then_queued(express: &Express) -> (u16, u16) {
    let dir = express.stage.subdir("slow");
    let slow_url = express.url("/slow");
    let slow = std::thread::spawn(move || curl(&dir, &slow_url, &[]));
    std::thread::sleep(Duration::from_millis(500));
    let queued = curl(&express.stage.dir, &express.url("/"), &[]);
    (slow.join().unwrap().status, queued.status)
}

#[test]
fn slow_requests_logs_a_slow_request_with_its_duration() {
    let express = start("slowreq", &["--slow-requests", "1.5"]);
    let slow = curl(&express.stage.dir, &express.url("/slow"), &[]);
    assert_eq!(slow.status, 200, "{}", express.logs());
    assert_eq!(curl(&express.stage.dir, &express.url("/"), &[]).status, 200);
    let logged = procs::wait_until(Duration::from_secs(10), || {
        express
            .error_log()
            .lines()
            .any(|l| l.contains("RSWSGI0421:") && l.contains("GET /slow took "))
    });
    assert!(logged, "{}", express.logs());
    // The quick request is not slow.
    assert!(
        !express.error_log().contains("GET / took"),
        "{}",
        express.logs()
    );
    express.stop();
}

#[test]
fn queue_timeout_answers_504_without_running_the_app() {
    let express = start("queue", &["--threads", "1", "--queue-timeout", "1"]);
    assert_eq!(slow_then_queued(&express), (200, 504), "{}", express.logs());
    assert!(
        express.error_log().contains("RSWSGI0408:"),
        "{}",
        express.logs()
    );
    express.stop();
    // The default (45 s) lets the same queued request wait for the worker.
    let express = start("queue-default", &["--threads", "1"]);
    assert_eq!(slow_then_queued(&express), (200, 200), "{}", express.logs());
    express.stop();
}

#[test]
fn startup_timeout_fails_a_start_that_takes_longer() {
    let slow_import = format!("import time\ntime.sleep(4)\n{APP}");
    let mut express = Express::start("startup", &slow_import, &["--startup-timeout", "1"]);
    let status = express.wait_exit(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", express.logs());
    assert!(
        express.error_log().contains("startup-timeout"),
        "{}",
        express.logs()
    );
    // The same import within the default (15 s) starts.
    let mut ok = Express::start("startup-default", &slow_import, &[]);
    ok.wait_serving();
    assert_eq!(curl(&ok.stage.dir, &ok.url("/"), &[]).status, 200);
    ok.stop();
}

#[test]
fn deadlock_timeout_restarts_a_daemon_whose_gil_is_stuck() {
    let express = start("deadlock", &["--deadlock-timeout", "2", "--threads", "2"]);
    let dir = &express.stage.dir;
    let before = curl(dir, &express.url("/"), &[]).kv("pid");
    let began = Instant::now();
    let stuck = curl(dir, &express.url("/gil"), &["--max-time", "40"]);
    assert!(
        stuck.status == 502 || stuck.status == 0,
        "{stuck:?}\n{}",
        express.logs()
    );
    assert!(began.elapsed() < Duration::from_secs(30));
    assert!(
        express.error_log().contains("deadlock-timeout"),
        "{}",
        express.logs()
    );
    let mut after = None;
    procs::wait_until(Duration::from_secs(20), || {
        after = curl(dir, &express.url("/"), &[]).kv("pid");
        after.is_some()
    });
    assert!(after.is_some() && after != before, "{before:?} {after:?}");
    express.stop();
}

#[test]
fn interrupt_timeout_keeps_the_process_after_a_request_timeout() {
    let express = start(
        "interrupt",
        &["--request-timeout", "1", "--interrupt-timeout", "10"],
    );
    let dir = &express.stage.dir;
    let before = curl(dir, &express.url("/"), &[]).kv("pid");
    let spun = curl(dir, &express.url("/spin"), &[]);
    assert_eq!(spun.status, 504, "{spun:?}\n{}", express.logs());
    let interrupted = procs::wait_until(Duration::from_secs(10), || {
        express
            .error_log()
            .contains("spin interrupted by RequestTimeout")
    });
    assert!(interrupted, "{}", express.logs());
    let after = curl(dir, &express.url("/"), &[]).kv("pid");
    assert_eq!(before, after, "the daemon recycled:\n{}", express.logs());
    express.stop();
}

#[test]
fn header_buffer_size_limits_the_response_head() {
    let express = start("headbuf", &["--header-buffer-size", "1000"]);
    let dir = &express.stage.dir;
    assert_eq!(curl(dir, &express.url("/"), &[]).status, 200);
    let big = curl(dir, &express.url("/bighead"), &[]);
    assert_eq!(big.status, 500, "{big:?}\n{}", express.logs());
    express.stop();
}

#[test]
fn the_app_sees_locale_umask_python_options_and_setenv() {
    let stage_eggs = std::env::temp_dir().join("rswsgi-eggs-test");
    let express = start(
        "environment",
        &[
            "--locale",
            "C.utf8",
            "--lang",
            "C.UTF-8",
            "--umask",
            "0027",
            "--python-optimize",
            "2",
            "--dont-write-bytecode",
            "--python-warnings",
            "ignore::DeprecationWarning",
            "--python-warnings",
            "error::ResourceWarning",
            "--switch-interval",
            "0.002",
            "--python-eggs",
            stage_eggs.to_str().unwrap(),
            "--setenv",
            "FROM_SETENV",
            "set by express",
            "--display-name",
            "rswsgi-dn-check",
            "--daemon-backlog",
            "37",
        ],
    );
    let r = curl(&express.stage.dir, &express.url("/"), &[]);
    assert_eq!(r.status, 200, "{}", express.logs());
    let want = [
        ("LC_ALL", "C.utf8"),
        ("LANG", "C.UTF-8"),
        ("umask", "0027"),
        ("optimize", "2"),
        ("dont_write_bytecode", "True"),
        (
            "warnoptions",
            "ignore::DeprecationWarning,error::ResourceWarning",
        ),
        ("switchinterval", "0.002"),
        ("os.FROM_SETENV", "set by express"),
        ("FROM_SETENV", "set by express"),
        ("PYTHON_EGG_CACHE", stage_eggs.to_str().unwrap()),
    ];
    for (key, value) in want {
        assert_eq!(r.kv(key).as_deref(), Some(value), "{key}: {}", r.text());
    }
    let pid: i32 = r.kv("pid").unwrap().parse().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("rswsgi-dn-check"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    // --daemon-backlog: the group socket's listen queue (ss shows it as Send-Q).
    let ss = std::process::Command::new("ss")
        .args(["-lxH"])
        .output()
        .expect("run ss");
    let root = express.root.to_str().unwrap().to_owned();
    let listing = String::from_utf8_lossy(&ss.stdout).into_owned();
    let line = listing
        .lines()
        .find(|l| l.contains(&root))
        .unwrap_or_else(|| panic!("no socket under {root}:\n{listing}"));
    assert_eq!(line.split_whitespace().nth(3), Some("37"), "{line}");
    express.stop();
}

#[test]
fn the_defaults_give_the_app_a_utf8_locale_and_python_defaults() {
    let express = start("env-defaults", &[]);
    let r = curl(&express.stage.dir, &express.url("/"), &[]);
    assert_eq!(r.kv("optimize").as_deref(), Some("0"), "{}", r.text());
    assert_eq!(r.kv("dont_write_bytecode").as_deref(), Some("False"));
    assert_eq!(r.kv("switchinterval").as_deref(), Some("0.005"));
    // Neither LC_ALL nor LANG in express's environment: C.UTF-8, as mod_wsgi-express
    // falls back to a UTF-8 locale for C.
    assert_eq!(r.kv("LC_ALL").as_deref(), Some("C.UTF-8"));
    assert_eq!(r.kv("LANG").as_deref(), Some("C.UTF-8"));
    express.stop();
}

#[test]
fn disable_reloading_keeps_the_loaded_script() {
    for (flag, want) in [(Some("--disable-reloading"), "1"), (None, "2")] {
        let args: Vec<&str> = flag.into_iter().collect();
        let express = start("reloading", &args);
        let dir = &express.stage.dir;
        assert_eq!(
            curl(dir, &express.url("/"), &[]).kv("version").as_deref(),
            Some("1")
        );
        let script = dir.join("app/wsgi.py");
        std::fs::write(&script, APP.replace("'version=1'", "'version=2'")).unwrap();
        // A later modification time, whatever the file system's granularity.
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&script)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let mut got = None;
        procs::wait_until(Duration::from_secs(10), || {
            got = curl(dir, &express.url("/"), &[]).kv("version");
            got.as_deref() == Some(want)
        });
        assert_eq!(got.as_deref(), Some(want), "{flag:?}\n{}", express.logs());
        express.stop();
    }
}

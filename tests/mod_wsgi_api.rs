//! What applications written for mod_wsgi look for, through real Apache: the `mod_wsgi.*`
//! and `apache.version` environ keys with mod_wsgi 6's types, `import mod_wsgi` with its
//! attributes, `process_metrics()`, `request_data()`, event and shutdown subscribers, and
//! `atexit` handlers at a recycle.

mod common;

use std::time::Duration;

use common::http::Response;
use common::{procs, TestServer};

fn kv(r: &Response, key: &str) -> String {
    r.kv(key)
        .unwrap_or_else(|| panic!("{key} missing from:\n{}", r.text()))
}

/// The type name part of a `type:repr` value.
fn type_of(r: &Response, key: &str) -> String {
    let v = kv(r, key);
    v.split_once(':').map_or(v.clone(), |(t, _)| t.to_string())
}

#[test]
fn environ_keys_have_mod_wsgi_types() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/mod_wsgi_api.py")
        .threads(3)
        .start();
    let r = srv.get("/some/path?q=1");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let typed = [
        ("mod_wsgi.version", "tuple"),
        ("apache.version", "tuple"),
        ("mod_wsgi.request_start", "float"),
        ("mod_wsgi.queue_start", "float"),
        ("mod_wsgi.daemon_start", "float"),
        ("mod_wsgi.application_start", "float"),
        ("mod_wsgi.thread_id", "int"),
        ("mod_wsgi.listener_host", "str"),
        ("mod_wsgi.listener_port", "str"),
        ("mod_wsgi.server_pid", "str"),
        ("mod_wsgi.request_id", "str"),
        ("mod_wsgi.request_handler", "str"),
        ("mod_wsgi.handler_script", "str"),
        ("mod_wsgi.pass_authorization", "str"),
        ("mod_wsgi.path_info", "str"),
        ("mod_wsgi.script_name", "str"),
        ("mod_wsgi.process_group", "str"),
        ("mod_wsgi.application_group", "str"),
        ("mod_wsgi.callable_object", "str"),
    ];
    for (key, ty) in typed {
        assert_eq!(
            type_of(&r, &format!("env.{key}")),
            ty,
            "{key}:\n{}",
            r.text()
        );
    }
    assert_eq!(kv(&r, "env.mod_wsgi.version"), "tuple:(6, 0, 0)");
    assert!(kv(&r, "env.apache.version").starts_with("tuple:(2, 4, "));
    assert_eq!(
        kv(&r, "env.mod_wsgi.listener_port"),
        format!("str:'{}'", srv.addr.port())
    );
    assert_eq!(kv(&r, "env.mod_wsgi.request_handler"), "str:'wsgi-script'");
    assert_eq!(kv(&r, "env.mod_wsgi.path_info"), "str:'/some/path'");
    // express writes WSGIPassAuthorization On, as mod_wsgi-express.
    assert_eq!(kv(&r, "env.mod_wsgi.pass_authorization"), "str:'1'");
    let httpd_children: Vec<String> = srv
        .httpd_processes()
        .iter()
        .map(|p| format!("str:'{}'", p.pid))
        .collect();
    assert!(
        httpd_children.contains(&kv(&r, "env.mod_wsgi.server_pid")),
        "server_pid is an Apache process: {httpd_children:?}\n{}",
        r.text()
    );
    // Times are seconds since the epoch, in order.
    let secs = |k: &str| -> f64 {
        kv(&r, &format!("env.mod_wsgi.{k}"))
            .trim_start_matches("float:")
            .parse()
            .unwrap()
    };
    let (req, queue, daemon, app) = (
        secs("request_start"),
        secs("queue_start"),
        secs("daemon_start"),
        secs("application_start"),
    );
    assert!(
        req > 1.7e9 && req <= queue && queue <= daemon && daemon <= app,
        "{req} {queue} {daemon} {app}"
    );
    assert!(app - req < 30.0);
    let thread: u32 = kv(&r, "env.mod_wsgi.thread_id")
        .trim_start_matches("int:")
        .parse()
        .unwrap();
    assert!((1..=3).contains(&thread), "thread_id {thread}");
    // Wire-only carriers do not reach the application; nor do PATH and HTTPS.
    assert!(
        r.kv("env.mod_wsgi.x-request_start_us").is_none(),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("x-queue_start_us"), "{}", r.text());
    assert_eq!(kv(&r, "plain.PATH"), "NoneType:None");
    assert_eq!(kv(&r, "plain.HTTPS"), "NoneType:None");
    assert_eq!(kv(&r, "plain.wsgi.run_once"), "bool:False");
    assert_eq!(type_of(&r, "plain.SCRIPT_FILENAME"), "str");
}

#[test]
fn import_mod_wsgi_gives_the_process_and_its_metrics() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/mod_wsgi_api.py")
        .processes(2)
        .threads(3)
        .start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(kv(&r, "module.version"), "tuple:(6, 0, 0)");
    assert_eq!(kv(&r, "module.maximum_processes"), "int:2");
    assert_eq!(kv(&r, "module.threads_per_process"), "int:3");
    assert_eq!(type_of(&r, "module.process_group"), "str");
    assert_ne!(kv(&r, "module.process_group"), "str:''");
    for f in [
        "subscribe_events",
        "subscribe_shutdown",
        "process_metrics",
        "server_metrics",
        "request_data",
    ] {
        assert_eq!(kv(&r, &format!("module.{f}")), "callable", "{f}");
    }
    assert_eq!(type_of(&r, "module.RequestTimeout"), "type");
    assert_eq!(type_of(&r, "module.FileWrapper"), "type");
    for (key, ty) in [
        ("pid", "int"),
        ("request_count", "int"),
        ("request_busy_time", "float"),
        ("memory_rss", "int"),
        ("memory_max_rss", "int"),
        ("cpu_user_time", "float"),
        ("cpu_system_time", "float"),
        ("active_requests", "int"),
        ("threads", "list"),
        ("restart_time", "float"),
        ("running_time", "float"),
    ] {
        assert_eq!(type_of(&r, &format!("metrics.{key}")), ty, "{key}");
    }
    // This request counts; the readiness probe's may still be counted for a moment after its
    // response arrived (the count drops once the daemon's worker is done), so ask again.
    let mut active = kv(&r, "metrics.active_requests");
    for _ in 0..20 {
        if active == "int:1" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        active = kv(&srv.get("/"), "metrics.active_requests");
    }
    assert_eq!(active, "int:1", "this request");
    assert_eq!(kv(&r, "server_metrics"), "None");
    // request_data(): one dict per request, which the request_started callback filled.
    assert_eq!(kv(&r, "same_data"), "True");
    assert_eq!(kv(&r, "request_data"), "[('seen_by_event', '/'), ('x', 1)]");
    // Requests are counted: after several, some process reports them.
    let mut counted = 0;
    for _ in 0..8 {
        let r = srv.get("/");
        let n: u64 = kv(&r, "metrics.request_count")
            .trim_start_matches("int:")
            .parse()
            .unwrap();
        counted = counted.max(n);
    }
    assert!(counted >= 2, "request_count never went past {counted}");
}

#[test]
fn events_and_shutdown_callbacks_run() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/mod_wsgi_api.py")
        .threads(1)
        .daemon_option("maximum-requests=3")
        .start();
    let r = srv.get("/fail");
    assert_eq!(r.status, 500);
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let started = kv(&r, "event.request_started");
    for k in [
        "application_object",
        "application_start",
        "callable_object",
        "daemon_start",
        "queue_start",
        "request_data",
        "request_environ",
        "request_id",
        "request_start",
        "server_pid",
        "thread_id",
    ] {
        assert!(started.split(',').any(|s| s == k), "{k} in {started}");
    }
    let text = r.text();
    assert!(
        text.contains("event.request_exception=exception_info,request_data,request_id"),
        "{text}"
    );
    assert!(
        text.contains(
            "event.request_finished=application_finish,application_time,request_data,status"
        ),
        "{text}"
    );
    // The third request recycles the process (maximum-requests=3): shutdown callbacks run
    // as it stops, then atexit handlers.
    srv.get("/");
    let logged = procs::wait_until(Duration::from_secs(20), || {
        let log = srv.root.read_error_log();
        log.contains("SHUTDOWN-CALLBACK process_stopping reason='maximum_requests'")
            && log.contains("ATEXIT-HANDLER ran")
    });
    assert!(logged, "{}", srv.logs());
    let log = srv.root.read_error_log();
    let (shutdown, atexit) = (
        log.find("SHUTDOWN-CALLBACK").unwrap(),
        log.find("ATEXIT-HANDLER").unwrap(),
    );
    assert!(
        shutdown < atexit,
        "shutdown callbacks run before atexit handlers"
    );
}

#[test]
fn the_application_cannot_take_over_the_daemons_signals() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/signal_grab.py").start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let pid: i32 = kv(&r, "pid").parse().unwrap();
    assert!(
        srv.root
            .read_error_log()
            .contains("Ignoring Python signal handler registration for signal 15"),
        "{}",
        srv.logs()
    );
    // SIGUSR1 still recycles the process: a new one serves.
    // SAFETY: kill has no memory-safety preconditions; pid is a daemon this test's httpd started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let replaced = procs::wait_until(Duration::from_secs(20), || {
        srv.get("/")
            .kv("pid")
            .is_some_and(|p| p.parse::<i32>().ok() != Some(pid))
    });
    assert!(
        replaced,
        "SIGUSR1 did not recycle the daemon:\n{}",
        srv.logs()
    );
}

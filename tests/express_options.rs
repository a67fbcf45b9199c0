//! `express start-server` with mod_wsgi-express's application-loading, request and process
//! options, driven with curl: `--application-type module`, `--limit-request-body`,
//! `--chunked-request`, `--keep-alive-timeout`, `--trust-proxy-header`/`--trust-proxy`,
//! `--server-mpm`, `--pid-file`, `--process-name` and `--envvars-script`.

mod common;

use common::curl::curl;
use common::express::Express;
use common::{procs, repo_root, Stage};

#[test]
fn a_module_entry_point_is_imported_from_the_working_directory() {
    let stage = Stage::new("module");
    stage.write("proj/mysite/__init__.py", "");
    stage.write("proj/mysite/wsgi.py", "from mysite.views import app\n");
    stage.write(
        "proj/mysite/views.py",
        "def app(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [b'module app from ' + __name__.encode() + b'\\n']\n",
    );
    let proj = stage.dir.join("proj");
    let mut express = Express::launch(
        stage,
        &proj,
        &[
            "--application-type",
            "module",
            "--entry-point",
            "mysite.wsgi",
            "--callable-object",
            "app",
        ],
    );
    express.wait_serving();
    let r = curl(&express.stage.dir, &express.url("/"), &[]);
    assert_eq!(r.status, 200, "{}", express.logs());
    assert_eq!(r.text(), "module app from mysite.views\n");
    assert!(express
        .stdout()
        .contains("WSGI Module        : mysite.wsgi"));
    express.stop();
}

#[test]
fn request_limits_keep_alive_and_trusted_proxies() {
    let stage = Stage::new("limits");
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    let mut express = Express::start_script(
        stage,
        script,
        &[
            "--limit-request-body",
            "1000",
            "--chunked-request",
            "--keep-alive-timeout",
            "0",
            "--trust-proxy-header",
            "X-Forwarded-Proto",
            "--trust-proxy",
            "127.0.0.1",
        ],
    );
    express.wait_serving();
    let dir = &express.stage.dir;
    let url = express.url("/upload");
    let small = curl(dir, &url, &["--data-binary", &"a".repeat(500)]);
    assert_eq!(
        small.kv("length").as_deref(),
        Some("500"),
        "{}",
        express.logs()
    );
    let big = curl(dir, &url, &["--data-binary", &"a".repeat(2000)]);
    assert_eq!(big.status, 413, "{big:?}");
    // --chunked-request: a chunked body is accepted (refused with 411 by default).
    let chunked = curl(
        dir,
        &url,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "chunked body",
        ],
    );
    assert_eq!(chunked.kv("length").as_deref(), Some("12"), "{chunked:?}");
    // --keep-alive-timeout 0: KeepAlive Off.
    let plain = curl(dir, &express.url("/"), &[]);
    assert_eq!(plain.header("connection"), Some("close"), "{plain:?}");
    let proxied = curl(dir, &express.url("/"), &["-H", "X-Forwarded-Proto: https"]);
    assert_eq!(proxied.kv("wsgi.url_scheme").as_deref(), Some("https"));
    express.stop();
}

#[test]
fn process_options_name_the_mpm_pid_file_and_environment() {
    for mpm in ["worker", "prefork"] {
        let stage = Stage::new("process");
        let script = stage.copy(
            &repo_root().join("tests/apps/site_app.py"),
            "app/wsgi.py",
            0o644,
        );
        let envvars = stage.write("envvars", "export FROM_ENVVARS=set-by-envvars\n");
        let pid_file = stage.dir.join("run/site.pid");
        std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
        let name = format!("rswsgi-site-{mpm}");
        let mut express = Express::start_script(
            stage,
            script,
            &[
                "--server-mpm",
                mpm,
                "--pid-file",
                pid_file.to_str().unwrap(),
                "--process-name",
                &name,
                "--envvars-script",
                envvars.to_str().unwrap(),
            ],
        );
        express.wait_serving();
        let conf = std::fs::read_to_string(express.root.join("httpd.conf")).unwrap();
        assert!(conf.contains(&format!("mod_mpm_{mpm}.so")), "{mpm}");
        for _ in 0..4 {
            let r = curl(&express.stage.dir, &express.url("/"), &[]);
            assert_eq!(r.status, 200, "{mpm}: {}", express.logs());
            // The daemons inherit the environment the script set for httpd.
            assert_eq!(r.kv("os.FROM_ENVVARS").as_deref(), Some("set-by-envvars"));
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", pid_file.display(), express.logs()))
            .trim()
            .parse()
            .unwrap();
        assert!(express.started_pids().contains(&pid), "{pid}");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            cmdline.starts_with(name.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&cmdline)
        );
        assert!(procs::alive(pid));
        express.stop();
    }
}

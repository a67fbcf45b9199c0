//! `express start-server` with mod_wsgi-express's application-loading, request and process
//! options, driven with curl: `--application-type module`, `--limit-request-body`,
//! `--chunked-request`, `--keep-alive-timeout`, `--trust-proxy-header`/`--trust-proxy`,
//! `--server-backlog`, `--map-head-to-get`,
//! `--server-mpm`, `--pid-file`, `--process-name`, `--envvars-script`, `--process-group`,
//! `--application-group`, `--socket-prefix`, `--setenv`, `--passenv` and `--setup-only`.

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
            "--server-backlog",
            "123",
            "--map-head-to-get",
            "On",
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
    // --map-head-to-get On: the application sees GET for a HEAD (Apache sends no body).
    let head = curl(dir, &express.url("/"), &["-I"]);
    assert_eq!(head.header("x-request-method"), Some("GET"), "{head:?}");
    // (With -I curl writes the head where the body would go: no application text there.)
    assert!(!head.text().contains("SCRIPT_NAME="), "{head:?}");
    // --server-backlog: the listening socket's queue (ss shows it as Send-Q).
    let ss = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", express.port)])
        .output()
        .expect("run ss");
    let listing = String::from_utf8_lossy(&ss.stdout);
    let backlog = listing.split_whitespace().nth(2);
    assert_eq!(backlog, Some("123"), "{listing}");
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
                "--passenv",
                "FROM_ENVVARS",
            ],
        );
        express.wait_serving();
        let conf = std::fs::read_to_string(express.root.join("httpd.conf")).unwrap();
        assert!(conf.contains(&format!("mod_mpm_{mpm}.so")), "{mpm}");
        for _ in 0..4 {
            let r = curl(&express.stage.dir, &express.url("/"), &[]);
            assert_eq!(r.status, 200, "{mpm}: {}", express.logs());
            // The daemons inherit the environment the script set for httpd; --passenv puts
            // it in the environ too.
            assert_eq!(r.kv("os.FROM_ENVVARS").as_deref(), Some("set-by-envvars"));
            assert_eq!(r.kv("FROM_ENVVARS").as_deref(), Some("set-by-envvars"));
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

#[test]
fn mount_options_name_the_groups_sockets_and_environ() {
    let stage = Stage::new("mount");
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    let sockets = stage.subdir("sockets");
    let prefix = sockets.join("site");
    let mut express = Express::start_script(
        stage,
        script,
        &[
            "--process-group",
            "my-site",
            "--application-group",
            "my-app",
            "--socket-prefix",
            prefix.to_str().unwrap(),
            "--setenv",
            "FROM_SETENV",
            "a value with spaces",
        ],
    );
    express.wait_serving();
    let r = curl(&express.stage.dir, &express.url("/"), &[]);
    assert_eq!(r.status, 200, "{}", express.logs());
    assert_eq!(r.kv("mod_wsgi.process_group").as_deref(), Some("my-site"));
    assert_eq!(
        r.kv("mod_wsgi.application_group").as_deref(),
        Some("my-app")
    );
    assert_eq!(r.kv("FROM_SETENV").as_deref(), Some("a value with spaces"));
    let made: Vec<String> = std::fs::read_dir(&sockets)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        made.iter().any(|n| n.starts_with("site")),
        "no socket under {}: {made:?}\n{}",
        sockets.display(),
        express.logs()
    );
    assert!(
        !express.root.join("wsgi").exists() && !made.is_empty(),
        "{made:?}"
    );
    express.stop();
}

#[test]
fn setup_only_writes_the_server_root_and_starts_nothing() {
    let stage = Stage::new("setuponly");
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    let bins = stage.binaries();
    let root = stage.dir.join("root");
    let mut cmd = common::express::command(&bins, &root, common::free_port());
    cmd.arg(&script).arg("--setup-only");
    let out = cmd.output().expect("run express");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Server root written to"), "{stdout}");
    assert!(root.join("httpd.conf").is_file() && root.join("apachectl").is_file());
    assert!(!root.join("httpd.pid").exists(), "httpd was started");
}

//! `express module-location`, `module-config` and `install-module`: the lines they print,
//! pasted into a hand-written Apache configuration (not express's), load rswsgi and serve
//! an application.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{binaries, free_port, procs, test_user, Stage};

const APP: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [b'served by ' + environ['mod_wsgi.process_group'].encode() + b'\\n']\n";

/// Runs `express ARGS`; asserts it exits 0 and returns its standard output.
fn express(args: &[&str]) -> String {
    let out = Command::new(binaries().express)
        .args(args)
        .env_remove("VIRTUAL_ENV")
        .env_remove("RSWSGI_DAEMON")
        .env_remove("RSWSGI_MODULE")
        .output()
        .expect("run express");
    assert!(
        out.status.success(),
        "express {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// httpd in the foreground on a configuration written by hand around `pasted`.
struct HandServer {
    child: Child,
    port: u16,
}

impl HandServer {
    fn start(stage: &Stage, pasted: &str) -> HandServer {
        let port = free_port();
        let script = stage.write("app/wsgi.py", APP);
        let root = stage.subdir("httpd");
        let user = match test_user() {
            Some(u) => format!("User {u}\nGroup {u}\n"),
            None => String::new(),
        };
        let mut conf = format!(
            "ServerRoot {root}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\n\
             PidFile {root}/httpd.pid\nDefaultRuntimeDir {root}\nErrorLog {root}/error_log\n\
             LogLevel info\n{user}",
            root = root.display()
        );
        for m in ["mpm_event", "unixd", "authz_core"] {
            conf.push_str(&format!(
                "<IfModule !{m}_module>\n  LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n</IfModule>\n"
            ));
        }
        conf.push_str("# pasted from express:\n");
        conf.push_str(pasted);
        conf.push_str(&format!(
            "WSGIScriptAlias / {script}\n<Directory {dir}>\n  Require all granted\n</Directory>\n",
            script = script.display(),
            dir = script.parent().unwrap().display()
        ));
        let conf_file = root.join("httpd.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let child = Command::new("/usr/sbin/apache2")
            .arg("-f")
            .arg(&conf_file)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(root.join("stderr")).unwrap())
            .spawn()
            .expect("start apache2");
        HandServer { child, port }
    }

    /// The response to `GET /`, once the server answers (within 30 s).
    fn get(&self) -> Option<common::http::Response> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut got = None;
        procs::wait_until(Duration::from_secs(30), || {
            got = common::http::get(addr, "/")
                .ok()
                .filter(|r| r.status == 200);
            got.is_some()
        });
        got
    }

    /// httpd's standard error and its error log.
    fn error_log(stage: &Stage) -> String {
        let read = |f: &str| std::fs::read_to_string(stage.dir.join("httpd").join(f));
        format!(
            "{}{}",
            read("stderr").unwrap_or_default(),
            read("error_log").unwrap_or_default()
        )
    }
}

impl Drop for HandServer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // exited and reaped: its pid is no longer ours to signal
        }
        let pid = self.child.id() as i32;
        // SAFETY: kill has no memory-safety preconditions; httpd is our running child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let stopped = procs::wait_until(Duration::from_secs(15), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[test]
fn module_config_lines_load_rswsgi_into_a_hand_written_config() {
    let stage = Stage::new("module-config");
    let built = binaries();
    // Module and daemon apart, so the module would not find the daemon by itself.
    let module = stage.copy(&built.module, "mods/mod_rswsgi.so", 0o644);
    let daemon = stage.copy(&built.daemon, "daemon/rswsgi-daemon", 0o755);
    let (module, daemon) = (module.to_str().unwrap(), daemon.to_str().unwrap());
    let location = express(&["module-location", "--module-path", module]);
    assert_eq!(location, format!("{module}\n"));
    let config = express(&[
        "module-config",
        "--module-path",
        module,
        "--daemon-executable",
        daemon,
    ]);
    assert_eq!(
        config,
        format!("LoadModule rswsgi_module {module}\nRSWSGIDaemonExecutable {daemon}\n")
    );
    let server = HandServer::start(&stage, &config);
    let r = server.get();
    assert!(r.is_some(), "{}", HandServer::error_log(&stage));
    assert!(r.unwrap().text().starts_with("served by "));
    // Without the RSWSGIDaemonExecutable line, the same server does not start.
    let alone = Stage::new("module-config-alone");
    alone.copy(&built.module, "mods/mod_rswsgi.so", 0o644);
    let first_line = config.lines().next().unwrap().to_owned() + "\n";
    let mut broken = HandServer::start(&alone, &first_line);
    let status = broken.child.wait().unwrap();
    assert!(!status.success(), "{}", HandServer::error_log(&alone));
}

#[test]
fn install_module_copies_both_and_the_printed_line_serves() {
    let stage = Stage::new("install-module");
    let modules = stage.subdir("apache-modules");
    let built = binaries();
    let printed = express(&[
        "install-module",
        "--modules-directory",
        modules.to_str().unwrap(),
        "--module-path",
        built.module.to_str().unwrap(),
        "--daemon-executable",
        built.daemon.to_str().unwrap(),
    ]);
    let installed = modules.join("mod_rswsgi.so");
    assert_eq!(
        printed,
        format!("LoadModule rswsgi_module {}\n", installed.display())
    );
    for (file, mode) in [("mod_rswsgi.so", 0o644), ("rswsgi-daemon", 0o755)] {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(modules.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    assert_same_file(&built.daemon, &modules.join("rswsgi-daemon"));
    let server = HandServer::start(&stage, &printed);
    let r = server.get();
    assert!(r.is_some(), "{}", HandServer::error_log(&stage));
    // The daemon that runs is the installed copy.
    let log = HandServer::error_log(&stage);
    let pid: i32 = log
        .split("started daemon process ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no daemon pid in:\n{log}"));
    assert_eq!(
        procs::exe(pid).as_deref(),
        Some(modules.join("rswsgi-daemon").as_path())
    );
}

fn assert_same_file(a: &Path, b: &Path) {
    assert_eq!(
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn install_module_into_a_missing_directory_is_one_line() {
    let out = Command::new(binaries().express)
        .args([
            "install-module",
            "--modules-directory",
            "/nonexistent/rswsgi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/rswsgi"), "{err}");
}

//! A python-home that does not fit the daemon's Python is refused before anything starts,
//! in one line naming the home (and, for a virtualenv of another version, both versions):
//! by express, and by the module's configuration check (`apache2 -t`, and so also httpd's
//! start) for a hand-written Apache configuration.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

use common::{free_port, repo_root, test_user, test_venv, Binaries, Stage};

/// The daemon's Python `major.minor`: the test virtualenv is made from it (`make setup`),
/// so its `pyvenv.cfg` says which it is.
fn daemon_python() -> String {
    let cfg = fs::read_to_string(test_venv().join("pyvenv.cfg")).unwrap();
    let version = cfg
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .expect("version in pyvenv.cfg");
    let mut parts = version.trim().split('.');
    format!("{}.{}", parts.next().unwrap(), parts.next().unwrap())
}

/// A virtualenv as `python3.9 -m venv` leaves it (Debian 11's Python 3.9.2; checked
/// against a real `python3.9 -m venv --without-pip`): pyvenv.cfg, lib/python3.9/site-packages,
/// lib64 -> lib, bin/python -> python3 -> the interpreter. Before the fix the daemon took it
/// for a virtualenv, warned that lib/python3.11/site-packages was missing, and served the
/// app without its packages.
fn fake_venv_39(stage: &Stage) -> std::path::PathBuf {
    let venv = stage.subdir("venv39");
    stage.write(
        "venv39/pyvenv.cfg",
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.9.2\n",
    );
    stage.subdir("venv39/lib/python3.9/site-packages");
    stage.subdir("venv39/include");
    stage.subdir("venv39/bin");
    symlink("lib", venv.join("lib64")).unwrap();
    symlink("/usr/bin/python3.9", venv.join("bin/python3")).unwrap();
    symlink("python3", venv.join("bin/python")).unwrap();
    venv
}

/// `express setup-server` (writes, starts nothing) of the hello app with `home`.
fn express_setup(stage: &Stage, bins: &Binaries, home: &Path) -> Output {
    let script = stage.copy(
        &repo_root().join("examples/hello/wsgi.py"),
        "app/wsgi.py",
        0o644,
    );
    let mut cmd = Command::new(&bins.express);
    cmd.arg("setup-server")
        .arg(&script)
        .args(["--port", &free_port().to_string()])
        .arg("--server-root")
        .arg(stage.dir.join("root"))
        .arg("--python-home")
        .arg(home)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon);
    if let Some(user) = test_user() {
        cmd.args(["--user", &user]);
    }
    cmd.output().expect("run express")
}

/// A hand-written configuration serving the hello app from a group with `home`, checked
/// with `apache2 -t`.
fn apache_config_test(stage: &Stage, bins: &Binaries, home: &Path) -> Output {
    let script = stage.copy(
        &repo_root().join("examples/hello/wsgi.py"),
        "site/wsgi.py",
        0o644,
    );
    let root = stage.subdir("httpd");
    let user = match test_user() {
        Some(u) => format!("User {u}\nGroup {u}\n"),
        None => String::new(),
    };
    let modules = "/usr/lib/apache2/modules";
    let conf = format!(
        "ServerRoot {root}\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {root}/httpd.pid\n\
         DefaultRuntimeDir {root}\nErrorLog {root}/error_log\n{user}\
         <IfModule !mpm_event_module>\n  LoadModule mpm_event_module {modules}/mod_mpm_event.so\n</IfModule>\n\
         <IfModule !unixd_module>\n  LoadModule unixd_module {modules}/mod_unixd.so\n</IfModule>\n\
         <IfModule !authz_core_module>\n  LoadModule authz_core_module {modules}/mod_authz_core.so\n</IfModule>\n\
         LoadModule rswsgi_module {module}\n\
         RSWSGIDaemonExecutable {daemon}\nWSGISocketPrefix {root}/wsgi\n\
         WSGIDaemonProcess mysite processes=1 threads=2 python-home={home}\n\
         WSGIScriptAlias / {script} process-group=mysite\n\
         <Directory {site}>\n  Require all granted\n</Directory>\n",
        root = root.display(),
        port = free_port(),
        module = bins.module.display(),
        daemon = bins.daemon.display(),
        home = home.display(),
        script = script.display(),
        site = script.parent().unwrap().display(),
    );
    let conf_path = stage.write("httpd/httpd.conf", &conf);
    Command::new("/usr/sbin/apache2")
        .arg("-t")
        .arg("-f")
        .arg(&conf_path)
        .output()
        .expect("run apache2 -t")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts `out` failed and said `needles` on one line (and no Python fatal error).
fn assert_refused_in_one_line(out: &Output, needles: &[&str]) {
    let text = text(out);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert!(!text.contains("Fatal Python error"), "{text}");
    let line = text
        .lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no line says all of {needles:?}:\n{text}"));
    assert_eq!(
        text.lines().filter(|l| l.contains("python-home")).count(),
        1,
        "one line about the home, got:\n{text}\n(the line: {line})"
    );
}

#[test]
fn express_refuses_an_empty_python_home() {
    require!(venv);
    let stage = Stage::new("pyhome");
    let bins = stage.binaries();
    let empty = stage.subdir("empty");
    let out = express_setup(&stage, &bins, &empty);
    let want = format!("not a Python {} virtualenv", daemon_python());
    let home = format!("python-home {}", empty.display());
    assert_refused_in_one_line(&out, &["express: ", &home, &want]);
    assert!(
        !stage.dir.join("root/httpd.conf").exists(),
        "nothing is written"
    );
}

#[test]
fn express_refuses_a_virtualenv_of_another_python() {
    require!(venv);
    let stage = Stage::new("pyhome");
    let bins = stage.binaries();
    let venv = fake_venv_39(&stage);
    let out = express_setup(&stage, &bins, &venv);
    let want = format!("runs Python {}", daemon_python());
    assert_refused_in_one_line(&out, &["express: ", "virtualenv of Python 3.9", &want]);
}

#[test]
fn express_accepts_the_daemons_virtualenv() {
    require!(venv);
    let stage = Stage::new("pyhome");
    let bins = stage.binaries();
    let out = express_setup(&stage, &bins, &test_venv());
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn apache_config_check_refuses_an_empty_python_home() {
    require!(venv);
    let stage = Stage::new("pyhome");
    let bins = stage.binaries();
    let empty = stage.subdir("empty");
    let out = apache_config_test(&stage, &bins, &empty);
    let want = format!("not a Python {} virtualenv", daemon_python());
    assert_refused_in_one_line(&out, &["WSGIDaemonProcess mysite", &want]);
}

#[test]
fn apache_config_check_refuses_a_virtualenv_of_another_python() {
    require!(venv);
    let stage = Stage::new("pyhome");
    let bins = stage.binaries();
    let venv = fake_venv_39(&stage);
    let out = apache_config_test(&stage, &bins, &venv);
    let want = format!("runs Python {}", daemon_python());
    assert_refused_in_one_line(&out, &["WSGIDaemonProcess mysite", "Python 3.9", &want]);
}

#[test]
fn apache_config_check_accepts_the_daemons_virtualenv_and_a_prefix() {
    require!(venv);
    for home in [test_venv(), "/usr".into()] {
        let stage = Stage::new("pyhome");
        let bins = stage.binaries();
        let out = apache_config_test(&stage, &bins, &home);
        assert!(
            out.status.success() && text(&out).contains("Syntax OK"),
            "{}: {}",
            home.display(),
            text(&out)
        );
    }
}

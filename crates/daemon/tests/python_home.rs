//! The daemon refuses a python-home that is not one for its Python before it starts
//! Python: one line naming the home (and both versions), exit status 1 — not CPython's
//! page of "Fatal Python error", not a virtualenv of another version whose packages are
//! silently never found.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Daemon, TempDir};

const HELLO: &str = include_str!("apps/hello.py");

/// The daemon's Python `major.minor`, as Debian's `/usr/bin/python3` (the one it is built
/// against, see `.cargo/config.toml`) reports it.
fn daemon_python() -> String {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("run /usr/bin/python3");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A virtualenv as `python3.9 -m venv` (Debian 11) leaves it, for a Python this machine
/// does not have: pyvenv.cfg, lib/python3.9/site-packages, lib64 -> lib, bin/python links.
fn fake_venv_39(dir: &Path) {
    fs::write(
        dir.join("pyvenv.cfg"),
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.9.2\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("lib/python3.9/site-packages")).unwrap();
    fs::create_dir_all(dir.join("include")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink("lib", dir.join("lib64")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3.9", dir.join("bin/python3")).unwrap();
    std::os::unix::fs::symlink("python3", dir.join("bin/python")).unwrap();
}

/// Starts a daemon with `home`, waits for it to exit, and returns its log, asserting it
/// failed with one line and no Python fatal error.
fn refused(home: &Path) -> String {
    let home = home.to_str().unwrap();
    let mut d = Daemon::start(HELLO, &["--python-home", home]);
    let status = d.wait_exit(Duration::from_secs(10)).expect("daemon exits");
    assert_eq!(status.code(), Some(1), "{}", d.log());
    let log = d.log();
    assert!(!log.contains("Fatal Python error"), "{log}");
    // Besides the start-up report, which says the same for express.
    let report = |l: &&str| l.contains(rswsgi_protocol::startup::MARKER);
    assert_eq!(log.lines().filter(report).count(), 1, "{log}");
    let human = || log.lines().filter(|l| !report(l));
    let lines: Vec<&str> = human().filter(|l| l.contains("python-home")).collect();
    assert_eq!(lines.len(), 1, "one line about the home:\n{log}");
    assert!(human().count() <= 2, "{log}");
    lines[0].to_owned()
}

#[test]
fn empty_directory_is_refused_in_one_line() {
    let dir = TempDir::new();
    let empty = dir.0.join("empty");
    fs::create_dir(&empty).unwrap();
    let line = refused(&empty);
    let want = daemon_python();
    assert!(
        line.contains(&format!("python-home {}", empty.display()))
            && line.contains(&format!("not a Python {want} virtualenv or installation")),
        "{line}"
    );
}

#[test]
fn virtualenv_of_another_python_is_refused_naming_both_versions() {
    let dir = TempDir::new();
    let venv = dir.0.join("venv39");
    fs::create_dir(&venv).unwrap();
    fake_venv_39(&venv);
    let line = refused(&venv);
    let want = daemon_python();
    assert!(
        line.contains("virtualenv of Python 3.9") && line.contains(&format!("runs Python {want}")),
        "{line}"
    );
}

#[test]
fn check_mode_answers_without_starting() {
    let daemon = env!("CARGO_BIN_EXE_rswsgi-daemon");
    let dir = TempDir::new();
    let check = |home: &Path| {
        std::process::Command::new(daemon)
            .arg("--check-python-home")
            .arg(home)
            .output()
            .unwrap()
    };
    let ok = check(Path::new("/usr"));
    assert!(ok.status.success(), "{ok:?}");
    assert!(ok.stdout.is_empty() && ok.stderr.is_empty(), "{ok:?}");
    fake_venv_39(&dir.0);
    let bad = check(&dir.0);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Python 3.9") && err.contains(&daemon_python()),
        "{err}"
    );
}

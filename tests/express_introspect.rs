//! What express tells about a server without running it: `--check-config` (httpd -t on the
//! written configuration, exit 0 or 1), `--print-config` (the resolved options, nothing
//! written), and `setup-server`'s banner and list of the files it wrote.

mod common;

use std::process::{Output, Stdio};

use common::express::command;
use common::{free_port, Stage};

/// `express start-server SCRIPT ARGS` on a fresh stage; returns its output.
fn run(stage: &Stage, args: &[&str]) -> Output {
    let script = stage.write(
        "app/wsgi.py",
        "def application(e, s):\n    s('200 OK', [])\n    return [b'']\n",
    );
    let bins = stage.binaries();
    command(&bins, &stage.dir.join("root"), free_port())
        .arg(&script)
        .args(args)
        .env_remove("VIRTUAL_ENV")
        .stdin(Stdio::null())
        .output()
        .expect("run express")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_config_passes_a_good_configuration_and_starts_nothing() {
    let stage = Stage::new("check-good");
    let good = stage.write("good.conf", "Header always set X-Checked yes\n");
    let out = run(
        &stage,
        &["--check-config", "--include-file", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Syntax OK"), "{}", text(&out));
    let root = stage.dir.join("root");
    assert!(root.join("httpd.conf").is_file());
    // Nothing started: httpd never wrote its pid file.
    assert!(!root.join("httpd.pid").exists());
}

#[test]
fn check_config_fails_a_bad_include_file() {
    let stage = Stage::new("check-bad");
    let bad = stage.write("bad.conf", "NotADirective here\n");
    let out = run(
        &stage,
        &["--check-config", "--include-file", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("NotADirective"), "{said}");
    assert!(said.contains("found errors in"), "{said}");
    assert!(!stage.dir.join("root/httpd.pid").exists());
}

#[test]
fn print_config_shows_resolved_options_and_writes_nothing() {
    let stage = Stage::new("print-config");
    let out = run(&stage, &["--print-config", "--queue-timeout", "7"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "queue_timeout: 7,",
        "startup_timeout: 15,",
        "deadlock_timeout: 60,",
        "daemon_path: \"",
        "locale: Some(",
    ] {
        assert!(printed.contains(needle), "{needle}:\n{printed}");
    }
    assert!(!stage.dir.join("root").exists());
}

#[test]
fn setup_server_prints_the_banner_and_the_files_it_wrote() {
    let stage = Stage::new("setup-files");
    let out = run(
        &stage,
        &[
            "--setup-only",
            "--processes",
            "2",
            "--threads",
            "3",
            "--access-log",
            "--startup-log",
            "--add-handler",
            ".md",
            stage
                .write("md.py", "def handle_request(e, s):\n    return []\n")
                .to_str()
                .unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Request Capacity   : 6 (2 processes * 3 threads)",
        "Request Timeout    : 60 (seconds)",
        "Startup Timeout    : 15 (seconds)",
        "Queue Timeout      : 45 (seconds)",
        "Queue Backlog      : 100 (connections)",
        "Server Backlog     : 500 (connections)",
        "Locale Setting     : ",
        "Access Log File    : ",
    ] {
        assert!(printed.contains(line), "{line}:\n{printed}");
    }
    let written: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("Wrote              : "))
        .collect();
    let root = stage.dir.join("root");
    for name in [
        "httpd.conf",
        "apachectl",
        "error_log",
        "access_log",
        "startup_log",
    ] {
        let path = root.join(name);
        assert!(
            written.contains(&path.to_str().unwrap()),
            "{name} not listed:\n{printed}"
        );
    }
    assert!(
        written.iter().any(|w| w.ends_with(".wsgi")),
        "no resource handler listed:\n{printed}"
    );
    for w in &written {
        assert!(std::path::Path::new(w).exists(), "{w} listed but missing");
    }
}

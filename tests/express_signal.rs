//! `express start-server` runs httpd in the foreground; SIGTERM to express stops
//! httpd and its daemons, and express exits with httpd's status, leaving nothing.

mod common;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{binaries, free_port, http, procs, repo_root, test_user, test_venv, Stage};

/// Kills, by pid, whatever this test started that is still alive (on failure paths).
struct Cleanup {
    pids: Vec<i32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.pids {
            if procs::alive(pid) {
                // SAFETY: kill has no memory-safety preconditions; these are our processes.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut status = None;
    procs::wait_until(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

#[test]
fn sigterm_to_express_leaves_no_process_behind() {
    let venv = test_venv();
    let stage = Stage::new("sig");
    let bins = stage.binaries();
    let script = stage.copy(
        &repo_root().join("tests/apps/probe.py"),
        "app/wsgi.py",
        0o644,
    );
    let port = free_port();
    let root = stage.dir.join("root");
    let out_path = stage.dir.join("express.out");
    let out = File::create(&out_path).unwrap();
    let mut cmd = Command::new(binaries().express);
    cmd.arg("start-server")
        .arg(&script)
        .args([
            "--port",
            &port.to_string(),
            "--processes",
            "2",
            "--threads",
            "2",
        ])
        .arg("--server-root")
        .arg(&root)
        .arg("--python-home")
        .arg(&venv)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0);
    if let Some(user) = test_user() {
        cmd.args(["--user", &user]);
    }
    let mut express = cmd.spawn().expect("spawn express");
    let mut cleanup = Cleanup {
        pids: vec![express.id() as i32],
    };
    let logs = || {
        format!(
            "--- express output ---\n{}\n--- error_log ---\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(root.join("error_log")).unwrap_or_default()
        )
    };

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ready = procs::wait_until(Duration::from_secs(60), || {
        matches!(http::get(addr, "/"), Ok(r) if r.status == 200)
            || matches!(express.try_wait(), Ok(Some(_)))
    });
    assert!(
        ready && matches!(express.try_wait(), Ok(None)),
        "express did not serve:\n{}",
        logs()
    );

    let httpd: Vec<procs::Proc> = procs::children(express.id() as i32);
    assert_eq!(
        httpd.len(),
        1,
        "express should have one child, httpd: {httpd:?}"
    );
    let httpd_pid = httpd[0].pid;
    let daemons = procs::daemons_of(httpd_pid, &bins.daemon);
    assert_eq!(daemons.len(), 2, "{daemons:?}\n{}", logs());
    let group = procs::group_members(httpd_pid);
    cleanup.pids.extend(group.iter().map(|p| p.pid));
    cleanup.pids.extend(daemons.iter().map(|p| p.pid));

    // SAFETY: kill has no memory-safety preconditions; express is our child.
    unsafe { libc::kill(express.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut express, Duration::from_secs(60));
    assert!(
        status.is_some(),
        "express did not exit after SIGTERM:\n{}",
        logs()
    );
    let status = status.unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "express exit status {status}:\n{}",
        logs()
    );

    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        output.contains(&format!("Server URL         : http://127.0.0.1:{port}/")),
        "{output}"
    );
    assert!(
        !output.contains("outlived it"),
        "httpd left processes behind that express had to kill:\n{}",
        logs()
    );
    // Nothing is left: not httpd, not its children, not a daemon.
    let gone = procs::wait_until(Duration::from_secs(10), || {
        cleanup.pids.iter().all(|&pid| !procs::alive(pid))
            && procs::group_members(httpd_pid).is_empty()
            && procs::running(&bins.daemon).is_empty()
    });
    assert!(
        gone,
        "left behind: group {:?}, daemons {:?}\n{}",
        procs::group_members(httpd_pid),
        procs::running(&bins.daemon),
        logs()
    );
}

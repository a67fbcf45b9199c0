//! `express start-server` runs httpd in the foreground; SIGTERM to express stops
//! httpd and its daemons, and express exits with httpd's status, leaving nothing — also
//! when nobody reads express's output any more (`express … | head`, a dead `tee`).

mod common;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http, procs, repo_root, test_venv, Binaries, Stage};

/// The `--shutdown-timeout` these tests give express: a stop must be over within it (plus
/// httpd's own stopping, see [`STOP_BOUND`]).
const SHUTDOWN_TIMEOUT: u64 = 3;
/// How long a stop may take: the daemons' shutdown timeout plus a few seconds for httpd to
/// stop its children (measured: under 1 s on an idle server).
const STOP_BOUND: Duration = Duration::from_secs(SHUTDOWN_TIMEOUT + 7);

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

/// One `express start-server` of the probe app, 2 daemons × 2 threads.
struct Express {
    child: Child,
    cleanup: Cleanup,
    bins: Binaries,
    root: PathBuf,
    out_path: PathBuf,
    port: u16,
    _stage: Stage,
}

impl Express {
    /// Starts express with `out` as its standard output and error (a file in the stage
    /// when `None`).
    fn start(out: Option<OwnedFd>) -> Express {
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
        let (stdout, stderr): (Stdio, Stdio) = match out {
            Some(fd) => (fd.try_clone().unwrap().into(), fd.into()),
            None => {
                let file = File::create(&out_path).unwrap();
                (file.try_clone().unwrap().into(), file.into())
            }
        };
        let mut cmd = common::express::command(&bins, &root, port);
        cmd.arg(&script)
            .args(["--processes", "2", "--threads", "2"])
            .args(["--shutdown-timeout", &SHUTDOWN_TIMEOUT.to_string()])
            .arg("--python-home")
            .arg(&venv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = cmd.spawn().expect("spawn express");
        // `cmd` holds our copies of the output descriptors: close them now, so that a pipe's
        // only writer is express.
        drop(cmd);
        let cleanup = Cleanup {
            pids: vec![child.id() as i32],
        };
        Express {
            child,
            cleanup,
            bins,
            root,
            out_path,
            port,
            _stage: stage,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- express output ---\n{}\n--- error_log ---\n{}",
            std::fs::read_to_string(&self.out_path).unwrap_or_default(),
            std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
        )
    }

    /// Waits until the app answers; returns httpd's pid. Records httpd's processes and the
    /// daemons for cleanup.
    fn wait_serving(&mut self) -> i32 {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let child = &mut self.child;
        let ready = procs::wait_until(Duration::from_secs(60), || {
            matches!(http::get(addr, "/"), Ok(r) if r.status == 200)
                || matches!(child.try_wait(), Ok(Some(_)))
        });
        assert!(
            ready && matches!(self.child.try_wait(), Ok(None)),
            "express did not serve (exit status {:?}):\n{}",
            self.child.try_wait(),
            self.logs()
        );
        let httpd = procs::children(self.child.id() as i32);
        assert_eq!(
            httpd.len(),
            1,
            "express should have one child, httpd: {httpd:?}"
        );
        let httpd_pid = httpd[0].pid;
        let daemons = procs::daemons_of(httpd_pid, &self.bins.daemon);
        assert_eq!(daemons.len(), 2, "{daemons:?}\n{}", self.logs());
        let group = procs::group_members(httpd_pid);
        self.cleanup.pids.extend(group.iter().map(|p| p.pid));
        self.cleanup.pids.extend(daemons.iter().map(|p| p.pid));
        httpd_pid
    }

    /// Sends SIGTERM and asserts that express exits 0 and nothing it started is left, all
    /// within [`STOP_BOUND`].
    fn stop_and_check(&mut self, httpd_pid: i32) {
        let sent = Instant::now();
        // SAFETY: kill has no memory-safety preconditions; express is our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_exit(&mut self.child, STOP_BOUND);
        assert!(
            status.is_some(),
            "express did not exit within {STOP_BOUND:?} of SIGTERM (httpd alive: {}):\n{}",
            procs::alive(httpd_pid),
            self.logs()
        );
        let status = status.unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "express exit status {status}:\n{}",
            self.logs()
        );
        // Nothing is left: not httpd, not its children, not a daemon.
        let daemon = self.bins.daemon.clone();
        let pids = self.cleanup.pids.clone();
        let gone = procs::wait_until(STOP_BOUND.saturating_sub(sent.elapsed()), || {
            pids.iter().all(|&pid| !procs::alive(pid))
                && procs::group_members(httpd_pid).is_empty()
                && procs::running(&daemon).is_empty()
        });
        assert!(
            gone,
            "left behind {:?} after SIGTERM: group {:?}, daemons {:?}\n{}",
            sent.elapsed(),
            procs::group_members(httpd_pid),
            procs::running(&daemon),
            self.logs()
        );
        eprintln!("stopped everything in {:?}", sent.elapsed());
    }
}

#[test]
fn sigterm_to_express_leaves_no_process_behind() {
    require!(venv);
    let mut express = Express::start(None);
    let httpd_pid = express.wait_serving();
    express.stop_and_check(httpd_pid);
    let output = std::fs::read_to_string(&express.out_path).unwrap_or_default();
    let port = express.port;
    assert!(
        output.contains(&format!("Server URL         : http://127.0.0.1:{port}/")),
        "{output}"
    );
    assert!(
        !output.contains("outlived it"),
        "httpd left processes behind that express had to kill:\n{}",
        express.logs()
    );
}

/// A pipe for express's output: (read end, write end), both close-on-exec (the write end
/// becomes express's stdout and stderr through dup2, which clears the flag on the copies).
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// `express … | head`: the reader goes away while express runs, so express's next write
/// to stdout or stderr fails with EPIPE. Before the fix, the signal thread's log line
/// panicked before it forwarded SIGTERM, and httpd served on forever.
#[test]
fn sigterm_stops_everything_when_nobody_reads_express_output() {
    require!(venv);
    let (read_end, write_end) = pipe();
    let mut express = Express::start(Some(write_end));
    let httpd_pid = express.wait_serving();
    drop(read_end);
    express.stop_and_check(httpd_pid);
}

/// The same when the reader was gone before express wrote anything (its banner lines
/// fail too); before the fix express panicked on the first line and never served.
#[test]
fn express_serves_and_stops_when_its_output_was_closed_from_the_start() {
    require!(venv);
    let (read_end, write_end) = pipe();
    drop(read_end);
    let mut express = Express::start(Some(write_end));
    let httpd_pid = express.wait_serving();
    express.stop_and_check(httpd_pid);
}

//! `express start-server` run as a user runs it: the binary, with its own command line, its
//! output in two files, stopped with SIGTERM; and checks that it leaves nothing behind.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{binaries, free_port, http, procs, test_user, Binaries, Stage};
use rswsgi_protocol::StartupReport;

/// One `express start-server` run, its output in two files.
pub struct Express {
    pub child: Child,
    pub bins: Binaries,
    pub root: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub port: u16,
    pub stage: Stage,
}

/// `express start-server` on `port` with server root `root`, the staged module and daemon,
/// and (as root) the test user; the caller adds the application and its options.
pub fn command(bins: &Binaries, root: &Path, port: u16) -> Command {
    let mut cmd = Command::new(binaries().express);
    cmd.arg("start-server")
        .args(["--port", &port.to_string()])
        .arg("--server-root")
        .arg(root)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon);
    if let Some(user) = test_user() {
        cmd.args(["--user", &user]);
    }
    cmd
}

impl Express {
    /// Starts express for a script with `source`, without a Python home, plus `args`.
    pub fn start(tag: &str, source: &str, args: &[&str]) -> Express {
        let stage = Stage::new(tag);
        let script = stage.write("app/wsgi.py", source);
        Express::start_script(stage, script, args)
    }

    /// Starts express for `script` (staged already), plus `args`.
    pub fn start_script(stage: Stage, script: PathBuf, args: &[&str]) -> Express {
        let cwd = stage.dir.clone();
        let mut all = vec![script.to_str().expect("UTF-8 path")];
        all.extend_from_slice(args);
        Express::launch(stage, &cwd, &all)
    }

    /// Starts `express start-server` in directory `cwd` with `args` (which name the
    /// application), on a free port, with the staged module and daemon.
    pub fn launch(stage: Stage, cwd: &Path, args: &[&str]) -> Express {
        Express::launch_with(stage, cwd, args, |_| {})
    }

    /// [`Express::launch`], with `adjust` applied to the command last (to change its
    /// environment, say).
    pub fn launch_with(
        stage: Stage,
        cwd: &Path,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Express {
        let bins = stage.binaries();
        let port = free_port();
        let root = stage.dir.join("root");
        let (stdout, stderr) = (stage.dir.join("express.out"), stage.dir.join("express.err"));
        let mut cmd = command(&bins, &root, port);
        cmd.current_dir(cwd)
            .args(["--shutdown-timeout", "3"])
            .args(args)
            .env_remove("VIRTUAL_ENV")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .process_group(0);
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn express");
        Express {
            child,
            bins,
            root,
            stdout,
            stderr,
            port,
            stage,
        }
    }

    /// Waits until the server answers `GET /` (any status), or express exits; asserts it
    /// answered.
    pub fn wait_serving(&mut self) {
        let up = procs::wait_until(Duration::from_secs(30), || {
            self.get("/").is_some() || !self.running()
        });
        assert!(
            up && self.running(),
            "express is not serving:\n{}",
            self.logs()
        );
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--- error_log ---\n{}",
            self.stdout(),
            self.stderr(),
            self.error_log()
        )
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        procs::wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until express's standard error holds `needle`, or it exits.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        procs::wait_until(timeout, || {
            self.stderr().contains(needle) || !self.running()
        }) && self.stderr().contains(needle)
    }

    pub fn get(&self, path: &str) -> Option<http::Response> {
        http::get(
            std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            path,
        )
        .ok()
    }

    /// The pids of httpd's parent and of every daemon it started, from the error log.
    pub fn started_pids(&self) -> Vec<i32> {
        let log = self.error_log();
        let httpd = log
            .lines()
            .filter(|l| l.contains("resuming normal operations"))
            .filter_map(|l| l.split("[pid ").nth(1)?.split(':').next()?.parse().ok());
        let daemons = log.lines().filter_map(|l| {
            l.split("started daemon process ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        });
        httpd.chain(daemons).collect()
    }

    /// The start-up reports the daemons wrote.
    pub fn reports(&self) -> Vec<StartupReport> {
        self.error_log()
            .lines()
            .filter_map(StartupReport::find_in_log_line)
            .collect()
    }

    /// SIGTERM to express; asserts that it exits 0 and leaves nothing behind.
    pub fn stop(mut self) {
        let pids = self.started_pids();
        // SAFETY: kill has no memory-safety preconditions; express is our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.wait_exit(Duration::from_secs(15));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", self.logs());
        assert_all_gone(&pids, &self.bins, &self.logs());
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        if self.running() {
            for pid in self.started_pids() {
                // Stopped first, so httpd's parent cannot fork a replacement for a child
                // killed below (one forked after the listing would outlive it); then Apache's
                // children (httpd's parent leads their process group, so killing only it
                // would leave them running), then the process itself.
                // SAFETY: kill has no memory-safety preconditions; our processes, by pid.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                for child in procs::children(pid) {
                    // SAFETY: kill has no memory-safety preconditions; our processes, by pid.
                    unsafe { libc::kill(child.pid, libc::SIGKILL) };
                }
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn assert_all_gone(pids: &[i32], bins: &Binaries, logs: &str) {
    assert!(
        pids.len() >= 2,
        "no httpd or daemon pid in the log:\n{logs}"
    );
    let gone = procs::wait_until(Duration::from_secs(2), || {
        pids.iter().all(|&pid| !procs::alive(pid))
    });
    let left: Vec<_> = pids.iter().filter(|&&p| procs::alive(p)).collect();
    assert!(
        gone,
        "left running: {left:?} (daemon {:?})\n{logs}",
        bins.daemon
    );
}

/// Starts httpd for real and expects it to refuse: returns its output and error log, or
/// panics (after stopping it) when it was still running after 30 s.
pub fn start_refused(root: &rswsgi_express::ServerRoot) -> String {
    let out_path = root.dir.join("httpd.out");
    let out = File::create(&out_path).unwrap();
    let mut child = rswsgi_express::httpd_command(root)
        .unwrap()
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut status = None;
    procs::wait_until(Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let text = || {
        format!(
            "{}\n{}",
            fs::read_to_string(&out_path).unwrap_or_default(),
            root.read_error_log()
        )
    };
    match status {
        Some(s) => {
            assert!(!s.success(), "httpd exited 0:\n{}", text());
            text()
        }
        None => {
            let pid = child.id() as i32;
            // SAFETY: kill has no memory-safety preconditions; httpd is our child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let _ = child.wait();
            procs::wait_until(Duration::from_secs(30), || {
                procs::group_members(pid).is_empty()
            });
            panic!("httpd started:\n{}", text());
        }
    }
}

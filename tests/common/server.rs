//! `TestServer`: one httpd with mod_rswsgi in the foreground, owned by a test.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use rswsgi_express::{httpd_command, setup_server, ServerOptions, ServerRoot, Timeouts};

use super::http::{self, Response};
use super::procs;
use super::{free_port, repo_root, test_user, test_venv, Binaries, Stage};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a [`TestServer`].
pub struct Builder {
    script: PathBuf,
    processes: u32,
    threads: u32,
    mount_point: String,
    extra: Vec<String>,
    daemon_options: Vec<String>,
    ready_path: Option<String>,
    env: Vec<(String, String)>,
    python_path: Vec<PathBuf>,
    access_log: bool,
    timeouts: Option<Timeouts>,
    python_home: Option<PathBuf>,
    beside: Vec<(String, String)>,
    include_files: Vec<PathBuf>,
    limit_request_body: Option<u64>,
}

impl Builder {
    /// A server for `script`, a path relative to the repository root.
    pub fn new(script: &str) -> Builder {
        Builder {
            script: repo_root().join(script),
            processes: 1,
            threads: 5,
            mount_point: "/".into(),
            extra: Vec::new(),
            daemon_options: Vec::new(),
            ready_path: None,
            env: Vec::new(),
            python_path: Vec::new(),
            access_log: false,
            timeouts: None,
            python_home: None,
            beside: Vec::new(),
            include_files: Vec::new(),
            limit_request_body: None,
        }
    }

    /// `--limit-request-body` (express's default is mod_wsgi-express's 10 MiB).
    pub fn limit_request_body(mut self, bytes: u64) -> Self {
        self.limit_request_body = Some(bytes);
        self
    }
    /// An `--include-file` (a file the test user can read).
    pub fn include_file(mut self, path: &std::path::Path) -> Self {
        self.include_files.push(path.to_path_buf());
        self
    }
    /// The daemons' `python-home` (default: the test venv).
    pub fn python_home(mut self, home: &std::path::Path) -> Self {
        self.python_home = Some(home.to_path_buf());
        self
    }
    /// Writes a file named `name` next to the staged script.
    pub fn beside(mut self, name: &str, contents: &str) -> Self {
        self.beside.push((name.into(), contents.into()));
        self
    }
    /// Sets the slow-client and request timeouts (default: express's).
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = Some(t);
        self
    }
    /// Writes express's access log (`<root>/access_log`).
    pub fn access_log(mut self) -> Self {
        self.access_log = true;
        self
    }
    pub fn processes(mut self, n: u32) -> Self {
        self.processes = n;
        self
    }
    pub fn threads(mut self, n: u32) -> Self {
        self.threads = n;
        self
    }
    pub fn mount_point(mut self, m: &str) -> Self {
        self.mount_point = m.into();
        self
    }
    /// Appends a line to httpd.conf.
    /// Adds a `WSGIDaemonProcess` option (`maximum-requests=20`) to the app's group.
    pub fn daemon_option(mut self, option: &str) -> Self {
        self.daemon_options.push(option.into());
        self
    }

    pub fn directive(mut self, line: &str) -> Self {
        self.extra.push(line.into());
        self
    }
    /// Sets an environment variable for httpd (and so for the daemons it starts).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    /// Adds a directory to the daemons' `sys.path` (it must be readable by the test user).
    pub fn python_path(mut self, dir: &std::path::Path) -> Self {
        self.python_path.push(dir.to_path_buf());
        self
    }
    /// The path polled for readiness (default: the mount point).
    pub fn ready_path(mut self, p: &str) -> Self {
        self.ready_path = Some(p.into());
        self
    }

    /// Stages, renders, starts httpd and waits until it answers.
    pub fn start(self) -> TestServer {
        let venv = test_venv();
        let stage = Stage::new("srv");
        let bins = stage.binaries();
        let name = self.script.file_name().expect("script file name");
        let script = stage.copy(
            &self.script,
            &format!("app/{}", name.to_string_lossy()),
            0o644,
        );
        for (name, contents) in &self.beside {
            stage.write(&format!("app/{name}"), contents);
        }
        let ready_path = self
            .ready_path
            .clone()
            .unwrap_or_else(|| format!("{}/", self.mount_point.trim_end_matches('/')));
        let mut last_failure = String::new();
        // A port picked free can be taken before httpd binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let mut opts = ServerOptions::new(&script);
            opts.port = port.into();
            opts.processes = self.processes;
            opts.threads = self.threads;
            opts.mount_point = self.mount_point.clone();
            opts.server_root = Some(stage.dir.join("root"));
            opts.user = test_user();
            opts.python_home = Some(self.python_home.clone().unwrap_or_else(|| venv.clone()));
            opts.module_path = Some(bins.module.clone());
            opts.daemon_executable = Some(bins.daemon.clone());
            opts.extra_directives = self.extra.clone();
            opts.include_files = self.include_files.clone();
            opts.daemon_options = self.daemon_options.clone();
            opts.python_path = self.python_path.clone();
            opts.access_log = self.access_log;
            if let Some(t) = self.timeouts {
                opts.timeouts = t;
            }
            if let Some(limit) = self.limit_request_body {
                opts.requests.limit_request_body = limit;
            }
            let root = setup_server(&opts).unwrap_or_else(|e| panic!("setup_server: {e:#}"));
            let out_path = root.dir.join("httpd.out");
            let out = File::create(&out_path).expect("create httpd.out");
            let child = httpd_command(&root)
                .expect("httpd command")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdout(out.try_clone().expect("dup"))
                .stderr(out)
                .spawn()
                .expect("spawn httpd");
            let mut server = TestServer {
                child: Some(child),
                root,
                bins: bins.clone(),
                script: script.clone(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                stage: None,
            };
            match server.wait_ready(&ready_path) {
                Ok(()) => {
                    server.stage = Some(stage);
                    return server;
                }
                Err(e) => {
                    let logs = server.logs();
                    let problems = server.shutdown();
                    if logs.contains("Address already in use") {
                        last_failure = logs;
                        continue;
                    }
                    drop(stage);
                    panic!("server did not become ready: {e}\n{problems:?}\n{logs}");
                }
            }
        }
        panic!("could not get a free port in 3 tries:\n{last_failure}");
    }
}

/// A running httpd. Dropping it stops httpd (SIGTERM, then SIGKILL of its process
/// group after a deadline), checks that no httpd child or daemon is left, and prints
/// the error log when the test failed.
pub struct TestServer {
    child: Option<Child>,
    pub root: ServerRoot,
    pub bins: Binaries,
    pub script: PathBuf,
    pub addr: SocketAddr,
    stage: Option<Stage>,
}

impl TestServer {
    pub fn builder(script: &str) -> Builder {
        Builder::new(script)
    }

    /// httpd's parent process id (also its process group).
    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("httpd running")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        http::request(self.addr, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Response {
        self.request("POST", path, &[], Some(body))
    }

    /// The daemons (children of httpd's parent), once `expected` of them are up or
    /// after a deadline.
    pub fn daemons(&self, expected: usize) -> Vec<procs::Proc> {
        let mut found = Vec::new();
        procs::wait_until(Duration::from_secs(20), || {
            found = procs::daemons_of(self.pid(), &self.bins.daemon);
            found.len() == expected
        });
        found
    }

    /// The httpd processes: the parent and its children that are not daemons.
    pub fn httpd_processes(&self) -> Vec<procs::Proc> {
        procs::group_members(self.pid())
            .into_iter()
            .filter(|p| !procs::is_daemon(p, &self.bins.daemon))
            .collect()
    }

    /// The error log plus httpd's own output.
    pub fn logs(&self) -> String {
        let out = fs::read_to_string(self.root.dir.join("httpd.out")).unwrap_or_default();
        format!(
            "--- error_log ({}) ---\n{}\n--- httpd stdout/stderr ---\n{out}",
            self.root.dir.display(),
            self.root.read_error_log()
        )
    }

    fn wait_ready(&mut self, path: &str) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("httpd exited during start-up: {status}"));
                }
            }
            let last = match http::get(self.addr, path) {
                Ok(resp) if resp.status < 500 => return Ok(()),
                Ok(resp) => format!("GET {path}: {} {}", resp.status, resp.text()),
                Err(e) => format!("GET {path}: {e}"),
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready after {READY_TIMEOUT:?}; last: {last}"));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops httpd and returns what went wrong (empty when all went well).
    fn shutdown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(mut child) = self.child.take() else {
            return problems;
        };
        let pid = child.id() as i32;
        let daemons_before = procs::daemons_of(pid, &self.bins.daemon);
        let running = matches!(child.try_wait(), Ok(None));
        if running {
            // SAFETY: kill has no memory-safety preconditions; pid is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        if !wait_child(&mut child, STOP_TIMEOUT) {
            problems.push(format!(
                "httpd (pid {pid}) did not stop within {STOP_TIMEOUT:?}"
            ));
            kill_group(pid);
            let _ = child.wait();
        }
        // httpd's children and the daemons must go with it.
        if !procs::wait_until(STOP_TIMEOUT, || procs::group_members(pid).is_empty()) {
            let left = procs::group_members(pid);
            problems.push(format!("processes of httpd's group left behind: {left:?}"));
            kill_group(pid);
        }
        let daemon = self.bins.daemon.clone();
        if !procs::wait_until(STOP_TIMEOUT, || procs::running(&daemon).is_empty()) {
            let left = procs::running(&daemon);
            problems.push(format!(
                "daemons left behind after httpd stopped: {left:?} (daemons were {daemons_before:?})"
            ));
            for p in left {
                // SAFETY: as above; these run our staged daemon binary, so we started them.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
            }
        }
        problems
    }

    /// Stops the server now and asserts it left nothing behind.
    pub fn stop(mut self) {
        let problems = self.shutdown();
        if !problems.is_empty() {
            panic!("{}\n{}", problems.join("\n"), self.logs());
        }
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    procs::wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_))))
}

fn kill_group(pgid: i32) {
    // SAFETY: kill has no memory-safety preconditions; the group is the one httpd leads.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let problems = self.shutdown();
        let failed = thread::panicking();
        if failed || !problems.is_empty() {
            eprintln!("{}", self.logs());
        }
        if !problems.is_empty() && !failed {
            panic!("{}", problems.join("\n"));
        }
    }
}

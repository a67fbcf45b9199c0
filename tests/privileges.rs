//! The privilege model: started as root, httpd binds a privileged port and everything else
//! (Apache's children, every daemon) runs as the `--user`, with exactly that user's groups and
//! no capabilities; the daemon socket is reachable by Apache's user only; a group whose user
//! is missing or whose daemons cannot start never serves and gets 503 with a log line; an
//! unprivileged user runs express on a high port without `--user`.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{binaries, free_port, http, procs, repo_root, test_user, Stage, TestServer};

/// `express start-server` run as a child, stopped (SIGTERM, then SIGKILL of what is left) on drop.
struct Express {
    child: Child,
    root: PathBuf,
    out: PathBuf,
    addr: SocketAddr,
    started: Vec<i32>,
}

impl Express {
    fn start(cmd: &mut Command, root: PathBuf, out: PathBuf, addr: SocketAddr) -> Express {
        let child = cmd.spawn().expect("spawn express");
        let mut e = Express {
            child,
            root,
            out,
            addr,
            started: Vec::new(),
        };
        let ready = procs::wait_until(Duration::from_secs(60), || {
            matches!(http::get(addr, "/"), Ok(r) if r.status == 200)
                || matches!(e.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            ready && matches!(e.child.try_wait(), Ok(None)),
            "express did not serve:\n{}",
            e.logs()
        );
        e.started = procs::all()
            .into_iter()
            .filter(|p| p.pid == e.httpd() || p.ppid == e.httpd())
            .map(|p| p.pid)
            .collect();
        e
    }

    fn logs(&self) -> String {
        format!(
            "--- express output ---\n{}\n--- error_log ---\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(self.root.join("error_log")).unwrap_or_default()
        )
    }

    /// httpd's parent: express's only child.
    fn httpd(&self) -> i32 {
        let kids = procs::children(self.child.id() as i32);
        assert_eq!(
            kids.len(),
            1,
            "express should have exactly one child (httpd): {kids:?}"
        );
        kids[0].pid
    }

    fn stop(mut self) {
        // SAFETY: kill has no memory-safety preconditions; express is our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut status = None;
        procs::wait_until(Duration::from_secs(30), || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "express exit:\n{}",
            self.logs()
        );
        let left: Vec<i32> = self
            .started
            .iter()
            .copied()
            .filter(|&p| procs::alive(p))
            .collect();
        assert!(
            left.is_empty(),
            "processes left after express stopped: {left:?}"
        );
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        for &pid in self.started.iter().chain([self.child.id() as i32].iter()) {
            if procs::alive(pid) {
                // SAFETY: kill has no memory-safety preconditions; these are our processes.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.wait();
    }
}

/// A free loopback port below 1024 (only root can bind it).
fn free_privileged_port() -> u16 {
    (700..1000)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("no free loopback port below 1024")
}

struct Account {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

fn account(name: &str) -> Account {
    let u = nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap_or_else(|| panic!("user {name} missing"));
    let cname = std::ffi::CString::new(name).unwrap();
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&cname, u.gid)
        .unwrap()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    Account {
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        groups,
    }
}

fn cap_eff(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string()
}

/// Every process under httpd's parent runs as `who`, with exactly its groups and no capabilities.
fn assert_dropped(
    httpd: i32,
    who: &Account,
    daemon: &Path,
    expect_daemons: usize,
    check_groups: bool,
) {
    let children = procs::children(httpd);
    let daemons = children
        .iter()
        .filter(|p| procs::is_daemon(p, daemon))
        .count();
    assert_eq!(daemons, expect_daemons, "daemons under httpd: {children:?}");
    assert!(
        children.len() > expect_daemons,
        "no Apache children under httpd: {children:?}"
    );
    for p in &children {
        let what = format!("{} (pid {})", p.comm, p.pid);
        assert_eq!(
            procs::status_ids(p.pid, "Uid").unwrap(),
            vec![who.uid; 4],
            "{what}: Uid"
        );
        assert_eq!(
            procs::status_ids(p.pid, "Gid").unwrap(),
            vec![who.gid; 4],
            "{what}: Gid"
        );
        if check_groups {
            let mut groups = procs::status_ids(p.pid, "Groups").unwrap();
            groups.sort_unstable();
            assert_eq!(
                groups, who.groups,
                "{what}: supplementary groups must be exactly the user's"
            );
        }
        assert_eq!(
            cap_eff(p.pid),
            "0000000000000000",
            "{what}: effective capabilities"
        );
    }
}

#[test]
fn root_binds_a_privileged_port_and_everything_else_runs_as_the_user() {
    require!(root);
    let www = account("www-data");
    let stage = Stage::new("priv");
    let bins = stage.binaries();
    let script = stage.copy(
        &repo_root().join("tests/apps/privileges.py"),
        "app/wsgi.py",
        0o644,
    );
    let port = free_privileged_port();
    let root = stage.dir.join("root");
    let out = stage.dir.join("express.out");
    let file = File::create(&out).unwrap();
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
            "--user",
            "www-data",
        ])
        .arg("--server-root")
        .arg(&root)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon)
        .env("RSWSGI_LOW_PORT", free_privileged_port().to_string())
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0);
    let express = Express::start(
        &mut cmd,
        root.clone(),
        out,
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let httpd = express.httpd();

    // httpd's parent stays root (it bound the port); nothing else does.
    assert_eq!(procs::status_ids(httpd, "Uid").unwrap(), vec![0; 4]);
    assert_dropped(httpd, &www, &bins.daemon, 2, true);

    // The application cannot do what root could.
    let r = http::get(express.addr, "/").unwrap();
    assert_eq!(r.status, 200, "{}", express.logs());
    assert_eq!(r.kv("uid"), Some(www.uid.to_string()));
    assert_eq!(
        r.kv("write_root").as_deref(),
        Some("PermissionError"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.kv("bind_low_port").as_deref(),
        Some("PermissionError"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.kv("read_shadow").as_deref(),
        Some("PermissionError"),
        "{}",
        r.text()
    );
    assert!(!Path::new("/root/rswsgi-privilege-test").exists());

    // The daemon socket: owned by Apache's user (www-data), mode 0600, in a directory that
    // user cannot write.
    let sockets: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .collect();
    assert_eq!(
        sockets.len(),
        1,
        "one daemon group, one socket: {sockets:?}"
    );
    let meta = std::fs::symlink_metadata(sockets[0].path()).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (www.uid, 0o600),
        "socket owner and mode"
    );
    let dir = std::fs::metadata(&root).unwrap();
    assert_eq!(dir.uid(), 0, "the server root belongs to root");
    assert_eq!(
        dir.mode() & 0o022,
        0,
        "the server root is not writable by group or others"
    );
    express.stop();
}

#[test]
fn a_daemon_user_that_does_not_exist_never_serves_and_gets_503() {
    require!(venv);
    let stage_script = repo_root().join("tests/apps/probe.py");
    let server = TestServer::builder(stage_script.to_str().unwrap())
        .mount_point("/main")
        .directive("WSGIDaemonProcess ghost user=rswsgi-no-such-user processes=1 threads=1")
        .directive("WSGIScriptAlias /ghost /nonexistent/wsgi.py process-group=ghost")
        .directive("<Location /ghost>")
        .directive("Require all granted")
        .directive("</Location>")
        .start();
    let r = server.get("/ghost/");
    assert_eq!(r.status, 503, "{}", server.logs());
    // The supervisor's line at start-up (RSWSGI0205) says why; the request's (RSWSGI0113,
    // with its client) points back to it.
    let logs = server.logs();
    let has = |needles: &[&str]| logs.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "RSWSGI0205: daemon group 'ghost' not started",
            "user 'rswsgi-no-such-user' does not exist"
        ]),
        "the error log says why:\n{logs}"
    );
    assert!(
        has(&[
            "RSWSGI0113: daemon group 'ghost' is not running",
            "[client 127.0.0.1:"
        ]),
        "the request's line:\n{logs}"
    );
    assert_eq!(
        server.get("/main/").status,
        200,
        "other groups keep serving"
    );
}

#[test]
fn daemons_that_cannot_start_give_503_after_connect_timeout() {
    require!(venv);
    let server = TestServer::builder(repo_root().join("tests/apps/probe.py").to_str().unwrap())
        .mount_point("/main")
        // A working directory that does not exist stops the daemon at start-up (a python-home
        // that does not exist is refused earlier, by the configuration check).
        .directive("WSGIDaemonProcess broken home=/nonexistent/dir connect-timeout=1 processes=1 threads=1")
        .directive(&format!(
            "WSGIScriptAlias /broken {} process-group=broken",
            repo_root().join("tests/apps/probe.py").display()
        ))
        .directive("<Location /broken>")
        .directive("Require all granted")
        .directive("</Location>")
        .start();
    let r = server.get("/broken/");
    assert_eq!(r.status, 503, "{}", server.logs());
    let logs = server.logs();
    assert!(
        logs.contains("no daemon process of group 'broken' accepted the request"),
        "{logs}"
    );
    assert!(
        logs.contains("/nonexistent/dir"),
        "the daemon's own reason is logged:\n{logs}"
    );
    assert_eq!(
        server.get("/main/").status,
        200,
        "other groups keep serving"
    );
}

#[test]
fn an_unprivileged_user_runs_express_on_a_high_port() {
    require!(root);
    let user = test_user().expect("the rswsgi-test user (make setup creates it)");
    let who = account(&user);
    let stage = Stage::new("unpriv");
    let bins = stage.binaries();
    let express_bin = stage.copy(&binaries().express, "bin/express", 0o755);
    let script = stage.copy(
        &repo_root().join("tests/apps/privileges.py"),
        "app/wsgi.py",
        0o644,
    );
    let home = stage.subdir("home");
    nix::unistd::chown(&home, Some(who.uid.into()), Some(who.gid.into())).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root = home.join("root");
    let out = home.join("express.out");
    let file = File::create(&out).unwrap();
    nix::unistd::chown(&out, Some(who.uid.into()), Some(who.gid.into())).unwrap();
    let port = free_port();

    // Asking for another user is refused without starting anything.
    let refused = Command::new(&express_bin)
        .arg("start-server")
        .arg(&script)
        .args(["--port", &port.to_string(), "--user", "www-data"])
        .arg("--server-root")
        .arg(&root)
        .uid(who.uid)
        .gid(who.gid)
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("only root can switch user"), "{msg}");

    let mut cmd = Command::new(&express_bin);
    cmd.arg("start-server")
        .arg(&script)
        .args([
            "--port",
            &port.to_string(),
            "--processes",
            "1",
            "--threads",
            "2",
        ])
        .arg("--server-root")
        .arg(&root)
        .arg("--module-path")
        .arg(&bins.module)
        .arg("--daemon-executable")
        .arg(&bins.daemon)
        .uid(who.uid)
        .gid(who.gid)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0);
    let express = Express::start(
        &mut cmd,
        root,
        out,
        SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let httpd = express.httpd();
    assert_eq!(
        procs::status_ids(httpd, "Uid").unwrap(),
        vec![who.uid; 4],
        "httpd runs as the user"
    );
    // (supplementary groups are whatever the user's shell gave express; nothing is switched)
    assert_dropped(httpd, &who, &bins.daemon, 1, false);
    let r = http::get(express.addr, "/").unwrap();
    assert_eq!(r.kv("uid"), Some(who.uid.to_string()));
    express.stop();
}

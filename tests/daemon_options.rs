//! The `WSGIDaemonProcess` options about connections, worker threads and script owners,
//! through a real Apache: `send-buffer-size`/`receive-buffer-size` (the app reads its own
//! connection's `SO_SNDBUF`/`SO_RCVBUF`), `stack-size` (the worker threads' stack mappings in
//! `/proc`), `switch-interval` (`sys.getswitchinterval()`), `socket-user` (the socket file's
//! owner, and who may connect), `script-user`/`script-group` (403 for other owners' scripts),
//! `response-socket-timeout` (a client that stops reading is cut off after it, not after
//! Apache's `Timeout`), `interrupt-timeout` (a request past `request-timeout` is interrupted
//! with `mod_wsgi.RequestTimeout` and the process lives on, unless the request goes on).

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use common::TestServer;

const APP: &str = "tests/apps/daemon_options.py";

/// The value of `key=` in the app's answer.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
        .to_owned()
}

/// The size of the memory mapping holding each idle worker thread's stack pointer (from
/// `/proc/PID/task/TID/syscall`, which needs ptrace rights: the tests run as root).
fn worker_stack_sizes(pid: i32) -> Vec<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let ranges: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|l| {
            let (lo, hi) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                u64::from_str_radix(lo, 16).ok()?,
                u64::from_str_radix(hi, 16).ok()?,
            ))
        })
        .collect();
    let mut sizes = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("worker-") {
            continue;
        }
        let syscall = std::fs::read_to_string(dir.join("syscall")).unwrap_or_default();
        let fields: Vec<&str> = syscall.split_whitespace().collect();
        // "NR arg1 … arg6 SP PC" while blocked in a system call.
        let Some(sp) = fields
            .len()
            .checked_sub(2)
            .filter(|_| fields.len() == 9)
            .and_then(|i| u64::from_str_radix(fields[i].trim_start_matches("0x"), 16).ok())
        else {
            continue;
        };
        if let Some((lo, hi)) = ranges.iter().find(|(lo, hi)| (*lo..*hi).contains(&sp)) {
            sizes.push(hi - lo);
        }
    }
    sizes
}

#[test]
fn buffer_sizes_stack_size_and_switch_interval_reach_the_daemon() {
    require!(venv);
    let srv = TestServer::builder(APP)
        .threads(3)
        .daemon_option("send-buffer-size=65536")
        .daemon_option("receive-buffer-size=32768")
        .daemon_option("stack-size=262144")
        .daemon_option("switch-interval=0.25")
        .daemon_option("response-flush-delay=5")
        .start();
    let r = srv.get("/");
    assert_eq!(r.status, 200, "{}", srv.logs());
    let text = r.text();
    // Every check is made, and what failed is reported together.
    let mut wrong = Vec::new();
    if field(&text, "switch_interval") != "0.25" {
        wrong.push(format!("sys.getswitchinterval() is not 0.25: {text}"));
    }
    // Linux reports twice the size set (it counts its bookkeeping).
    let sockets = field(&text, "sockets");
    if !sockets.split(' ').any(|s| s == "131072/65536") {
        wrong.push(format!(
            "no connection has SO_SNDBUF 2*65536 and SO_RCVBUF 2*32768: {sockets}"
        ));
    }
    let pid: i32 = field(&text, "pid").parse().unwrap();
    // The worker that served the request may still be on its way back to epoll_wait.
    let mut stacks = Vec::new();
    common::procs::wait_until(std::time::Duration::from_secs(10), || {
        stacks = worker_stack_sizes(pid);
        stacks.len() == 3
    });
    // A mapping holds a stack (minus its guard page) and glibc's thread control block.
    if stacks.len() != 3 || !stacks.iter().all(|s| (128 << 10..=256 << 10).contains(s)) {
        wrong.push(format!(
            "the three workers' stacks are not 256 KiB (not the default 8 MiB): {stacks:?}"
        ));
    }
    let ignored = "response-flush-delay=5 ignored";
    let warned = srv
        .logs()
        .lines()
        .any(|l| l.contains("RSWSGI0202:") && l.contains(ignored));
    if !warned {
        wrong.push(format!("no start-up warning {ignored:?}"));
    }
    assert!(wrong.is_empty(), "{}\n{}", wrong.join("\n"), srv.logs());
}

/// The daemon socket of the server's only group.
fn socket_of(srv: &TestServer) -> PathBuf {
    std::fs::read_dir(&srv.root.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .unwrap_or_else(|| panic!("no socket in {}", srv.root.dir.display()))
}

/// Connects to `socket` as `user` and returns what the daemon sends first (its challenge:
/// the 8-byte preamble and a 16-byte nonce) or the error, as one line.
fn connect_as(socket: &std::path::Path, user: &nix::unistd::User) -> String {
    let probe = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n    print('error', e.errno); sys.exit()\n\
        s.settimeout(5)\n\
        data = b''\n\
        while len(data) < 24:\n    b = s.recv(24 - len(data))\n    if not b: break\n    data += b\n\
        print('got', data[:6].decode(errors='replace'), len(data))\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", probe])
        .arg(socket)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .output()
        .expect("run python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn socket_user_owns_the_socket_and_is_the_one_uid_the_daemon_accepts() {
    require!(root);
    require!(venv);
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let apache = nix::unistd::User::from_name(&common::test_user().unwrap())
        .unwrap()
        .unwrap();
    // Apache's children (the test user) can no longer connect: the app is not reachable
    // through Apache, so readiness is not waited for on it.
    let srv = TestServer::builder(APP)
        .mount_point("/app")
        .daemon_option("socket-user=nobody")
        .daemon_option("connect-timeout=2")
        .ready_path("/")
        .start();
    let socket = socket_of(&srv);
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.uid(), nobody.uid.as_raw(), "{}", socket.display());
    assert_eq!(meta.mode() & 0o777, 0o600);
    let daemons = srv.daemons(1);
    assert_eq!(daemons.len(), 1, "{}", srv.logs());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", daemons[0].pid)).unwrap();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--peer-uid").unwrap();
    assert_eq!(args[at + 1], nobody.uid.to_string(), "{args:?}");
    // The socket-user is accepted (the daemon sends it the challenge) ...
    let mut answer = String::new();
    common::procs::wait_until(std::time::Duration::from_secs(20), || {
        answer = connect_as(&socket, &nobody);
        answer.starts_with("got")
    });
    assert_eq!(answer, "got RSWSGI 24", "{}", srv.logs());
    // ... and Apache's User no longer reaches the socket.
    assert_eq!(connect_as(&socket, &apache), "error 13", "{}", srv.logs());
    assert_eq!(srv.get("/app/").status, 503, "{}", srv.logs());
}

const OWNED_APP: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'loaded']\n";

/// `dir/app.wsgi` in a directory of its own, both given to `uid:gid` (mode 0755 and 0644).
fn owned_script(stage: &common::Stage, dir: &str, uid: u32, gid: u32) -> PathBuf {
    let d = stage.subdir(dir);
    let script = stage.write(&format!("{dir}/app.wsgi"), OWNED_APP);
    for p in [&d, &script] {
        nix::unistd::chown(p, Some(uid.into()), Some(gid.into())).unwrap();
    }
    script
}

#[test]
fn script_user_and_script_group_refuse_scripts_of_other_owners_with_403() {
    require!(root);
    require!(venv);
    let user = nix::unistd::User::from_name(&common::test_user().unwrap())
        .unwrap()
        .unwrap();
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    let stage = common::Stage::new("owners");
    let mine = owned_script(&stage, "mine", uid, gid);
    let roots = owned_script(&stage, "roots", 0, 0);
    let group_only = owned_script(&stage, "group-only", 0, gid);
    let mut builder = TestServer::builder(APP)
        .mount_point("/app")
        .directive(&format!(
            "WSGIDaemonProcess by-user threads=2 script-user={}",
            user.name
        ))
        .directive(&format!(
            "WSGIDaemonProcess by-group threads=2 script-group=#{gid}"
        ));
    for (url, script, group) in [
        ("/user/mine", &mine, "by-user"),
        ("/user/roots", &roots, "by-user"),
        ("/user/group-only", &group_only, "by-user"),
        ("/group/mine", &mine, "by-group"),
        ("/group/roots", &roots, "by-group"),
        ("/group/group-only", &group_only, "by-group"),
    ] {
        builder = builder.directive(&format!(
            "WSGIScriptAlias {url} {} process-group={group} application-group=%{{GLOBAL}}",
            script.display()
        ));
    }
    let srv = builder
        .directive(&format!("<Directory {}>", stage.dir.display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    for (url, want) in [
        ("/user/mine", 200),
        ("/user/roots", 403),
        ("/user/group-only", 403),
        ("/group/mine", 200),
        ("/group/roots", 403),
        ("/group/group-only", 200),
    ] {
        let r = srv.get(url);
        assert_eq!(r.status, want, "{url}: {}\n{}", r.text(), srv.logs());
        if want == 200 {
            assert_eq!(r.text(), "loaded");
        }
    }
    let logs = srv.logs();
    let line = format!(
        "refusing to load {}: it is owned by root (uid 0), but script-user requires {} (uid {uid})",
        roots.display(),
        user.name
    );
    assert!(
        logs.contains(&format!("RSWSGI0503: {line}")),
        "{line}\n{logs}"
    );
    assert!(
        logs.contains("has the group root (gid 0), but script-group requires"),
        "{logs}"
    );
    // The module's line about the 403.
    assert!(logs.contains("RSWSGI0104:"), "{logs}");
}

/// Asks for `path` and reads the response head, then stops reading for `pause`, then reads
/// to the end; returns the bytes received in all.
fn read_with_pause(srv: &TestServer, path: &str, pause: std::time::Duration) -> usize {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(srv.addr).unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = c.read(&mut buf).unwrap();
    std::thread::sleep(pause);
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
    }
}

#[test]
fn response_socket_timeout_cuts_off_a_client_that_stops_reading() {
    require!(venv);
    let srv = TestServer::builder(APP)
        .daemon_option("response-socket-timeout=1")
        .start();
    // Apache's Timeout (and socket-timeout) is express's 60 s: without the option, a client
    // that pauses for 4 s still gets all 32 MiB.
    let got = read_with_pause(&srv, "/big", std::time::Duration::from_secs(4));
    assert!(
        got < 32 << 20,
        "the whole response arrived: {got} bytes\n{}",
        srv.logs()
    );
    assert_eq!(srv.get("/").status, 200, "{}", srv.logs());
}

#[test]
fn interrupt_timeout_interrupts_the_request_and_recycles_only_if_it_goes_on() {
    require!(venv);
    let srv = TestServer::builder(APP)
        .threads(3)
        .daemon_option("request-timeout=1")
        .daemon_option("interrupt-timeout=3")
        .daemon_option("graceful-timeout=1")
        .start();
    let first = srv.get("/").text();
    let pid = field(&first, "pid");
    let r = srv.get("/spin");
    assert_eq!(r.status, 504, "{}\n{}", r.text(), srv.logs());
    // Past interrupt-timeout: the same process serves, and the app saw the exception.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let after = srv.get("/").text();
    assert_eq!(field(&after, "pid"), pid, "{after}\n{}", srv.logs());
    assert_eq!(field(&after, "interrupted"), "RequestTimeout", "{after}");
    assert!(srv
        .logs()
        .lines()
        .any(|l| l.contains("RSWSGI0418:") && l.contains("/spin")));
    // A request that swallows the exception and goes on: the process recycles.
    assert_eq!(srv.get("/spin-forever").status, 504);
    let mut now = pid.clone();
    common::procs::wait_until(std::time::Duration::from_secs(20), || {
        now = field(&srv.get("/").text(), "pid");
        now != pid
    });
    assert_ne!(
        now,
        pid,
        "no recycle after interrupt-timeout\n{}",
        srv.logs()
    );
    assert!(
        srv.logs()
            .contains("had not ended within interrupt-timeout"),
        "{}",
        srv.logs()
    );
}

#[test]
fn wsgi_switch_interval_sets_the_implicit_groups_of_embedded_mode_only() {
    require!(venv);
    let stage = common::Stage::new("switch");
    let source = std::fs::read_to_string(common::repo_root().join(APP)).unwrap();
    let app = stage.write("apps/app.py", &source);
    let apps = app.parent().unwrap().display().to_string();
    let srv = TestServer::builder(APP)
        .mount_point("/express-app")
        .directive("WSGISwitchInterval 0.25")
        .directive(&format!("WSGIScriptAlias /embedded {}", app.display()))
        .directive("WSGIDaemonProcess own threads=2")
        .directive(&format!(
            "WSGIScriptAlias /own {} process-group=own application-group=%{{GLOBAL}}",
            app.display()
        ))
        .directive(&format!("<Directory {apps}>"))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let embedded = srv.get("/embedded");
    assert_eq!(embedded.status, 200, "{}", srv.logs());
    assert_eq!(field(&embedded.text(), "switch_interval"), "0.25");
    // A WSGIDaemonProcess group keeps Python's default, as under mod_wsgi.
    let own = srv.get("/own").text();
    assert_eq!(field(&own, "switch_interval"), "0.005", "{own}");
    assert!(!srv.logs().contains("WSGISwitchInterval"), "{}", srv.logs());
}

//! The daemon socket as an attacker sees it: a process running as Apache's `User` (a CGI
//! script, PHP, another module) or as another user that can reach the socket speaks the
//! protocol correctly but cannot know the connection secret; it is refused before anything
//! reaches the application, with one log line naming it, and the file it asked to run never
//! runs. Neither Apache's children nor the daemons let that user read their memory.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::semantics::wait_log;
use common::{procs, repo_root, test_user, Stage, TestServer};

/// The daemon sockets under `dir`.
fn sockets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_socket() {
            found.push(e.path());
        } else if t.is_dir() {
            found.extend(sockets(&e.path()));
        }
    }
    found
}

fn ids(user: &str) -> (u32, u32) {
    let u = nix::unistd::User::from_name(user).unwrap().unwrap();
    (u.uid.as_raw(), u.gid.as_raw())
}

/// Runs the hand-made client as `uid:gid`; returns its one line of output and its pid.
fn attack(client: &Path, socket: &Path, script: &Path, uid: u32, gid: u32) -> (String, u32) {
    let child = Command::new("/usr/bin/python3")
        .arg(client)
        .arg(socket)
        .arg(script)
        .uid(uid)
        .gid(gid)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the attack client");
    let pid = child.id();
    let out = child.wait_with_output().expect("attack client output");
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), pid)
}

#[test]
fn a_client_without_the_secret_is_refused_and_its_script_never_runs() {
    require!(root);
    require!(venv);
    let user = test_user().expect("the rswsgi-test user (make setup creates it)");
    let (uid, gid) = ids(&user);
    let srv = TestServer::builder("tests/apps/probe.py").start();
    assert_eq!(srv.get("/").status, 200);

    // What the attacker brings: its client, and a script that would leave a mark if it ran.
    let stage = Stage::new("attack");
    let client = stage.copy(
        &repo_root().join("tests/apps/attack_client.py"),
        "client.py",
        0o644,
    );
    // In /tmp, so the daemon's user could write it (the stage is root's).
    let mark = std::env::temp_dir().join(format!("rswsgi-evil-ran-{}", std::process::id()));
    let _ = std::fs::remove_file(&mark);
    let evil = stage.write(
        "evil.py",
        &format!(
            "open({:?}, 'w').write('ran')\ndef application(e, s):\n    s('200 OK', [])\n    return [b'pwned']\n",
            mark.display()
        ),
    );
    let socks = sockets(&srv.root.dir);
    assert_eq!(
        socks.len(),
        1,
        "one daemon socket under the server root: {socks:?}"
    );

    // As Apache's own user: it may connect (file modes allow it), gets a challenge, and is
    // closed unserved once its guessed proof fails.
    let (out, pid) = attack(&client, &socks[0], &evil, uid, gid);
    assert_eq!(out, "CHALLENGE 24 GOT 0", "as {user}");
    let refused = |log: &str, who: &str| {
        log.lines()
            .any(|l| l.contains("RSWSGI0411:") && l.contains(who))
    };
    let who = format!("pid {pid} (uid {uid})");
    let log = wait_log(&srv, |l| refused(l, &who));
    assert!(refused(&log, &who), "{log}");
    assert!(log.contains("wrong secret"), "{log}");

    // As another user who can reach the socket (root here): refused on its uid alone, before
    // any challenge is sent.
    let (out, pid) = attack(&client, &socks[0], &evil, 0, 0);
    assert_eq!(out, "CHALLENGE 0 GOT 0", "as root");
    let who = format!("pid {pid} (uid 0): it runs as uid 0, not as Apache's User (uid {uid})");
    let log = wait_log(&srv, |l| refused(l, &who));
    assert!(refused(&log, &who), "{log}");

    let ran = mark.exists();
    let _ = std::fs::remove_file(&mark);
    assert!(!ran, "the attacker's script ran");
    assert!(
        !log.contains("REMOTE_USER=admin") && !log.contains("/forged"),
        "{log}"
    );
    // Normal traffic is unaffected, and nothing of the forged environ is in it.
    let r = srv.get("/after");
    assert_eq!(r.status, 200);
    assert_eq!(r.kv("REMOTE_USER"), None);
    assert_eq!(r.kv("HTTPS"), None);
}

#[test]
fn apaches_user_cannot_read_the_memory_of_apache_children_or_daemons() {
    require!(root);
    require!(venv);
    let user = test_user().expect("the rswsgi-test user (make setup creates it)");
    let (uid, gid) = ids(&user);
    let srv = TestServer::builder("tests/apps/probe.py")
        .processes(2)
        .start();
    let daemons = srv.daemons(2);
    assert_eq!(daemons.len(), 2);
    let children: Vec<i32> = srv
        .httpd_processes()
        .into_iter()
        .filter(|p| p.pid != srv.pid())
        .map(|p| p.pid)
        .collect();
    assert!(!children.is_empty(), "Apache has children");
    for pid in daemons.iter().map(|d| d.pid).chain(children) {
        assert_eq!(
            procs::status_ids(pid, "Uid").map(|u| u[0]),
            Some(uid),
            "pid {pid} runs as {user}"
        );
        let out = Command::new("/usr/bin/python3")
            .args(["-c", &format!(
                "import sys\ntry:\n    open('/proc/{pid}/mem', 'rb')\n    print('READABLE')\nexcept PermissionError:\n    print('DENIED')\n"
            )])
            .uid(uid)
            .gid(gid)
            .output()
            .expect("run the reader");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "DENIED",
            "{user} can open /proc/{pid}/mem"
        );
    }
}

#[test]
fn core_dump_directory_makes_the_children_readable_and_is_warned_about() {
    require!(root);
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py")
        .directive("CoreDumpDirectory /tmp")
        .start();
    assert_eq!(srv.get("/").status, 200);
    const WARNING: &str = "RSWSGI0209: Apache's children are dumpable";
    let log = wait_log(&srv, |l| l.contains(WARNING));
    assert!(log.contains(WARNING), "{log}");
}

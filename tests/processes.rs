//! Daemon processes: how many, as whom, and that httpd itself never loads Python.

mod common;

use common::{procs, test_user, TestServer};
use rswsgi_express::Identity;

#[test]
fn daemon_count_equals_processes() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py")
        .processes(3)
        .threads(2)
        .start();
    let daemons = srv.daemons(3);
    assert_eq!(
        daemons.len(),
        3,
        "expected 3 rswsgi-daemon children of httpd {}: {daemons:?}",
        srv.pid()
    );
    // Every request is answered by one of them.
    for _ in 0..6 {
        let resp = srv.get("/");
        assert_eq!(resp.status, 200, "{resp:?}");
        let pid: i32 = resp.kv("probe.pid").unwrap().parse().unwrap();
        assert!(
            daemons.iter().any(|d| d.pid == pid),
            "request served by pid {pid}, not one of the daemons {daemons:?}"
        );
    }
    srv.stop();
}

#[test]
fn daemons_run_as_the_configured_user_with_only_its_groups() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py")
        .processes(2)
        .start();
    let (uid, gid, groups) = match test_user() {
        Some(user) => {
            let id = Identity::lookup(&user, None).unwrap();
            (id.uid, id.gid, id.groups)
        }
        // SAFETY: getuid/getgid have no preconditions.
        None => unsafe { (libc::getuid(), libc::getgid(), Vec::new()) },
    };
    let daemons = srv.daemons(2);
    assert_eq!(daemons.len(), 2, "{daemons:?}");
    for d in &daemons {
        let uids = procs::status_ids(d.pid, "Uid").unwrap();
        let gids = procs::status_ids(d.pid, "Gid").unwrap();
        assert_eq!(
            uids,
            vec![uid; 4],
            "daemon {} Uid (real, effective, saved, fs)",
            d.pid
        );
        assert_eq!(
            gids,
            vec![gid; 4],
            "daemon {} Gid (real, effective, saved, fs)",
            d.pid
        );
        if test_user().is_some() {
            let supplementary = procs::status_ids(d.pid, "Groups").unwrap();
            assert!(
                supplementary.iter().all(|g| groups.contains(g)),
                "daemon {} kept groups {supplementary:?}; the user's are {groups:?}",
                d.pid
            );
        }
    }
    // The application sees the same identity.
    let resp = srv.get("/");
    assert_eq!(resp.kv("probe.uid"), Some(uid.to_string()));
    srv.stop();
}

#[test]
fn httpd_processes_never_map_libpython() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/probe.py").start();
    // A request first, so every kind of process has done real work.
    assert_eq!(srv.get("/").status, 200);
    let httpd = srv.httpd_processes();
    assert!(
        httpd.len() >= 2,
        "expected httpd's parent and at least one child: {httpd:?}"
    );
    for p in &httpd {
        let maps = procs::maps(p.pid).unwrap_or_default();
        assert!(!maps.is_empty(), "cannot read /proc/{}/maps", p.pid);
        assert!(
            !maps.contains("libpython"),
            "httpd process {} ({}) maps libpython",
            p.pid,
            p.comm
        );
    }
    // Control: the check does see libpython where it is, in the daemons.
    let daemons = srv.daemons(1);
    assert!(
        daemons
            .iter()
            .any(|d| procs::maps(d.pid).unwrap_or_default().contains("libpython")),
        "no daemon maps libpython: {daemons:?}"
    );
    srv.stop();
}

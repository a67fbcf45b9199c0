//! Operator lines of the daemon that only a peer other than this build's module provokes, each
//! provoked on a daemon started by hand (as the supervisor starts it) and matched by its code
//! (`docs/errors.md`):
//! - `RSWSGI0424`: `--stats-fd` names a descriptor that is not a statistics area;
//! - `RSWSGI0426`: every process slot of the statistics area is held already;
//! - `RSWSGI0506`: an authenticated peer sends a hook call the daemon cannot read;
//! - `RSWSGI0502`: an authenticated peer sends a request that names no script, to a group that
//!   loads none (the module always names one: Apache sets `SCRIPT_FILENAME`).

mod common;

use std::io::Write as _;

use common::{base_environ, Daemon};

const HELLO: &str = include_str!("apps/hello.py");

/// A memfd of a group statistics area's size, all zero (every slot free).
fn statistics_area() -> std::fs::File {
    let fd = nix::sys::memfd::memfd_create(c"stats", nix::sys::memfd::MFdFlags::empty())
        .expect("memfd_create");
    let file = std::fs::File::from(fd);
    file.set_len(rswsgi_protocol::stats::GroupArea::SIZE as u64)
        .expect("size the area");
    file
}

/// `RSWSGI0424`: a descriptor that is a file of 5 bytes, not the group's statistics area (as a
/// module and daemon of different builds would pass): the line, and the daemon still serves.
#[test]
fn a_stats_fd_that_is_not_a_statistics_area_is_reported_and_the_daemon_serves() {
    let dir = common::TempDir::new();
    let small = dir.0.join("not-an-area");
    std::fs::File::create(&small)
        .and_then(|mut f| f.write_all(b"stats"))
        .expect("write the small file");
    let d = Daemon::start_with(HELLO, &["--stats-fd", "0"], |cmd| {
        cmd.stdin(std::fs::File::open(&small).expect("open the small file"));
    });
    let r = d.connect().request(&base_environ(&d.script, "/"), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!"));
    let log = d.wait_log("RSWSGI0424:");
    assert!(log.contains("--stats-fd"), "{log}");
}

/// The same daemon given a real area of the expected size writes no such line (so the test
/// above fails when the check is wrong, not only when the line is missing).
#[test]
fn a_stats_fd_of_the_right_size_is_not_reported() {
    let file = statistics_area();
    let d = Daemon::start_with(HELLO, &["--stats-fd", "0"], |cmd| {
        cmd.stdin(file);
    });
    let r = d.connect().request(&base_environ(&d.script, "/"), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    assert!(!d.log().contains("RSWSGI0424"), "{}", d.log());
}

/// `RSWSGI0426`: an area of the right size whose every process slot is held (by pid 1, which
/// lives for ever): the daemon cannot claim one, says so, and serves uncounted.
#[test]
fn a_statistics_area_with_no_free_slot_is_reported_and_the_daemon_serves() {
    use rswsgi_protocol::stats::{ProcSlot, PROC_SLOTS};
    use std::os::unix::fs::FileExt;
    let file = statistics_area();
    // `ProcSlot::pid` is its first field.
    for i in 0..PROC_SLOTS {
        let at = (i * std::mem::size_of::<ProcSlot>()) as u64;
        file.write_all_at(&1i32.to_ne_bytes(), at)
            .expect("take a slot");
    }
    let d = Daemon::start_with(HELLO, &["--stats-fd", "0"], |cmd| {
        cmd.stdin(file);
    });
    let r = d.connect().request(&base_environ(&d.script, "/"), None);
    assert!(r.ended, "{r:?}\n{}", d.log());
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, world!"));
    let log = d.wait_log("RSWSGI0426:");
    assert!(log.contains("every slot"), "{log}");
}

/// `RSWSGI0506`: a peer that answers the challenge with the secret (as the module does) and
/// sends a hook call naming an unknown hook, then one missing its password: each gets an error
/// frame and the line, and the daemon goes on serving.
#[test]
fn a_malformed_hook_call_is_refused_with_its_line() {
    let d = Daemon::start(HELLO, &[]);
    let hook = rswsgi_protocol::hook::KIND.as_bytes().to_vec();
    for (kind, needle) in [
        (&b"format_disk"[..], "format_disk"),
        (b"check_password", "password"),
    ] {
        let mut e = base_environ(&d.script, "/login");
        e.push((hook.clone(), kind.to_vec()));
        e.push((
            rswsgi_protocol::hook::USER.as_bytes().to_vec(),
            b"alice".to_vec(),
        ));
        let r = d.connect().request(&e, None);
        assert!(r.error.is_some() && !r.head, "{r:?}\n{}", d.log());
        let log = d.wait_log(needle);
        assert!(
            log.lines()
                .any(|l| l.contains("RSWSGI0506: bad hook call for") && l.contains(needle)),
            "{log}"
        );
    }
    let r = d.connect().request(&base_environ(&d.script, "/"), None);
    assert!(r.ended && r.status == 200, "{r:?}\n{}", d.log());
}

/// `RSWSGI0502`: a group that loads no script at start-up, and a request that names none (no
/// `SCRIPT_FILENAME`, no handler script): an error frame and the line with the URL.
#[test]
fn a_request_that_names_no_script_is_refused_with_its_line() {
    let d = Daemon::start_unloaded(HELLO, &[]);
    let e: Vec<_> = base_environ(&d.script, "/nothing-here")
        .into_iter()
        .filter(|(k, _)| k != b"SCRIPT_FILENAME")
        .collect();
    let r = d.connect().request(&e, None);
    assert!(r.error.is_some() && !r.head, "{r:?}\n{}", d.log());
    let log = d.wait_log("RSWSGI0502:");
    assert!(
        log.lines()
            .any(|l| l.contains("RSWSGI0502") && l.contains("/nothing-here")),
        "{log}"
    );
}

//! A 1 GiB upload, generated and streamed by the test, hashed by the application as it reads
//! wsgi.input: the sha256 matches, and neither the httpd child nor the daemon grows its
//! resident memory by 32 MiB or more (the body is streamed, never buffered).

mod common;

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use common::raw::{head, RawConn};
use common::semantics;
use sha2::{Digest, Sha256};

const GIB: usize = 1 << 30;
const BLOCK: usize = 1 << 20;
const LIMIT: u64 = 32 << 20;

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
}

/// Resets the peak resident set size the kernel keeps for `pid` (VmHWM).
fn reset_peak(pid: i32) {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("write /proc/PID/clear_refs");
}

#[test]
fn one_gib_upload_is_streamed_in_bounded_memory() {
    require!(venv);
    // express's default limit is mod_wsgi-express's 10 MiB; this upload needs 1 GiB (Apache's
    // own default since 2.4.54).
    let srv = semantics::builder().limit_request_body(1 << 30).start();
    // Warm up: the same path once, so pools and Python's hashlib are in place.
    for _ in 0..2 {
        let body = semantics::pseudo_random(8 << 20, 9);
        let resp = srv.post("/hash", &body);
        assert_eq!(resp.kv("len"), Some(body.len().to_string()), "{resp:?}");
    }
    let parent = srv.pid();
    let children: Vec<i32> = srv
        .httpd_processes()
        .into_iter()
        .filter(|p| p.ppid == parent)
        .map(|p| p.pid)
        .collect();
    assert!(!children.is_empty(), "no httpd child");
    let daemons = srv.daemons(1);
    assert_eq!(daemons.len(), 1, "{daemons:?}");
    let watched: Vec<(String, i32)> = children
        .iter()
        .map(|&pid| ("httpd child".to_string(), pid))
        .chain(daemons.iter().map(|d| ("daemon".to_string(), d.pid)))
        .collect();
    let before: Vec<u64> = watched
        .iter()
        .map(|(_, pid)| {
            reset_peak(*pid);
            status_kib(*pid, "VmRSS")
        })
        .collect();

    let started = Instant::now();
    let mut c = RawConn::connect(srv.addr);
    c.set_read_timeout(Duration::from_secs(120));
    c.send(&head(
        "POST",
        "/hash",
        &[
            ("Content-Length", &GIB.to_string()),
            ("Connection", "close"),
        ],
    ))
    .unwrap();
    let mut block = semantics::pseudo_random(BLOCK, 7);
    let mut digest = Sha256::new();
    let mut stream = c.stream();
    for i in 0..GIB / BLOCK {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        digest.update(&block);
        stream.write_all(&block).expect("send the body");
    }
    let sha: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let resp = c.read_response(false).unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.kv("len"), Some(GIB.to_string()), "{resp:?}");
    assert_eq!(resp.kv("sha256"), Some(sha), "{resp:?}");

    for ((what, pid), rss_before) in watched.iter().zip(before) {
        let peak = status_kib(*pid, "VmHWM");
        let growth = peak.saturating_sub(rss_before) << 10;
        eprintln!("{what} (pid {pid}): RSS {rss_before} KiB before, peak {peak} KiB during");
        assert!(
            growth < LIMIT,
            "{what} (pid {pid}) grew by {} MiB during the upload (RSS {rss_before} KiB, peak {peak} KiB)",
            growth >> 20
        );
    }
    assert!(took < Duration::from_secs(60), "1 GiB took {took:?}");
    eprintln!("1 GiB uploaded and hashed in {took:?}");
    srv.stop();
}

//! Reading `/proc`: which processes exist, their parents, groups, users and maps.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// `R`, `S`, `Z` ...
    pub state: char,
    pub comm: String,
}

impl Proc {
    /// Running or sleeping, not a zombie waiting to be reaped.
    pub fn is_live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// The process `pid`, if it exists.
pub fn get(pid: i32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgrp,
        state,
        comm,
    })
}

/// Every process.
pub fn all() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(get)
        .collect()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    get(pid).is_some_and(|p| p.is_live())
}

/// The live children of `ppid`.
pub fn children(ppid: i32) -> Vec<Proc> {
    all()
        .into_iter()
        .filter(|p| p.ppid == ppid && p.is_live())
        .collect()
}

/// The live members of process group `pgrp`.
pub fn group_members(pgrp: i32) -> Vec<Proc> {
    all()
        .into_iter()
        .filter(|p| p.pgrp == pgrp && p.is_live())
        .collect()
}

/// `/proc/PID/exe`, without a trailing " (deleted)".
pub fn exe(pid: i32) -> Option<PathBuf> {
    let link = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let s = link.to_str()?;
    Some(PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(s)))
}

/// Live processes running the binary `path`.
pub fn running(path: &Path) -> Vec<Proc> {
    all()
        .into_iter()
        .filter(|p| p.is_live() && exe(p.pid).as_deref() == Some(path))
        .collect()
}

/// Whether `p` is a daemon: its comm is `rswsgi-daemon`, or it runs `daemon_binary`.
pub fn is_daemon(p: &Proc, daemon_binary: &Path) -> bool {
    p.comm == "rswsgi-daemon" || exe(p.pid).as_deref() == Some(daemon_binary)
}

/// The daemons among the children of `httpd_pid`.
pub fn daemons_of(httpd_pid: i32, daemon_binary: &Path) -> Vec<Proc> {
    children(httpd_pid)
        .into_iter()
        .filter(|p| is_daemon(p, daemon_binary))
        .collect()
}

/// The numbers of a `/proc/PID/status` line such as `Uid:` or `Groups:`.
pub fn status_ids(pid: i32, field: &str) -> Option<Vec<u32>> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let prefix = format!("{field}:");
    let line = status.lines().find(|l| l.starts_with(&prefix))?;
    Some(
        line[prefix.len()..]
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
    )
}

/// `/proc/PID/maps`.
pub fn maps(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/maps")).ok()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

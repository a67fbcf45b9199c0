//! Idle daemon connections kept by each Apache child between requests, so a request pays no
//! connect/accept. A pooled connection is used without a check (which would cost a syscall per
//! request): one the daemon has closed refuses the write (`EPIPE`), and one it has declined
//! answers `Retry`; either way the request provably went unread and is sent again on the next
//! connection (see `exchange` and the retry loop in `dispatch`).

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::LazyLock;
use std::time::Duration;

use parking_lot::Mutex;

use crate::ring::Ring;

/// Idle connections kept per daemon group (per Apache child process).
const MAX_IDLE: usize = 64;

/// A connection to a daemon group and the read buffer that goes with it.
pub struct Link {
    /// The connection.
    pub stream: UnixStream,
    /// Its frame reader's buffer, kept so a pooled connection allocates none per request.
    pub buf: Vec<u8>,
    /// The read timeout set on it (kept here: asking the socket costs a syscall).
    pub timeout: Duration,
    /// The number of the last request sent on it (requests are numbered from 1).
    pub seq: u64,
    /// Its response ring, once the daemon has sent one.
    pub ring: Option<Ring>,
}

static IDLE: LazyLock<Mutex<HashMap<String, Vec<Link>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The most recently used idle connection to the daemon socket at `path`, if any.
pub fn take(path: &str) -> Option<Link> {
    IDLE.lock().get_mut(path)?.pop()
}

/// Largest read buffer an idle connection keeps; one grown for a large body is let go.
const IDLE_BUFFER: usize = 64 << 10;

/// Keeps a connection whose last response ended cleanly, for the next request; whether it
/// was kept (the pool of the group was not full).
pub fn give_back(path: &str, mut link: Link) -> bool {
    if link.buf.len() > IDLE_BUFFER {
        link.buf = Vec::new();
    }
    let mut idle = IDLE.lock();
    let list = idle.entry(path.to_string()).or_default();
    let kept = list.len() < MAX_IDLE;
    if kept {
        list.push(link);
    }
    kept
}

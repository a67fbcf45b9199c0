//! Idle daemon connections kept by each Apache child between requests, so a request pays no
//! connect/accept. A pooled connection is used again only after a check that the daemon has
//! not closed or declined it (it sends `Retry` before it stops); a request that still meets a
//! connection the daemon dropped unread is sent again (see `exchange`).

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::LazyLock;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use parking_lot::Mutex;

/// Idle connections kept per daemon group (per Apache child process).
const MAX_IDLE: usize = 64;

/// A connection to a daemon group and the read buffer that goes with it.
pub struct Link {
    /// The connection.
    pub stream: UnixStream,
    /// Its frame reader's buffer, kept so a pooled connection allocates none per request.
    pub buf: Vec<u8>,
}

static IDLE: LazyLock<Mutex<HashMap<String, Vec<Link>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// True when nothing has arrived on an idle connection: no `Retry`, no end of stream (both
/// make it readable; a hang-up or error is always reported).
fn quiet(stream: &UnixStream) -> bool {
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

/// An idle connection to the daemon socket at `path`, if one is usable.
pub fn take(path: &str) -> Option<Link> {
    let mut idle = IDLE.lock();
    let list = idle.get_mut(path)?;
    while let Some(link) = list.pop() {
        if quiet(&link.stream) {
            return Some(link);
        }
    }
    None
}

/// Keeps a connection whose last response ended cleanly, for the next request.
pub fn give_back(path: &str, link: Link) {
    let mut idle = IDLE.lock();
    let list = idle.entry(path.to_string()).or_default();
    if list.len() < MAX_IDLE {
        list.push(link);
    }
}

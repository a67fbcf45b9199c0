//! Fork safety: an application may `fork()` (multiprocessing's fork start method, daemonising
//! libraries, `subprocess` fallbacks), and the child must never touch this daemon's sockets.
//!
//! - Every descriptor the daemon serves from (the listening socket, the epoll set, the stop
//!   pipe, each module connection) is registered here. A `pthread_atfork` child handler points
//!   each of them at a dead socket at once, in the child only: anything the child does with
//!   them fails (`EPIPE`, end of file) and none of its bytes reach the module. The numbers
//!   stay taken, so nothing the child opens later can be mistaken for them.
//! - A forked child that comes back into the daemon's own code (the application returned in
//!   both processes) exits at once, without writing: see [`exit_if_forked`].
//!
//! Between `fork` and the child handler's end only async-signal-safe calls are made: atomics,
//! `socketpair`, `dup3`, `close`.

use rswsgi_protocol::Code;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// One bit per descriptor number below the process's descriptor limit.
static REGISTERED: OnceLock<Box<[AtomicU64]>> = OnceLock::new();
/// Set in a forked child by the atfork handler.
static FORKED: AtomicBool = AtomicBool::new(false);

/// Installs the atfork handler and sizes the registry from `RLIMIT_NOFILE`. Call once, early,
/// before any thread or descriptor is registered.
pub fn install() -> std::io::Result<()> {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(std::io::Error::from)?;
    let fds = soft.clamp(1024, 1 << 20) as usize;
    let _ = REGISTERED.set((0..fds.div_ceil(64)).map(|_| AtomicU64::new(0)).collect());
    // SAFETY: registers a plain function as the child handler; it only makes
    // async-signal-safe calls (see `after_fork_in_child`).
    let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

fn slot(fd: RawFd) -> Option<(&'static AtomicU64, u64)> {
    let words = REGISTERED.get()?;
    let fd = usize::try_from(fd).ok()?;
    Some((words.get(fd / 64)?, 1u64 << (fd % 64)))
}

/// Marks `fd` as one of the daemon's own: a forked child loses it. Returns false when the
/// descriptor is past the registry (the process's descriptor limit was raised after start).
pub fn register(fd: RawFd) -> bool {
    match slot(fd) {
        Some((word, bit)) => {
            word.fetch_or(bit, Ordering::SeqCst);
            true
        }
        None => false,
    }
}

/// Forgets `fd`; call before closing it.
pub fn unregister(fd: RawFd) {
    if let Some((word, bit)) = slot(fd) {
        word.fetch_and(!bit, Ordering::SeqCst);
    }
}

/// Keeps a descriptor registered for as long as it lives; declare it before the field that
/// owns the descriptor, so that it is unregistered before the descriptor closes.
#[derive(Debug)]
pub struct Registration(RawFd);

impl Registration {
    /// Registers `fd` until the returned value is dropped.
    pub fn new(fd: RawFd) -> Self {
        if !register(fd) {
            tracing::warn!("{}: descriptor {fd} is past the fork-safety registry; a process the application forks keeps it", Code::ForkRegistryFull);
        }
        Registration(fd)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        unregister(self.0);
    }
}

/// True in a process forked by the application.
pub fn in_forked_child() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// In a process forked by the application that came back into the daemon's code: says so on
/// stderr (Apache's error log) and exits at once, with no cleanup and nothing written to the
/// module, so the forking request gets only its parent's response. Does nothing otherwise.
pub fn exit_if_forked() {
    if !in_forked_child() {
        return;
    }
    let msg = b"[rswsgi] a process forked by the application returned into rswsgi; it exits without writing to the connection\n";
    // SAFETY: write(2) and _exit(2) on a valid buffer; no locks are taken (other threads'
    // locks may be held forever in a forked child).
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(0)
    }
}

/// The atfork child handler: points every registered descriptor at one end of a socket pair
/// whose other end is closed.
extern "C" fn after_fork_in_child() {
    FORKED.store(true, Ordering::SeqCst);
    let Some(words) = REGISTERED.get() else {
        return;
    };
    let mut pair = [-1; 2];
    // SAFETY: socketpair/close/dup3 are async-signal-safe system calls on valid arguments.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        ) != 0
        {
            // No dead socket to point them at: close them instead.
            pair = [-1, -1];
        } else {
            libc::close(pair[1]);
        }
    }
    for (i, word) in words.iter().enumerate() {
        let mut bits = word.load(Ordering::SeqCst);
        while bits != 0 {
            let fd = (i * 64 + bits.trailing_zeros() as usize) as RawFd;
            bits &= bits - 1;
            // SAFETY: as above; `fd` is a descriptor this process registered.
            unsafe {
                if pair[0] < 0 || libc::dup3(pair[0], fd, libc::O_CLOEXEC) < 0 {
                    libc::close(fd);
                }
            }
        }
    }
    if pair[0] >= 0 {
        // SAFETY: closes the spare end of the pair made above.
        unsafe { libc::close(pair[0]) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_bits_follow_register_and_unregister() {
        install().unwrap();
        assert!(register(5));
        let (word, bit) = slot(5).unwrap();
        assert_ne!(word.load(Ordering::SeqCst) & bit, 0);
        unregister(5);
        assert_eq!(word.load(Ordering::SeqCst) & bit, 0);
        assert!(!register(-1));
        assert!(!in_forked_child());
    }
}

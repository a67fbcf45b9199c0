//! The module-wide statistics area: shared memory httpd's parent creates in `post_config`
//! before it forks anything, which every Apache child inherits by `fork` and updates with
//! relaxed atomics. Daemons never get it (each group's own area is
//! `rswsgi_protocol::stats::GroupArea`).
//!
//! It holds one [`GroupCounters`] per daemon group name ever configured since httpd started
//! (names are written by the parent, so counters survive a graceful restart that keeps the
//! group) and one [`ChildSlot`] per Apache child for the pool gauges, claimed by the child's
//! pid and counted only while that pid is a live child of the same parent, so a dead child's
//! share disappears.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering};

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
#[cfg(test)]
use rswsgi_protocol::stats::GroupArea;
use rswsgi_protocol::stats::{ExitReason, Histogram};

/// Most daemon group names counted (the rest are served but not counted).
pub const MAX_GROUPS: usize = 64;
/// Most Apache children whose pools are counted at once.
pub const MAX_CHILDREN: usize = 512;
/// Longest group name kept (bytes); a longer one is cut (and told apart by nothing more).
pub const NAME_LEN: usize = 64;
/// The restart reasons: [`ExitReason::ALL`], then `crashed`.
pub const RESTART_REASONS: usize = ExitReason::ALL.len() + 1;
/// The `crashed` slot of [`GroupCounters::restarts`].
pub const CRASHED: usize = ExitReason::ALL.len();

/// Why a 502, 503 or 504 was answered (`rswsgi_responses_total{code,cause}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// 504: no answer from the daemon in time (`socket-timeout`).
    Timeout,
    /// 504: the daemon gave the request up (`request-timeout`).
    GivenUp,
    /// 502: the daemon closed the connection before the response was complete.
    Closed,
    /// 502: the daemon broke the protocol.
    Protocol,
    /// 503: writing the request to the daemon failed.
    Unavailable,
    /// 503: the group is not running.
    NotRunning,
    /// 503: no daemon accepted a connection within `connect-timeout`.
    ConnectFailed,
    /// 503: the daemons kept shutting down (`Retry`) until `connect-timeout`.
    ShuttingDown,
}

impl Cause {
    /// Every cause, in slot order.
    pub const ALL: [Cause; 8] = [
        Cause::Timeout,
        Cause::GivenUp,
        Cause::Closed,
        Cause::Protocol,
        Cause::Unavailable,
        Cause::NotRunning,
        Cause::ConnectFailed,
        Cause::ShuttingDown,
    ];

    /// The status answered.
    pub fn code(self) -> u16 {
        match self {
            Cause::Timeout | Cause::GivenUp => 504,
            Cause::Closed | Cause::Protocol => 502,
            _ => 503,
        }
    }

    /// The `cause` label.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Timeout => "timeout",
            Cause::GivenUp => "request-timeout",
            Cause::Closed => "connection-closed",
            Cause::Protocol => "protocol-error",
            Cause::Unavailable => "write-failed",
            Cause::NotRunning => "not-running",
            Cause::ConnectFailed => "connect-failed",
            Cause::ShuttingDown => "shutting-down",
        }
    }

    fn index(self) -> usize {
        Cause::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// One daemon group's counters.
#[repr(C)]
#[derive(Debug)]
pub struct GroupCounters {
    /// Bytes of `name` in use; 0: the entry is free.
    pub name_len: AtomicU32,
    _pad: AtomicU32,
    /// The group's name (written once, by the parent).
    pub name: [AtomicU8; NAME_LEN],
    /// Responses by status class: index 1 to 5 for 1xx to 5xx, 0 for anything else.
    pub status: [AtomicU64; 6],
    /// 502/503/504 answers by [`Cause`].
    pub causes: [AtomicU64; Cause::ALL.len()],
    /// Request body bytes read from clients.
    pub bytes_in: AtomicU64,
    /// Response body bytes passed to Apache.
    pub bytes_out: AtomicU64,
    /// Responses with at least one `BodyFile` block (zero-copy).
    pub body_files: AtomicU64,
    /// New connections to the daemons.
    pub connects: AtomicU64,
    /// Requests sent again (a `Retry`, a pooled connection the daemon had dropped).
    pub retries: AtomicU64,
    /// Requests no daemon took (no connection within `connect-timeout`).
    pub connect_failures: AtomicU64,
    /// Daemon restarts by reason ([`ExitReason::ALL`], then crashed); written by the parent.
    pub restarts: [AtomicU64; RESTART_REASONS],
    /// Time from sending the request head to the end of the response.
    pub duration: Histogram,
}

impl GroupCounters {
    /// Counts an answer of `cause`.
    pub fn count_cause(&self, cause: Cause) {
        self.causes[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response of `status`.
    pub fn count_status(&self, status: i32) {
        let class = match status {
            100..=599 => (status / 100) as usize,
            _ => 0,
        };
        self.status[class].fetch_add(1, Ordering::Relaxed);
    }

    fn name_is(&self, name: &[u8]) -> bool {
        let len = (self.name_len.load(Ordering::Acquire) as usize).min(NAME_LEN);
        len == name.len()
            && self
                .name
                .iter()
                .zip(name)
                .all(|(a, b)| a.load(Ordering::Relaxed) == *b)
    }
}

/// One Apache child's pooled connections, per group index.
#[repr(C)]
#[derive(Debug)]
pub struct ChildSlot {
    /// The child's pid; 0: free.
    pub pid: AtomicI32,
    _pad: AtomicU32,
    /// Idle pooled connections per group.
    pub idle: [AtomicU32; MAX_GROUPS],
    /// Connections carrying a request now, per group.
    pub in_use: [AtomicU32; MAX_GROUPS],
}

/// The whole area.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleArea {
    /// Counters per group name.
    pub groups: [GroupCounters; MAX_GROUPS],
    /// Pool gauges per Apache child.
    pub children: [ChildSlot; MAX_CHILDREN],
}

impl ModuleArea {
    /// The memfd's size.
    pub const SIZE: usize = std::mem::size_of::<ModuleArea>();

    /// The index of the entry named `name`, taking a free one for a new name (parent only).
    pub fn group_index(&self, name: &str) -> Option<usize> {
        let bytes = &name.as_bytes()[..name.len().min(NAME_LEN)];
        if let Some(i) = self.groups.iter().position(|g| g.name_is(bytes)) {
            return Some(i);
        }
        let i = self
            .groups
            .iter()
            .position(|g| g.name_len.load(Ordering::Acquire) == 0)?;
        let g = &self.groups[i];
        for (slot, b) in g.name.iter().zip(bytes) {
            slot.store(*b, Ordering::Relaxed);
        }
        g.name_len
            .store(bytes.len().max(1) as u32, Ordering::Release);
        Some(i)
    }

    /// Claims a pool slot for Apache child `pid` (from `child_init`): a slot still naming
    /// `pid` is stale (an earlier process with that pid) and is taken over; else a free one;
    /// else one whose process `alive` says is gone.
    pub fn claim_child(&self, pid: i32, alive: impl Fn(i32) -> bool) -> Option<&ChildSlot> {
        let take = |s: &ChildSlot, from: i32| {
            s.pid
                .compare_exchange(from, pid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        };
        let slot = self
            .children
            .iter()
            .find(|s| s.pid.load(Ordering::Relaxed) == pid)
            .or_else(|| self.children.iter().find(|s| take(s, 0)))
            .or_else(|| {
                self.children.iter().find(|s| {
                    let p = s.pid.load(Ordering::Relaxed);
                    !alive(p) && take(s, p)
                })
            })?;
        for g in slot.idle.iter().chain(&slot.in_use) {
            g.store(0, Ordering::Relaxed);
        }
        Some(slot)
    }
}

/// A shared mapping of a sealed memfd, unmapped on drop.
pub struct Mapping {
    ptr: NonNull<std::ffi::c_void>,
    len: usize,
    /// The memfd (kept for the next generation and for the daemons).
    pub fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A new memfd of `len` zero bytes, sealed against shrinking and growing, mapped.
    pub fn create(name: &str, len: usize) -> Result<Mapping, String> {
        let cname = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        let fd = memfd_create(
            cname.as_c_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| format!("memfd_create: {e}"))?;
        nix::unistd::ftruncate(&fd, len as i64).map_err(|e| format!("ftruncate: {e}"))?;
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        fcntl(
            &fd,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )
        .map_err(|e| format!("sealing the memfd: {e}"))?;
        // Above the descriptors a daemon's are moved to (3, 4, 5), so the moves in the forked
        // child can never overwrite it.
        let raw = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(|e| format!("dup: {e}"))?;
        // SAFETY: a descriptor fcntl just created, owned by nothing else.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        Mapping::map(fd, len)
    }

    /// Maps `fd` (carried from the previous generation) when it is a sealed file of `len`
    /// bytes; the seals keep it from shrinking under the mapping.
    pub fn map(fd: OwnedFd, len: usize) -> Result<Mapping, String> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("fstat: {e}"))?;
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(|e| format!("seals: {e}"))?;
        let seals = SealFlag::from_bits_truncate(seals);
        if st.st_size as usize != len || !seals.contains(SealFlag::F_SEAL_SHRINK) {
            return Err("not a sealed statistics area of the expected size".into());
        }
        let nz = std::num::NonZeroUsize::new(len).ok_or("empty area")?;
        // SAFETY: a shared mapping of a file of exactly `len` bytes that cannot shrink.
        let ptr = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd.as_fd(),
                0,
            )
        }
        .map_err(|e| format!("mmap: {e}"))?;
        Ok(Mapping { ptr, len, fd })
    }

    /// The mapping as `T`, which must be a `repr(C)` struct of atomic integers of at most
    /// `len` bytes (any bytes are a valid value).
    pub fn get<T>(&self) -> &T {
        assert!(std::mem::size_of::<T>() <= self.len);
        // SAFETY: page-aligned, large enough (asserted), and every bit pattern is valid for
        // the atomics-only types this is used with; shared access goes through atomics.
        unsafe { &*self.ptr.as_ptr().cast::<T>() }
    }

    /// The address, for the hot path's pointer to the module area.
    pub fn as_ptr<T>(&self) -> *mut T {
        self.ptr.as_ptr().cast()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference from `get` outlives `self`.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_keep_their_entry_and_children_their_slot() {
        let m = Mapping::create("area-test", ModuleArea::SIZE).unwrap();
        let area: &ModuleArea = m.get();
        let a = area.group_index("a").unwrap();
        let b = area.group_index("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(area.group_index("a"), Some(a));
        // A new generation maps the same memfd and finds the same entries.
        let again = Mapping::map(m.fd.try_clone().unwrap(), ModuleArea::SIZE).unwrap();
        assert_eq!(again.get::<ModuleArea>().group_index("b"), Some(b));
        area.groups[a].count_status(204);
        area.groups[a].count_status(99);
        assert_eq!(
            again.get::<ModuleArea>().groups[a].status[2].load(Ordering::Relaxed),
            1
        );
        assert_eq!(area.groups[a].status[0].load(Ordering::Relaxed), 1);

        let one = area.claim_child(10, |_| true).unwrap();
        one.idle[a].store(3, Ordering::Relaxed);
        // The same pid again (a recycled pid): its old slot, zeroed.
        let same = area.claim_child(10, |_| true).unwrap();
        assert!(std::ptr::eq(one, same));
        assert_eq!(same.idle[a].load(Ordering::Relaxed), 0);
        for pid in 11..(MAX_CHILDREN as i32 + 10) {
            area.claim_child(pid, |_| true).unwrap();
        }
        assert!(area.claim_child(5000, |_| true).is_none());
        // A dead child's slot is taken over.
        let taken = area.claim_child(5000, |pid| pid != 11).unwrap();
        assert_eq!(taken.pid.load(Ordering::Relaxed), 5000);
    }

    #[test]
    fn only_a_sealed_area_of_the_right_size_is_mapped() {
        let m = Mapping::create("area-test", GroupArea::SIZE).unwrap();
        let fd = m.fd.try_clone().unwrap();
        assert!(Mapping::map(fd, ModuleArea::SIZE).is_err());
        let plain = memfd_create(c"plain", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&plain, GroupArea::SIZE as i64).unwrap();
        assert!(Mapping::map(plain, GroupArea::SIZE).is_err());
    }
}

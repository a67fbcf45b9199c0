//! Statistics of the daemon groups: where the numbers live, the hot path's counters, and the
//! `rswsgi-metrics` handler (Prometheus text, `?health`).
//!
//! httpd's parent creates the shared memory in `post_config` before it forks anything
//! ([`area::ModuleArea`], counted into by Apache's children; one
//! `rswsgi_protocol::stats::GroupArea` per group, written by its daemons), keeps the memfds
//! across graceful restarts in the handoff (`supervisor/handoff.rs`), and reads the group
//! areas when a daemon dies to count why. Every update on the request path is a relaxed atomic
//! add through a pointer inherited by fork: no lock, no system call.

pub mod area;
#[cfg(not(test))]
pub mod handler;
mod procfs;
pub mod render;
mod sockdiag;
pub mod status;

use rswsgi_protocol::Code;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use rswsgi_protocol::stats::{ExitReason, GroupArea};

pub use area::Cause;
use area::{ChildSlot, GroupCounters, Mapping, ModuleArea, CRASHED};

/// The handler name of the metrics endpoint (`SetHandler rswsgi-metrics`).
pub const HANDLER: &str = "rswsgi-metrics";

/// One daemon group's statistics as the parent set them up (inherited by Apache's children).
pub struct GroupStats {
    /// The group's name.
    pub name: String,
    /// Its daemons' area.
    pub area: Mapping,
    /// Its entry in the module-wide area, if it got one.
    pub index: Option<usize>,
    /// The inode of its listening socket (for the listen queue depth).
    pub socket_inode: u64,
    /// Configured `processes` and `threads`.
    pub processes: u32,
    /// Worker threads per process.
    pub threads: u32,
}

impl GroupStats {
    /// The daemons' area.
    pub fn daemons(&self) -> &GroupArea {
        self.area.get()
    }
}

struct Registry {
    module: Mapping,
    groups: Vec<Arc<GroupStats>>,
}

static REGISTRY: RwLock<Option<Arc<Registry>>> = RwLock::new(None);
/// The module-wide area, for the request path.
static MODULE: AtomicPtr<ModuleArea> = AtomicPtr::new(std::ptr::null_mut());
/// This Apache child's pool slot.
static CHILD: AtomicPtr<ChildSlot> = AtomicPtr::new(std::ptr::null_mut());

fn module() -> Option<&'static ModuleArea> {
    // SAFETY: null, or the module area mapped by the parent before forking this process; in
    // an Apache child it is never unmapped. All fields are atomics.
    unsafe { MODULE.load(Ordering::Relaxed).as_ref() }
}

/// The counters of group entry `index` (an [`crate::supervisor::Endpoint`]'s `stats`).
pub fn group(index: Option<usize>) -> Option<&'static GroupCounters> {
    module()?.groups.get(index?)
}

/// The module-wide area carried from the previous generation, or a new one (parent, at the
/// start of a generation). `carried` is the handoff's descriptor. Without an area (no memfd)
/// nothing is counted and the groups serve as before.
pub fn begin_generation(carried: Option<OwnedFd>) {
    let module = match carried.map(|fd| Mapping::map(fd, ModuleArea::SIZE)) {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => {
            tracing::warn!(
                "{}: the statistics carried over the restart are unusable ({e}); starting from zero",
                Code::StatsCarriedUnusable
            );
            Mapping::create("rswsgi-stats", ModuleArea::SIZE)
        }
        None => Mapping::create("rswsgi-stats", ModuleArea::SIZE),
    };
    let module = match module {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(
                "{}: no statistics area ({e}): the metrics endpoint counts nothing",
                Code::StatsAreaMissing
            );
            return;
        }
    };
    MODULE.store(module.as_ptr(), Ordering::Relaxed);
    *REGISTRY.write() = Some(Arc::new(Registry {
        module,
        groups: Vec::new(),
    }));
}

/// Sets up group `name`'s statistics (parent): its area carried from the previous
/// generation (`carried`) or a new one, and its module-wide entry. `listener` is its socket.
pub fn add_group(
    name: &str,
    carried: Option<OwnedFd>,
    listener: &OwnedFd,
    (processes, threads): (u32, u32),
) -> Option<Arc<GroupStats>> {
    let mut reg = REGISTRY.write();
    let reg = Arc::get_mut(reg.as_mut()?)?;
    let area = carried
        .and_then(|fd| Mapping::map(fd, GroupArea::SIZE).ok())
        .map(Ok)
        .unwrap_or_else(|| Mapping::create("rswsgi-group-stats", GroupArea::SIZE));
    let area = match area {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(
                "{}: daemon group '{name}': no statistics area ({e})",
                Code::GroupStatsMissing
            );
            return None;
        }
    };
    let socket_inode = nix::sys::stat::fstat(listener).map_or(0, |st| st.st_ino);
    let index = reg.module.get::<ModuleArea>().group_index(name);
    let stats = Arc::new(GroupStats {
        name: name.to_string(),
        area,
        index,
        socket_inode,
        processes,
        threads,
    });
    reg.groups.push(Arc::clone(&stats));
    Some(stats)
}

/// The groups of this generation.
pub fn groups() -> Vec<Arc<GroupStats>> {
    REGISTRY
        .read()
        .as_ref()
        .map(|r| r.groups.clone())
        .unwrap_or_default()
}

/// The module-wide entry of group `name`, for counting where no endpoint is at hand.
pub fn index_of(name: &str) -> Option<usize> {
    REGISTRY
        .read()
        .as_ref()?
        .groups
        .iter()
        .find(|g| g.name == name)?
        .index
}

/// Ends this generation in the parent: the descriptors to hand to the next one (the module
/// area's, and each group's by name), duplicated; the mappings go.
pub fn end_generation(keep: bool) -> (Option<i32>, Vec<(i32, String)>) {
    MODULE.store(std::ptr::null_mut(), Ordering::Relaxed);
    let Some(reg) = REGISTRY.write().take() else {
        return (None, Vec::new());
    };
    if !keep {
        return (None, Vec::new());
    }
    let dup = |fd: &OwnedFd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)).ok();
    let groups = reg
        .groups
        .iter()
        .filter_map(|g| Some((dup(&g.area.fd)?, g.name.clone())))
        .collect();
    (dup(&reg.module.fd), groups)
}

/// A daemon of `stats`' group died (parent): counts the restart by why it ended — the
/// reason it wrote into its slot, else `crashed` when it was killed by a signal or exited
/// non-zero, else `signal` — and frees its slot.
pub fn daemon_died(stats: &GroupStats, pid: i32, killed: bool, code: i32) {
    let slot = stats.daemons().slot_of(pid);
    let written = slot.and_then(|s| ExitReason::from_word(s.exit_reason.load(Ordering::Relaxed)));
    let reason = match written {
        _ if killed => CRASHED,
        Some(r) => ExitReason::ALL
            .iter()
            .position(|x| *x == r)
            .unwrap_or(CRASHED),
        None if code != 0 => CRASHED,
        None => ExitReason::ALL
            .iter()
            .position(|x| *x == ExitReason::Signal)
            .unwrap_or(CRASHED),
    };
    if let Some(g) = group(stats.index) {
        g.restarts[reason].fetch_add(1, Ordering::Relaxed);
    }
    free_slot(stats, pid);
}

/// Frees the slot of daemon `pid` (parent, once it has been reaped).
pub fn free_slot(stats: &GroupStats, pid: i32) {
    if let Some(s) = stats.daemons().slot_of(pid) {
        s.busy.store(0, Ordering::Relaxed);
        let _ = s
            .pid
            .compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Frees the slot of a daemon of an earlier generation's group `name`.
pub fn retired_exit(name: &str, pid: i32) {
    if let Some(g) = groups().iter().find(|g| g.name == name) {
        free_slot(g, pid);
    }
}

/// In each Apache child: claims its pool slot.
pub fn child_init() {
    let me = std::process::id() as i32;
    let parent = nix::unistd::getppid().as_raw();
    if let Some(m) = module() {
        if let Some(slot) = m.claim_child(me, |pid| procfs::is_child_of(pid, parent)) {
            CHILD.store(std::ptr::from_ref(slot).cast_mut(), Ordering::Relaxed);
        }
    }
}

fn child() -> Option<&'static ChildSlot> {
    // SAFETY: null, or this child's slot in the module area (see `module`).
    unsafe { CHILD.load(Ordering::Relaxed).as_ref() }
}

/// Changes this child's idle-connection gauge of group entry `index` by `delta`.
pub fn pool_idle(index: Option<usize>, delta: i32) {
    if let (Some(c), Some(i)) = (child(), index) {
        if let Some(g) = c.idle.get(i) {
            add_gauge(g, delta);
        }
    }
}

/// Changes this child's in-use gauge of group entry `index` by `delta`.
pub fn pool_in_use(index: Option<usize>, delta: i32) {
    if let (Some(c), Some(i)) = (child(), index) {
        if let Some(g) = c.in_use.get(i) {
            add_gauge(g, delta);
        }
    }
}

fn add_gauge(g: &std::sync::atomic::AtomicU32, delta: i32) {
    if delta >= 0 {
        g.fetch_add(delta as u32, Ordering::Relaxed);
    } else {
        let _ = g.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(delta.unsigned_abs()))
        });
    }
}

/// Counts a connection in use for as long as it lives.
pub struct InUse(Option<usize>);

impl InUse {
    /// Counts one connection of group entry `index`.
    pub fn new(index: Option<usize>) -> InUse {
        pool_in_use(index, 1);
        InUse(index)
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        pool_in_use(self.0, -1);
    }
}

/// Counts a response for group entry `index`: the handler's `returned` status, or when that
/// is `OK` (0: the response went out) the request's `sent` status.
pub fn count_response(index: Option<usize>, returned: i32, sent: i32) {
    if let Some(g) = group(index) {
        g.count_status(if returned == 0 { sent } else { returned });
    }
}

/// Counts an answer of `cause` for group entry `index`.
pub fn count_cause(index: Option<usize>, cause: Cause) {
    if let Some(g) = group(index) {
        g.count_cause(cause);
    }
}

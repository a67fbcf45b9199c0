//! This process's slot in its group's statistics area (`--stats-fd`,
//! `rswsgi_protocol::stats`): busy threads, requests picked up, their queue wait, whether it
//! listens, and why it exits. Every update is a relaxed atomic store or add; without
//! `--stats-fd` (or with every slot taken) nothing is counted.

use rswsgi_protocol::Code;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::sys::mman::{mmap, MapFlags, ProtFlags};
use rswsgi_protocol::stats::{ExitReason, GroupArea, ProcSlot};

static SLOT: OnceLock<&'static ProcSlot> = OnceLock::new();

/// Maps the inherited area at `fd` and claims a slot for this process with `threads`
/// workers. A failure is logged and only turns counting off.
pub fn init(fd: RawFd, threads: u32) {
    // SAFETY: `--stats-fd` names a descriptor the supervisor gave this process for this use
    // alone; it is owned here from now on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::num::NonZeroUsize::new(GroupArea::SIZE).expect("area size");
    let size_ok = nix::sys::stat::fstat(&fd).is_ok_and(|st| st.st_size as usize >= GroupArea::SIZE);
    if !size_ok {
        tracing::warn!(
            "{}: --stats-fd is not a statistics area of the expected size; not counting",
            Code::StatsFdInvalid
        );
        return;
    }
    // SAFETY: a shared mapping of a file at least `len` bytes long (checked above, and the
    // supervisor sealed it against shrinking); it is never unmapped, so the `'static` area
    // below stays valid. Every field of `GroupArea` is an atomic integer, valid for any bytes.
    let mapped = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            &fd,
            0,
        )
    };
    let ptr = match mapped {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(
                "{}: cannot map the statistics area: {e}; not counting",
                Code::StatsMapFailed
            );
            return;
        }
    };
    // SAFETY: see the mapping above; the mapping is aligned to a page.
    let area: &'static GroupArea = unsafe { &*ptr.as_ptr().cast::<GroupArea>() };
    match area.claim(std::process::id() as i32, threads) {
        Some(slot) => {
            let _ = SLOT.set(slot);
        }
        None => tracing::warn!(
            "{}: every slot of the group's statistics area is taken; not counting",
            Code::StatsSlotsFull
        ),
    }
}

fn slot() -> Option<&'static ProcSlot> {
    if crate::fork::in_forked_child() {
        return None;
    }
    SLOT.get().copied()
}

/// The process listens: its start-up is over.
pub fn listening() {
    if let Some(s) = slot() {
        s.listening.store(1, Ordering::Relaxed);
    }
}

/// A worker picked up a request whose Apache start was `request_start` (since the epoch).
pub fn picked_up(request_start: Option<Duration>) {
    let Some(s) = slot() else { return };
    s.busy.fetch_add(1, Ordering::Relaxed);
    s.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(start) = request_start {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let wait = now.saturating_sub(start).as_micros();
        s.queue_wait
            .observe(u64::try_from(wait).unwrap_or(u64::MAX));
    }
}

/// The request a worker served is over.
pub fn finished() {
    if let Some(s) = slot() {
        // Never below zero, whatever else wrote the word.
        let _ = s
            .busy
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1));
    }
}

/// Records why the process is about to exit (the first reason given counts);
/// `shutdown_reason` is mod_wsgi's name ([`ExitReason::from_shutdown_reason`]).
pub fn exiting(shutdown_reason: &str) {
    let Some(s) = slot() else { return };
    if let Some(r) = ExitReason::from_shutdown_reason(shutdown_reason) {
        let _ = s
            .exit_reason
            .compare_exchange(0, r as u32, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// Records a stop by a signal (SIGTERM, SIGINT, SIGHUP), unless a reason was set already.
pub fn stopped_by_signal() {
    if let Some(s) = slot() {
        let _ = s.exit_reason.compare_exchange(
            0,
            ExitReason::Signal as u32,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

//! The statistics a daemon group's processes share with Apache (the metrics endpoint, the
//! `mod_status` section, `?health`).
//!
//! httpd's parent creates one memfd per daemon group of [`GroupArea::SIZE`] bytes, sealed
//! against shrinking and growing, before it forks anything, and hands it to each daemon of
//! the group at descriptor [`STATS_FD`](crate::daemon_spec::STATS_FD) (`--stats-fd`). It keeps
//! the memfd across graceful restarts, so the counters never go backwards while httpd runs.
//! The file is an array of [`ProcSlot`]s, one per running daemon process: a daemon claims a
//! free slot (pid 0) at start-up by compare-and-swap, counts into it, writes why it exits
//! ([`ExitReason`]) before it does, and the parent frees the slot when it reaps the process.
//!
//! Everything in the area is plain integers behind atomics, so any bit pattern is a valid
//! value. A daemon runs application code: a reader treats every number as hostile (a pid is
//! checked against the live process, a reason is looked up in a closed table, sums saturate),
//! so a garbage value can only make a number wrong.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Upper bounds (microseconds, inclusive) of the histogram buckets; one more bucket counts
/// everything larger (`+Inf`).
pub const BUCKETS_US: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// A histogram in shared memory: per-bucket (not cumulative) counts and the sum.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket of [`BUCKETS_US`]; the last counts those above every bound.
    pub counts: [AtomicU64; BUCKETS_US.len() + 1],
    /// Sum of the observations, in microseconds.
    pub sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one observation of `us` microseconds (relaxed atomic adds, no lock).
    pub fn observe(&self, us: u64) {
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Adds this histogram's values into `into` (saturating).
    pub fn add_to(&self, into: &mut HistogramValues) {
        for (acc, c) in into.counts.iter_mut().zip(&self.counts) {
            *acc = acc.saturating_add(c.load(Ordering::Relaxed));
        }
        into.sum_us = into
            .sum_us
            .saturating_add(self.sum_us.load(Ordering::Relaxed));
    }
}

/// A histogram's values copied out of shared memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramValues {
    /// Observations per bucket (not cumulative).
    pub counts: [u64; BUCKETS_US.len() + 1],
    /// Sum in microseconds.
    pub sum_us: u64,
}

impl HistogramValues {
    /// Cumulative counts, as Prometheus's `_bucket{le=…}` series (the last is `+Inf`).
    pub fn cumulative(&self) -> [u64; BUCKETS_US.len() + 1] {
        let mut out = [0; BUCKETS_US.len() + 1];
        let mut acc = 0u64;
        for (o, c) in out.iter_mut().zip(self.counts) {
            acc = acc.saturating_add(c);
            *o = acc;
        }
        out
    }
}

/// Why a daemon process exits, as it writes it into its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitReason {
    /// `maximum-requests` reached.
    MaximumRequests = 1,
    /// `restart-interval` reached.
    RestartInterval = 2,
    /// `inactivity-timeout` reached.
    Inactivity = 3,
    /// `memory-limit` exceeded.
    MemoryLimit = 4,
    /// `cpu-time-limit` exceeded.
    CpuTimeLimit = 5,
    /// A request exceeded `request-timeout` (or the GIL `deadlock-timeout`).
    RequestTimeout = 6,
    /// A script changed (script reloading, `reload-on-changes`).
    ScriptChanged = 7,
    /// A signal: SIGUSR1 eviction, or a stop the daemon was told of.
    Signal = 8,
}

impl ExitReason {
    /// Every reason, in label order.
    pub const ALL: [ExitReason; 8] = [
        ExitReason::MaximumRequests,
        ExitReason::RestartInterval,
        ExitReason::Inactivity,
        ExitReason::MemoryLimit,
        ExitReason::CpuTimeLimit,
        ExitReason::RequestTimeout,
        ExitReason::ScriptChanged,
        ExitReason::Signal,
    ];

    /// The reason a slot's word names; `None` for 0 or anything unknown.
    pub fn from_word(word: u32) -> Option<ExitReason> {
        ExitReason::ALL.into_iter().find(|r| *r as u32 == word)
    }

    /// mod_wsgi's `shutdown_reason` name → the reason (`None`: not a recycle we know).
    pub fn from_shutdown_reason(name: &str) -> Option<ExitReason> {
        Some(match name {
            "maximum_requests" => ExitReason::MaximumRequests,
            "restart_interval" => ExitReason::RestartInterval,
            "inactivity_timeout" => ExitReason::Inactivity,
            "memory_limit" => ExitReason::MemoryLimit,
            "cpu_time_limit" => ExitReason::CpuTimeLimit,
            "request_timeout" | "deadlock_timeout" => ExitReason::RequestTimeout,
            "script_reload" | "reload_on_changes" => ExitReason::ScriptChanged,
            "eviction_signal" => ExitReason::Signal,
            _ => return None,
        })
    }

    /// The `reason` label of `rswsgi_daemon_restarts_total`.
    pub fn label(self) -> &'static str {
        match self {
            ExitReason::MaximumRequests => "maximum-requests",
            ExitReason::RestartInterval => "restart-interval",
            ExitReason::Inactivity => "inactivity",
            ExitReason::MemoryLimit => "memory-limit",
            ExitReason::CpuTimeLimit => "cpu-time-limit",
            ExitReason::RequestTimeout => "request-timeout",
            ExitReason::ScriptChanged => "script-changed",
            ExitReason::Signal => "signal",
        }
    }
}

/// One daemon process's numbers.
#[repr(C)]
#[derive(Debug, Default)]
pub struct ProcSlot {
    /// The pid of the process holding the slot; 0 when free.
    pub pid: AtomicI32,
    /// Worker threads the process runs.
    pub threads: AtomicU32,
    /// Worker threads serving a request now.
    pub busy: AtomicU32,
    /// Why the process is exiting ([`ExitReason`] as a word); 0 while it serves.
    pub exit_reason: AtomicU32,
    /// Non-zero once the process listens (its start-up is over).
    pub listening: AtomicU32,
    /// Padding to 8 bytes.
    pub _pad: AtomicU32,
    /// Requests picked up since the slot was created (all its holders).
    pub requests: AtomicU64,
    /// Accept delay: from the request start (`RequestMeta`) to the daemon picking it up.
    pub queue_wait: Histogram,
}

/// Most daemon processes one group's area counts (a group may run more; the rest are not
/// counted): enough for `processes` of this group plus those retiring after a restart.
pub const PROC_SLOTS: usize = 256;

/// A daemon group's shared area: its process slots.
#[repr(C)]
#[derive(Debug)]
pub struct GroupArea {
    /// One slot per process.
    pub slots: [ProcSlot; PROC_SLOTS],
}

impl GroupArea {
    /// The memfd's size in bytes.
    pub const SIZE: usize = std::mem::size_of::<GroupArea>();

    /// Claims a free slot for `pid` (and its `threads`); `None` when every slot is taken.
    pub fn claim(&self, pid: i32, threads: u32) -> Option<&ProcSlot> {
        let slot = self.slots.iter().find(|s| {
            s.pid
                .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        slot.busy.store(0, Ordering::Relaxed);
        slot.exit_reason.store(0, Ordering::Relaxed);
        slot.listening.store(0, Ordering::Relaxed);
        slot.threads.store(threads, Ordering::Relaxed);
        Some(slot)
    }

    /// The slot `pid` holds, if any (for the parent, when the process has died).
    pub fn slot_of(&self, pid: i32) -> Option<&ProcSlot> {
        (pid > 0)
            .then(|| {
                self.slots
                    .iter()
                    .find(|s| s.pid.load(Ordering::Acquire) == pid)
            })
            .flatten()
    }
}

const _: () = assert!(GroupArea::SIZE.is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;

    fn area() -> Box<GroupArea> {
        // SAFETY-free: every field is an atomic integer, whose default is zero.
        Box::new(GroupArea {
            slots: std::array::from_fn(|_| ProcSlot::default()),
        })
    }

    #[test]
    fn histogram_buckets_and_cumulative_counts() {
        let h = Histogram::default();
        for us in [0, 1_000, 1_001, 40_000_000] {
            h.observe(us);
        }
        let mut v = HistogramValues::default();
        h.add_to(&mut v);
        assert_eq!(v.counts[0], 2);
        assert_eq!(v.counts[1], 1);
        assert_eq!(v.counts[BUCKETS_US.len()], 1);
        assert_eq!(v.sum_us, 40_002_001);
        let c = v.cumulative();
        assert_eq!((c[0], c[1], c[BUCKETS_US.len()]), (2, 3, 4));
        let mut max = HistogramValues {
            counts: [u64::MAX; BUCKETS_US.len() + 1],
            sum_us: u64::MAX,
        };
        h.add_to(&mut max);
        assert_eq!(max.cumulative()[BUCKETS_US.len()], u64::MAX);
    }

    #[test]
    fn slots_are_claimed_once_and_found_by_pid() {
        let a = area();
        let s = a.claim(10, 4).unwrap();
        assert_eq!(s.threads.load(Ordering::Relaxed), 4);
        assert!(std::ptr::eq(a.slot_of(10).unwrap(), s));
        assert!(a.slot_of(0).is_none() && a.slot_of(11).is_none());
        let t = a.claim(11, 1).unwrap();
        assert!(!std::ptr::eq(s, t));
        for pid in 12..(PROC_SLOTS as i32 + 10) {
            a.claim(pid, 1).unwrap();
        }
        assert!(a.claim(9999, 1).is_none());
    }

    #[test]
    fn reasons_round_trip_and_unknown_words_are_none() {
        for r in ExitReason::ALL {
            assert_eq!(ExitReason::from_word(r as u32), Some(r));
        }
        assert_eq!(ExitReason::from_word(0), None);
        assert_eq!(ExitReason::from_word(u32::MAX), None);
        assert_eq!(
            ExitReason::from_shutdown_reason("maximum_requests").map(ExitReason::label),
            Some("maximum-requests")
        );
        assert_eq!(ExitReason::from_shutdown_reason("other"), None);
    }
}

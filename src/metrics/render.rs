//! A snapshot of every group's numbers, read from the shared areas (all of it hostile where
//! a daemon writes it: pids checked, sums saturating), and its Prometheus text form
//! (exposition format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use rswsgi_protocol::stats::{ExitReason, HistogramValues, BUCKETS_US};

use super::area::{Cause, GroupCounters, CRASHED};
use super::{group, procfs, sockdiag, GroupStats};

/// One daemon process of a group, as seen now.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its pid.
    pub pid: i32,
    /// Resident bytes and CPU seconds.
    pub usage: Option<(u64, f64)>,
}

/// One group's numbers now.
pub struct Snapshot {
    /// The group's name.
    pub name: String,
    /// Live daemon processes holding a slot.
    pub processes: Vec<Process>,
    /// The group's configured `processes`.
    pub configured: u32,
    /// How many of them listen (their start-up is over).
    pub listening: u32,
    /// Worker threads serving a request, over the live processes.
    pub busy: u64,
    /// Worker threads of the live processes.
    pub threads: u64,
    /// Connections waiting in the listen queue now (`None`: the kernel did not say).
    pub queue: Option<u32>,
    /// Requests the daemons picked up (every slot, live or not).
    pub picked_up: u64,
    /// The accept delay.
    pub queue_wait: HistogramValues,
    /// The module-wide counters, if the group has an entry.
    pub counters: Option<&'static GroupCounters>,
    /// Pooled connections over the live Apache children: (idle, in use).
    pub pool: (u64, u64),
}

impl Snapshot {
    /// Idle worker threads.
    pub fn idle(&self) -> u64 {
        self.threads.saturating_sub(self.busy)
    }

    /// Why the group cannot serve, if it cannot: no daemon listening, or every thread busy
    /// with connections waiting.
    pub fn unhealthy(&self) -> Option<String> {
        if self.listening == 0 {
            return Some("no daemon process is listening".into());
        }
        if self.idle() == 0 && self.queue.unwrap_or(0) > 0 {
            return Some(format!(
                "saturated: all {} threads busy, {} connection(s) queued",
                self.threads,
                self.queue.unwrap_or(0)
            ));
        }
        None
    }
}

/// The snapshot of `g`; `parent` is httpd's parent pid, `usage` whether to read `/proc`.
pub fn snapshot(g: &GroupStats, parent: i32, usage: bool) -> Snapshot {
    let mut s = Snapshot {
        name: g.name.clone(),
        processes: Vec::new(),
        configured: g.processes,
        listening: 0,
        busy: 0,
        threads: 0,
        queue: sockdiag::listen_queue(g.socket_inode),
        picked_up: 0,
        queue_wait: HistogramValues::default(),
        counters: group(g.index),
        pool: (0, 0),
    };
    for slot in &g.daemons().slots {
        s.picked_up = s
            .picked_up
            .saturating_add(slot.requests.load(Ordering::Relaxed));
        slot.queue_wait.add_to(&mut s.queue_wait);
        let pid = slot.pid.load(Ordering::Relaxed);
        if pid <= 0 || !procfs::is_child_of(pid, parent) {
            continue;
        }
        // A hostile slot may claim any number of threads: never more than configured.
        let threads = u64::from(slot.threads.load(Ordering::Relaxed).min(g.threads));
        s.threads += threads;
        s.busy += u64::from(slot.busy.load(Ordering::Relaxed)).min(threads);
        s.listening += u32::from(slot.listening.load(Ordering::Relaxed) != 0);
        s.processes.push(Process {
            pid,
            usage: usage.then(|| procfs::usage(pid, parent)).flatten(),
        });
    }
    if let (Some(m), Some(i)) = (super::module(), g.index) {
        for c in &m.children {
            let pid = c.pid.load(Ordering::Relaxed);
            if pid > 0 && procfs::is_child_of(pid, parent) {
                s.pool.0 += u64::from(c.idle[i].load(Ordering::Relaxed));
                s.pool.1 += u64::from(c.in_use[i].load(Ordering::Relaxed));
            }
        }
    }
    s
}

/// A label value escaped for the text format (`\`, `"`, newline).
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
    }

    fn histogram(&mut self, name: &str, group: &str, h: &HistogramValues) {
        let cumulative = h.cumulative();
        for (i, count) in cumulative.iter().enumerate() {
            let le = BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |us| seconds(*us));
            self.sample(
                &format!("{name}_bucket"),
                &[("group", group), ("le", &le)],
                count,
            );
        }
        let total = cumulative[cumulative.len() - 1];
        self.sample(
            &format!("{name}_sum"),
            &[("group", group)],
            seconds(h.sum_us),
        );
        self.sample(&format!("{name}_count"), &[("group", group)], total);
    }
}

fn seconds(us: u64) -> String {
    format!("{}", us as f64 / 1e6)
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The Prometheus text of `groups`.
pub fn prometheus(groups: &[Snapshot]) -> String {
    let mut o = Out(String::new());
    type Gauge = fn(&Snapshot) -> Option<u64>;
    let gauges: [(&str, &str, Gauge); 4] = [
        (
            "rswsgi_processes_configured",
            "Daemon processes the group is configured to run.",
            |s| Some(u64::from(s.configured)),
        ),
        (
            "rswsgi_processes",
            "Live daemon processes of the group.",
            |s| Some(s.processes.len() as u64),
        ),
        (
            "rswsgi_processes_listening",
            "Daemon processes whose start-up is over.",
            |s| Some(u64::from(s.listening)),
        ),
        (
            "rswsgi_listen_queue_depth",
            "Connections waiting in the group's listen queue now.",
            |s| s.queue.map(u64::from),
        ),
    ];
    for (name, help, f) in gauges {
        o.family(name, "gauge", help);
        for s in groups {
            if let Some(v) = f(s) {
                o.sample(name, &[("group", &s.name)], v);
            }
        }
    }
    o.family(
        "rswsgi_threads",
        "gauge",
        "Worker threads of the live daemon processes, by state.",
    );
    for s in groups {
        o.sample(
            "rswsgi_threads",
            &[("group", &s.name), ("state", "busy")],
            s.busy,
        );
        o.sample(
            "rswsgi_threads",
            &[("group", &s.name), ("state", "idle")],
            s.idle(),
        );
    }
    o.family(
        "rswsgi_pool_connections",
        "gauge",
        "Pooled connections to the group over the live Apache children, by state.",
    );
    for s in groups {
        o.sample(
            "rswsgi_pool_connections",
            &[("group", &s.name), ("state", "idle")],
            s.pool.0,
        );
        o.sample(
            "rswsgi_pool_connections",
            &[("group", &s.name), ("state", "in_use")],
            s.pool.1,
        );
    }
    o.family(
        "rswsgi_daemon_requests_total",
        "counter",
        "Requests the group's daemons picked up.",
    );
    for s in groups {
        o.sample(
            "rswsgi_daemon_requests_total",
            &[("group", &s.name)],
            s.picked_up,
        );
    }
    o.family(
        "rswsgi_queue_wait_seconds",
        "histogram",
        "Accept delay: from Apache reading the request to a daemon picking it up.",
    );
    for s in groups {
        o.histogram("rswsgi_queue_wait_seconds", &s.name, &s.queue_wait);
    }
    process_usage(&mut o, groups);
    counters(&mut o, groups);
    o.0
}

fn process_usage(o: &mut Out, groups: &[Snapshot]) {
    o.family(
        "rswsgi_process_resident_memory_bytes",
        "gauge",
        "Resident memory of each daemon process.",
    );
    for s in groups {
        for p in &s.processes {
            if let Some((rss, _)) = p.usage {
                let pid = p.pid.to_string();
                o.sample(
                    "rswsgi_process_resident_memory_bytes",
                    &[("group", &s.name), ("pid", &pid)],
                    rss,
                );
            }
        }
    }
    o.family(
        "rswsgi_process_cpu_seconds_total",
        "counter",
        "CPU time (user and system) of each daemon process.",
    );
    for s in groups {
        for p in &s.processes {
            if let Some((_, cpu)) = p.usage {
                let pid = p.pid.to_string();
                o.sample(
                    "rswsgi_process_cpu_seconds_total",
                    &[("group", &s.name), ("pid", &pid)],
                    cpu,
                );
            }
        }
    }
}

fn counters(o: &mut Out, groups: &[Snapshot]) {
    let with: Vec<(&str, &GroupCounters)> = groups
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.counters?)))
        .collect();
    o.family(
        "rswsgi_requests_total",
        "counter",
        "Responses to requests relayed to the group, by status class.",
    );
    for (name, c) in &with {
        for (i, class) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .enumerate()
        {
            o.sample(
                "rswsgi_requests_total",
                &[("group", name), ("class", class)],
                load(&c.status[i]),
            );
        }
    }
    o.family(
        "rswsgi_request_duration_seconds",
        "histogram",
        "Time from sending the request to the daemon to the end of its response.",
    );
    for (name, c) in &with {
        let mut h = HistogramValues::default();
        c.duration.add_to(&mut h);
        o.histogram("rswsgi_request_duration_seconds", name, &h);
    }
    o.family(
        "rswsgi_daemon_restarts_total",
        "counter",
        "Daemon process restarts, by reason.",
    );
    for (name, c) in &with {
        for (i, r) in ExitReason::ALL.iter().enumerate() {
            o.sample(
                "rswsgi_daemon_restarts_total",
                &[("group", name), ("reason", r.label())],
                load(&c.restarts[i]),
            );
        }
        o.sample(
            "rswsgi_daemon_restarts_total",
            &[("group", name), ("reason", "crashed")],
            load(&c.restarts[CRASHED]),
        );
    }
    o.family(
        "rswsgi_responses_total",
        "counter",
        "502, 503 and 504 answers the module gave, by cause.",
    );
    for (name, c) in &with {
        for (i, cause) in Cause::ALL.iter().enumerate() {
            let code = cause.code().to_string();
            o.sample(
                "rswsgi_responses_total",
                &[("group", name), ("code", &code), ("cause", cause.label())],
                load(&c.causes[i]),
            );
        }
    }
    type Counter = fn(&GroupCounters) -> &std::sync::atomic::AtomicU64;
    let plain: [(&str, &str, Counter); 6] = [
        (
            "rswsgi_request_bytes_total",
            "Request body bytes read from clients.",
            |c| &c.bytes_in,
        ),
        (
            "rswsgi_response_bytes_total",
            "Response body bytes passed to Apache.",
            |c| &c.bytes_out,
        ),
        (
            "rswsgi_bodyfile_responses_total",
            "Responses sent from a file descriptor (BodyFile, zero-copy).",
            |c| &c.body_files,
        ),
        (
            "rswsgi_connects_total",
            "New connections opened to the group's daemons.",
            |c| &c.connects,
        ),
        (
            "rswsgi_retries_total",
            "Requests sent again on another connection (the daemon never read them).",
            |c| &c.retries,
        ),
        (
            "rswsgi_connect_failures_total",
            "Requests no daemon accepted within connect-timeout.",
            |c| &c.connect_failures,
        ),
    ];
    for (metric, help, f) in plain {
        o.family(metric, "counter", help);
        for (name, c) in &with {
            o.sample(metric, &[("group", name)], load(f(c)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group area a daemon filled with garbage: every pid, count and reason word is some
    /// byte pattern. Reading it neither panics nor believes more threads than configured.
    #[test]
    fn a_garbage_group_area_only_makes_numbers_wrong() {
        use rswsgi_protocol::stats::GroupArea;
        use std::io::Write;
        for byte in [0xffu8, 0x7f, 0x01] {
            let area = super::super::area::Mapping::create("garbage", GroupArea::SIZE).unwrap();
            let mut file = std::fs::File::from(area.fd.try_clone().unwrap());
            file.write_all(&vec![byte; GroupArea::SIZE]).unwrap();
            // Some slots name this very process, a live process but not a daemon.
            area.get::<GroupArea>().slots[3]
                .pid
                .store(std::process::id() as i32, Ordering::Relaxed);
            let g = GroupStats {
                name: "g\"x".into(),
                area,
                index: None,
                socket_inode: u64::MAX,
                processes: 2,
                threads: 4,
            };
            let parent = nix::unistd::getppid().as_raw();
            let s = snapshot(&g, parent, true);
            assert!(s.threads <= 4 * s.processes.len() as u64);
            assert!(s.busy <= s.threads);
            let text = prometheus(&[s]);
            assert!(text.contains("rswsgi_threads{group=\"g\\\"x\",state=\"busy\"}"));
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = Out(String::new());
        o.sample("m", &[("group", "x\"y")], 1);
        assert_eq!(o.0, "m{group=\"x\\\"y\"} 1\n");
    }

    #[test]
    fn histograms_are_cumulative_with_inf() {
        let mut h = HistogramValues::default();
        h.counts[0] = 2;
        h.counts[BUCKETS_US.len()] = 1;
        h.sum_us = 1_500_000;
        let mut o = Out(String::new());
        o.histogram("h", "g", &h);
        assert!(o.0.contains("h_bucket{group=\"g\",le=\"0.001\"} 2\n"));
        assert!(o.0.contains("h_bucket{group=\"g\",le=\"+Inf\"} 3\n"));
        assert!(o.0.contains("h_sum{group=\"g\"} 1.5\n"));
        assert!(o.0.contains("h_count{group=\"g\"} 3\n"));
    }
}

//! The daemon groups' section of mod_status's `/server-status` (with `ExtendedStatus On`):
//! an HTML table per group, or `RswsgiGroup-NAME-KEY: value` lines for `?auto`.

use std::fmt::Write;

use super::render::Snapshot;

/// mod_status.h's `AP_STATUS_SHORT`: the `?auto` (machine-readable) form was asked for.
pub const STATUS_SHORT: i32 = 0x1;

/// Text escaped for HTML.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A group name as part of an `?auto` key: characters other than letters, digits, `-`, `_`
/// and `.` become `_`, so the key holds no `:` or space.
fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The rows shown for a group: (auto key, HTML label, value).
fn rows(s: &Snapshot) -> Vec<(&'static str, &'static str, String)> {
    let restarts = s.counters.map_or(0u64, |c| {
        c.restarts
            .iter()
            .map(|r| r.load(std::sync::atomic::Ordering::Relaxed))
            .fold(0, u64::saturating_add)
    });
    vec![
        ("Processes", "Processes", s.processes.len().to_string()),
        (
            "ProcessesConfigured",
            "Configured processes",
            s.configured.to_string(),
        ),
        ("BusyThreads", "Busy threads", s.busy.to_string()),
        ("IdleThreads", "Idle threads", s.idle().to_string()),
        (
            "Queue",
            "Listen queue",
            s.queue.map_or_else(|| "?".into(), |q| q.to_string()),
        ),
        ("Requests", "Requests picked up", s.picked_up.to_string()),
        ("Restarts", "Restarts", restarts.to_string()),
    ]
}

/// The section for `groups`; `flags` are mod_status's.
pub fn section(groups: &[Snapshot], flags: i32) -> String {
    let mut out = String::new();
    if flags & STATUS_SHORT != 0 {
        for s in groups {
            for (k, _, v) in rows(s) {
                let _ = writeln!(out, "RswsgiGroup-{}-{k}: {v}", key(&s.name));
            }
        }
        return out;
    }
    out.push_str("<hr />\n<h2>rswsgi daemon groups</h2>\n");
    for s in groups {
        let _ = writeln!(
            out,
            "<h3>Group {}</h3>\n<table border=\"0\">",
            html(&s.name)
        );
        for (_, label, v) in rows(s) {
            let _ = writeln!(
                out,
                "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
                html(&v)
            );
        }
        out.push_str("</table>\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_html_and_keys() {
        assert_eq!(html("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
        assert_eq!(key("localhost:8000 x"), "localhost_8000_x");
    }
}

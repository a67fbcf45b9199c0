//! What `/proc` says about a process: its parent, resident memory and CPU time. Every pid
//! here comes from shared memory a daemon can write, so it is only looked at when it is a
//! child of httpd's parent (the daemons and Apache's children are).

/// The fields of `/proc/PID/stat` after the command name.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` is alive and a child of `parent`.
pub fn is_child_of(pid: i32, parent: i32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.get(1)?.parse::<i32>().ok())
        .is_some_and(|ppid| ppid == parent)
}

/// Resident bytes and CPU seconds (user + system) of `pid`, if it is a child of `parent`.
pub fn usage(pid: i32, parent: i32) -> Option<(u64, f64)> {
    let f = stat_fields(pid)?;
    if f.get(1)?.parse::<i32>().ok()? != parent {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    // Fields after the name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21).
    let ticks = (f.get(11)?.parse::<u64>().ok()?).saturating_add(f.get(12)?.parse::<u64>().ok()?);
    let rss = f.get(21)?.parse::<u64>().ok()?.saturating_mul(page);
    Some((rss, ticks as f64 / tick))
}

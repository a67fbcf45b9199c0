//! `check_config`: every daemon group's python-home must be one for the daemon's Python.
//!
//! The daemon binary knows its Python version (the libpython it is linked with), so the
//! module asks it: `rswsgi-daemon --check-python-home DIR` exits 0, or prints one line
//! naming the home and both versions. It runs as the group's user (with exactly that user's
//! groups) when httpd is root, so it reads the home with the daemons' rights and the daemon
//! binary never runs as root. A refused home stops httpd (and `apachectl -t`) with that line,
//! instead of daemons that die with CPython's fatal error at every restart, or a
//! virtualenv whose packages are never found.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::config::{DaemonGroupConfig, ServerConfig};
use crate::supervisor::daemon_credentials;

/// Checks the python-home of every daemon group (its own, else `WSGIPythonHome`), except
/// groups that serve only native handlers. A missing daemon binary is left to
/// `post_config`, which names it.
pub fn check(configs: &[&ServerConfig]) -> Result<(), String> {
    let Some(main) = configs.first() else {
        return Ok(());
    };
    let exe = crate::dispatch::daemon_executable(main.daemon_executable.as_deref());
    if !Path::new(&exe).is_file() {
        return Ok(());
    }
    for c in configs {
        for (g, at) in &c.groups {
            let Some(home) = g.python_home.as_ref().or(main.python_home.as_ref()) else {
                continue;
            };
            if serves_only_native(configs, g) {
                continue;
            }
            check_group(&exe, g, home)
                .map_err(|e| format!("WSGIDaemonProcess {} at {at}: {e}", g.name))?;
        }
    }
    Ok(())
}

/// Whether every script mounted on `g` is a native handler library (no Python).
fn serves_only_native(configs: &[&ServerConfig], g: &DaemonGroupConfig) -> bool {
    let mut scripts = configs
        .iter()
        .flat_map(|c| c.aliases.iter())
        .filter(|a| a.process_group.as_deref() == Some(g.name.as_str()))
        .peekable();
    scripts.peek().is_some() && scripts.all(|a| a.script.ends_with(".so"))
}

/// Runs the daemon's check of `home` as the group's user.
fn check_group(exe: &str, g: &DaemonGroupConfig, home: &str) -> Result<(), String> {
    let creds = if nix::unistd::geteuid().is_root() {
        daemon_credentials(g)?
    } else {
        None
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--check-python-home")
        .arg(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let ids = creds.map(|c| {
        let groups: Vec<libc::gid_t> = c.groups.iter().map(|g| g.as_raw()).collect();
        (c.uid.as_raw(), c.gid.as_raw(), groups)
    });
    // SAFETY: the closure runs in the forked child before exec and makes only
    // async-signal-safe system calls on memory prepared before the fork: it marks httpd's
    // descriptors (listeners, logs) close-on-exec, then drops to the group's identity; a
    // failed drop fails the spawn.
    unsafe {
        cmd.pre_exec(move || {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if let Some((uid, gid, groups)) = &ids {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {exe} to check python-home {home}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Err(match text.lines().find(|l| !l.trim().is_empty()) {
        Some(line) => line.trim().to_string(),
        None => format!("{exe} --check-python-home {home} failed ({})", out.status),
    })
}

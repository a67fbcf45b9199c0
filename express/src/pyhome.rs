//! Refusing a python-home that does not fit the daemon's Python before anything starts.
//!
//! The daemon binary is the one source of truth for its Python version (the libpython it
//! is linked with), so express asks it: `rswsgi-daemon --check-python-home DIR` exits 0, or
//! prints one line naming the home and both versions and exits 1.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::access::Identity;

/// Runs `daemon --check-python-home home`, as `who` when given (root runs it as the user
/// the daemons will run as, with exactly that user's groups, so the home is read with
/// their rights and the daemon binary never runs as root). Fails with the daemon's line.
pub fn check_python_home(daemon: &Path, home: &Path, who: Option<&Identity>) -> Result<()> {
    let mut cmd = Command::new(daemon);
    cmd.arg("--check-python-home")
        .arg(home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(who) = who {
        let (uid, gid) = (who.uid, who.gid);
        let groups: Vec<libc::gid_t> = who.groups.clone();
        // SAFETY: the closure runs in the forked child before exec and makes only
        // async-signal-safe system calls (setgroups, setgid, setuid) on memory prepared
        // before the fork; each failure fails the spawn.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.output().with_context(|| {
        format!(
            "running {} --check-python-home {}",
            daemon.display(),
            home.display()
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    match text.lines().find(|l| !l.trim().is_empty()) {
        Some(line) => bail!("{}", line.trim()),
        None => bail!(
            "{} --check-python-home {} failed ({})",
            daemon.display(),
            home.display(),
            out.status
        ),
    }
}

//! Running httpd in the foreground: port check, spawn, signal forwarding, clean exit.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, SigSet, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::root::ServerRoot;
use crate::startup::{tell, wait_for_load, LoadOutcome, LogSource};

/// Fails with "port N on HOST is already in use" when something listens there.
/// (It binds the address itself and lets go at once, as httpd will bind it next.)
pub fn check_port(host: &str, port: u16) -> Result<()> {
    let addrs = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve host {host}"))?;
    let mut bound = false;
    let mut last_error = None;
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(_) => bound = true,
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                bail!("port {port} on {host} is already in use")
            }
            // `localhost` may also resolve to ::1 on a host without IPv6: httpd copes.
            Err(e) => last_error = Some(e),
        }
    }
    match (bound, last_error) {
        (false, Some(e)) => bail!("cannot listen on port {port} on {host}: {e}"),
        (false, None) => bail!("host {host} resolves to no address"),
        _ => Ok(()),
    }
}

/// glibc's limit on malloc arenas for httpd and the daemons, unless the environment sets one:
/// with an arena per thread, memory freed by Apache's many relay threads and the daemons'
/// workers stays resident (about 5 MiB more per Apache child after large responses, in the
/// benchmark), for no measurable speed.
pub const MALLOC_ARENA_MAX: (&str, &str) = ("MALLOC_ARENA_MAX", "2");

/// `httpd -f <root>/httpd.conf -DFOREGROUND`, set up to run in its own process group
/// (so a terminal's Ctrl-C or SIGWINCH reaches only `express`, which decides what
/// httpd gets) and to receive SIGTERM if the thread that spawns it dies
/// (`PR_SET_PDEATHSIG`): spawn it from a thread that outlives it. Standard input is
/// `/dev/null`; the caller may redirect the other streams. `MALLOC_ARENA_MAX` is set (see
/// [`MALLOC_ARENA_MAX`]). With a start-up log, httpd gets `-E <startup log>`. With
/// `--process-name`, httpd runs under that `argv[0]`; with `--envvars-script`, it gets the
/// environment the script leaves (see [`envvars_environment`]), and then the variables of
/// [`crate::ServerConfig::process_environment`] (`--setenv`, `--python-eggs`).
pub fn httpd_command(root: &ServerRoot) -> Result<Command> {
    let parent = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut cmd = Command::new(&root.httpd);
    let process = &root.config.process;
    if let Some(name) = &process.process_name {
        cmd.arg0(name);
    }
    if let Some(script) = &process.envvars_script {
        cmd.env_clear().envs(envvars_environment(script)?);
    }
    cmd.envs(root.config.process_environment());
    cmd.arg("-f").arg(&root.httpd_conf);
    if let Some(log) = &root.startup_log {
        cmd.arg("-E").arg(log);
    }
    cmd.arg("-DFOREGROUND")
        .current_dir(&root.dir)
        .stdin(Stdio::null())
        .process_group(0);
    if std::env::var_os(MALLOC_ARENA_MAX.0).is_none() {
        cmd.env(MALLOC_ARENA_MAX.0, MALLOC_ARENA_MAX.1);
    }
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, sigemptyset, pthread_sigmask, getppid, raise).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // The parent may have died between fork and prctl: then nobody is left to stop us.
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// The environment `script` leaves when `/bin/sh` sources it (mod_wsgi-express's
/// `envvars`, which its `apachectl` sources before starting httpd): the current environment
/// with the script's exports. A script that fails is an error naming it, with its output.
pub fn envvars_environment(script: &std::path::Path) -> Result<Vec<(OsString, OsString)>> {
    let out = Command::new("/bin/sh")
        .args(["-c", ". \"$1\" >&2 && exec env -0", "envvars"])
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running /bin/sh for --envvars-script {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "--envvars-script {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out
        .stdout
        .split(|&b| b == 0)
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((
                OsString::from_vec(pair[..eq].to_vec()),
                OsString::from_vec(pair[eq + 1..].to_vec()),
            ))
        })
        .collect())
}

/// Spawns [`httpd_command`] with the caller's standard output and error.
pub fn start_httpd(root: &ServerRoot) -> Result<Child> {
    httpd_command(root)?
        .spawn()
        .with_context(|| format!("starting {}", root.httpd.display()))
}

/// Whether any process is left in process group `pgid`.
fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}

/// How a foreground run ended.
#[derive(Debug)]
pub struct Finished {
    /// httpd's exit status.
    pub status: ExitStatus,
    /// How the daemons' first load of the script went.
    pub load: LoadOutcome,
    /// Whether express stopped httpd because of it.
    pub stopped_for_load_error: bool,
}

impl Finished {
    /// The exit code `express` ends with: 1 when it stopped httpd for a load error, else
    /// httpd's (see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        if self.stopped_for_load_error {
            1
        } else {
            exit_code(self.status)
        }
    }
}

/// Runs httpd in the foreground until it exits, forwarding SIGINT, SIGTERM and SIGHUP
/// to it as SIGTERM (stop: the module's cleanup then stops the daemons).
///
/// First it waits (at most `load_wait`) for the daemons' first load of the script (see
/// [`crate::startup`]); when that fails it says why and, unless the configuration keeps
/// serving on a load error, stops httpd. With the error log on the terminal, httpd's
/// standard error passes through express for this. Anything left in httpd's process group
/// after it exits (which would be a bug) is reported on standard error and killed, so
/// nothing outlives `express`. Call it from the main thread.
pub fn run_foreground(root: &ServerRoot) -> Result<Finished> {
    let mut forwarded = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        forwarded.add(sig);
    }
    // Blocked before the spawn so that no signal is lost in between; the signal
    // thread below takes them with sigwait.
    forwarded.thread_block().context("blocking signals")?;
    // Only what the daemons write from now on counts.
    let file_source = root
        .error_log
        .as_deref()
        .map(LogSource::from_end_of)
        .transpose()?;
    let mut cmd = httpd_command(root)?;
    if file_source.is_none() {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", root.httpd.display()))?;
    let pid = Pid::from_raw(i32::try_from(child.id()).context("httpd pid")?);
    // (An error from here on ends express, and with it httpd: `PR_SET_PDEATHSIG`.)
    let (source, relay) = match file_source {
        Some(source) => (source, None),
        None => {
            let Some(stderr) = child.stderr.take() else {
                bail!("httpd's standard error was not piped");
            };
            let (source, thread) = LogSource::relay(stderr)?;
            (source, Some(thread))
        }
    };
    let exited = Arc::new(Mutex::new(false));
    {
        let exited = Arc::clone(&exited);
        thread::spawn(move || loop {
            let Ok(sig) = forwarded.wait() else { return };
            let done = exited.lock().unwrap_or_else(|e| e.into_inner());
            if *done {
                return;
            }
            // Signal first: the log line may not be writable (standard error gone), and
            // httpd must stop either way.
            let _ = kill(pid, Signal::SIGTERM);
            crate::errln!("express: received {sig}, stopping httpd (pid {pid})");
        });
    }
    let (load, stopped_for_load_error) = watch_load(root, source, pid);
    // Wait without reaping, so httpd's pid cannot be reused while the signal thread
    // may still send to it; then mark it gone and reap.
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for httpd"),
        }
    }
    *exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let status = child.wait().context("reaping httpd")?;
    sweep_group(pid, Duration::from_secs(5));
    if let Some(relay) = relay {
        // The relay ends when the last writer of httpd's standard error is gone; a second
        // is plenty for the last lines, and a leftover writer must not hold express up.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !relay.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
    if load == LoadOutcome::HttpdExited && !status.success() {
        if let Some(log) = root
            .startup_log
            .as_ref()
            .filter(|l| l.starts_with(&root.dir))
        {
            crate::errln!(
                "express: httpd exited during start-up ({status}); its messages are in {}",
                log.display()
            );
        }
    }
    Ok(Finished {
        status,
        load,
        stopped_for_load_error,
    })
}

/// Waits for the daemons' first load (see [`wait_for_load`]), says how it went, and stops
/// httpd (SIGTERM) when it failed and the configuration does not keep serving. Returns the
/// outcome and whether httpd was stopped for it. httpd has not been reaped yet, so `pid`
/// is still its.
fn watch_load(root: &ServerRoot, mut source: LogSource, pid: Pid) -> (LoadOutcome, bool) {
    let c = &root.config;
    let bound = Duration::from_secs(c.load_wait);
    let outcome = wait_for_load(&mut source, c.processes, bound, || {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        !matches!(
            waitid(Id::Pid(pid), flags),
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR)
        )
    });
    // The relay keeps copying lines; the reports it finds from now on are dropped.
    drop(source);
    let stop = tell(&outcome, root);
    if stop {
        let _ = kill(pid, Signal::SIGTERM);
    }
    (outcome, stop)
}

/// Waits up to `grace` for httpd's process group to empty, then kills what is left.
fn sweep_group(pgid: Pid, grace: Duration) {
    let deadline = Instant::now() + grace;
    while group_alive(pgid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    if group_alive(pgid) {
        crate::errln!("express: processes of httpd's group {pgid} outlived it; killing them");
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

/// The exit code `express` should end with for httpd's `status`.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_in_use_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_port("127.0.0.1", port).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("port {port} on 127.0.0.1 is already in use")
        );
        drop(listener);
        // A free port passes. Another process may take a freed port at any moment, so a
        // failure is tried again with a fresh one, a few times.
        let free = (0..5).any(|_| {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            check_port("127.0.0.1", port).is_ok()
        });
        assert!(free, "no free port was accepted in five tries");
    }
}

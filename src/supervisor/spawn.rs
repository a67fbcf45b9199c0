//! Starting one daemon process: everything is prepared in the parent, so the child between
//! `fork` and `exec` only makes system calls (no allocation, no locks).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::time::Duration;

use nix::unistd::{Gid, Uid};
use rswsgi_protocol::daemon_spec::{LISTEN_FD, SECRET_FD, STATS_FD};

/// The identity a daemon switches to before exec.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user name, for messages.
    pub user: String,
    /// Target uid.
    pub uid: Uid,
    /// Target gid.
    pub gid: Gid,
    /// Exactly the user's supplementary groups (never root's).
    pub groups: Vec<Gid>,
}

/// What is needed to exec a daemon, built once per group in the parent.
pub struct LaunchSpec {
    exe: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// `None` when httpd does not run as root: the daemon keeps httpd's identity.
    pub creds: Option<Credentials>,
    /// The daemon's umask (`umask=`), else httpd's.
    pub umask: Option<u32>,
    /// `virtual-memory-limit=`: `RLIMIT_AS` in bytes.
    pub address_space_limit: Option<u64>,
    /// `cpu-priority=`: the nice value, set while still privileged (so it may be negative).
    pub nice: Option<i32>,
}

impl LaunchSpec {
    /// Prepares the exec of `exe` with `argv` (`argv[0]` included) and `env` (`NAME=value`).
    pub fn new(
        exe: &str,
        argv: &[String],
        env: &[String],
        creds: Option<Credentials>,
        umask: Option<u32>,
    ) -> Result<Self, String> {
        let c = |s: &str| CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"));
        Ok(LaunchSpec {
            exe: c(exe)?,
            argv: argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
            env: env.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
            creds,
            umask,
            address_space_limit: None,
            nice: None,
        })
    }
}

/// Forks a daemon. The child moves `listen_fd` to fd 3 ([`LISTEN_FD`]), puts a pipe holding
/// `secret` at fd 4 ([`SECRET_FD`]), the group's statistics memfd `stats_fd` (if any) at fd 5
/// ([`STATS_FD`]), drops privileges, arranges to die with `parent_pid`, waits `delay`, and
/// execs. Returns the child's pid.
pub fn spawn(
    spec: &LaunchSpec,
    (listen_fd, stats_fd): (RawFd, Option<RawFd>),
    secret: &rswsgi_protocol::Secret,
    parent_pid: i32,
    delay: Duration,
) -> Result<i32, String> {
    let argv: Vec<*const c_char> = spec
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const c_char> = spec
        .env
        .iter()
        .map(|a| a.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let groups: Vec<libc::gid_t> = spec
        .creds
        .as_ref()
        .map(|c| c.groups.iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    // SAFETY: fork in httpd's parent, which runs its hooks on one thread; the child below only
    // makes async-signal-safe system calls on memory prepared before the fork, then execs or
    // _exits.
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork failed: {}", std::io::Error::last_os_error())),
        0 => {
            // SAFETY: runs in the forked child only; see `child`.
            unsafe {
                child(
                    spec,
                    &argv,
                    &envp,
                    &groups,
                    (listen_fd, stats_fd, secret.as_bytes()),
                    parent_pid,
                    delay,
                )
            }
        }
        pid => Ok(pid),
    }
}

/// Writes `msg` and errno to stderr (Apache's error log) and exits without serving.
fn fail(msg: &[u8]) -> ! {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut buf = [0u8; 16];
    let mut n = errno.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    let prefix = b"[rswsgi:emerg] daemon process not started: ";
    // SAFETY: write(2) and _exit(2) are async-signal-safe; buffers are valid for their lengths.
    unsafe {
        libc::write(2, prefix.as_ptr().cast(), prefix.len());
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::write(2, b" (errno ".as_ptr().cast(), 8);
        libc::write(2, buf[i..].as_ptr().cast(), buf.len() - i);
        libc::write(2, b")\n".as_ptr().cast(), 2);
        libc::_exit(126)
    }
}

/// The forked child.
///
/// # Safety
/// Call only in a freshly forked child of a single-threaded parent; pointers must come from
/// `spawn`, which keeps them alive.
unsafe fn child(
    spec: &LaunchSpec,
    argv: &[*const c_char],
    envp: &[*const c_char],
    groups: &[libc::gid_t],
    (listen_fd, stats_fd, secret): (
        RawFd,
        Option<RawFd>,
        &[u8; rswsgi_protocol::auth::SECRET_LEN],
    ),
    parent_pid: i32,
    delay: Duration,
) -> ! {
    // SAFETY: plain system calls on valid arguments in the child process; each result is
    // checked and a failure ends the child through `fail` before it could serve.
    unsafe {
        // Unblock and reset the signals httpd's parent handles, so the daemon starts clean.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGCHLD,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
        if listen_fd == LISTEN_FD {
            if libc::fcntl(LISTEN_FD, libc::F_SETFD, 0) != 0 {
                fail(b"fcntl on the listening socket failed");
            }
        } else if libc::dup2(listen_fd, LISTEN_FD) != LISTEN_FD {
            fail(b"dup2 of the listening socket failed");
        }
        // The statistics memfd (created above fd 10, so the moves here never overwrite it)
        // goes to fd 5 before the secret's pipe is made, which then cannot land there.
        if let Some(fd) = stats_fd {
            if libc::dup2(fd, STATS_FD) != STATS_FD {
                fail(b"dup2 of the statistics area failed");
            }
        }
        pass_secret(secret);
        // Everything else httpd had open closes at exec (fd 5 too, when it is not the area).
        let first = if stats_fd.is_some() {
            STATS_FD
        } else {
            SECRET_FD
        } + 1;
        if libc::syscall(
            libc::SYS_close_range,
            first as u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            for fd in first..4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        if let Some(n) = spec.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, n) != 0 {
                fail(b"setpriority (cpu-priority=) failed");
            }
        }
        if let Some(bytes) = spec.address_space_limit {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                fail(b"setrlimit(RLIMIT_AS) (virtual-memory-limit=) failed");
            }
        }
        if let Some(c) = &spec.creds {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                fail(b"setgroups failed");
            }
            if libc::setgid(c.gid.as_raw()) != 0 {
                fail(b"setgid failed");
            }
            if libc::setuid(c.uid.as_raw()) != 0 {
                fail(b"setuid failed");
            }
            if libc::getuid() != c.uid.as_raw()
                || libc::geteuid() != c.uid.as_raw()
                || libc::getgid() != c.gid.as_raw()
                || libc::getegid() != c.gid.as_raw()
            {
                fail(b"identity after setuid/setgid is not the configured one");
            }
            if c.uid.as_raw() != 0 && libc::setuid(0) == 0 {
                fail(b"setuid(0) succeeded after dropping privileges");
            }
        }
        if let Some(mask) = spec.umask {
            libc::umask(mask as libc::mode_t);
        }
        // Die with httpd's parent; credentials changes clear this setting, so set it after them.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(b"prctl(PR_SET_PDEATHSIG) failed");
        }
        if libc::getppid() != parent_pid {
            fail(b"httpd's parent exited before the daemon started");
        }
        // A restart back-off is waited out here, after the drop and with the parent-death
        // signal set, so nothing sleeps as root and nothing outlives httpd's parent.
        if !delay.is_zero() {
            let ts = libc::timespec {
                tv_sec: delay.as_secs() as libc::time_t,
                tv_nsec: delay.subsec_nanos() as _,
            };
            libc::nanosleep(&ts, std::ptr::null_mut());
            if libc::getppid() != parent_pid {
                fail(b"httpd's parent exited while the daemon waited to restart");
            }
        }
        libc::execve(spec.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(b"exec of rswsgi-daemon failed (check RSWSGIDaemonExecutable and that the daemon user can read it)")
    }
}

/// Puts a pipe holding `secret` at fd 4 for the daemon to read (32 bytes fit in any pipe's
/// buffer, so the write cannot block), keeping it out of argv and the environment.
///
/// # Safety
/// Call only in the forked child, after the listening socket is at fd 3.
unsafe fn pass_secret(secret: &[u8]) {
    let mut pipe = [-1; 2];
    // SAFETY: pipe2/write/dup2/fcntl/close are async-signal-safe system calls on valid
    // arguments; a failure ends the child through `fail`.
    unsafe {
        if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            fail(b"pipe for the connection secret failed");
        }
        if libc::write(pipe[1], secret.as_ptr().cast(), secret.len()) != secret.len() as isize {
            fail(b"writing the connection secret failed");
        }
        libc::close(pipe[1]);
        if pipe[0] == SECRET_FD {
            if libc::fcntl(SECRET_FD, libc::F_SETFD, 0) != 0 {
                fail(b"fcntl on the secret pipe failed");
            }
        } else {
            if libc::dup2(pipe[0], SECRET_FD) != SECRET_FD {
                fail(b"dup2 of the secret pipe failed");
            }
            libc::close(pipe[0]);
        }
    }
}

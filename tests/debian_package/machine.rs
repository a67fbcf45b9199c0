//! The system state the packaging test changes, and how it is put back: the package and
//! Debian's mod_wsgi (installed by apt), the stock Apache it starts, the site it enables and
//! `/etc/apache2/ports.conf`, swapped for one that listens on a loopback port only, so the
//! stock Apache never binds port 80. Every change is recorded before it is made, and `Drop`
//! (which also runs while a failed assertion unwinds) undoes whatever is still recorded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::common::procs;

pub const PACKAGE: &str = "libapache2-mod-rswsgi";
pub const MOD_WSGI: &str = "libapache2-mod-wsgi-py3";
pub const PORTS_CONF: &str = "/etc/apache2/ports.conf";
/// Where the stock `ports.conf` waits while the test's is in place. A run that was killed
/// leaves it behind; the next run puts it back first.
pub const PORTS_BACKUP: &str = "/etc/apache2/ports.conf.rswsgi-test-saved";
/// Debian's `APACHE_PID_FILE` (from /etc/apache2/envvars).
pub const PID_FILE: &str = "/var/run/apache2/apache2.pid";
pub const DAEMON: &str = "/usr/lib/rswsgi/rswsgi-daemon";

/// Runs `program args` under coreutils' `timeout` (SIGTERM after `secs`, SIGKILL 5 s later),
/// with apt and dpkg non-interactive.
pub fn run(secs: u64, program: &str, args: &[&str]) -> Output {
    try_run(secs, program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run`] that never panics (for the clean-up, which may run while a panic unwinds).
pub fn try_run(secs: u64, program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new("timeout")
        .arg("-k5")
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("running {program}: {e}"))
}

/// Runs the command; `Err` with its output unless it succeeds.
pub fn try_check(secs: u64, program: &str, args: &[&str]) -> Result<String, String> {
    let out = try_run(secs, program, args)?;
    if !out.status.success() {
        return Err(format!("{program} {}: {}", args.join(" "), describe(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `out`'s status, standard output and standard error as one text for messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the command and panics with its output unless it succeeds; returns its stdout.
pub fn check(secs: u64, program: &str, args: &[&str]) -> String {
    try_check(secs, program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether dpkg has `package` installed.
pub fn installed(package: &str) -> bool {
    let out = run(30, "dpkg-query", &["-W", "-f=${Status}", package]);
    String::from_utf8_lossy(&out.stdout).contains("install ok installed")
}

/// The pid in Debian's Apache pid file, when that process is alive.
pub fn stock_apache_pid() -> Option<i32> {
    let pid = fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()?;
    procs::alive(pid).then_some(pid)
}

/// What the test has changed and not yet put back.
#[derive(Default)]
pub struct Machine {
    /// The package is installed (by the test).
    pub package: bool,
    /// Debian's mod_wsgi was installed by the test (so the test removes it).
    pub mod_wsgi: bool,
    /// `a2enmod wsgi` was run by the test.
    pub wsgi_enabled: bool,
    /// The site file the test wrote in sites-available (and enabled).
    pub site: Option<PathBuf>,
    /// The test's ports.conf is in place, the stock one in [`PORTS_BACKUP`].
    pub ports_swapped: bool,
    /// The stock Apache's parent, started by the test.
    pub apache: Option<i32>,
    /// `rswsgi-express start-server`, started by the test.
    pub express: Option<Child>,
}

impl Machine {
    /// Puts back a `ports.conf` a killed run left aside.
    pub fn recover_ports_conf() {
        if Path::new(PORTS_BACKUP).exists() {
            eprintln!("restoring {PORTS_CONF} from {PORTS_BACKUP} (left by an earlier run)");
            fs::rename(PORTS_BACKUP, PORTS_CONF).expect("restoring ports.conf");
        }
    }

    /// Sets the stock `ports.conf` aside and writes one with only `Listen 127.0.0.1:PORT`.
    pub fn swap_ports_conf(&mut self, port: u16) {
        fs::copy(PORTS_CONF, PORTS_BACKUP).expect("saving ports.conf");
        self.ports_swapped = true;
        let text = format!(
            "# Written by rswsgi's tests/debian_package.rs; the stock file is {PORTS_BACKUP}\n\
             Listen 127.0.0.1:{port}\n"
        );
        fs::write(PORTS_CONF, text).expect("writing the test's ports.conf");
    }

    pub fn restore_ports_conf(&mut self) -> Result<(), String> {
        if self.ports_swapped {
            fs::rename(PORTS_BACKUP, PORTS_CONF)
                .map_err(|e| format!("restoring {PORTS_CONF} from {PORTS_BACKUP}: {e}"))?;
            self.ports_swapped = false;
        }
        Ok(())
    }

    /// `apache2ctl start`, then the parent's pid from the pid file (within 30 s).
    pub fn start_apache(&mut self) -> i32 {
        assert!(
            stock_apache_pid().is_none(),
            "the stock Apache is already running"
        );
        let out = run(60, "apache2ctl", &["start"]);
        let mut pid = None;
        if out.status.success() {
            procs::wait_until(Duration::from_secs(30), || {
                pid = stock_apache_pid();
                pid.is_some()
            });
        }
        self.apache = pid.or_else(stock_apache_pid);
        match self.apache {
            Some(pid) if out.status.success() => pid,
            _ => panic!(
                "apache2ctl start: no live pid in {PID_FILE}: {}",
                describe(&out)
            ),
        }
    }

    /// `apache2ctl stop`; waits (30 s) for the parent to go, then SIGKILLs it if it has not.
    pub fn stop_apache(&mut self) -> Result<(), String> {
        let Some(pid) = self.apache.take() else {
            return Ok(());
        };
        let out = try_run(60, "apache2ctl", &["stop"])?;
        if !procs::wait_until(Duration::from_secs(30), || !procs::alive(pid)) {
            // SAFETY: kill(2) on the pid of the Apache parent this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err(format!(
                "apache2ctl stop left the stock Apache {pid} running: {}",
                describe(&out)
            ));
        }
        Ok(())
    }

    /// SIGTERM to the express the test started; SIGKILL after 30 s.
    pub fn stop_express(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.express.take()?;
        let pid = child.id() as i32;
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut status = None;
        procs::wait_until(Duration::from_secs(30), || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_none() {
            let _ = child.kill();
            status = child.wait().ok();
        }
        status
    }

    /// `a2dissite` and removes the site file.
    pub fn remove_site(&mut self) -> Result<(), String> {
        if let Some(site) = self.site.take() {
            let name = site.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            try_check(30, "a2dissite", &["-q", name])?;
            fs::remove_file(&site).map_err(|e| format!("removing {}: {e}", site.display()))?;
        }
        Ok(())
    }

    /// `apt-get purge` of `package`.
    pub fn purge(package: &str) -> Result<(), String> {
        try_check(300, "apt-get", &["purge", "-y", "-q", package]).map(drop)
    }

    /// Purges the package, when the test installed it.
    pub fn purge_package(&mut self) -> Result<(), String> {
        if std::mem::take(&mut self.package) {
            Self::purge(PACKAGE)?;
        }
        Ok(())
    }

    /// Undoes mod_wsgi: `a2dismod wsgi` if the test enabled it, its removal if it installed it.
    pub fn restore_mod_wsgi(&mut self) -> Result<(), String> {
        if std::mem::take(&mut self.wsgi_enabled) {
            try_check(30, "a2dismod", &["-q", "wsgi"])?;
        }
        if std::mem::take(&mut self.mod_wsgi) {
            Self::purge(MOD_WSGI)?;
        }
        Ok(())
    }
}

/// One clean-up step.
type Step = fn(&mut Machine) -> Result<(), String>;

impl Drop for Machine {
    /// Never panics: it may run while a failed assertion unwinds.
    fn drop(&mut self) {
        if let Some(status) = self.stop_express() {
            eprintln!("cleanup: express ended: {status}");
        }
        let steps: [(&str, Step); 5] = [
            ("stopping the stock Apache", Machine::stop_apache),
            ("removing the site", Machine::remove_site),
            ("restoring ports.conf", Machine::restore_ports_conf),
            ("removing mod_wsgi", Machine::restore_mod_wsgi),
            ("purging the package", Machine::purge_package),
        ];
        for (what, step) in steps {
            if let Err(e) = step(self) {
                eprintln!("cleanup: {what} failed, the machine may need repair by hand: {e}");
            }
        }
        // As `make setup` leaves it: Debian's apache2 service disabled.
        if Path::new("/usr/bin/systemctl").exists() {
            let _ = try_run(30, "systemctl", &["disable", "apache2"]);
        }
        let _ = try_run(30, "update-rc.d", &["apache2", "disable"]);
    }
}

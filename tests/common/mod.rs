//! The end-to-end harness: stage the built module, daemon and app into a temp dir the
//! test user can read, render a config with the express library, run httpd in the
//! foreground, and tear everything down (checking that nothing is left behind).
//!
//! The tests need `cargo build --workspace` (same profile as `cargo test`) first: they
//! use `libmod_rswsgi.so`, `rswsgi-daemon` and `express` from that profile's target dir.
//! `make test` does it. Run as root, servers switch to the user `rswsgi-test`
//! (`make setup` creates it). The Python apps need `RSWSGI_TEST_VENV`, a virtualenv of
//! Debian's `/usr/bin/python3` with Flask (`make setup` creates it).
//!
//! Prerequisites: a test that needs the virtualenv or root starts with `require!(venv)` or
//! `require!(root)` ([`require!`], [`venv`], [`root`]). When one is missing, a plain `cargo test`
//! skips that test, printing one line to stderr (`skipped: <test>: needs RSWSGI_TEST_VENV (run
//! make test)`, or `needs root`); under `RSWSGI_TEST_REQUIRE=1`, which `make test` (and so CI)
//! sets, a missing prerequisite fails the test instead, so nothing is skipped silently there.
#![allow(dead_code)]

pub mod curl;
pub mod express;
pub mod http;
pub mod procs;
pub mod raw;
pub mod semantics;
mod server;

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[allow(unused_imports)]
pub use server::{Builder, TestServer};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo profile directory this test binary was built into (`target/release`):
/// test binaries live in `<profile dir>/deps/`.
pub fn profile_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RSWSGI_TEST_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps")
        .to_path_buf()
}

/// The built binaries the tests run.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub module: PathBuf,
    pub daemon: PathBuf,
    pub express: PathBuf,
}

/// Finds the module, daemon and express of this profile; panics with what to run if missing.
pub fn binaries() -> Binaries {
    let dir = profile_dir();
    let bins = Binaries {
        module: dir.join("libmod_rswsgi.so"),
        daemon: dir.join("rswsgi-daemon"),
        express: dir.join("express"),
    };
    for path in [&bins.module, &bins.daemon, &bins.express] {
        assert!(
            path.is_file(),
            "{} is missing: run `cargo build --workspace` with the same profile as the tests \
             (`make test` builds and tests in release)",
            path.display()
        );
    }
    bins
}

/// The variable under which a missing prerequisite fails a test instead of skipping it
/// (`make test` sets it to 1).
pub const REQUIRE_VAR: &str = "RSWSGI_TEST_REQUIRE";

/// Returns from the test when a prerequisite is missing (see [`venv`] and [`root`]):
/// `let venv = require!(venv);` gives the virtualenv; `require!(root);` checks for root.
#[macro_export]
macro_rules! require {
    (venv) => {
        match $crate::common::venv() {
            Some(venv) => venv,
            None => return,
        }
    };
    (root) => {
        if $crate::common::root().is_none() {
            return;
        }
    };
}

/// A prerequisite `needs` of the running test is missing: under [`REQUIRE_VAR`] the test
/// fails; otherwise one `skipped: <test>: needs ...` line goes to stderr and the test is
/// to return (`None`).
fn missing<T>(needs: &str) -> Option<T> {
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    if std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("{test}: needs {needs}, and {REQUIRE_VAR} is set: nothing may be skipped");
    }
    // Straight to stderr, past libtest's capture (which takes only eprintln!), so that a
    // plain `cargo test` shows it.
    let _ = writeln!(std::io::stderr(), "skipped: {test}: needs {needs}");
    None
}

/// True when `needs` (a tool `scripts/setup.sh` installs) is `present`; otherwise the skip
/// line (or, under [`REQUIRE_VAR`], a failure) and false.
#[allow(dead_code)]
pub fn require(needs: &str, present: bool) -> bool {
    present || missing::<()>(needs).is_some()
}

/// The Flask virtualenv given by `RSWSGI_TEST_VENV`, checked, if the variable is set.
fn venv_if_set() -> Option<PathBuf> {
    let venv = PathBuf::from(std::env::var_os("RSWSGI_TEST_VENV").filter(|v| !v.is_empty())?);
    assert!(
        venv.join("bin/python").exists() && venv.join("pyvenv.cfg").is_file(),
        "RSWSGI_TEST_VENV={} is not a virtualenv: run `make setup`",
        venv.display()
    );
    Some(venv)
}

/// The Flask virtualenv given by `RSWSGI_TEST_VENV`, or `None` (after the skip line) when it
/// is not set; panics when it is set but is no virtualenv, or under [`REQUIRE_VAR`].
pub fn venv() -> Option<PathBuf> {
    venv_if_set().or_else(|| missing("RSWSGI_TEST_VENV (run make test)"))
}

/// `Some(())` when running as root, else `None` (after the skip line); panics under
/// [`REQUIRE_VAR`].
pub fn root() -> Option<()> {
    match is_root() {
        true => Some(()),
        false => missing("root"),
    }
}

/// The virtualenv, for the helpers of a test that started with `require!(venv)`: panics
/// when it is not set (a test that needs it and does not say so).
pub fn test_venv() -> PathBuf {
    venv_if_set().expect(
        "RSWSGI_TEST_VENV is not set: a test that needs it starts with `require!(venv)` \
         (`make setup` creates the virtualenv; `make test` exports it)",
    )
}

/// The user servers switch to: `rswsgi-test` when running as root, none otherwise.
pub fn test_user() -> Option<String> {
    if !is_root() {
        return None;
    }
    let name = "rswsgi-test";
    assert!(
        rswsgi_express::Identity::lookup(name, None).is_ok(),
        "user {name} does not exist: run `make setup` (or useradd --system --no-create-home \
         --shell /usr/sbin/nologin {name})"
    );
    Some(name.to_owned())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A free loopback port (bound and released; httpd binds it next).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A fresh directory under /tmp, mode 0755, removed on drop: everything a server
/// needs is copied here so the test user can read it wherever the checkout lives.
pub struct Stage {
    pub dir: PathBuf,
    pub keep: bool,
}

impl Stage {
    pub fn new(tag: &str) -> Stage {
        let template = std::env::temp_dir().join(format!("rswsgi-e2e-{tag}-XXXXXX"));
        let dir = nix::unistd::mkdtemp(&template).expect("mkdtemp");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod stage");
        Stage { dir, keep: false }
    }

    /// A subdirectory (mode 0755).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        fs::create_dir_all(&dir).expect("create stage subdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        dir
    }

    /// Copies `src` to `<stage>/<rel>` with `mode`.
    pub fn copy(&self, src: &Path, rel: &str, mode: u32) -> PathBuf {
        let dest = self.dir.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).expect("create parent");
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::copy(src, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dest.display()));
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).expect("chmod");
        dest
    }

    /// Writes `contents` to `<stage>/<rel>` (mode 0644).
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let dest = self.dir.join(rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).expect("create parent");
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::write(&dest, contents).expect("write stage file");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).expect("chmod");
        dest
    }

    /// Copies the module and the daemon into `<stage>/bin/` (module as `mod_rswsgi.so`).
    pub fn binaries(&self) -> Binaries {
        let built = binaries();
        Binaries {
            module: self.copy(&built.module, "bin/mod_rswsgi.so", 0o644),
            daemon: self.copy(&built.daemon, "bin/rswsgi-daemon", 0o755),
            express: built.express,
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("(kept {} for inspection)", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `sha256(data)` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `django-admin startproject mysite` into `<stage>/mysite.com`, with `venv`'s Django (as the
/// Django deployment guides lay a site out); returns the project directory.
#[allow(dead_code)]
pub fn django_startproject(stage: &Stage, venv: &Path) -> PathBuf {
    let project = stage.subdir("mysite.com");
    let out = std::process::Command::new(venv.join("bin/django-admin"))
        .args(["startproject", "mysite"])
        .arg(&project)
        .output()
        .expect("run django-admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    project
}

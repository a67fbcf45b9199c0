//! The end-to-end harness: stage the built module, daemon and app into a temp dir the
//! test user can read, render a config with the express library, run httpd in the
//! foreground, and tear everything down (checking that nothing is left behind).
//!
//! The tests need `cargo build --workspace` (same profile as `cargo test`) first: they
//! use `libmod_rswsgi.so`, `rswsgi-daemon` and `express` from that profile's target dir.
//! `make test` does it. Run as root, servers switch to the user `rswsgi-test`
//! (`make setup` creates it). The Python apps need `RSWSGI_TEST_VENV`, a virtualenv of
//! Debian's `/usr/bin/python3` with Flask (`make setup` creates it).
#![allow(dead_code)]

pub mod curl;
pub mod express;
pub mod http;
pub mod procs;
pub mod raw;
pub mod semantics;
mod server;

use std::fs;
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

/// The Flask virtualenv given by `RSWSGI_TEST_VENV`. Panics (never skips) when unset or broken.
pub fn test_venv() -> PathBuf {
    let venv = std::env::var_os("RSWSGI_TEST_VENV")
        .map(PathBuf::from)
        .expect(
            "RSWSGI_TEST_VENV is not set: point it at a virtualenv of /usr/bin/python3 with Flask \
         (`make setup` creates one; `make test` exports it)",
        );
    assert!(
        venv.join("bin/python").exists() && venv.join("pyvenv.cfg").is_file(),
        "RSWSGI_TEST_VENV={} is not a virtualenv: run `make setup`",
        venv.display()
    );
    venv
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

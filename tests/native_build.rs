//! Building native handlers with the real `express` binary: the build cache, compiler errors,
//! missing tools, and `express start-server wsgi.rs` serving the example from the checkout.

mod common;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{binaries, free_port, http, procs, repo_root, test_user, test_venv, Binaries, Stage};

const EXAMPLE: &str = "examples/native/wsgi.rs";

/// `express build-handler ARGS` with a clean environment for the cache and SDK lookups.
fn build_handler(args: &[&Path]) -> Output {
    Command::new(binaries().express)
        .arg("build-handler")
        .args(args)
        .env_remove("RSWSGI_SDK")
        .env_remove("XDG_CACHE_HOME")
        .output()
        .expect("run express build-handler")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `(inode, mtime in ns)` of `path`.
fn identity(path: &Path) -> (u64, i64) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.ino(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
}

#[test]
fn build_handler_is_cached_by_content() {
    let stage = Stage::new("nbuild");
    let cache = stage.dir.join("cache");
    let source = stage.copy(&repo_root().join(EXAMPLE), "app/wsgi.rs", 0o644);
    let first = build_handler(&[&source, Path::new("--cache-dir"), &cache]);
    let err = text(&first.stderr);
    assert!(first.status.success(), "{err}");
    assert!(
        err.contains("Compiling rswsgi-handler-"),
        "cargo did not run:\n{err}"
    );
    let library = PathBuf::from(text(&first.stdout).trim());
    assert!(library.starts_with(&cache), "{}", library.display());
    assert!(library.ends_with("handler.so"), "{}", library.display());
    let before = identity(&library);

    // Same source: nothing is rebuilt, cargo is not even started.
    let second = build_handler(&[&source, Path::new("--cache-dir"), &cache]);
    let err = text(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(err.contains("using cached build"), "{err}");
    assert!(!err.contains("Compiling"), "rebuilt:\n{err}");
    assert_eq!(PathBuf::from(text(&second.stdout).trim()), library);
    assert_eq!(
        identity(&library),
        before,
        "the cached library was rewritten"
    );

    // -o copies the cached library out, still without building.
    let out = stage.dir.join("out/handler.so");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let third = build_handler(&[
        &source,
        Path::new("-o"),
        &out,
        Path::new("--cache-dir"),
        &cache,
    ]);
    let err = text(&third.stderr);
    assert!(third.status.success(), "{err}");
    assert!(!err.contains("Compiling"), "rebuilt:\n{err}");
    assert_eq!(fs::read(&out).unwrap(), fs::read(&library).unwrap());
    assert_eq!(PathBuf::from(text(&third.stdout).trim()), out);

    // A changed source is a new build, in its own cache entry.
    let mut edited = fs::read_to_string(&source).unwrap();
    edited.push_str("\n// edited\n");
    fs::write(&source, edited).unwrap();
    let fourth = build_handler(&[&source, Path::new("--cache-dir"), &cache]);
    let err = text(&fourth.stderr);
    assert!(fourth.status.success(), "{err}");
    assert!(
        err.contains("Compiling rswsgi-handler-"),
        "not rebuilt:\n{err}"
    );
    assert_ne!(PathBuf::from(text(&fourth.stdout).trim()), library);
    assert_eq!(identity(&library), before);
}

#[test]
fn missing_sdk_or_cargo_is_one_clear_line() {
    let stage = Stage::new("nbuild");
    let source = stage.copy(&repo_root().join(EXAMPLE), "app/wsgi.rs", 0o644);
    let cache = stage.dir.join("cache");
    let out = build_handler(&[
        &source,
        Path::new("--sdk-path"),
        Path::new("/nonexistent/sdk"),
        Path::new("--cache-dir"),
        &cache,
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/sdk"), "{err}");

    // No cargo anywhere (and nothing cached): says so, builds nothing.
    let out = Command::new(binaries().express)
        .arg("build-handler")
        .arg(&source)
        .arg("--cache-dir")
        .arg(&cache)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("CARGO")
        .output()
        .expect("run express");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cargo not found"), "{err}");
}

/// The arguments every `express start-server` / `setup-server` here gets.
fn server_args(stage: &Stage, bins: &Binaries, port: u16) -> Vec<String> {
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--server-root".to_owned(),
        stage.dir.join("root").display().to_string(),
        "--module-path".to_owned(),
        bins.module.display().to_string(),
        "--daemon-executable".to_owned(),
        bins.daemon.display().to_string(),
        "--cache-dir".to_owned(),
        stage.dir.join("cache").display().to_string(),
    ];
    if let Some(user) = test_user() {
        args.extend(["--user".to_owned(), user]);
    }
    args
}

#[test]
fn compile_error_stops_start_server() {
    let stage = Stage::new("nbuild");
    let source = stage.write(
        "app/wsgi.rs",
        "use rswsgi::{Request, Response};\n\
         pub fn application(_req: &mut Request) -> Response<'_> {\n\
         \x20   let n: u32 = \"not a number\";\n\
         \x20   Response::text(200, format!(\"{n}\"))\n\
         }\n\
         rswsgi::export!(application);\n",
    );
    let out = Command::new(binaries().express)
        .arg("start-server")
        .arg(&source)
        .args(server_args(&stage, &stage.binaries(), free_port()))
        .output()
        .expect("run express");
    let err = text(&out.stderr);
    assert!(!out.status.success(), "express succeeded:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // cargo's own diagnostic, naming the user's file and line.
    assert!(err.contains("error[E0308]: mismatched types"), "{err}");
    assert!(err.contains(&format!("{}:3:", source.display())), "{err}");
    // One closing line from express.
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("express: cargo could not build the native handler"),
        "{err}"
    );
    assert!(
        !stage.dir.join("root").exists(),
        "a server root was written for a handler that does not compile"
    );
}

/// A running `express start-server`; dropping it sends SIGTERM and waits.
struct Express {
    child: Child,
    log: PathBuf,
}

impl Express {
    fn start(stage: &Stage, bins: &Binaries, script: &Path, port: u16, tag: &str) -> Express {
        let log = stage.dir.join(format!("express-{tag}.out"));
        let out = File::create(&log).unwrap();
        let child = Command::new(binaries().express)
            .arg("start-server")
            .arg(script)
            .args(server_args(stage, bins, port))
            // A virtualenv in the environment must not become python-home of a native group.
            .env("VIRTUAL_ENV", test_venv())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn express");
        Express { child, log }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until GET / answers 200; panics with express's output otherwise.
    fn wait_ready(&mut self, addr: SocketAddr) -> http::Response {
        let mut last = None;
        let ready = procs::wait_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("express exited with {status}:\n{}", self.output());
            }
            last = http::get(addr, "/").ok();
            last.as_ref().is_some_and(|r| r.status == 200)
        });
        assert!(ready, "not ready: {last:?}\n{}", self.output());
        last.unwrap()
    }

    /// SIGTERM, then waits for express to exit; returns its output.
    fn stop(mut self) -> String {
        let pid = self.child.id() as i32;
        // SAFETY: kill has no memory-safety preconditions; pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let exited = procs::wait_until(Duration::from_secs(30), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(exited, "express did not stop:\n{}", self.output());
        self.output()
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = self.child.id() as i32;
            // SAFETY: as in stop().
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if !procs::wait_until(Duration::from_secs(30), || {
                matches!(self.child.try_wait(), Ok(Some(_)))
            }) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
            eprintln!("{}", self.output());
        }
    }
}

#[test]
fn start_server_builds_serves_and_reuses_the_build() {
    require!(venv);
    let stage = Stage::new("nserve");
    // The example straight from the checkout, as a user would start it.
    let source = repo_root().join(EXAMPLE);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let bins = stage.binaries();

    let mut express = Express::start(&stage, &bins, &source, port, "first");
    let resp = express.wait_ready(addr);
    assert_eq!(resp.text(), "Hello from Rust!\n");
    let echo = http::request(addr, "POST", "/echo", &[], Some(b"round trip")).unwrap();
    assert_eq!((echo.status, echo.text().as_str()), (200, "round trip"));
    let root = stage.dir.join("root");
    let library = root.join("handler.so");
    let meta = fs::metadata(&library).expect("handler.so in the server root");
    assert_eq!(meta.mode() & 0o777, 0o644);
    let conf = fs::read_to_string(root.join("httpd.conf")).unwrap();
    assert!(
        conf.contains(&format!("WSGIScriptAlias / {} ", library.display())),
        "{conf}"
    );
    assert!(!conf.contains("python-home"), "{conf}");
    let first = express.stop();
    assert!(first.contains("Compiling rswsgi-handler-"), "{first}");
    assert!(first.contains("Native Handler     : "), "{first}");
    assert!(
        procs::wait_until(Duration::from_secs(20), || procs::running(&bins.daemon)
            .is_empty()),
        "daemons left after express stopped"
    );

    // The second start uses the cached build: cargo does not run.
    let mut express = Express::start(&stage, &bins, &source, port, "second");
    express.wait_ready(addr);
    let second = express.stop();
    assert!(second.contains("using cached build"), "{second}");
    assert!(!second.contains("Compiling"), "rebuilt:\n{second}");
}

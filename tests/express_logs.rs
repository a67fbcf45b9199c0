//! express's logs are not world-readable: tracebacks and request lines can carry secrets.
//! They are 0640, owned as Debian keeps `/var/log/apache2` (root:adm when express runs as
//! root), and httpd still writes to them.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{free_port, is_root, repo_root, test_user, Stage, TestServer};
use rswsgi_express::{setup_server, ServerOptions};

/// Asserts `path` is mode 0640 and, as root, owned by root:adm.
fn assert_private(path: &Path) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        meta.mode() & 0o7777,
        0o640,
        "{} is mode {:04o}",
        path.display(),
        meta.mode() & 0o7777
    );
    if is_root() {
        let adm = nix::unistd::Group::from_name("adm")
            .unwrap()
            .expect("group adm");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, adm.gid.as_raw()),
            "{} should be root:adm",
            path.display()
        );
    } else {
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    }
}

#[test]
fn error_and_access_logs_are_0640_and_written() {
    require!(venv);
    let server = TestServer::builder("tests/apps/probe.py")
        .access_log()
        .start();
    let marker = "/?log-mode-check";
    assert_eq!(server.get(marker).status, 200);
    let access = server.root.dir.join("access_log");
    let error = server.root.dir.join("error_log");
    // The access line is written when the request is logged, just after the response.
    let written = common::procs::wait_until(std::time::Duration::from_secs(10), || {
        fs::read_to_string(&access).is_ok_and(|s| s.contains("log-mode-check"))
    });
    assert!(
        written,
        "access_log has no line for {marker}:\n{}",
        server.logs()
    );
    assert!(
        server
            .root
            .read_error_log()
            .contains("resuming normal operations"),
        "{}",
        server.logs()
    );
    assert_private(&error);
    assert_private(&access);
    server.stop();
}

/// Logs an earlier run (or an older express) left world-readable are tightened.
#[test]
fn existing_world_readable_logs_are_tightened() {
    let stage = Stage::new("logs");
    let bins = stage.binaries();
    let script = stage.copy(
        &repo_root().join("tests/apps/probe.py"),
        "app/wsgi.py",
        0o644,
    );
    let root = stage.subdir("root");
    for name in ["error_log", "access_log"] {
        let log = root.join(name);
        fs::write(&log, "old line\n").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut opts = ServerOptions::new(&script);
    opts.port = free_port().into();
    opts.server_root = Some(root.clone());
    opts.user = test_user();
    opts.access_log = true;
    opts.module_path = Some(bins.module.clone());
    opts.daemon_executable = Some(bins.daemon.clone());
    setup_server(&opts).unwrap_or_else(|e| panic!("setup_server: {e:#}"));
    for name in ["error_log", "access_log"] {
        assert_private(&root.join(name));
        // Appended to, never truncated.
        assert_eq!(fs::read_to_string(root.join(name)).unwrap(), "old line\n");
    }
}

//! Where the daemon sockets may live (`WSGISocketPrefix`): httpd creates at most the socket's
//! own directory, and only inside one that exists; it refuses a socket directory that someone
//! other than root (or httpd's own user, when httpd is not root) could change, because whoever
//! can change it can put their own socket in place of a daemon's. See docs/security.md.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::express::start_refused;
use common::{free_port, repo_root, test_user, Stage, TestServer};
use rswsgi_express::{setup_server, ServerOptions, ServerRoot};

fn probe() -> String {
    repo_root()
        .join("tests/apps/probe.py")
        .display()
        .to_string()
}

/// Renders a server for the probe app with `WSGISocketPrefix prefix` in `stage`.
fn render(stage: &Stage, prefix: &Path) -> ServerRoot {
    let bins = stage.binaries();
    let script = stage.copy(Path::new(&probe()), "app/wsgi.py", 0o644);
    let mut opts = ServerOptions::new(&script);
    opts.port = free_port().into();
    opts.server_root = Some(stage.dir.join("root"));
    opts.user = test_user();
    opts.module_path = Some(bins.module.clone());
    opts.daemon_executable = Some(bins.daemon.clone());
    opts.python_home = Some(common::test_venv());
    opts.extra_directives = vec![format!("WSGISocketPrefix {}", prefix.display())];
    setup_server(&opts).unwrap_or_else(|e| panic!("setup_server: {e:#}"))
}

/// `httpd -t` on the rendered server: (passed, its output).
fn config_test(root: &ServerRoot) -> (bool, String) {
    let out = root.config_test().expect("run httpd -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_refused(stage: &Stage, prefix: &Path, needles: &[&str]) {
    let root = render(stage, prefix);
    let (ok, text) = config_test(&root);
    assert!(
        !ok,
        "httpd -t accepted WSGISocketPrefix {}:\n{text}",
        prefix.display()
    );
    for needle in needles {
        assert!(
            text.contains(needle),
            "httpd -t does not say {needle:?}:\n{text}"
        );
    }
    let text = start_refused(&root);
    for needle in needles {
        assert!(
            text.contains(needle),
            "httpd's refusal does not say {needle:?}:\n{text}"
        );
    }
}

/// Removes a directory tree at the file system root when the test ends, whatever happens.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_socket_directory_whose_parent_is_missing_is_refused_and_nothing_is_created() {
    require!(root);
    require!(venv);
    let top = PathBuf::from(format!("/rswsgi-missing-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(top.clone());
    let stage = Stage::new("sockdir");
    let dir = top.join("dir");
    assert_refused(
        &stage,
        &dir.join("sock"),
        &[&format!("{} does not exist", top.display())],
    );
    assert!(!top.exists(), "{} was created", top.display());
}

#[test]
fn the_socket_directory_itself_is_created_inside_one_that_exists() {
    require!(venv);
    let stage = Stage::new("sockdir");
    let dir = stage.dir.join("sockets");
    let server = TestServer::builder(&probe())
        .directive(&format!("WSGISocketPrefix {}/s", dir.display()))
        .start();
    assert_eq!(server.get("/").status, 200);
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o7777),
        (nix::unistd::geteuid().as_raw(), 0o755),
        "owner and mode of the created directory"
    );
    let socks = fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sock")
        })
        .count();
    assert_eq!(socks, 1, "the socket is in it");
}

/// A directory in the stage, created with `mode` and owned by the test user when `foreign`.
fn dir(stage: &Stage, rel: &str, mode: u32, foreign: bool) -> PathBuf {
    let d = stage.dir.join(rel);
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
    if foreign {
        let user = test_user().expect("the test user");
        let u = nix::unistd::User::from_name(&user).unwrap().unwrap();
        nix::unistd::chown(&d, Some(u.uid), Some(u.gid)).unwrap();
    }
    d
}

#[test]
fn a_socket_directory_owned_by_another_user_is_refused() {
    require!(root);
    require!(venv);
    // As if the user Apache's children run as had created it before httpd started.
    let stage = Stage::new("sockdir");
    let d = dir(&stage, "taken", 0o755, true);
    assert_refused(
        &stage,
        &d.join("sock"),
        &[&format!("{} is owned by", d.display()), "not root"],
    );
}

#[test]
fn a_socket_directory_inside_one_another_user_owns_is_refused() {
    require!(root);
    require!(venv);
    let stage = Stage::new("sockdir");
    let outer = dir(&stage, "outer", 0o755, true);
    let inner = dir(&stage, "outer/inner", 0o755, false);
    assert_refused(
        &stage,
        &inner.join("sock"),
        &[&format!("{} is owned by", outer.display())],
    );
}

#[test]
fn a_group_or_world_writable_socket_directory_is_refused() {
    require!(venv);
    for mode in [0o775, 0o777, 0o1777] {
        let stage = Stage::new("sockdir");
        let d = dir(&stage, "open", mode, false);
        assert_refused(
            &stage,
            &d.join("sock"),
            &[&format!("{} is writable by", d.display())],
        );
    }
}

#[test]
fn a_symlink_to_the_socket_directory_owned_by_another_user_is_refused() {
    require!(root);
    require!(venv);
    // The target is fine, but the link's owner could point it at a directory of their own.
    let stage = Stage::new("sockdir");
    let target = dir(&stage, "target", 0o755, false);
    let link = stage.dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let user = test_user().expect("the test user");
    let u = nix::unistd::User::from_name(&user).unwrap().unwrap();
    std::os::unix::fs::lchown(&link, Some(u.uid.as_raw()), Some(u.gid.as_raw())).unwrap();
    assert_refused(
        &stage,
        &link.join("sock"),
        &[&format!("{} is owned by", link.display())],
    );
}

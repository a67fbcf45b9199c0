//! The Debian package, end to end as root: `make deb` builds it, lintian finds no errors in
//! it, `apt-get install ./….deb` resolves its Depends, `a2enmod rswsgi` enables it and is
//! refused while Debian's mod_wsgi is enabled, a mod_wsgi-style site serves a Flask app
//! through the stock Apache started the Debian way (`apache2ctl`, /etc/apache2/envvars),
//! `apache2ctl graceful` keeps it serving and `apache2ctl stop` leaves no daemon, the
//! installed `rswsgi-express` serves the app and builds a native handler against the
//! installed SDK with no paths given, and `apt-get purge` removes every file it installed.
//!
//! The stock Apache listens only on 127.0.0.1 ports of its own: `ports.conf` is swapped for
//! the run ([`machine::Machine`] puts everything back, also when an assertion fails).

mod common;
#[path = "debian_package/machine.rs"]
mod machine;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, procs, repo_root, test_venv, Stage};
use machine::{check, describe, installed, run, Machine, DAEMON, MOD_WSGI, PACKAGE};

const MODS_ENABLED: &str = "/etc/apache2/mods-enabled";
const GROUP: &str = "rswsgi-deb-test";

/// `make deb` in the checkout (the workspace's release build, then dpkg-buildpackage); the
/// path of the package it wrote.
fn build_package() -> PathBuf {
    let arch = check(30, "dpkg", &["--print-architecture"]);
    let deb = repo_root().join(format!(
        "target/debian/{PACKAGE}_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    ));
    let mut make = Command::new("timeout");
    make.args(["-k5", "1200", "make", "deb"])
        .current_dir(repo_root())
        .stdin(Stdio::null());
    if let Some(cargo) = std::env::var_os("CARGO") {
        make.arg(format!("CARGO={}", cargo.to_string_lossy()));
    }
    let out = make.output().expect("running make deb");
    assert!(out.status.success(), "make deb: {}", describe(&out));
    assert!(deb.is_file(), "make deb wrote no {}", deb.display());
    deb
}

/// lintian over the build's .changes (both packages): no errors. Its output goes to
/// standard error, for the record.
fn lint() {
    let changes = repo_root().join("target/debian/rswsgi.changes");
    let out = run(600, "lintian", &[changes.to_str().unwrap()]);
    eprintln!(
        "lintian: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "lintian found errors: {}",
        describe(&out)
    );
}

/// The paths in the package (`dpkg -c`), absolute.
fn package_paths(deb: &Path) -> Vec<PathBuf> {
    check(30, "dpkg", &["-c", deb.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| PathBuf::from(p.trim_start_matches('.')))
        .filter(|p| p != Path::new("/") && !p.as_os_str().is_empty())
        .collect()
}

fn field(package: &str, name: &str) -> String {
    check(
        30,
        "dpkg-query",
        &["-W", &format!("-f=${{{name}}}"), package],
    )
}

/// Installs the package with apt and checks its control data and what its postinst did.
fn install(m: &mut Machine, deb: &Path) {
    let deb = deb.to_str().unwrap();
    m.package = true;
    check(600, "apt-get", &["install", "-y", "-q", deb]);
    assert!(installed(PACKAGE));
    let depends = field(PACKAGE, "Depends");
    for dep in [
        "apache2-api-20120211",
        "apache2-bin (>= 2.4.16)",
        "libpython3.11",
        "libc6",
    ] {
        assert!(depends.contains(dep), "Depends: {depends} lacks {dep}");
    }
    assert!(
        !field(PACKAGE, "Conflicts").contains("wsgi"),
        "no package-level Conflicts"
    );
    assert_eq!(field(PACKAGE, "Section"), "httpd");
    let conffiles = field(PACKAGE, "Conffiles");
    for f in ["rswsgi.load", "rswsgi.conf"] {
        assert!(
            conffiles.contains(&format!("/etc/apache2/mods-available/{f}")),
            "{f} not a conffile: {conffiles}"
        );
    }
    assert!(
        enabled("rswsgi"),
        "the postinst did not enable the module (apache2_invoke enmod)"
    );
    check(30, "a2dismod", &["-q", "rswsgi"]);
    assert!(!enabled("rswsgi"));
    check(30, "a2enmod", &["-q", "rswsgi"]);
    assert!(enabled("rswsgi"), "a2enmod rswsgi did not enable it");
}

fn enabled(module: &str) -> bool {
    Path::new(MODS_ENABLED)
        .join(format!("{module}.load"))
        .exists()
}

/// With Debian's mod_wsgi installed and `wsgi` enabled, `a2enmod rswsgi` refuses (the
/// `# Conflicts: wsgi` line); mod_wsgi is then put back as it was and rswsgi enabled again.
fn conflicts_with_mod_wsgi(m: &mut Machine) {
    check(30, "a2dismod", &["-q", "rswsgi"]);
    if !installed(MOD_WSGI) {
        m.mod_wsgi = true;
        let out = run(600, "apt-get", &["install", "-y", "-q", MOD_WSGI]);
        if !out.status.success() {
            check(600, "apt-get", &["update", "-q"]);
            check(600, "apt-get", &["install", "-y", "-q", MOD_WSGI]);
        }
    }
    if !enabled("wsgi") {
        m.wsgi_enabled = true;
        check(30, "a2enmod", &["-q", "wsgi"]);
    }
    let out = run(30, "a2enmod", &["rswsgi"]);
    let text = describe(&out);
    assert!(!out.status.success(), "a2enmod rswsgi beside wsgi: {text}");
    assert!(text.contains("conflict"), "{text}");
    assert!(!enabled("rswsgi"), "rswsgi was enabled beside wsgi");
    m.restore_mod_wsgi().unwrap();
    check(30, "a2enmod", &["-q", "rswsgi"]);
}

/// The site: one daemon group running the Flask example as www-data, on 127.0.0.1:port.
fn write_site(m: &mut Machine, stage: &Stage, port: u16) {
    let script = stage.copy(
        &repo_root().join("examples/flask/wsgi.py"),
        "app/wsgi.py",
        0o644,
    );
    let app = script.parent().unwrap().display().to_string();
    let site = PathBuf::from(format!(
        "/etc/apache2/sites-available/rswsgi-test-{port}.conf"
    ));
    let conf = format!(
        "<VirtualHost 127.0.0.1:{port}>\n\
         \x20   ServerName 127.0.0.1\n\
         \x20   WSGIDaemonProcess {GROUP} processes=2 threads=4 user=www-data group=www-data \
         python-home={venv} display-name=%{{GROUP}}\n\
         \x20   WSGIScriptAlias / {script} process-group={GROUP}\n\
         \x20   <Directory {app}>\n        Require all granted\n    </Directory>\n\
         </VirtualHost>\n",
        venv = test_venv().display(),
        script = script.display(),
    );
    m.site = Some(site.clone());
    fs::write(&site, conf).expect("writing the site");
    check(30, "a2ensite", &["-q", &format!("rswsgi-test-{port}")]);
}

/// `curl` until the app says hello (within `secs`); the last answer otherwise.
fn wait_for_hello(port: u16, secs: u64) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = run(15, "curl", &["-sS", "--max-time", "10", &url]);
        let body = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && body == "Hello from Flask on rswsgi!\n" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("curl {url}: {}", describe(&out)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The live daemons of the installed binary.
fn installed_daemons() -> Vec<procs::Proc> {
    procs::running(Path::new(DAEMON))
}

/// Serves the site from the stock Apache, graceful-restarts it and stops it.
fn serve_with_stock_apache(m: &mut Machine, port: u16) {
    check(60, "apache2ctl", &["configtest"]);
    let pid = m.start_apache();
    wait_for_hello(port, 60).unwrap();
    let www = check(10, "id", &["-u", "www-data"])
        .trim()
        .parse::<u32>()
        .unwrap();
    let daemons = procs::daemons_of(pid, Path::new(DAEMON));
    assert_eq!(
        daemons.len(),
        2,
        "daemons of the stock Apache {pid}: {daemons:?}"
    );
    for d in &daemons {
        let uids = procs::status_ids(d.pid, "Uid").unwrap();
        assert!(
            uids.iter().all(|&u| u == www),
            "daemon {d:?} runs as {uids:?}"
        );
    }
    let sockets: Vec<_> = fs::read_dir("/var/run/apache2")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("rswsgi.") && n.ends_with(".sock"))
        .collect();
    assert!(
        !sockets.is_empty(),
        "no socket under rswsgi.conf's WSGISocketPrefix /var/run/apache2/rswsgi"
    );
    check(60, "apache2ctl", &["graceful"]);
    wait_for_hello(port, 60).unwrap();
    for _ in 0..5 {
        wait_for_hello(port, 10).unwrap();
    }
    assert_eq!(
        machine::stock_apache_pid(),
        Some(pid),
        "graceful kept the parent"
    );
    m.stop_apache().unwrap();
    assert!(
        procs::wait_until(Duration::from_secs(20), || installed_daemons().is_empty()),
        "apache2ctl stop left daemons: {:?}",
        installed_daemons()
    );
}

/// `/usr/bin/rswsgi-express start-server` serves the same app with nothing but the script,
/// port, user and virtualenv given; `build-handler` builds against the installed SDK.
fn serve_with_express(m: &mut Machine, stage: &Stage) {
    let port = free_port();
    let script = stage.dir.join("app/wsgi.py");
    let child = Command::new("/usr/bin/rswsgi-express")
        .arg("start-server")
        .arg(&script)
        .args(["--port", &port.to_string(), "--user", "www-data"])
        .arg("--python-home")
        .arg(test_venv())
        .arg("--server-root")
        .arg(stage.dir.join("express-root"))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawning /usr/bin/rswsgi-express");
    m.express = Some(child);
    wait_for_hello(port, 90).unwrap();
    assert!(
        !installed_daemons().is_empty(),
        "express did not run {DAEMON}"
    );
    let status = m.stop_express().expect("express was running");
    assert!(status.success(), "express after SIGTERM: {status}");
    assert!(
        procs::wait_until(Duration::from_secs(20), || installed_daemons().is_empty()),
        "express left daemons: {:?}",
        installed_daemons()
    );

    let cache = stage.subdir("handler-cache");
    let out = stage.dir.join("handler.so");
    let source = repo_root().join("examples/native/wsgi.rs");
    check(
        600,
        "/usr/bin/rswsgi-express",
        &[
            "build-handler",
            source.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    assert!(out.is_file());
    let manifests: Vec<String> = fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("Cargo.toml")).ok())
        .collect();
    assert!(
        manifests
            .iter()
            .any(|t| t.contains("rswsgi = { path = \"/usr/share/rswsgi/sdk\" }")),
        "the handler was not built against /usr/share/rswsgi/sdk: {manifests:?}"
    );
}

/// `apt-get purge`: every path the package installed is gone, but for directories that
/// existed before; nothing of it is left enabled; the stock Apache starts without it.
fn purge(m: &mut Machine, before: &BTreeSet<PathBuf>, port: u16) {
    let listed: Vec<PathBuf> = check(30, "dpkg", &["-L", PACKAGE])
        .lines()
        .map(PathBuf::from)
        .filter(|p| p != Path::new("/."))
        .collect();
    assert!(listed.contains(&PathBuf::from(DAEMON)), "{listed:?}");
    m.remove_site().unwrap();
    m.purge_package().unwrap();
    assert!(!installed(PACKAGE));
    let left: Vec<&PathBuf> = listed
        .iter()
        .filter(|p| !before.contains(*p) && fs::symlink_metadata(p).is_ok())
        .collect();
    assert!(left.is_empty(), "apt-get purge left {left:?}");
    for dir in ["mods-enabled", "mods-available"] {
        for f in ["rswsgi.load", "rswsgi.conf"] {
            let p = Path::new("/etc/apache2").join(dir).join(f);
            assert!(fs::symlink_metadata(&p).is_err(), "{} is left", p.display());
        }
    }
    check(60, "apache2ctl", &["configtest"]);
    m.start_apache();
    let url = format!("http://127.0.0.1:{port}/");
    let out = run(
        15,
        "curl",
        &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    assert!(
        out.status.success(),
        "Apache without the module: {}",
        describe(&out)
    );
    m.stop_apache().unwrap();
}

#[test]
fn the_debian_package_installs_serves_and_purges() {
    require!(root);
    require!(venv);
    let started = Instant::now();
    Machine::recover_ports_conf();
    assert!(
        !installed(PACKAGE),
        "{PACKAGE} is installed already: this test installs and purges it itself; \
         `apt-get purge {PACKAGE}` first"
    );
    assert!(
        machine::stock_apache_pid().is_none(),
        "the stock Apache is running: this test starts and stops it itself"
    );
    let deb = build_package();
    lint();
    let paths = package_paths(&deb);
    let before: BTreeSet<PathBuf> = paths.iter().filter(|p| p.exists()).cloned().collect();

    let mut m = Machine::default();
    let stage = Stage::new("deb");
    install(&mut m, &deb);
    conflicts_with_mod_wsgi(&mut m);
    let port = free_port();
    m.swap_ports_conf(port);
    write_site(&mut m, &stage, port);
    serve_with_stock_apache(&mut m, port);
    serve_with_express(&mut m, &stage);
    purge(&mut m, &before, port);
    m.restore_ports_conf().unwrap();
    drop(m);
    assert!(
        installed_daemons().is_empty() && !Path::new(DAEMON).exists(),
        "the package's daemon is left"
    );
    eprintln!("the packaging test took {:?}", started.elapsed());
}

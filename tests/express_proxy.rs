//! `express start-server --proxy-mount-point` and `--proxy-virtual-host` (mod_wsgi-express 6's
//! options): part of the site, or a host name, is served by another HTTP server on loopback
//! (Python's `http.server` here), the rest by the application. Driven with curl.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::curl::curl;
use common::express::Express;
use common::{free_port, procs, repo_root, Stage};

/// A `python3 -m http.server` on 127.0.0.1, stopped (by its pid) when dropped.
struct Backend {
    child: Child,
    port: u16,
}

impl Backend {
    fn start(dir: &std::path::Path) -> Backend {
        let port = free_port();
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start http.server");
        let up = procs::wait_until(Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "http.server did not listen on {port}");
        Backend { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mount_points_and_host_names_are_proxied_and_the_rest_is_the_applications() {
    let stage = Stage::new("proxy");
    stage.write("backend/data.txt", "from the backend\n");
    let backend = Backend::start(&stage.dir.join("backend"));
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    let url = backend.url();
    let mut express = Express::start_script(
        stage,
        script,
        &[
            "--proxy-mount-point",
            "/backend",
            &url,
            "--proxy-virtual-host",
            "other.test",
            &url,
            "--proxy-timeout",
            "10",
        ],
    );
    express.wait_serving();
    let dir = &express.stage.dir;
    let logs = || express.logs();
    let proxied = curl(dir, &express.url("/backend/data.txt"), &[]);
    assert_eq!(proxied.status, 200, "{}", logs());
    assert_eq!(proxied.text(), "from the backend\n");
    let bare = curl(dir, &express.url("/backend"), &[]);
    assert_eq!(bare.status, 302, "{bare:?}");
    assert!(
        bare.header("location")
            .is_some_and(|l| l.ends_with("/backend/")),
        "{bare:?}"
    );
    let app = curl(dir, &express.url("/elsewhere"), &[]);
    assert_eq!(
        app.kv("PATH_INFO").as_deref(),
        Some("/elsewhere"),
        "{}",
        logs()
    );
    let host = format!("Host: other.test:{}", express.port);
    let by_name = curl(dir, &express.url("/data.txt"), &["-H", &host]);
    assert_eq!(by_name.status, 200, "{by_name:?}\n{}", logs());
    assert_eq!(by_name.text(), "from the backend\n");
    // Any other name is still the application's.
    let other = curl(
        dir,
        &express.url("/data.txt"),
        &["-H", "Host: unknown.test"],
    );
    assert_eq!(
        other.kv("PATH_INFO").as_deref(),
        Some("/data.txt"),
        "{other:?}"
    );
    express.stop();
    drop(backend);
}

//! `express start-server` with mod_wsgi-express's TLS, HTTP/2 and host-name options, driven
//! with curl: HTTPS with a certificate the test makes (`openssl req -x509`), `--https-only`
//! redirects and HSTS, HTTP/2 over TLS and h2c, 64 MiB each way over HTTP/2, client
//! certificates, and `--server-name` virtual hosts (other names refused, the `www.` redirect).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::curl::curl;
use common::express::Express;
use common::{free_port, repo_root, sha256_hex, Stage};

/// A self-signed certificate and key for `localhost`, 127.0.0.1 and the test's names, made
/// in `dir` as `NAME.crt` and `NAME.key` (readable by the test user). Returns `dir/NAME`.
fn certificate(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,DNS:www.example.test,DNS:example.test,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(root.with_extension("key"))
        .arg("-out")
        .arg(root.with_extension("crt"))
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for ext in ["crt", "key"] {
        let file = root.with_extension(ext);
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
    }
    root
}

/// Starts the site app with `args` (which may name `{cert}` for the certificate root).
fn start(stage: Stage, args: &[&str]) -> Express {
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    let mut express = Express::start_script(stage, script, args);
    express.wait_serving();
    express
}

#[test]
fn https_with_redirects_hsts_and_http2_both_ways() {
    let stage = Stage::new("tls");
    let cert = certificate(&stage.dir, "server");
    let (crt, key) = (cert.with_extension("crt"), cert.with_extension("key"));
    let https_port = free_port().to_string();
    let express = start(
        stage,
        &[
            "--https-port",
            &https_port,
            "--ssl-certificate-file",
            crt.to_str().unwrap(),
            "--ssl-certificate-key-file",
            key.to_str().unwrap(),
            // A chain file (here the certificate itself, as its own issuer) is accepted.
            "--ssl-certificate-chain-file",
            crt.to_str().unwrap(),
            "--https-only",
            "--hsts-policy",
            "max-age=600",
            "--http2",
            "--limit-request-body",
            "0",
        ],
    );
    let dir = &express.stage.dir;
    let cacert = ["--cacert", crt.to_str().unwrap()];
    let https = |path: &str| format!("https://127.0.0.1:{https_port}{path}");
    let logs = || express.logs();
    // HTTP redirects to HTTPS, path and query kept.
    let plain = curl(dir, &express.url("/some/path?q=1"), &[]);
    assert_eq!(plain.status, 301, "{}", logs());
    assert_eq!(
        plain.header("location"),
        Some(format!("https://127.0.0.1:{https_port}/some/path?q=1").as_str())
    );
    // HTTPS over HTTP/1.1: the app sees https, and HSTS is sent.
    let tls = curl(dir, &https("/x"), &[&cacert[..], &["--http1.1"]].concat());
    assert_eq!(tls.status, 200, "{tls:?}\n{}", logs());
    assert_eq!(tls.http_version, "1.1");
    assert_eq!(tls.kv("wsgi.url_scheme").as_deref(), Some("https"));
    // mod_wsgi removes HTTPS from the environ (wsgi.url_scheme says it); so does rswsgi.
    assert_eq!(tls.kv("HTTPS").as_deref(), Some("None"));
    assert_eq!(tls.header("strict-transport-security"), Some("max-age=600"));
    // HTTP/2 over TLS (ALPN h2), and h2c with prior knowledge on the plain port.
    let h2 = curl(dir, &https("/x"), &[&cacert[..], &["--http2"]].concat());
    assert_eq!((h2.status, h2.http_version.as_str()), (200, "2"), "{h2:?}");
    assert_eq!(h2.kv("SERVER_PROTOCOL").as_deref(), Some("HTTP/2.0"));
    let h2c = curl(dir, &express.url("/x"), &["--http2-prior-knowledge"]);
    assert_eq!(
        (h2c.status, h2c.http_version.as_str()),
        (301, "2"),
        "{h2c:?}"
    );
    // 64 MiB down and up over HTTP/2, intact.
    let size = 64 << 20;
    let down = curl(
        dir,
        &https(&format!("/stream?{size}")),
        &[&cacert[..], &["--http2"]].concat(),
    );
    assert_eq!(
        (down.status, down.http_version.as_str()),
        (200, "2"),
        "{}",
        down.stderr
    );
    assert_eq!(down.body.len(), size);
    let expected: Vec<u8> = (0..size).map(|i| (i % 256) as u8).collect();
    assert!(down.body == expected, "the streamed body differs");
    let upload = dir.join("upload.bin");
    std::fs::write(&upload, &expected).unwrap();
    let data = format!("@{}", upload.display());
    let up = curl(
        dir,
        &https("/upload"),
        &[&cacert[..], &["--http2", "--data-binary", &data]].concat(),
    );
    assert_eq!(
        (up.status, up.http_version.as_str()),
        (200, "2"),
        "{up:?}\n{}",
        logs()
    );
    assert_eq!(up.kv("length"), Some(size.to_string()));
    assert_eq!(up.kv("sha256"), Some(sha256_hex(&expected)));
    express.stop();
}

/// A server with its own certificate (`server.crt`/`.key`) on an HTTPS port that requires
/// client certificates signed by `client.crt`, plus `args`. Returns the server, the server
/// and client certificate roots, and the HTTPS port.
fn with_client_certificates(tag: &str, args: &[&str]) -> (Express, PathBuf, PathBuf, String) {
    let stage = Stage::new(tag);
    let server = certificate(&stage.dir, "server");
    let client = certificate(&stage.dir, "client");
    let https_port = free_port().to_string();
    let ca = client.with_extension("crt");
    let mut all = vec![
        "--https-port",
        &https_port,
        "--ssl-certificate",
        server.to_str().unwrap(),
        "--ssl-ca-certificate-file",
        ca.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let express = start(stage, &all);
    (express, server, client, https_port)
}

#[test]
fn client_certificates_are_required_with_a_ca_file() {
    let (express, server, client, https_port) =
        with_client_certificates("mtls", &["--ssl-environment"]);
    let dir = &express.stage.dir;
    let url = format!("https://127.0.0.1:{https_port}/who");
    let ca = server.with_extension("crt");
    let without = curl(dir, &url, &["--cacert", ca.to_str().unwrap()]);
    assert_eq!(without.status, 0, "refused in the handshake: {without:?}");
    let crt = client.with_extension("crt");
    let key = client.with_extension("key");
    let with = curl(
        dir,
        &url,
        &[
            "--cacert",
            ca.to_str().unwrap(),
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(with.status, 200, "{with:?}\n{}", express.logs());
    // --ssl-environment: mod_ssl's variables reach the app.
    assert!(
        with.kv("SSL_PROTOCOL")
            .is_some_and(|p| p.starts_with("TLS")),
        "{with:?}"
    );
    express.stop();

    // --ssl-verify-client URL: only there is a certificate required (asked for by
    // renegotiation, so over TLS 1.2 and HTTP/1.1: curl does no TLS 1.3 post-handshake auth).
    let (express, server, client, https_port) =
        with_client_certificates("mtls-url", &["--ssl-verify-client", "/private"]);
    let dir = &express.stage.dir;
    let ca = server.with_extension("crt");
    let base = [
        "--cacert",
        ca.to_str().unwrap(),
        "--http1.1",
        "--tls-max",
        "1.2",
    ];
    let url = |path: &str| format!("https://127.0.0.1:{https_port}{path}");
    let public = curl(dir, &url("/public"), &base);
    assert_eq!(public.status, 200, "{public:?}\n{}", express.logs());
    let refused = curl(dir, &url("/private"), &base);
    assert_ne!(refused.status, 200, "{refused:?}");
    let (crt, key) = (client.with_extension("crt"), client.with_extension("key"));
    let cert = [
        "--cert",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let admitted = curl(dir, &url("/private"), &[&base[..], &cert[..]].concat());
    assert_eq!(admitted.status, 200, "{admitted:?}\n{}", express.logs());
    express.stop();
}

#[test]
fn a_server_name_refuses_other_names_and_redirects_its_parent_domain() {
    let express = start(
        Stage::new("names"),
        &[
            "--server-name",
            "www.example.test",
            "--server-alias",
            "*.alias.test",
        ],
    );
    let dir = &express.stage.dir;
    let port = express.port;
    let host = |name: &str| format!("Host: {name}:{port}");
    let named = curl(dir, &express.url("/p"), &["-H", &host("www.example.test")]);
    assert_eq!(named.status, 200, "{}", express.logs());
    assert_eq!(
        named.kv("HTTP_HOST"),
        Some(format!("www.example.test:{port}"))
    );
    let alias = curl(dir, &express.url("/p"), &["-H", &host("a.alias.test")]);
    assert_eq!(alias.status, 200, "{alias:?}");
    let other = curl(dir, &express.url("/p"), &["-H", &host("other.test")]);
    assert_eq!(other.status, 403, "{other:?}");
    let parent = curl(dir, &express.url("/p"), &["-H", &host("example.test")]);
    assert_eq!(parent.status, 301, "{parent:?}");
    assert_eq!(
        parent.header("location"),
        Some(format!("http://www.example.test:{port}/p").as_str())
    );
    express.stop();
    // --allow-localhost: a client on this machine may use another name.
    let express = start(
        Stage::new("names-local"),
        &["--server-name", "www.example.test", "--allow-localhost"],
    );
    let other = curl(
        &express.stage.dir,
        &express.url("/p"),
        &["-H", &format!("Host: other.test:{}", express.port)],
    );
    assert_eq!(other.status, 200, "{other:?}\n{}", express.logs());
    express.stop();
}

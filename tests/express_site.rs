//! express serves a site as mod_wsgi-express does: an `--include-file` using `Alias`,
//! `Header` and `SetEnv` works without `LoadModule` lines of its own (express loads
//! mod_wsgi-express's module set), and the `Authorization` header reaches the application
//! (`WSGIPassAuthorization On`, as mod_wsgi-express writes it).

mod common;

use common::{Stage, TestServer};

#[test]
fn an_include_file_using_alias_header_and_setenv_works() {
    require!(venv);
    let stage = Stage::new("site");
    let static_dir = stage.subdir("static");
    stage.write("static/hello.txt", "static file\n");
    let include = stage.write(
        "site.conf",
        &format!(
            "Alias /static/ {dir}/\n<Directory {dir}>\n  Require all granted\n</Directory>\n\
             Header set X-From-Include yes\nSetEnv FROM_INCLUDE set-by-include\n",
            dir = static_dir.display()
        ),
    );
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .include_file(&include)
        .start();
    let file = srv.get("/static/hello.txt");
    assert_eq!(file.status, 200, "{}", srv.logs());
    assert_eq!(
        file.text(),
        "static file\n",
        "Apache served the aliased file"
    );
    assert_eq!(file.header("X-From-Include"), Some("yes"));
    let app = srv.get("/app/path");
    assert_eq!(app.status, 200, "{}", srv.logs());
    assert_eq!(app.kv("FROM_INCLUDE").as_deref(), Some("set-by-include"));
    assert_eq!(app.kv("PATH_INFO").as_deref(), Some("/app/path"));
    assert_eq!(app.header("X-From-Include"), Some("yes"));
}

#[test]
fn basic_auth_reaches_the_application_by_default() {
    require!(venv);
    let srv = TestServer::builder("tests/apps/site_probe.py").start();
    let r = srv.request("GET", "/", &[("Authorization", "Basic dXNlcjpwdw==")], None);
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(
        r.kv("HTTP_AUTHORIZATION").as_deref(),
        Some("Basic dXNlcjpwdw==")
    );
}

//! mod_wsgi directive forms a real site uses, through a real Apache: `WSGIScriptAlias` with a
//! directory target (each file its own application: `SCRIPT_NAME` the file's URL, 404 for a
//! missing file, 403 for the directory).

mod common;

use common::{Stage, TestServer};

fn script(name: &str) -> String {
    format!(
        "def application(environ, start_response):\n    \
         body = ('{name} SCRIPT_NAME=%s PATH_INFO=%s' % (environ['SCRIPT_NAME'], \
         environ['PATH_INFO'])).encode()\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body]\n"
    )
}

#[test]
fn a_directory_target_serves_each_file_as_its_own_application() {
    let stage = Stage::new("aliasdir");
    let dir = stage.subdir("wsgi-scripts");
    stage.write("wsgi-scripts/a.wsgi", &script("a"));
    stage.write("wsgi-scripts/b.py", &script("b"));
    stage.subdir("wsgi-scripts/sub");
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess scripts processes=1 threads=2")
        .directive(&format!(
            "WSGIScriptAlias /wsgi/ {}/ process-group=scripts",
            dir.display()
        ))
        .directive(&format!("<Directory {}>", dir.display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let a = srv.get("/wsgi/a.wsgi/x/y");
    assert_eq!(a.status, 200, "{}", srv.logs());
    assert_eq!(a.text(), "a SCRIPT_NAME=/wsgi/a.wsgi PATH_INFO=/x/y");
    let b = srv.get("/wsgi/b.py");
    assert_eq!(
        b.text(),
        "b SCRIPT_NAME=/wsgi/b.py PATH_INFO=",
        "{}",
        srv.logs()
    );
    assert_eq!(srv.get("/wsgi/missing.wsgi").status, 404);
    assert_eq!(srv.get("/wsgi/").status, 403);
    assert_eq!(srv.get("/wsgi/sub/").status, 403);
    assert!(!srv.logs().contains("AH00033"), "{}", srv.logs());
    assert_eq!(srv.get("/app/").status, 200);
}

//! `WSGIHandlerScript` through a real Apache, as mod_wsgi: files whose Apache handler is the
//! script's name (`AddHandler`) are served by the script's `handle_request`, which gets the
//! file as `SCRIPT_FILENAME` and itself as `mod_wsgi.handler_script`. The file itself is never
//! loaded as Python, and a handler script needs a daemon group like any script.

mod common;

use common::{Stage, TestServer};

const RENDER: &str = "def handle_request(environ, start_response):\n    \
    with open(environ['SCRIPT_FILENAME']) as f:\n        text = f.read()\n    \
    body = ''.join('%s=%s\\n' % kv for kv in [\n        \
    ('SCRIPT_NAME', environ['SCRIPT_NAME']), ('PATH_INFO', environ['PATH_INFO']),\n        \
    ('handler_script', environ['mod_wsgi.handler_script']),\n        \
    ('callable', environ['mod_wsgi.callable_object']),\n        \
    ('request_handler', environ['mod_wsgi.request_handler']), ('text', text.strip())])\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body.encode()]\n";

#[test]
fn files_with_the_handlers_name_are_served_by_its_handle_request() {
    require!(venv);
    let stage = Stage::new("handler");
    let render = stage.write("handlers/render.py", RENDER);
    let pages = stage.subdir("pages");
    // Python that must never run: the page is data for the handler.
    stage.write(
        "pages/page.md",
        "raise SystemExit('the page was executed')\n",
    );
    let group = "localhost:handlers";
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive(&format!("WSGIDaemonProcess {group} processes=1 threads=2"))
        .directive(&format!(
            "WSGIHandlerScript md-page {} process-group={group}",
            render.display()
        ))
        .directive(&format!("Alias /pages {}", pages.display()))
        .directive(&format!("<Directory {}>", pages.display()))
        .directive("  AddHandler md-page .md")
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let r = srv.get("/pages/page.md");
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(r.kv("SCRIPT_NAME").as_deref(), Some("/pages/page.md"));
    assert_eq!(r.kv("PATH_INFO").as_deref(), Some(""));
    assert_eq!(
        r.kv("handler_script"),
        Some(render.display().to_string()),
        "{}",
        r.text()
    );
    assert_eq!(r.kv("callable").as_deref(), Some("handle_request"));
    assert_eq!(r.kv("request_handler").as_deref(), Some("md-page"));
    assert_eq!(
        r.kv("text").as_deref(),
        Some("raise SystemExit('the page was executed')")
    );
    // Other files there are Apache's, and the mount is untouched.
    stage.write("pages/plain.txt", "plain\n");
    assert_eq!(srv.get("/pages/plain.txt").text(), "plain\n");
    assert_eq!(srv.get("/app/").status, 200);
}

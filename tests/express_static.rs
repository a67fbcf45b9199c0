//! `express start-server` serves a site as mod_wsgi-express does: with `--document-root`, a
//! file that exists there is Apache's (ranges, `Last-Modified`, MIME types) and every other
//! URL goes to the application; `--url-alias` maps a file or a directory, `--directory-index`
//! gives directories to Apache, `--error-document` answers Apache's errors (and with
//! `--error-override` the application's),
//! `--add-handler` serves an extension with a script, `--compress-responses` gzips text but
//! not binary types, `--rewrite-rules` applies before
//! the application, `--directory-listing` lists directories and `--with-cgi` runs `.cgi`
//! files. Driven with curl.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::curl::curl;
use common::express::Express;
use common::{repo_root, Stage};

/// Stages the site app, a document root and an alias directory, and starts express with
/// `args` after the script.
fn site(tag: &str, args: &[&str]) -> Express {
    let stage = Stage::new(tag);
    let script = stage.copy(
        &repo_root().join("tests/apps/site_app.py"),
        "app/wsgi.py",
        0o644,
    );
    stage.write("docs/hello.txt", "hello from the document root\n");
    stage.write("docs/big.txt", &"0123456789".repeat(1000));
    stage.write("docs/sub/index.html", "<p>index</p>\n");
    stage.write("docs/nosub/other.txt", "other\n");
    stage.write("docs/data.foo", "foo data\n");
    stage.write("docs/image.png", &"P".repeat(4000));
    stage.write("assets/logo.txt", "aliased directory file\n");
    // A document-root file at an alias's URL: the alias wins, as under mod_wsgi-express.
    stage.write("docs/assets/logo.txt", "shadowed document-root copy\n");
    stage.write("extra/robots.txt", "User-agent: *\n");
    stage.write("errors/404.html", "<p>custom not found</p>\n");
    stage.write(
        "mime.types",
        "text/plain txt\nimage/png png\napplication/x-rswsgi-foo foo\n",
    );
    stage.write(
        "rewrite.conf",
        "RewriteRule ^/old/(.*)$ /new/$1 [R=302,L]\n",
    );
    stage.write("docs/notes/page.md", "# A page\n");
    stage.write("docs/notes/doc.rst", "A document\n");
    stage.write(
        "handlers/render_md.py",
        "def handle_request(environ, start_response):\n    \
         text = open(environ['SCRIPT_FILENAME']).read()\n    \
         body = ('md via handle_request: %s %s %s' % (environ['SCRIPT_NAME'], \
         environ['mod_wsgi.handler_script'].endswith('.wsgi'), text)).encode()\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body]\n",
    );
    stage.write(
        "handlers/render_rst.py",
        "def application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [b'rst via application: ' + environ['SCRIPT_NAME'].encode()]\n",
    );
    let mut express = Express::start_script(stage, script, args);
    express.wait_serving();
    express
}

#[test]
fn document_root_files_are_apaches_and_every_other_url_the_applications() {
    let express = site(
        "docroot",
        &[
            "--document-root",
            "docs",
            "--url-alias",
            "/assets",
            "assets",
            "--url-alias",
            "/robots.txt",
            "extra/robots.txt",
            "--directory-index",
            "index.html",
            "--error-document",
            "404",
            "/errors/404.html",
            "--url-alias",
            "/errors",
            "errors",
            "--mime-types",
            "mime.types",
            "--error-override",
            "--add-handler",
            ".md",
            "handlers/render_md.py",
            "--add-handler",
            ".rst",
            "handlers/render_rst.py",
        ],
    );
    let dir = &express.stage.dir;
    let logs = || express.logs();
    // --error-override: the application's 404 is answered with the error document; a status
    // without one gets Apache's own page; a success passes as it is.
    let overridden = curl(dir, &express.url("/status/404"), &[]);
    assert_eq!(overridden.status, 404, "{}", logs());
    assert_eq!(
        overridden.text(),
        "<p>custom not found</p>\n",
        "{overridden:?}"
    );
    let plain = curl(dir, &express.url("/status/503"), &[]);
    assert_eq!(plain.status, 503);
    assert!(plain.text().contains("Service Unavailable"), "{plain:?}");
    assert!(!plain.text().contains("own error page"), "{plain:?}");
    // --add-handler: a document-root file with the extension is served by the script's
    // handle_request (else its application), which gets the file as SCRIPT_FILENAME.
    let md = curl(dir, &express.url("/notes/page.md"), &[]);
    assert_eq!(md.status, 200, "{}", logs());
    assert_eq!(
        md.text(),
        "md via handle_request: /notes/page.md True # A page\n"
    );
    let rst = curl(dir, &express.url("/notes/doc.rst"), &[]);
    assert_eq!(
        rst.text(),
        "rst via application: /notes/doc.rst",
        "{}",
        logs()
    );
    // A missing .md is the application's, as any missing file.
    let gone = curl(dir, &express.url("/notes/missing.md"), &[]);
    assert_eq!(gone.kv("PATH_INFO").as_deref(), Some("/notes/missing.md"));
    // The daemon connection is still good: the next requests are answered.
    for _ in 0..3 {
        assert_eq!(curl(dir, &express.url("/status/201"), &[]).status, 201);
    }
    let file = curl(dir, &express.url("/hello.txt"), &[]);
    assert_eq!(file.status, 200, "{}", logs());
    assert_eq!(file.text(), "hello from the document root\n");
    assert!(file.header("last-modified").is_some(), "{file:?}");
    assert_eq!(file.header("content-type"), Some("text/plain"));
    // Apache's own range handling.
    let range = curl(dir, &express.url("/big.txt"), &["-r", "10-19"]);
    assert_eq!(range.status, 206, "{range:?}");
    assert_eq!(range.text(), "0123456789");
    // --mime-types: the given file's types.
    let foo = curl(dir, &express.url("/data.foo"), &[]);
    assert_eq!(foo.header("content-type"), Some("application/x-rswsgi-foo"));
    // Dot segments, raw or encoded, never reach a file outside the document root.
    for url in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc/passwd",
    ] {
        let r = curl(dir, &express.url(url), &["--path-as-is"]);
        assert!(!r.text().contains("root:x:0:0"), "{url}: {r:?}");
    }
    // A missing file, a path below a file, a query: the application.
    for (url, path) in [
        ("/missing/thing", "/missing/thing"),
        ("/hello.txt/more", "/hello.txt/more"),
        ("/hello.txt%3F", "/hello.txt?"),
    ] {
        let app = curl(dir, &express.url(url), &[]);
        assert_eq!(app.status, 200, "{url}: {}", logs());
        assert_eq!(app.kv("PATH_INFO").as_deref(), Some(path), "{url}");
        assert_eq!(app.kv("SCRIPT_NAME").as_deref(), Some(""), "{url}");
    }
    // --directory-index: a directory with the index is Apache's; so is one without (Apache's
    // 404, as under mod_wsgi-express: no listing without --directory-listing).
    let index = curl(dir, &express.url("/sub/"), &[]);
    assert_eq!(index.text(), "<p>index</p>\n", "{}", logs());
    let redirect = curl(dir, &express.url("/sub"), &[]);
    assert_eq!(redirect.status, 301, "mod_dir's trailing-slash redirect");
    let without = curl(dir, &express.url("/nosub/"), &[]);
    assert_eq!(without.status, 404, "{without:?}");
    assert_eq!(
        without.text(),
        "<p>custom not found</p>\n",
        "--error-document"
    );
    // --url-alias: a directory and a single file.
    let aliased = curl(dir, &express.url("/assets/logo.txt"), &[]);
    assert_eq!(aliased.text(), "aliased directory file\n", "{}", logs());
    let robots = curl(dir, &express.url("/robots.txt"), &[]);
    assert_eq!(robots.text(), "User-agent: *\n");
    // --error-document: Apache's own 404 (a missing file under an alias) uses it.
    let missing = curl(dir, &express.url("/assets/nope.txt"), &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "<p>custom not found</p>\n", "{}", logs());
    express.stop();
}

#[test]
fn compression_rewrite_rules_and_cgi() {
    let express = site(
        "compress",
        &[
            "--document-root",
            "docs",
            "--compress-responses",
            "--rewrite-rules",
            "rewrite.conf",
            "--with-cgi",
            "--mime-types",
            "mime.types",
            "--directory-listing",
        ],
    );
    let dir = &express.stage.dir;
    // A CGI script in the document root (written now: the server reads it per request).
    let cgi = dir.join("docs/hello.cgi");
    fs::write(
        &cgi,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\ncgi ran: %s\\n' \"$REQUEST_METHOD\"\n",
    )
    .unwrap();
    fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755)).unwrap();
    let gzip = ["-H", "Accept-Encoding: gzip"];
    let text = curl(dir, &express.url("/big.txt"), &gzip);
    assert_eq!(text.status, 200, "{}", express.logs());
    assert_eq!(text.header("content-encoding"), Some("gzip"), "{text:?}");
    assert!(text.body.len() < 1000, "10000 repetitive bytes compress");
    let app = curl(dir, &express.url("/from/app"), &gzip);
    assert_eq!(app.header("content-encoding"), Some("gzip"), "{app:?}");
    let image = curl(dir, &express.url("/image.png"), &gzip);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(image.header("content-encoding"), None, "{image:?}");
    assert_eq!(image.body.len(), 4000);
    // Without --error-override, the application's error page is what the client gets.
    let own = curl(dir, &express.url("/status/404"), &[]);
    assert_eq!(own.status, 404);
    assert_eq!(own.text(), "the application's own error page\n");
    let rewritten = curl(dir, &express.url("/old/page"), &[]);
    assert_eq!(rewritten.status, 302, "{}", express.logs());
    assert!(
        rewritten
            .header("location")
            .is_some_and(|l| l.ends_with("/new/page")),
        "{rewritten:?}"
    );
    let listing = curl(dir, &express.url("/nosub/"), &[]);
    assert_eq!(listing.status, 200, "{}", express.logs());
    assert!(listing.text().contains("other.txt"), "{listing:?}");
    assert!(listing.text().contains("Index of /nosub"), "{listing:?}");
    let ran = curl(dir, &express.url("/hello.cgi"), &[]);
    assert_eq!(ran.status, 200, "{}", express.logs());
    assert_eq!(ran.text(), "cgi ran: GET\n");
    express.stop();
}

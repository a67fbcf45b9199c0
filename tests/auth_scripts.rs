//! mod_wsgi's auth and dispatch scripts through a real Apache, driven by curl: the `wsgi`
//! authn provider (`WSGIAuthUserScript`, Basic and Digest), the `wsgi-group` authz provider
//! (`WSGIAuthGroupScript`), `WSGIAccessScript` and `WSGIDispatchScript`. Their functions run
//! in a daemon process group, never inside Apache (no httpd process maps libpython).

mod common;

use common::curl::curl;
use common::{procs, Stage, TestServer};

/// Users, passwords and groups; each call notes the process it ran in.
const AUTH: &str = r#"import hashlib, os

USERS = {'alice': ('wonderland', ['staff']), 'bob': ('builder', ['guests']),
         'carol': ('secret', [])}

def note(what):
    with open(os.path.join(os.path.dirname(__file__), 'ran-in'), 'a') as f:
        f.write('%s %d %d\n' % (what, os.getpid(), os.geteuid()))

def check_password(environ, user, password):
    note('check_password')
    assert 'HTTP_AUTHORIZATION' not in environ, 'credentials leaked into the environ'
    if user == 'raise':
        raise RuntimeError('the user database is down')
    if user not in USERS:
        return None
    if user == 'carol' and password == 'secret':
        return 'carol@example.org'
    return USERS[user][0] == password

def get_realm_hash(environ, user, realm):
    note('get_realm_hash')
    if user not in USERS:
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user][0])).encode()).hexdigest()

def groups_for_user(environ, user):
    note('groups_for_user')
    return USERS.get(user, ('', []))[1]
"#;

const WHO: &str = "def application(environ, start_response):\n    \
    body = 'user=%s\\nauth=%s\\n' % (environ.get('REMOTE_USER'), environ.get('AUTH_TYPE'))\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body.encode()]\n";

fn url(srv: &TestServer, path: &str) -> String {
    format!("http://{}{path}", srv.addr)
}

/// The file the scripts note each call in, writable by the daemons' user.
fn ran_in(stage: &Stage) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = stage.write("auth/ran-in", "");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    path
}

/// Every `ran-in` line's pid is a daemon of the server, and no httpd process maps libpython.
fn assert_ran_in_daemons(srv: &TestServer, ran_in: &std::path::Path) {
    let daemons: Vec<i32> = procs::daemons_of(srv.pid(), &srv.bins.daemon)
        .iter()
        .map(|p| p.pid)
        .collect();
    let lines = std::fs::read_to_string(ran_in).expect("the auth script ran");
    for line in lines.lines() {
        let pid: i32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(daemons.contains(&pid), "{line}: not a daemon ({daemons:?})");
    }
    for p in srv.httpd_processes() {
        let maps = procs::maps(p.pid).unwrap_or_default();
        assert!(
            !maps.contains("libpython"),
            "httpd {} maps libpython",
            p.pid
        );
    }
}

#[test]
fn basic_auth_and_groups_are_checked_by_the_scripts_in_a_daemon() {
    require!(venv);
    let stage = Stage::new("authbasic");
    let auth = stage.write("auth/auth.wsgi", AUTH);
    let ran_in = ran_in(&stage);
    let who = stage.write("app/who.wsgi", WHO);
    let files = stage.subdir("files");
    stage.write("files/report.txt", "quarterly numbers\n");
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess authd processes=1 threads=2")
        .directive(&format!(
            "WSGIScriptAlias /staff {} process-group=authd",
            who.display()
        ))
        .directive("<Location /staff>")
        .directive("  AuthType Basic")
        .directive("  AuthName \"Staff only\"")
        .directive("  AuthBasicProvider wsgi")
        .directive(&format!("  WSGIAuthUserScript {}", auth.display()))
        .directive(&format!("  WSGIAuthGroupScript {}", auth.display()))
        .directive("  Require wsgi-group staff admins")
        // An authenticated user outside the groups: 403 (Apache's default is 401).
        .directive("  AuthzSendForbiddenOnFailure On")
        .directive("</Location>")
        // Static files behind a Python user database (the Trac/Mercurial-behind-Django case),
        // with no WSGI application there: process-group= says where the script runs.
        .directive(&format!("Alias /files {}", files.display()))
        .directive(&format!("<Directory {}>", files.display()))
        .directive("  AuthType Basic")
        .directive("  AuthName \"Files\"")
        .directive("  AuthBasicProvider wsgi")
        .directive(&format!(
            "  WSGIAuthUserScript {} process-group=authd",
            auth.display()
        ))
        .directive("  Require valid-user")
        .directive("</Directory>")
        .directive(&format!(
            "WSGIScriptAlias /whoami {} process-group=authd",
            who.display()
        ))
        .directive("<Location /whoami>")
        .directive("  AuthType Basic")
        .directive("  AuthName \"Who\"")
        .directive("  AuthBasicProvider wsgi")
        .directive(&format!("  WSGIAuthUserScript {}", auth.display()))
        .directive("  Require valid-user")
        .directive("</Location>")
        // The provider without its script; an access script without allow_access.
        .directive("<Location /app/noscript>")
        .directive("  AuthType Basic")
        .directive("  AuthName \"No script\"")
        .directive("  AuthBasicProvider wsgi")
        .directive("  Require valid-user")
        .directive("</Location>")
        .directive(&format!("Alias /orphan {}", files.display()))
        .directive("<Location /orphan>")
        .directive(&format!("  WSGIAccessScript {}", auth.display()))
        .directive("</Location>")
        .start();
    let dir = &stage.dir;
    let anonymous = curl(dir, &url(&srv, "/staff/"), &[]);
    assert_eq!(anonymous.status, 401, "{}", srv.logs());
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|h| h.contains("Staff only")),
        "{:?}",
        anonymous.headers
    );
    let alice = curl(dir, &url(&srv, "/staff/"), &["-u", "alice:wonderland"]);
    assert_eq!(alice.status, 200, "{}", srv.logs());
    assert_eq!(alice.kv("user").as_deref(), Some("alice"));
    assert_eq!(alice.kv("auth").as_deref(), Some("Basic"));
    assert_eq!(
        curl(dir, &url(&srv, "/staff/"), &["-u", "alice:wrong"]).status,
        401
    );
    assert_eq!(
        curl(dir, &url(&srv, "/staff/"), &["-u", "mallory:x"]).status,
        401
    );
    // Right password, wrong group.
    assert_eq!(
        curl(dir, &url(&srv, "/staff/"), &["-u", "bob:builder"]).status,
        403
    );
    assert!(
        srv.logs()
            .lines()
            .any(|l| l.contains("RSWSGI0122:") && l.contains("\"bob\"")),
        "{}",
        srv.logs()
    );
    // A script that raises never lets the request through: 500, and its traceback is logged.
    assert_eq!(
        curl(dir, &url(&srv, "/staff/"), &["-u", "raise:x"]).status,
        500
    );
    assert!(
        srv.logs().contains("the user database is down"),
        "{}",
        srv.logs()
    );
    // The module's line about the failed check.
    assert!(srv.logs().contains("RSWSGI0120:"), "{}", srv.logs());
    let noscript = url(&srv, "/app/noscript");
    assert_ne!(
        curl(dir, &noscript, &["-u", "alice:wonderland"]).status,
        200
    );
    assert!(srv.logs().contains("RSWSGI0121:"), "{}", srv.logs());
    let orphan = url(&srv, "/orphan/report.txt");
    assert_eq!(curl(dir, &orphan, &[]).status, 500, "{}", srv.logs());
    // It runs in the server's implicit group, where the daemon finds no allow_access.
    assert!(
        srv.logs().lines().any(|l| l.contains("RSWSGI0507:")
            && l.contains("allow_access")
            && l.contains("/orphan/report.txt")),
        "{}",
        srv.logs()
    );

    let file = url(&srv, "/files/report.txt");
    assert_eq!(curl(dir, &file, &[]).status, 401);
    let bob = curl(dir, &file, &["-u", "bob:builder"]);
    assert_eq!(
        (bob.status, bob.text()),
        (200, "quarterly numbers\n".into())
    );
    // check_password may rename the user: Apache's REMOTE_USER becomes the name it returned.
    let carol = curl(dir, &url(&srv, "/whoami"), &["-u", "carol:secret"]);
    assert_eq!(carol.status, 200, "{}", srv.logs());
    assert_eq!(carol.kv("user").as_deref(), Some("carol@example.org"));
    assert_ran_in_daemons(&srv, &ran_in);
}

#[test]
fn digest_auth_uses_get_realm_hash() {
    require!(venv);
    let stage = Stage::new("authdigest");
    let auth = stage.write("auth/auth.wsgi", AUTH);
    let ran_in = ran_in(&stage);
    let who = stage.write("app/who.wsgi", WHO);
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("<IfModule !auth_digest_module>")
        .directive("  LoadModule auth_digest_module /usr/lib/apache2/modules/mod_auth_digest.so")
        .directive("</IfModule>")
        .directive("WSGIDaemonProcess authd processes=1 threads=2")
        .directive(&format!(
            "WSGIScriptAlias /private {} process-group=authd",
            who.display()
        ))
        .directive("<Location /private>")
        .directive("  AuthType Digest")
        .directive("  AuthName \"Private\"")
        .directive("  AuthDigestProvider wsgi")
        .directive(&format!("  WSGIAuthUserScript {}", auth.display()))
        .directive("  Require valid-user")
        .directive("</Location>")
        .start();
    let dir = &stage.dir;
    let u = url(&srv, "/private/");
    let ok = curl(dir, &u, &["--digest", "-u", "alice:wonderland"]);
    assert_eq!(ok.status, 200, "{}", srv.logs());
    assert_eq!(ok.kv("user").as_deref(), Some("alice"));
    assert_eq!(ok.kv("auth").as_deref(), Some("Digest"));
    assert_eq!(curl(dir, &u, &["--digest", "-u", "alice:nope"]).status, 401);
    assert_eq!(curl(dir, &u, &["--digest", "-u", "nobody:x"]).status, 401);
    let ran = std::fs::read_to_string(&ran_in).unwrap();
    assert!(ran.contains("get_realm_hash"), "{ran}");
    assert!(!ran.contains("check_password"), "{ran}");
}

const ACCESS: &str = "def allow_access(environ, host):\n    \
    if environ.get('HTTP_X_VERDICT') == 'deny':\n        return False\n    \
    if environ.get('HTTP_X_VERDICT') == 'none':\n        return None\n    \
    if environ.get('HTTP_X_VERDICT') == 'junk':\n        return 'yes'\n    \
    return host == '127.0.0.1'\n";

#[test]
fn an_access_script_decides_who_may_enter() {
    require!(venv);
    let stage = Stage::new("access");
    let access = stage.write("auth/access.wsgi", ACCESS);
    let who = stage.write("app/who.wsgi", WHO);
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess authd processes=1 threads=2")
        .directive(&format!(
            "WSGIScriptAlias /inside {} process-group=authd",
            who.display()
        ))
        .directive("<Location /inside>")
        .directive(&format!("  WSGIAccessScript {}", access.display()))
        .directive("  Require all granted")
        .directive("</Location>")
        .start();
    let dir = &stage.dir;
    let u = url(&srv, "/inside/");
    assert_eq!(curl(dir, &u, &[]).status, 200, "{}", srv.logs());
    assert_eq!(curl(dir, &u, &["-H", "X-Verdict: deny"]).status, 403);
    assert!(srv.logs().contains("RSWSGI0123:"), "{}", srv.logs());
    // None: no opinion, Apache's own rules decide (here: granted).
    assert_eq!(curl(dir, &u, &["-H", "X-Verdict: none"]).status, 200);
    // A wrong answer is an error, never an open door.
    assert_eq!(curl(dir, &u, &["-H", "X-Verdict: junk"]).status, 500);
    assert!(
        srv.logs().contains("must return True, False or None"),
        "{}",
        srv.logs()
    );
}

const ROUTED: &str = "import os\n\ndef application(environ, start_response):\n    \
    body = 'group=%s\\napp_group=%s\\ncallable=%s\\npid=%d\\n' % (environ['mod_wsgi.process_group'], \
    environ['mod_wsgi.application_group'], environ['mod_wsgi.callable_object'], os.getpid())\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [body.encode()]\n\n\
other = application\n";

const DISPATCH: &str = "def process_group(environ):\n    \
    if environ['PATH_INFO'].startswith('/two'):\n        return 'two'\n    return None\n\n\
def application_group(environ):\n    return 'chosen-' + environ['SERVER_NAME']\n\n\
def callable_object(environ):\n    \
    return 'other' if 'other' in environ.get('QUERY_STRING', '') else None\n";

#[test]
fn a_dispatch_script_routes_requests_to_daemon_groups() {
    require!(venv);
    let stage = Stage::new("dispatch");
    let app = stage.write("app/routed.wsgi", ROUTED);
    let dispatch = stage.write("app/dispatch.wsgi", DISPATCH);
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess one processes=1 threads=2")
        .directive("WSGIDaemonProcess two processes=1 threads=2")
        .directive(&format!("WSGIScriptAlias /routed {}", app.display()))
        .directive("<Location /routed>")
        .directive("  WSGIProcessGroup one")
        .directive(&format!("  WSGIDispatchScript {}", dispatch.display()))
        .directive("  Require all granted")
        .directive("</Location>")
        .directive(&format!("WSGIScriptAlias /limited {}", app.display()))
        .directive("<Location /limited>")
        .directive("  WSGIProcessGroup one")
        .directive(&format!("  WSGIDispatchScript {}", dispatch.display()))
        .directive("  WSGIRestrictProcess one")
        .directive("  Require all granted")
        .directive("</Location>")
        .start();
    let dir = &stage.dir;
    // WSGIRestrictProcess holds whatever the dispatch script says.
    assert_eq!(
        curl(dir, &url(&srv, "/limited/one"), &[]).status,
        200,
        "{}",
        srv.logs()
    );
    assert_eq!(curl(dir, &url(&srv, "/limited/two"), &[]).status, 500);
    assert!(
        srv.logs()
            .lines()
            .any(|l| l.contains("RSWSGI0112:") && l.contains("'two'")),
        "{}",
        srv.logs()
    );
    let one = curl(dir, &url(&srv, "/routed/one"), &[]);
    assert_eq!(one.status, 200, "{}", srv.logs());
    assert_eq!(one.kv("group").as_deref(), Some("one"));
    let two = curl(dir, &url(&srv, "/routed/two"), &[]);
    assert_eq!(two.status, 200, "{}", srv.logs());
    assert_eq!(two.kv("group").as_deref(), Some("two"));
    assert_ne!(one.kv("pid"), two.kv("pid"), "two groups, two processes");
    assert!(
        two.kv("app_group").unwrap().starts_with("chosen-"),
        "{}",
        two.text()
    );
    assert_eq!(two.kv("callable").as_deref(), Some("application"));
    let other = curl(dir, &url(&srv, "/routed/two?other"), &[]);
    assert_eq!(
        other.kv("callable").as_deref(),
        Some("other"),
        "{}",
        srv.logs()
    );
}

/// What a `.htaccess` may not do: name a script for a daemon group to run. Under mod_wsgi it
/// ran as Apache's user; here it would run as the group's, so only scripts the group may load
/// (named in the server's configuration, or under its directories) are run.
#[test]
fn an_auth_script_named_in_htaccess_is_not_run_by_a_daemon() {
    require!(venv);
    let stage = Stage::new("authhtaccess");
    let ran_in = ran_in(&stage);
    let evil = stage.write(
        "upload/evil.wsgi",
        &AUTH.replace("return USERS[user][0] == password", "return True"),
    );
    let site = stage.subdir("site");
    stage.write("site/index.txt", "members only\n");
    stage.write(
        "site/.htaccess",
        &format!(
            "AuthType Basic\nAuthName \"Site\"\nAuthBasicProvider wsgi\n\
             WSGIAuthUserScript {} process-group=authd\nRequire valid-user\n",
            evil.display()
        ),
    );
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess authd processes=1 threads=2")
        .directive(&format!("Alias /site {}", site.display()))
        .directive(&format!("<Directory {}>", site.display()))
        .directive("  AllowOverride AuthConfig")
        .directive("</Directory>")
        .start();
    let r = curl(
        &stage.dir,
        &url(&srv, "/site/index.txt"),
        &["-u", "alice:anything"],
    );
    assert_eq!(r.status, 500, "{}", srv.logs());
    assert!(srv.logs().contains("evil.wsgi"), "{}", srv.logs());
    let ran = std::fs::read_to_string(&ran_in).unwrap();
    assert!(ran.is_empty(), "the .htaccess script ran: {ran}");
    // Without credentials Apache asks for them, as with any provider.
    assert_eq!(
        curl(&stage.dir, &url(&srv, "/site/index.txt"), &[]).status,
        401
    );
}

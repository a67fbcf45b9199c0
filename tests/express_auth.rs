//! `express start-server` with mod_wsgi-express's access-control options, driven with curl:
//! `--auth-user-script`, `--auth-type`, `--auth-group-script`, `--auth-group` and
//! `--host-access-script`. The scripts run in the site's daemon group.

mod common;

use common::curl::curl;
use common::express::Express;
use common::Stage;

const APP: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [('user=%s\\n' % environ.get('REMOTE_USER')).encode()]\n";

const AUTH: &str = "import hashlib\n\
USERS = {'alice': ('wonderland', ['editors']), 'bob': ('builder', [])}\n\n\
def check_password(environ, user, password):\n    \
    return USERS[user][0] == password if user in USERS else None\n\n\
def get_realm_hash(environ, user, realm):\n    \
    if user not in USERS:\n        return None\n    \
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user][0])).encode()).hexdigest()\n\n\
def groups_for_user(environ, user):\n    return USERS.get(user, ('', []))[1]\n";

const ACCESS: &str = "def allow_access(environ, host):\n    \
    return environ.get('HTTP_X_BLOCK') is None\n";

#[test]
fn auth_user_and_group_scripts_guard_the_site() {
    let stage = Stage::new("xauth");
    let auth = stage.write("app/auth.py", AUTH);
    let access = stage.write("app/access.py", ACCESS);
    let script = stage.write("app/wsgi.py", APP);
    let args = [
        "--auth-user-script",
        auth.to_str().unwrap(),
        "--auth-group-script",
        auth.to_str().unwrap(),
        "--auth-group",
        "editors",
        "--host-access-script",
        access.to_str().unwrap(),
    ];
    let mut express = Express::start_script(stage, script, &args);
    express.wait_serving();
    let (dir, url) = (express.stage.dir.clone(), express.url("/"));
    assert_eq!(curl(&dir, &url, &[]).status, 401, "{}", express.logs());
    let alice = curl(&dir, &url, &["-u", "alice:wonderland"]);
    assert_eq!(alice.status, 200, "{}", express.logs());
    assert_eq!(alice.text(), "user=alice\n");
    assert_eq!(curl(&dir, &url, &["-u", "alice:nope"]).status, 401);
    // Authenticated, but not in --auth-group.
    assert_eq!(curl(&dir, &url, &["-u", "bob:builder"]).status, 401);
    let blocked = curl(&dir, &url, &["-u", "alice:wonderland", "-H", "X-Block: 1"]);
    assert_eq!(blocked.status, 403);
    express.stop();
}

#[test]
fn auth_type_digest_uses_the_realm_hash() {
    let stage = Stage::new("xdigest");
    let auth = stage.write("app/auth.py", AUTH);
    let script = stage.write("app/wsgi.py", APP);
    let args = [
        "--auth-user-script",
        auth.to_str().unwrap(),
        "--auth-type",
        "Digest",
    ];
    let mut express = Express::start_script(stage, script, &args);
    express.wait_serving();
    let (dir, url) = (express.stage.dir.clone(), express.url("/"));
    let ok = curl(&dir, &url, &["--digest", "-u", "bob:builder"]);
    assert_eq!(ok.status, 200, "{}", express.logs());
    assert_eq!(ok.text(), "user=bob\n");
    assert_eq!(curl(&dir, &url, &["--digest", "-u", "bob:x"]).status, 401);
    express.stop();
}

#[test]
fn a_group_script_without_a_user_script_is_refused() {
    let stage = Stage::new("xauthbad");
    let auth = stage.write("app/auth.py", AUTH);
    let script = stage.write("app/wsgi.py", APP);
    let args = ["--auth-group-script", auth.to_str().unwrap()];
    let mut express = Express::start_script(stage, script, &args);
    let status = express.wait_exit(std::time::Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{}", express.logs());
    assert!(
        express.stderr().contains("needs --auth-user-script"),
        "{}",
        express.logs()
    );
}

//! mod_wsgi directive forms a real site uses, through a real Apache: `WSGIScriptAlias` with a
//! directory target (each file its own application: `SCRIPT_NAME` the file's URL, 404 for a
//! missing file, 403 for the directory); `AddHandler wsgi-script` (in the configuration or
//! `.htaccess`), which needs `Options ExecCGI` as under mod_wsgi; the server-wide Python
//! settings and `WSGIImportScript`; `WSGIScriptAliasMatch` with captures; `WSGIDaemonProcess`
//! supplementary-groups, virtual-memory-limit and cpu-priority.

mod common;

use common::{procs, Stage, TestServer};

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
    require!(venv);
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

const FLAGS_APP: &str = "import os, sys\n\n\
def application(environ, start_response):\n    \
    try:\n        sys.stdin.read()\n        stdin = 'readable'\n    \
    except OSError as e:\n        stdin = str(e)\n    \
    lines = ['optimize=%d' % sys.flags.optimize, 'dont_write_bytecode=%s' % sys.dont_write_bytecode,\n             \
    'hash_seed=%s' % os.environ.get('PYTHONHASHSEED'), 'warnoptions=%s' % ','.join(sys.warnoptions),\n             \
    'preloaded=%s' % os.environ.get('RSWSGI_PRELOADED_BY'), 'pid=%d' % os.getpid(), 'stdin=%s' % stdin,\n             \
    'app_group=%s' % environ['mod_wsgi.application_group']]\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('\\n'.join(lines) + '\\n').encode()]\n";

#[test]
fn python_settings_and_import_scripts() {
    require!(venv);
    let stage = Stage::new("pyflags");
    let app = stage.write("flags/app.py", FLAGS_APP);
    let app2 = stage.write("flags/app2.py", FLAGS_APP);
    let preload = stage.write(
        "flags/preload.py",
        "import os\nos.environ['RSWSGI_PRELOADED_BY'] = str(os.getpid())\n",
    );
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIPythonOptimize 1")
        .directive("WSGIDontWriteBytecode On")
        .directive("WSGIPythonHashSeed 123")
        .directive("WSGIPythonWarnings ignore::DeprecationWarning")
        .directive("WSGIVerboseDebugging On")
        .directive("WSGIDaemonProcess flags processes=1 threads=1")
        .directive(&format!(
            "WSGIImportScript {} process-group=flags application-group=%{{GLOBAL}}",
            preload.display()
        ))
        .directive(&format!(
            "WSGIScriptAlias /flags {} process-group=flags",
            app.display()
        ))
        .directive(&format!(
            "WSGIScriptAlias /env {} process-group=flags application-group=%{{ENV:SITE}}",
            app2.display()
        ))
        .directive("SetEnv SITE blue")
        .directive(&format!("<Directory {}>", app.parent().unwrap().display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let r = srv.get("/flags");
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(r.kv("optimize").as_deref(), Some("1"), "{}", r.text());
    assert_eq!(r.kv("dont_write_bytecode").as_deref(), Some("True"));
    assert_eq!(r.kv("hash_seed").as_deref(), Some("123"));
    assert_eq!(
        r.kv("warnoptions").as_deref(),
        Some("ignore::DeprecationWarning")
    );
    // The import script ran in this very process, at its start.
    assert_eq!(r.kv("preloaded"), r.kv("pid"), "{}", r.text());
    // mod_wsgi's application groups: %{RESOURCE} by default (host:port|SCRIPT_NAME), and
    // %{ENV:NAME}; two scripts sharing the group's interpreter are warned about.
    let port = srv.addr.port();
    assert_eq!(r.kv("app_group"), Some(format!("127.0.0.1:{port}|/flags")));
    assert_eq!(srv.get("/env").kv("app_group").as_deref(), Some("blue"));
    assert!(
        srv.logs().contains("daemon group 'flags' serves") && srv.logs().contains("app2.py"),
        "{}",
        srv.logs()
    );
    // As mod_wsgi's default (WSGIRestrictStdin unset), sys.stdin is the process's own:
    // httpd's, /dev/null here.
    assert_eq!(r.kv("stdin").as_deref(), Some("readable"));
    // WSGIVerboseDebugging On: the daemons' debug lines are in the error log.
    assert!(srv.logs().contains("[wsgi:debug]"), "{}", srv.logs());
}

#[test]
fn add_handler_wsgi_script_needs_exec_cgi_and_works_from_htaccess() {
    require!(venv);
    let stage = Stage::new("addhandler");
    let mut dirs = Vec::new();
    for name in ["plain", "execcgi", "htaccess"] {
        dirs.push(stage.subdir(name));
        stage.write(&format!("{name}/app.wsgi"), &script(name));
    }
    stage.write(
        "htaccess/.htaccess",
        "AddHandler wsgi-script .wsgi\nOptions +ExecCGI\n",
    );
    let mut builder = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess scripts processes=1 threads=2");
    for (dir, extra) in dirs.iter().zip([
        "AddHandler wsgi-script .wsgi",
        "AddHandler wsgi-script .wsgi\n  Options +ExecCGI",
        "AllowOverride FileInfo Options",
    ]) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        builder = builder
            .directive(&format!("Alias /{name} {}", dir.display()))
            .directive(&format!("<Directory {}>", dir.display()))
            .directive("  WSGIProcessGroup scripts")
            .directive(&format!("  {extra}"))
            .directive("  Require all granted")
            .directive("</Directory>");
    }
    let srv = builder.start();
    // Without Options ExecCGI mod_wsgi refuses to run the file, and so does rswsgi.
    let plain = srv.get("/plain/app.wsgi");
    assert_eq!(plain.status, 403, "{}", srv.logs());
    assert!(srv.logs().contains("RSWSGI0118: Options ExecCGI is off"));
    let ok = srv.get("/execcgi/app.wsgi/more");
    assert_eq!(ok.status, 200, "{}", srv.logs());
    assert_eq!(
        ok.text(),
        "execcgi SCRIPT_NAME=/execcgi/app.wsgi PATH_INFO=/more"
    );
    assert_eq!(srv.get("/execcgi/missing.wsgi").status, 404);
    // The same from .htaccess (AllowOverride FileInfo Options).
    let from_htaccess = srv.get("/htaccess/app.wsgi");
    assert_eq!(from_htaccess.status, 200, "{}", srv.logs());
    assert_eq!(
        from_htaccess.text(),
        "htaccess SCRIPT_NAME=/htaccess/app.wsgi PATH_INFO="
    );
}

#[test]
fn daemon_options_supplementary_groups_memory_limit_and_priority() {
    require!(root);
    require!(venv);
    let users = nix::unistd::Group::from_name("users")
        .unwrap()
        .expect("Debian's users group");
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .daemon_option("supplementary-groups=users")
        .daemon_option("virtual-memory-limit=4000000000")
        .daemon_option("cpu-priority=5")
        .start();
    assert_eq!(srv.get("/").status, 200, "{}", srv.logs());
    let daemons = procs::daemons_of(srv.pid(), &srv.bins.daemon);
    assert!(!daemons.is_empty(), "{}", srv.logs());
    for d in daemons {
        let groups = procs::status_ids(d.pid, "Groups").unwrap_or_default();
        assert!(groups.contains(&users.gid.as_raw()), "{groups:?}");
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid)).unwrap();
        let address = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .unwrap();
        assert!(address.contains("4000000000"), "{address}");
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", d.pid)).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        // Field 19 of stat is the nice value; after the command name it is the 17th.
        let nice = after_comm.split_whitespace().nth(16);
        assert_eq!(nice, Some("5"), "{stat}");
    }
}

#[test]
fn script_alias_match_mounts_the_scripts_its_captures_name() {
    require!(venv);
    let stage = Stage::new("aliasmatch");
    let apps = stage.subdir("apps");
    stage.write("apps/blog/wsgi.py", &script("blog"));
    stage.write("apps/shop/wsgi.py", &script("shop"));
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess matched processes=1 threads=2")
        .directive(&format!(
            "WSGIScriptAliasMatch ^/sites/([^/]+) {}/$1/wsgi.py process-group=matched",
            apps.display()
        ))
        .directive(&format!("<Directory {}>", apps.display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let blog = srv.get("/sites/blog/posts/1");
    assert_eq!(blog.status, 200, "{}", srv.logs());
    assert_eq!(
        blog.text(),
        "blog SCRIPT_NAME=/sites/blog PATH_INFO=/posts/1"
    );
    let shop = srv.get("/sites/shop");
    assert_eq!(
        shop.text(),
        "shop SCRIPT_NAME=/sites/shop PATH_INFO=",
        "{}",
        srv.logs()
    );
    assert_eq!(srv.get("/sites/nothing/x").status, 404);
    assert_eq!(srv.get("/app/").status, 200);
}

/// The system calls Apache's children make while `request` runs, as strace sees them
/// (`calls`, comma-separated, every thread of every child).
fn traced_calls(srv: &TestServer, calls: &str, request: impl FnOnce()) -> String {
    use std::process::{Command, Stdio};
    let out = std::env::temp_dir().join(format!("rswsgi-strace-{}", std::process::id()));
    let children: Vec<i32> = srv
        .httpd_processes()
        .iter()
        .map(|p| p.pid)
        .filter(|&pid| pid != srv.pid())
        .collect();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
        .arg(&out);
    for pid in &children {
        cmd.args(["-p", &pid.to_string()]);
    }
    let mut strace = cmd
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (make setup installs it)");
    let attached = procs::wait_until(std::time::Duration::from_secs(10), || {
        children.iter().all(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| {
                    s.lines()
                        .any(|l| l.starts_with("TracerPid:") && l.trim() != "TracerPid:\t0")
                })
                .unwrap_or(false)
        })
    });
    assert!(attached, "strace did not attach to {children:?}");
    request();
    // SAFETY: SIGINT to the strace this function started, by its pid.
    unsafe { libc::kill(strace.id() as i32, libc::SIGINT) };
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    text
}

#[test]
fn wsgi_enable_sendfile_decides_how_apache_sends_a_file_wrapper() {
    require!(venv);
    let data: String = (0..8192).map(|i| format!("{i:07}\n")).collect();
    let srv = TestServer::builder("tests/apps/file_wrapper.py")
        .mount_point("/app")
        .beside("data.bin", &data)
        .directive("<Location /app/off>")
        .directive("  WSGIEnableSendfile Off")
        .directive("</Location>")
        .directive("<Location /app/on>")
        .directive("  WSGIEnableSendfile On")
        .directive("</Location>")
        .start();
    for (path, sendfile) in [("/app/off", false), ("/app/on", true)] {
        let mut body = String::new();
        let calls = traced_calls(&srv, "sendfile,sendfile64", || {
            let r = srv.get(path);
            assert_eq!(r.status, 200, "{}", srv.logs());
            body = r.text();
        });
        assert_eq!(body.len(), data.len(), "{path}");
        assert!(body == data, "{path}: the body differs from the file");
        assert_eq!(calls.contains("sendfile"), sendfile, "{path}: {calls}");
    }
}

/// mod_wsgi's "The Apache Way" in embedded mode: `AddHandler wsgi-script .wsgi` with
/// `Options ExecCGI` in a `<Directory>`, and no `WSGIProcessGroup` anywhere. The server gets
/// its implicit daemon group for them, which may load the files of that directory only.
#[test]
fn add_handler_without_a_process_group_is_served_by_the_implicit_group() {
    require!(venv);
    let stage = Stage::new("addhandlerembedded");
    let site = stage.subdir("site");
    stage.write("site/hello.wsgi", &script("hello"));
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive(&format!("Alias /site {}", site.display()))
        .directive(&format!("<Directory {}>", site.display()))
        .directive("  Options +ExecCGI")
        .directive("  AddHandler wsgi-script .wsgi")
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    let r = srv.get("/site/hello.wsgi/x");
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(r.text(), "hello SCRIPT_NAME=/site/hello.wsgi PATH_INFO=/x");
    let logs = srv.logs();
    assert!(
        logs.contains("AddHandler wsgi-script .wsgi (at ")
            && logs.contains("has no daemon process group"),
        "{logs}"
    );
    let implicit = procs::daemons_of(srv.pid(), &srv.bins.daemon)
        .iter()
        .any(|p| {
            let argv = std::fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
            String::from_utf8_lossy(&argv).contains("embedded:")
        });
    assert!(implicit, "no implicit group");
}

/// `%{GLOBAL}` as a process group (mod_wsgi's embedded mode) means the server's implicit
/// daemon group wherever it is written, even under a server-wide `WSGIProcessGroup`.
#[test]
fn process_group_global_means_the_implicit_group_everywhere() {
    require!(venv);
    let stage = Stage::new("globalgroup");
    let probe = "import os\n\ndef application(environ, start_response):\n    \
        start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
        return [environ['mod_wsgi.process_group'].encode()]\n\n\
        def handle_request(environ, start_response):\n    return application(environ, start_response)\n";
    let a = stage.write("site/a.wsgi", probe);
    let b = stage.write("site/b.wsgi", probe);
    let pages = stage.subdir("pages");
    stage.write("pages/x.page", "page\n");
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess named processes=1 threads=2")
        .directive("WSGIProcessGroup named")
        .directive(&format!("WSGIScriptAlias /a {}", a.display()))
        .directive(&format!("WSGIScriptAlias /b {}", b.display()))
        .directive("<Location /b>")
        .directive("  WSGIProcessGroup %{GLOBAL}")
        .directive("</Location>")
        .directive(&format!(
            "WSGIHandlerScript page-handler {} process-group=%{{GLOBAL}}",
            b.display()
        ))
        .directive(&format!("Alias /pages {}", pages.display()))
        .directive(&format!("<Directory {}>", pages.display()))
        .directive("  AddHandler page-handler .page")
        .directive("  Require all granted")
        .directive("</Directory>")
        .directive(&format!("<Directory {}>", a.parent().unwrap().display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    assert_eq!(srv.get("/a").text(), "named", "{}", srv.logs());
    let embedded = srv.get("/b");
    assert_eq!(embedded.status, 200, "{}", srv.logs());
    assert!(
        embedded.text().starts_with("embedded:"),
        "{}",
        embedded.text()
    );
    let page = srv.get("/pages/x.page");
    assert_eq!(page.status, 200, "{}", srv.logs());
    assert!(page.text().starts_with("embedded:"), "{}", page.text());
}

/// `WSGIIgnoreActivity On`: requests there (a health check) do not keep a daemon from its
/// `inactivity-timeout`, while requests elsewhere do.
#[test]
fn ignore_activity_lets_inactivity_timeout_recycle_a_polled_daemon() {
    require!(venv);
    let stage = Stage::new("ignoreactivity");
    let app = stage.write(
        "site/pid.wsgi",
        "import os\n\ndef application(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [str(os.getpid()).encode()]\n",
    );
    let srv = TestServer::builder("tests/apps/site_probe.py")
        .mount_point("/app")
        .directive("WSGIDaemonProcess idle processes=1 threads=2 inactivity-timeout=2")
        .directive(&format!(
            "WSGIScriptAlias /busy {} process-group=idle",
            app.display()
        ))
        .directive(&format!(
            "WSGIScriptAlias /healthz {} process-group=idle",
            app.display()
        ))
        .directive("<Location /healthz>")
        .directive("  WSGIIgnoreActivity On")
        .directive("</Location>")
        .directive(&format!("<Directory {}>", app.parent().unwrap().display()))
        .directive("  Require all granted")
        .directive("</Directory>")
        .start();
    // Polled every 0.3 s for 4 s, each path: only the ignored one lets the process go.
    let poll = |path: &str| {
        let first = srv.get(path).text();
        let mut pids = vec![first];
        for _ in 0..13 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let r = srv.get(path);
            assert_eq!(r.status, 200, "{}", srv.logs());
            pids.push(r.text());
        }
        pids.dedup();
        pids
    };
    let busy = poll("/busy");
    assert_eq!(
        busy.len(),
        1,
        "recycled while busy: {busy:?}\n{}",
        srv.logs()
    );
    let healthz = poll("/healthz");
    assert!(
        healthz.len() > 1,
        "never recycled: {healthz:?}\n{}",
        srv.logs()
    );
    assert!(
        srv.logs().contains("inactivity-timeout (2s) reached"),
        "{}",
        srv.logs()
    );
}

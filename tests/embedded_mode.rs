//! An embedded-mode mod_wsgi configuration runs unchanged: the vhost lines of Django's
//! deployment guide ("How to use Django with Apache and mod_wsgi"), byte for byte apart from
//! the paths, serve a real Django project made with `django-admin startproject`. Its mount has
//! no daemon group, so an implicit daemon group serves it, as Apache's `User`, and Python
//! stays out of Apache.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{procs, Stage, TestServer};

#[test]
fn the_django_guides_embedded_mode_config_serves_a_django_project() {
    let venv = require!(venv);
    let stage = Stage::new("django");
    let project = common::django_startproject(&stage, &venv);
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&project)
        .status()
        .unwrap();
    assert!(chmod.success());
    let (site, venv_s) = (project.display().to_string(), venv.display().to_string());
    // The guide's lines (Django 5.2 docs, howto/deployment/wsgi/modwsgi), paths replaced.
    let guide = [
        format!("WSGIScriptAlias / {site}/mysite/wsgi.py"),
        format!("WSGIPythonHome {venv_s}"),
        format!("WSGIPythonPath {site}"),
        String::new(),
        format!("<Directory {site}/mysite>"),
        "<Files wsgi.py>".to_owned(),
        "Require all granted".to_owned(),
        "</Files>".to_owned(),
        "</Directory>".to_owned(),
    ];
    // express's own app moves aside, so that the guide's mount at / is what answers.
    let mut builder = TestServer::builder("tests/apps/site_probe.py").mount_point("/express-app");
    for line in &guide {
        builder = builder.directive(line);
    }
    let srv = builder.start();
    let home = srv.get("/");
    assert_eq!(home.status, 200, "{}", srv.logs());
    assert!(
        home.text().contains("The install worked successfully!"),
        "Django's welcome page: {}",
        home.text()
    );
    let login = srv.get("/admin/login/");
    assert_eq!(login.status, 200, "{}", srv.logs());
    assert!(
        login.text().contains("csrfmiddlewaretoken"),
        "{}",
        login.text()
    );
    assert!(srv.logs().contains(&format!(
        "WSGIScriptAlias / {site}/mysite/wsgi.py has no daemon process group"
    )));
    // Served by the implicit group's daemons (2 of them by default), not by Apache.
    let implicit = || {
        procs::daemons_of(srv.pid(), &srv.bins.daemon)
            .iter()
            .filter(|p| {
                let argv = std::fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
                String::from_utf8_lossy(&argv).contains("embedded:")
            })
            .count()
    };
    let daemons = procs::wait_until(Duration::from_secs(10), || implicit() == 2);
    assert!(
        daemons,
        "{:?}",
        procs::daemons_of(srv.pid(), &srv.bins.daemon)
    );
    // As Apache's User: the same uid as Apache's children.
    let child_uid = srv
        .httpd_processes()
        .iter()
        .filter(|p| p.pid != srv.pid())
        .find_map(|p| procs::status_ids(p.pid, "Uid"))
        .map(|ids| ids[0]);
    for d in procs::daemons_of(srv.pid(), &srv.bins.daemon) {
        let uid = procs::status_ids(d.pid, "Uid").map(|ids| ids[0]);
        assert_eq!(uid, child_uid, "daemon {} runs as another user", d.pid);
    }
    for p in srv.httpd_processes() {
        let maps = procs::maps(p.pid).unwrap_or_default();
        assert!(
            !maps.contains("libpython"),
            "httpd {} maps libpython",
            p.pid
        );
    }
    srv.stop();
}

/// The directives Debian's `libapache2-mod-wsgi-py3` (4.9.4-1) documents in its
/// `/etc/apache2/mods-available/wsgi.conf`, uncommented with its example values (paths
/// replaced), inside the file's own `<IfModule mod_wsgi.c>`: after the `LoadModule` swap the
/// section still applies, and an embedded-mode mount served next to it sees its settings.
#[test]
fn debians_wsgi_conf_examples_apply_after_the_loadmodule_swap() {
    require!(venv);
    let stage = Stage::new("debianconf");
    let lib = stage.subdir("lib");
    stage.write("lib/helper.py", "GREETING = 'from WSGIPythonPath'\n");
    let eggs = stage.subdir("eggs");
    let preload = stage.write(
        "preload.py",
        "import builtins\nbuiltins.RSWSGI_PRELOADED = 'preloaded'\n",
    );
    let app = stage.write(
        "site/app.wsgi",
        "import builtins, sys\nimport helper\n\n\
         def refused(use):\n    try:\n        use()\n        return 'allowed'\n    \
         except OSError as e:\n        return str(e)\n\n\
         def application(environ, start_response):\n    \
         body = '%s\\n%s\\noptimize=%d\\n%s\\n%s\\n' % (helper.GREETING, \
         getattr(builtins, 'RSWSGI_PRELOADED', 'not preloaded'), sys.flags.optimize, \
         refused(lambda: sys.stdin.read()), refused(lambda: print('to stdout')))\n    \
         start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
         return [body.encode()]\n",
    );
    let conf = [
        "<IfModule mod_wsgi.c>".to_owned(),
        format!("    WSGISocketPrefix {}/wsgi", stage.dir.display()),
        "    WSGIPythonOptimize 0".to_owned(),
        format!("    WSGIPythonPath {}", lib.display()),
        format!("    WSGIPythonEggs {}", eggs.display()),
        "    WSGIRestrictEmbedded Off".to_owned(),
        "    WSGIRestrictStdin On".to_owned(),
        "    WSGIRestrictStdout On".to_owned(),
        "    WSGIRestrictSignal On".to_owned(),
        "    WSGIAcceptMutex default".to_owned(),
        format!(
            "    WSGIImportScript {} process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}",
            preload.display()
        ),
        "    WSGILazyInitialization On".to_owned(),
        "</IfModule>".to_owned(),
        format!("WSGIScriptAlias /debian {}", app.display()),
        format!("<Directory {}>", app.parent().unwrap().display()),
        "    Require all granted".to_owned(),
        "</Directory>".to_owned(),
    ];
    let mut builder = TestServer::builder("tests/apps/site_probe.py").mount_point("/app");
    for line in &conf {
        builder = builder.directive(line);
    }
    let srv = builder.start();
    let r = srv.get("/debian");
    assert_eq!(r.status, 200, "{}", srv.logs());
    assert_eq!(
        r.text(),
        "from WSGIPythonPath\npreloaded\noptimize=0\n\
         sys.stdin access restricted by mod_wsgi\nsys.stdout access restricted by mod_wsgi\n",
        "{}",
        srv.logs()
    );
    let logs = srv.logs();
    for warned in [
        "WSGIAcceptMutex",
        "WSGILazyInitialization",
        "WSGIPythonEggs",
    ] {
        assert!(
            logs.contains(&format!("{warned} is accepted and does nothing")),
            "{warned}: {logs}"
        );
    }
    let socket_dir = std::fs::read_dir(&stage.dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("wsgi."));
    assert!(
        socket_dir,
        "no socket under the WSGISocketPrefix {}",
        stage.dir.display()
    );
    srv.stop();
}

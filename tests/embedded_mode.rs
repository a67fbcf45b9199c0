//! An embedded-mode mod_wsgi configuration runs unchanged: the vhost lines of Django's
//! deployment guide ("How to use Django with Apache and mod_wsgi"), byte for byte apart from
//! the paths, serve a real Django project made with `django-admin startproject`. Its mount has
//! no daemon group, so an implicit daemon group serves it, as Apache's `User`, and Python
//! stays out of Apache.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{procs, test_venv, Stage, TestServer};

#[test]
fn the_django_guides_embedded_mode_config_serves_a_django_project() {
    let stage = Stage::new("django");
    let venv = test_venv();
    let project = stage.subdir("mysite.com");
    let out = Command::new(venv.join("bin/django-admin"))
        .args(["startproject", "mysite"])
        .arg(&project)
        .output()
        .expect("run django-admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

//! Django's own recipe, "How to authenticate against Django's user database from Apache"
//! (Django 4.2-5.2 docs, howto/deployment/wsgi/apache-auth): a real Django project's users and
//! groups guard a location through `django.contrib.auth.handlers.modwsgi`'s
//! `check_password` and `groups_for_user`, with the guide's embedded-mode directives as
//! written (paths replaced). mod_wsgi ran these inside Apache; here they run in the
//! server's implicit daemon group (`WSGIProcessGroup %{GLOBAL}`).
//!
//! Two departures, both the guide's own bugs under current Django and httpd 2.4:
//! - its `wsgi.py` imports `modwsgi` before Django is set up, which raises
//!   `AppRegistryNotReady` (under mod_wsgi too); here the application is made first;
//! - its group example says `Require group`, which under httpd 2.4 is mod_authz_groupfile's
//!   provider; mod_wsgi's (and rswsgi's) is `Require wsgi-group`.

mod common;

use std::path::Path;
use std::process::Command;

use common::curl::curl;
use common::{Stage, TestServer};

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{:?}: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `django-admin startproject mysite`, migrated, with users alice (in group editors) and bob.
fn django_project(stage: &Stage, venv: &Path) -> std::path::PathBuf {
    let project = common::django_startproject(stage, venv);
    // The guide's wsgi.py: the settings, the application, Django's check_password and
    // groups_for_user.
    std::fs::write(
        project.join("mysite/wsgi.py"),
        "import os\n\nos.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings'\n\n\
         from django.core.wsgi import get_wsgi_application\n\
         application = get_wsgi_application()\n\n\
         from django.contrib.auth.handlers.modwsgi import check_password, groups_for_user\n",
    )
    .unwrap();
    let python = venv.join("bin/python");
    run(Command::new(&python)
        .arg("manage.py")
        .args(["migrate", "-v", "0"])
        .current_dir(&project));
    run(Command::new(&python)
        .arg("manage.py")
        .args([
            "shell",
            "-c",
            "from django.contrib.auth.models import Group, User\n\
             editors = Group.objects.create(name='editors')\n\
             User.objects.create_user('alice', password='wonderland').groups.add(editors)\n\
             User.objects.create_user('bob', password='builder')\n\
             carol = User.objects.create_user('carol', password='inactive')\n\
             carol.is_active = False\ncarol.save()\n",
        ])
        .current_dir(&project));
    // The daemons run as another user: they must read the code and the database.
    run(Command::new("chmod").args(["-R", "a+rwX"]).arg(&project));
    project
}

#[test]
fn djangos_apache_auth_recipe_guards_a_location_with_django_users() {
    let venv = require!(venv);
    let stage = Stage::new("djangoauth");
    let project = django_project(&stage, &venv);
    let secret = stage.subdir("secret");
    stage.write("secret/plans.txt", "top secret\n");
    let site = project.display().to_string();
    let guide = [
        format!("WSGIScriptAlias / {site}/mysite/wsgi.py"),
        format!("WSGIPythonHome {}", venv.display()),
        format!("WSGIPythonPath {site}"),
        "WSGIProcessGroup %{GLOBAL}".to_owned(),
        "WSGIApplicationGroup %{GLOBAL}".to_owned(),
        String::new(),
        format!("Alias /secret {}", secret.display()),
        "<Location \"/secret\">".to_owned(),
        "    AuthType Basic".to_owned(),
        "    AuthName \"Top Secret\"".to_owned(),
        "    Require valid-user".to_owned(),
        "    AuthBasicProvider wsgi".to_owned(),
        format!("    WSGIAuthUserScript {site}/mysite/wsgi.py"),
        "</Location>".to_owned(),
        format!("Alias /editors {}", secret.display()),
        "<Location \"/editors\">".to_owned(),
        "    AuthType Basic".to_owned(),
        "    AuthName \"Editors\"".to_owned(),
        "    AuthBasicProvider wsgi".to_owned(),
        format!("    WSGIAuthUserScript {site}/mysite/wsgi.py"),
        format!("    WSGIAuthGroupScript {site}/mysite/wsgi.py"),
        "    Require wsgi-group editors".to_owned(),
        "</Location>".to_owned(),
        format!("<Directory {}>", secret.display()),
        "    Require all granted".to_owned(),
        "</Directory>".to_owned(),
        format!("<Directory {site}/mysite>"),
        "<Files wsgi.py>".to_owned(),
        "Require all granted".to_owned(),
        "</Files>".to_owned(),
        "</Directory>".to_owned(),
    ];
    let mut builder = TestServer::builder("tests/apps/site_probe.py").mount_point("/express-app");
    for line in &guide {
        builder = builder.directive(line);
    }
    let srv = builder.start();
    let dir = &stage.dir;
    let url = |p: &str| format!("http://{}{p}", srv.addr);
    assert_eq!(curl(dir, &url("/secret/plans.txt"), &[]).status, 401);
    let alice = curl(dir, &url("/secret/plans.txt"), &["-u", "alice:wonderland"]);
    assert_eq!(alice.status, 200, "{}", srv.logs());
    assert_eq!(alice.text(), "top secret\n");
    assert_eq!(
        curl(dir, &url("/secret/plans.txt"), &["-u", "alice:wrong"]).status,
        401
    );
    assert_eq!(
        curl(dir, &url("/secret/plans.txt"), &["-u", "nobody:x"]).status,
        401
    );
    // Django's check_password refuses inactive users.
    assert_eq!(
        curl(dir, &url("/secret/plans.txt"), &["-u", "carol:inactive"]).status,
        401
    );
    // groups_for_user: alice is an editor, bob is not.
    let editor = curl(dir, &url("/editors/plans.txt"), &["-u", "alice:wonderland"]);
    assert_eq!(editor.status, 200, "{}", srv.logs());
    assert_eq!(
        curl(dir, &url("/editors/plans.txt"), &["-u", "bob:builder"]).status,
        401
    );
    // The Django site itself is served at / by the same implicit group.
    let admin = curl(dir, &url("/admin/login/"), &[]);
    assert_eq!(admin.status, 200, "{}", srv.logs());
    assert!(admin.text().contains("csrfmiddlewaretoken"));
}

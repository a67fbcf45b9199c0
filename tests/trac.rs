//! A published application that detects mod_wsgi through its environ keys: Trac, served
//! through real Apache and driven with `curl` as a browser would (its form token cookie
//! included). Trac's About page reports the front end from `mod_wsgi.version` (joined as a
//! tuple of numbers), `mod_wsgi.process_group` and `mod_wsgi.application_group`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{test_user, test_venv, Stage, TestServer};

fn trac_admin(env: &Path, args: &[&str]) {
    let out = Command::new(test_venv().join("bin/trac-admin"))
        .arg(env)
        .args(args)
        .output()
        .expect("run trac-admin (make setup installs Trac into the test venv)");
    assert!(out.status.success(), "trac-admin {args:?}: {out:?}");
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the hidden `__FORM_TOKEN` input of a Trac form.
fn form_token(html: &str) -> String {
    let at = html
        .find("name=\"__FORM_TOKEN\" value=\"")
        .unwrap_or_else(|| panic!("no form token in:\n{html}"));
    let rest = &html[at + "name=\"__FORM_TOKEN\" value=\"".len()..];
    rest[..rest.find('"').expect("end of token")].to_string()
}

#[test]
fn trac_serves_its_about_page_and_takes_a_ticket() {
    require!(venv);
    let stage = Stage::new("trac");
    let env = stage.dir.join("env");
    trac_admin(&env, &["initenv", "rswsgi test", "sqlite:db/trac.db"]);
    trac_admin(&env, &["permission", "add", "anonymous", "TRAC_ADMIN"]);
    if let Some(user) = test_user() {
        let chown = Command::new("chown").args(["-R", &user]).arg(&env).status();
        assert!(
            chown.is_ok_and(|s| s.success()),
            "chown the Trac environment"
        );
    }
    let script = stage.write(
        "trac.wsgi",
        &format!(
            "import os\nos.environ['TRAC_ENV'] = {:?}\nimport trac.web.main\n\
             application = trac.web.main.dispatch_request\n",
            env.display()
        ),
    );
    let srv = TestServer::builder(script.to_str().unwrap())
        .ready_path("/wiki")
        .start();
    let base = format!("http://{}", srv.addr);

    let about = curl(&[&format!("{base}/about")]);
    assert!(
        about.contains("<th>mod_wsgi</th>"),
        "Trac did not see mod_wsgi:\n{about}\n{}",
        srv.logs()
    );
    assert!(
        about.contains("<td>6.0.0 (WSGIProcessGroup "),
        "mod_wsgi.version as Trac reports it:\n{about}"
    );

    let jar = stage.dir.join("cookies");
    let jar = jar.to_str().unwrap();
    let form = curl(&["-c", jar, &format!("{base}/newticket")]);
    let token = form_token(&form);
    let created = curl(&[
        "-b",
        jar,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--data-urlencode",
        &format!("__FORM_TOKEN={token}"),
        "--data-urlencode",
        "field_summary=Served by rswsgi",
        "--data-urlencode",
        "field_description=A ticket made through Apache and rswsgi.",
        "--data-urlencode",
        "field_type=defect",
        "--data-urlencode",
        "submit=Create ticket",
        &format!("{base}/newticket"),
    ]);
    assert!(
        created.starts_with("303 ") && created.ends_with("/ticket/1"),
        "creating a ticket: {created}\n{}",
        srv.logs()
    );
    let ticket = curl(&[&format!("{base}/ticket/1")]);
    assert!(ticket.contains("Served by rswsgi"), "{ticket}");
}

//! A published application that writes to `sys.stdout.buffer` while it imports: Mercurial's
//! hgweb, served through real Apache and cloned from with the real `hg` client.

mod common;

use std::process::Command;

use common::{test_venv, Stage, TestServer};

fn hg(args: &[&str]) -> std::process::Output {
    Command::new(test_venv().join("bin/hg"))
        .args(args)
        .env("HGUSER", "rswsgi test <test@example.invalid>")
        .env("HGPLAIN", "1")
        .output()
        .expect("run hg (make setup installs Mercurial into the test venv)")
}

#[test]
fn hg_clones_a_repository_served_by_hgweb() {
    require!(venv);
    let stage = Stage::new("hg");
    let repo = stage.subdir("repo");
    let init = hg(&["init", repo.to_str().unwrap()]);
    assert!(init.status.success(), "{init:?}");
    std::fs::write(repo.join("README"), "served by rswsgi\n").unwrap();
    let commit = hg(&["-R", repo.to_str().unwrap(), "commit", "-A", "-m", "first"]);
    assert!(commit.status.success(), "{commit:?}");
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&repo)
        .status();
    let script = stage.write(
        "hgweb.py",
        &format!(
            "from mercurial.hgweb import hgweb\napplication = hgweb({:?}.encode())\n",
            repo.display()
        ),
    );
    let srv = TestServer::builder(script.to_str().unwrap()).start();
    let index = srv.get("/");
    assert_eq!(index.status, 200, "{}", srv.logs());
    let dest = stage.dir.join("clone");
    let url = format!("http://{}/", srv.addr);
    let clone = hg(&["clone", &url, dest.to_str().unwrap()]);
    assert!(
        clone.status.success(),
        "hg clone {url}: {}\n{}",
        String::from_utf8_lossy(&clone.stderr),
        srv.logs()
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("README")).unwrap(),
        "served by rswsgi\n"
    );
}

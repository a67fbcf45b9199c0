//! A group's daemon command line and environment, built once per group in httpd's parent
//! (the contract is ARCHITECTURE.md's "Daemon command line").

use tracing::warn;

use super::credentials;
use super::spawn::LaunchSpec;
use super::GroupPlan;
use crate::config::DaemonGroupConfig;

/// The uid Apache's children serve requests as, which daemons accept connections from.
fn apache_children_uid() -> u32 {
    if nix::unistd::geteuid().is_root() {
        credentials::apache_child_ids().0.as_raw()
    } else {
        nix::unistd::geteuid().as_raw()
    }
}

/// The uid the group's daemons accept connections from (`--peer-uid`): its `socket-user`
/// when httpd is root (the socket belongs to that user, so only it can connect), else
/// Apache's `User` (httpd's own uid when httpd is not root).
fn peer_uid(g: &DaemonGroupConfig) -> Result<u32, String> {
    let ids = crate::daemon_ids::resolve(g)?;
    match ids.socket_uid {
        Some(uid) if nix::unistd::geteuid().is_root() => Ok(uid),
        Some(_) => {
            warn!(
                "WSGIDaemonProcess {}: socket-user ignored: httpd is not running as root, so \
                 the socket stays httpd's own",
                g.name
            );
            Ok(apache_children_uid())
        }
        None => Ok(apache_children_uid()),
    }
}

/// The flags of the group's options about sockets, threads and script owners.
fn conn_args(g: &DaemonGroupConfig) -> Result<Vec<String>, String> {
    let ids = crate::daemon_ids::resolve(g)?;
    let mut argv = Vec::new();
    let numbers = [
        ("--script-user", ids.script_uid.map(u64::from)),
        ("--script-group", ids.script_gid.map(u64::from)),
        ("--send-buffer-size", g.conn.send_buffer_size.map(u64::from)),
        (
            "--receive-buffer-size",
            g.conn.receive_buffer_size.map(u64::from),
        ),
        ("--stack-size", g.conn.stack_size),
    ];
    for (flag, value) in numbers {
        if let Some(v) = value {
            argv.extend([flag.to_string(), v.to_string()]);
        }
    }
    if let Some(s) = &g.conn.switch_interval {
        argv.extend(["--switch-interval".to_string(), s.clone()]);
    }
    Ok(argv)
}

/// Resolves the group's identity and builds the exec of its daemons.
pub(super) fn prepare_group(
    plan: &GroupPlan,
    daemon_exe: &str,
    owner: i32,
) -> Result<LaunchSpec, String> {
    let g = &plan.config;
    let creds = credentials::resolve(g)?;
    if let Some(c) = &creds {
        credentials::check_can_exec(daemon_exe, c)?;
    }
    let mut argv = vec![
        g.display_name
            .clone()
            .unwrap_or_else(|| "rswsgi-daemon".into()),
        "--listen-fd".into(),
        "3".into(),
        "--listen-backlog".into(),
        g.listen_backlog.to_string(),
        "--group".into(),
        g.name.clone(),
        "--processes".into(),
        g.processes.to_string(),
        "--threads".into(),
        g.threads.to_string(),
        "--parent-pid".into(),
        owner.to_string(),
        // The pipe `spawn` puts there, holding the connection secret.
        "--secret-fd".into(),
        "4".into(),
        "--peer-uid".into(),
        peer_uid(g)?.to_string(),
    ];
    for (flag, list) in [
        ("--script", &plan.scripts),
        ("--allow-script", &plan.allowed_scripts),
        ("--allow-dir", &plan.allowed_dirs),
    ] {
        for s in list {
            argv.extend([flag.into(), s.clone()]);
        }
    }
    for (option, value) in &g.limits {
        argv.extend([format!("--{option}"), value.to_string()]);
    }
    if !plan.script_reloading {
        argv.push("--no-script-reloading".into());
    }
    let (stdin, stdout) = plan.restrict_streams;
    let flags = [
        (stdin, "--restrict-stdin"),
        (stdout, "--restrict-stdout"),
        (plan.verbose, "--verbose"),
    ];
    for (on, flag) in flags {
        if on {
            argv.push(flag.into());
        }
    }
    if let Some(v) = crate::httpd::server_version() {
        argv.extend(["--apache-version".into(), v]);
    }
    for (flag, value) in [
        ("--python-home", &g.python_home),
        ("--python-path", &g.python_path),
        ("--home", &g.home),
    ] {
        if let Some(v) = value {
            argv.extend([flag.into(), v.clone()]);
        }
    }
    argv.extend(conn_args(g)?);
    let mut env = credentials::daemon_env(creds.as_ref());
    env.extend(plan.python_env.iter().cloned());
    for (name, value) in [("LANG", &g.lang), ("LC_ALL", &g.locale)] {
        if let Some(v) = value {
            env.retain(|e| !e.starts_with(&format!("{name}=")));
            env.push(format!("{name}={v}"));
        }
    }
    for word in &g.ignored {
        warn!(
            "WSGIDaemonProcess {}: {word} ignored: {}",
            g.name,
            crate::config::ignored_reason(word)
        );
    }
    let mut spec = LaunchSpec::new(daemon_exe, &argv, &env, creds, g.umask)?;
    spec.address_space_limit = g.virtual_memory_limit;
    spec.nice = g.cpu_priority;
    Ok(spec)
}

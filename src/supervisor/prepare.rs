//! A group's daemon command line and environment, built once per group in httpd's parent
//! (the contract is ARCHITECTURE.md's "Daemon command line").

use rswsgi_protocol::Code;
use std::path::PathBuf;

use rswsgi_protocol::{DaemonSpec, ScriptOwner};
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
                "{}: WSGIDaemonProcess {}: socket-user ignored: httpd is not running as root, \
                 so the socket stays httpd's own",
                Code::SocketUserIgnored,
                g.name
            );
            Ok(apache_children_uid())
        }
        None => Ok(apache_children_uid()),
    }
}

/// The group's options about sockets, threads and script owners.
fn conn_options(g: &DaemonGroupConfig, spec: &mut DaemonSpec) -> Result<(), String> {
    let ids = crate::daemon_ids::resolve(g)?;
    spec.script_owner = match (ids.script_uid, ids.script_gid) {
        (Some(uid), _) => Some(ScriptOwner::User(uid)),
        (None, Some(gid)) => Some(ScriptOwner::Group(gid)),
        (None, None) => None,
    };
    spec.send_buffer_size = g.conn.send_buffer_size;
    spec.receive_buffer_size = g.conn.receive_buffer_size;
    spec.stack_size = g.conn.stack_size;
    if let Some(s) = &g.conn.switch_interval {
        // Checked when the configuration was read (`check_switch_interval`).
        let secs = s
            .parse()
            .map_err(|_| format!("switch-interval={s} is not a number"))?;
        spec.switch_interval = Some(secs);
    }
    if let Some(s) = &g.conn.slow_requests {
        // Checked when the configuration was read, as switch-interval.
        let secs = s
            .parse()
            .map_err(|_| format!("slow-requests={s} is not a number"))?;
        spec.slow_requests = Some(secs);
    }
    Ok(())
}

/// The command line of the group's daemons (ARCHITECTURE.md's "Daemon command line").
fn daemon_spec(plan: &GroupPlan, owner: i32) -> Result<DaemonSpec, String> {
    let g = &plan.config;
    let mut spec = DaemonSpec::new(&g.name, g.processes, g.threads, owner);
    spec.peer_uid = Some(peer_uid(g)?);
    spec.stats_fd = Some(rswsgi_protocol::daemon_spec::STATS_FD);
    spec.listen_backlog = i32::try_from(g.listen_backlog).map_err(|_| {
        format!(
            "WSGIDaemonProcess {}: listen-backlog={} is too large",
            g.name, g.listen_backlog
        )
    })?;
    let paths = |list: &[String]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
    spec.scripts = paths(&plan.scripts);
    spec.allow_scripts = paths(&plan.allowed_scripts);
    spec.allow_dirs = paths(&plan.allowed_dirs);
    for (option, value) in &g.limits {
        let known = spec.set_limit(option, *value);
        debug_assert!(known, "{option} is one of rswsgi_protocol's LIMITS");
    }
    spec.script_reloading = plan.script_reloading;
    spec.reload_on_changes = g.reload.on_changes;
    spec.reload_files = paths(&g.reload.files);
    (spec.restrict_stdin, spec.restrict_stdout) = plan.restrict_streams;
    spec.verbose = plan.verbose;
    spec.log_level = plan.log_level;
    spec.apache_version = crate::httpd::server_version();
    spec.python_home = g.python_home.as_ref().map(PathBuf::from);
    if let Some(p) = &g.python_path {
        spec.python_path = std::env::split_paths(p)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    spec.home = g.home.as_ref().map(PathBuf::from);
    conn_options(g, &mut spec)?;
    Ok(spec)
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
    let argv0 = g.display_name.as_deref().unwrap_or("rswsgi-daemon");
    let mut argv = vec![argv0.to_string()];
    // Every value came from the configuration's text, so it is UTF-8.
    let args = daemon_spec(plan, owner)?.to_args();
    argv.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
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
            "{}: WSGIDaemonProcess {}: {word} ignored: {}",
            Code::OptionIgnored,
            g.name,
            crate::config::ignored_reason(word)
        );
    }
    let mut spec = LaunchSpec::new(daemon_exe, &argv, &env, creds, g.umask)?;
    spec.address_space_limit = g.virtual_memory_limit;
    spec.nice = g.cpu_priority;
    Ok(spec)
}

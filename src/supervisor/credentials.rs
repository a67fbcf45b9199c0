//! Who a daemon group runs as, resolved in httpd's parent before any fork.

use nix::unistd::{getgrouplist, Gid, Group, Uid, User};
use tracing::warn;

use super::spawn::Credentials;
use crate::config::{DaemonGroupConfig, Principal};
use crate::ffi;

/// The uid and gid of Apache's children (`User`/`Group`).
pub fn apache_child_ids() -> (Uid, Gid) {
    // SAFETY: ap_unixd_config is written by mod_unixd while the configuration is read, before
    // post_config, and only read afterwards.
    let c = unsafe { &*std::ptr::addr_of!(ffi::ap_unixd_config) };
    (Uid::from_raw(c.user_id), Gid::from_raw(c.group_id))
}

fn lookup_user(p: &Principal) -> Result<(String, Uid, Option<User>), String> {
    let found = match p {
        Principal::Name(n) => User::from_name(n),
        Principal::Id(i) => User::from_uid(Uid::from_raw(*i)),
    }
    .map_err(|e| format!("cannot look up user {p}: {e}"))?;
    match (p, found) {
        (_, Some(u)) => Ok((u.name.clone(), u.uid, Some(u))),
        (Principal::Id(i), None) => Ok((format!("#{i}"), Uid::from_raw(*i), None)),
        (Principal::Name(n), None) => Err(format!("user '{n}' does not exist")),
    }
}

fn lookup_group(p: &Principal) -> Result<Gid, String> {
    match p {
        Principal::Id(i) => Ok(Gid::from_raw(*i)),
        Principal::Name(n) => Group::from_name(n)
            .map_err(|e| format!("cannot look up group {n}: {e}"))?
            .map(|g| g.gid)
            .ok_or_else(|| format!("group '{n}' does not exist")),
    }
}

/// The identity the group's daemons switch to, or `None` when httpd is not root (the daemons
/// then keep httpd's own identity).
pub fn resolve(g: &DaemonGroupConfig) -> Result<Option<Credentials>, String> {
    if !nix::unistd::geteuid().is_root() {
        if let Some(u) = &g.user {
            let me = User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name);
            if me.as_deref() != Some(&u.to_string()) {
                warn!(
                    "WSGIDaemonProcess {}: user={u} ignored: httpd is not running as root",
                    g.name
                );
            }
        }
        return Ok(None);
    }
    let (apache_uid, apache_gid) = apache_child_ids();
    let (name, uid, user) = match &g.user {
        Some(p) => lookup_user(p)?,
        None => lookup_user(&Principal::Id(apache_uid.as_raw()))?,
    };
    if uid.is_root() {
        return Err(format!(
            "user {name} is root (uid 0): daemon processes must not run as root"
        ));
    }
    let gid = match (&g.group, &g.user, &user) {
        (Some(p), _, _) => lookup_group(p)?,
        (None, Some(_), Some(u)) => u.gid,
        _ => apache_gid,
    };
    let groups = match &user {
        Some(u) => {
            let cname =
                std::ffi::CString::new(u.name.as_str()).map_err(|_| "bad user name".to_string())?;
            getgrouplist(&cname, gid)
                .map_err(|e| format!("cannot list the groups of {name}: {e}"))?
        }
        None => vec![gid],
    };
    Ok(Some(Credentials {
        user: name,
        uid,
        gid,
        groups,
    }))
}

/// The daemon's environment: httpd's, with `HOME`, `USER` and `LOGNAME` of the daemon user.
pub fn daemon_env(creds: Option<&Credentials>) -> Vec<String> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(c) = creds {
        let home = User::from_uid(c.uid)
            .ok()
            .flatten()
            .map(|u| u.dir.display().to_string())
            .unwrap_or_else(|| "/".into());
        env.retain(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"));
        env.extend([
            ("HOME".into(), home),
            ("USER".into(), c.user.clone()),
            ("LOGNAME".into(), c.user.clone()),
        ]);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}
